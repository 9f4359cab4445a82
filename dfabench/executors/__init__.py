"""Where a run's model answers: this process (:mod:`.local`) or Ray actors (:mod:`.ray`); shards of a
run (:mod:`.shards`) and putting them back together (:mod:`.merge`).

An executor has one job: turn batches of :class:`dfabench.answers.Item` (with what the response cache
already holds) into outcomes (:mod:`.batch`). Everything else — selection, cache keys, committing answers to
the cache, parsing, scoring, the run folder's transaction — stays with the driver
(:func:`dfabench.runner.run`), so a run gives the same files whichever executor answered it, and a run
started on one executor resumes on another from the same cache.
"""

from __future__ import annotations

from typing import Any

from dfabench.errors import DfabenchError

EXECUTORS = ("local", "ray")


def create_executor(kind: str, entry, args: dict[str, Any], bench: str, options: dict[str, Any] | None = None,
                    stream=None):
    """The executor ``kind`` for model ``entry`` with ``args`` (see :data:`EXECUTORS`)."""
    options = dict(options or {})
    if kind == "local":
        if options:
            raise DfabenchError(f"{', '.join('--' + k.replace('_', '-') for k in sorted(options))} "
                                "need --executor ray")
        from dfabench.executors.local import LocalExecutor

        return LocalExecutor(entry, args)
    if kind == "ray":
        from dfabench.executors.ray import RayExecutor

        known = {"replicas", "gpus_per_replica", "cpus_per_replica", "ray_address"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise DfabenchError(f"unknown Ray executor setting(s) {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(known))})")
        return RayExecutor(entry.name, args, bench, stream=stream, **options)
    raise DfabenchError(f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})")
