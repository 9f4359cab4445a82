"""The files of a run folder, as bytes: their names, their encodings and their hashes.

The bottom layer of the run-folder modules (:mod:`dfabench.store` the folder, :mod:`dfabench.transaction`
its locked journaled commit, :mod:`dfabench.cache` the response cache, :mod:`dfabench.records` the
records): it imports nothing of dfabench. :func:`atomic_write_text` (temporary file + rename) is for
single files outside run folders.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: 2: ``samples[TASK]["masks"]`` holds the SHA-256 of each predicted mask (version-1 records stay readable)
SCHEMA_VERSION = 2
RUN_RECORD = "run.json"
CACHE_FILE = "cache.sqlite"


def canonical_json(value: Any) -> str:
    """Compact, key-sorted JSON: the text that identities and cache keys hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    """The SHA-256 (hex) of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | Path) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write one file atomically (temporary file + fsync + rename). Not for run folders: those are
    written through :meth:`RunFolder.transaction`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def samples_file_name(task: str) -> str:
    """The per-sample log of ``task``: ``samples-<TASK>.jsonl``."""
    return f"samples-{task}.jsonl"


def sample_line(record: dict[str, Any]) -> str:
    """One line of a per-sample log (with its newline): the record as JSON."""
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"


def samples_text(records: Iterable[dict[str, Any]]) -> str:
    """The bytes (as text) of a per-sample log: one JSON object per line (a log is written line by line,
    :meth:`dfabench.transaction.Transaction.write_samples`; this is the same text at once)."""
    return "".join(sample_line(r) for r in records)


def record_text(record: dict[str, Any]) -> str:
    """The text of ``run.json``."""
    return json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n"
