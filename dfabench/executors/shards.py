"""Deterministic shards of a run: ``dfabench run ... --shard K/N``.

A sample belongs to shard ``1 + int(sha256(id)) mod N``: the hash of its id (UTF-8), not Python's
``hash()``, so the split is the same on every machine and Python version, independent of the
manifest's order and of the other samples. The selection (split, the task's sample filter,
``--limit``, ``--frames-per-video``) is made first, over the whole benchmark, exactly as an unsharded
run makes it; the shard then keeps its part of it. ``dfabench merge`` (:mod:`dfabench.executors.merge`)
puts the N parts back together, and the merged run equals the unsharded one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any, TypeVar

from dfabench.errors import DfabenchError

T = TypeVar("T")

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
#: more shards than this is a typo, not a cluster
MAX_SHARDS = 1 << 20


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``; anything else is one clear line."""
    match = _SPEC.match(str(text))
    if not match:
        raise DfabenchError(f"--shard must be K/N (e.g. 1/4: the first of four shards), not {text!r}")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or n > MAX_SHARDS:
        raise DfabenchError(f"--shard {text}: the number of shards must be between 1 and {MAX_SHARDS}, not {n}")
    if not 1 <= k <= n:
        raise DfabenchError(f"--shard {text}: the shard must be between 1 and {n} (shards are counted from 1), "
                            f"not {k}")
    return k, n


def shard_of(sample_id: Any, count: int) -> int:
    """The shard (1..count) a sample id belongs to."""
    digest = hashlib.sha256(str(sample_id).encode("utf-8")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


def take_shard(samples: Iterable[T], shard: tuple[int, int] | None, id_of=lambda s: s.id) -> list[T]:
    """The samples of ``shard`` (all of them for ``None``), in their order."""
    if shard is None:
        return list(samples)
    k, n = shard
    return [s for s in samples if shard_of(id_of(s), n) == k]


def shard_record(shard: tuple[int, int] | None) -> dict[str, int] | None:
    """What run.json records of a shard: ``{"index": K, "count": N}`` (None: not a shard)."""
    return None if shard is None else {"index": shard[0], "count": shard[1]}
