"""The local executor: the model in this process, batches answered one after the other while the
images of the next batch are decoded by :data:`DECODE_THREADS` threads (PIL releases the GIL while
decompressing)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from dfabench.answers import Item
from dfabench.executors.batch import Outcomes, call_model, decode_items, describe_model, found_outcomes

#: threads decoding images ahead of the model (DFABENCH_DECODE_THREADS overrides)
DECODE_THREADS = int(os.environ.get("DFABENCH_DECODE_THREADS") or max(1, min(4, os.cpu_count() or 1)))


class LocalExecutor:
    """The model created once, in this process."""

    kind = "local"

    def __init__(self, entry, args: dict[str, Any]):
        self.entry, self.args = entry, args
        self.model = None
        self.info: dict[str, Any] = {}

    def start(self, benchmark) -> dict[str, Any]:
        """Create and prepare the model; returns :func:`dfabench.executors.batch.describe_model`."""
        self.model = self.entry.create(**self.args)
        self.model.prepare(benchmark)
        self.info = describe_model(self.entry, self.args, self.model)
        return self.info

    def answer(self, task, capability: str, settings, batches: Iterable[tuple[list[Item], dict[str, Any]]],
               root: str) -> Iterator[tuple[list[Item], Outcomes]]:
        """Answer each ``(batch, cache hits)`` in order; the next batch's images decode meanwhile."""
        decoders = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="dfabench-decode")
        source = iter(batches)

        def prepare(pair):
            batch, found = pair
            known, todo = found_outcomes(task, batch, found, root)
            return batch, known, todo, decode_items(todo, root, decoders)

        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dfabench-prefetch") as pool:
                first = next(source, None)
                pending: Future | None = pool.submit(prepare, first) if first is not None else None
                while pending is not None:
                    batch, known, todo, images = pending.result()
                    following = next(source, None)  # its cache lookup runs here, its decoding in the pool
                    pending = pool.submit(prepare, following) if following is not None else None
                    if todo:
                        known.update(call_model(self.model, task, capability, settings, todo, images, root))
                    yield batch, known
        finally:
            decoders.shutdown(cancel_futures=True)

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def close(self) -> None:
        if self.model is not None:
            self.model.close()
            self.model = None
