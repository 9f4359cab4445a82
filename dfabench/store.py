"""Run folders: the run record, the per-sample logs, the predicted masks and the response cache.

A run folder holds

- ``run.json``: the run record (see :data:`SCHEMA_VERSION` and DESIGN.md);
- ``samples-<TASK>.jsonl``: one JSON object per sample (fields below);
- ``masks/<TASK>/<name>.png``: the masks a localizing model predicted (FL);
- ``cache.sqlite``: the response cache (:class:`ResponseCache`).

Per-sample record fields: ``id``, ``task``, ``label``, ``category``, ``technique``,
``source_id`` (copied from the benchmark so that scoring needs nothing else), ``prompt``
(text of the last user turn, ``null`` on the score path), ``prompt_hash``, ``reference``
(DF-D: ``real``/``fake``; DF-C: the category; AD/FC: the reference text; FL:
``{"text": str, "mask": relative path in the benchmark}``), ``response`` (raw model text or
``null``), ``parsed`` (DF-D: ``real``/``fake``/``null``; DF-C: category/``null``; text tasks:
the answer text; FL: ``{"text": str, "mask": path in the run folder or null}``), ``score``
(probability of fake or ``null``), ``category_scores``, ``unparsed`` (bool), ``error``
(``null`` or the reason this sample failed), ``cached`` (bool), ``timings``, ``tokens``,
``metrics`` (per-sample metric values, written by scoring) and ``judge`` (written by
``dfabench judge``).

Integrity: ``run.json`` gives, for each task, ``samples[TASK] = {"file", "sha256"}`` and, for a
task that predicts masks (schema version 2), ``samples[TASK]["masks"] = {relative path: sha256}``
of every mask its log refers to. :meth:`RunFolder.integrity_problems` checks both; a stage that
rewrites a record from its logs (``score``, ``judge``) refuses a folder that does not match.

Writing: every write goes through :meth:`RunFolder.transaction` (:mod:`dfabench.transaction`: the
lock, the staging, the commit journal, recovery and fault injection). The file names, encodings and
hashes are in :mod:`dfabench.files`, the response cache in :mod:`dfabench.cache`; their names are
re-exported here, where they were before.
"""

from __future__ import annotations

import contextlib
import json
import os
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dfabench.cache import ResponseCache, cache_key
from dfabench.errors import InputError
from dfabench.files import (
    CACHE_FILE,
    RUN_RECORD,
    SCHEMA_VERSION,
    atomic_write_text,
    canonical_json,
    record_text,
    samples_file_name,
    samples_text,
    sha256_file,
    sha256_text,
)
from dfabench.transaction import (
    FAULT_ENV,
    FAULT_EXIT_CODE,
    JOURNAL_FILE,
    LOCK_FILE,
    READER_WAIT_S,
    STAGING_PREFIX,
    FolderLockedError,
    Transaction,
    holds,
    locked_transaction,
    recover_folder,
)

__all__ = [  # the names other modules import from here (several now defined in files, transaction, cache)
    "CACHE_FILE", "FAULT_ENV", "FAULT_EXIT_CODE", "JOURNAL_FILE", "LOCK_FILE", "READER_WAIT_S", "RUN_RECORD",
    "SCHEMA_VERSION", "STAGING_PREFIX", "FolderLockedError", "ResponseCache", "RunFolder", "SampleLog", "Transaction",
    "atomic_write_text", "cache_key", "canonical_json", "record_text", "samples_file_name", "samples_text",
    "sha256_file", "sha256_text",
]


class SampleLog(Sequence):
    """A per-sample log read once as columns (:meth:`RunFolder.sample_log`): flat in memory whatever its size.

    It is a sequence of the log's records, as :meth:`RunFolder.read_samples` gives them: iterating reads them
    again from the file, one at a time (fresh dicts: changing one changes nothing); ``log[i]`` reads line i.
    ``columns`` (a :class:`dfabench.records.sample.SampleColumns`) holds what scoring and verifying use; the
    built-in metric providers read those instead of the records. The file is read through the handle opened
    for the first pass, so a later commit that replaces the file does not change what the log holds."""

    def __init__(self, path: Path, handle, offsets: array, columns: Any):
        self.path = Path(path)
        self._handle = handle
        self._offsets = offsets
        self.columns = columns

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("sample log index out of range")
        return json.loads(self._read_line(self._offsets[index]).decode("utf-8"))

    def _read_line(self, offset: int) -> bytes:
        parts = []
        while True:
            block = os.pread(self._handle.fileno(), 1 << 16, offset)
            end = block.find(b"\n")
            if end >= 0 or not block:
                parts.append(block if end < 0 else block[:end])
                return b"".join(parts)
            parts.append(block)
            offset += len(block)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The records again, in order (each line was validated by the first pass)."""
        fd, position, rest = self._handle.fileno(), 0, b""
        while True:
            block = os.pread(fd, 1 << 20, position)
            if not block:
                break
            position += len(block)
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.strip():
                    yield json.loads(line.decode("utf-8"))
        if rest.strip():
            yield json.loads(rest.decode("utf-8"))

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> SampleLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sample_log(path: Path) -> SampleLog:
    """:meth:`RunFolder.sample_log` of a log file anywhere (e.g. one staged in a transaction)."""
    from dfabench.records.sample import SampleColumns  # lazily: see RunFolder.read_record

    handle = open(path, "rb")  # noqa: SIM115 - the log keeps it to read its lines again
    try:
        columns = SampleColumns()
        offsets = array("q")
        for _, offset, record in RunFolder._validated_lines(path, handle):
            columns.add(record)
            offsets.append(offset)
        return SampleLog(path, handle, offsets, columns)
    except BaseException:
        handle.close()
        raise


class RunFolder:
    """Read and write the files of one run folder; every write goes through :meth:`transaction`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.active: Transaction | None = None

    @property
    def record_path(self) -> Path:
        return self.path / RUN_RECORD

    # ---- transactions and recovery

    @contextlib.contextmanager
    def transaction(self, *, create: bool = False) -> Iterator[Transaction]:
        """Lock the folder, recover it, and yield a :class:`Transaction` that is committed when the
        block ends (and dropped when it raises). ``create``: make the folder if it does not exist."""
        with locked_transaction(self, create=create) as tx:
            yield tx

    def active_transaction(self) -> Transaction:
        """The transaction this folder object is in (a stage's helpers stage through it)."""
        if self.active is None:
            raise RuntimeError(f"no transaction is open on {self.path}")
        return self.active

    def recover(self) -> None:
        """Finish or clean up what an interrupted writer left (see :mod:`dfabench.transaction`)."""
        recover_folder(self.path)

    # ---- reading

    def exists(self) -> bool:
        self.recover()
        return self.record_path.exists()

    def read_record(self) -> dict[str, Any]:
        path = self.record_path
        if not self.path.exists():
            raise InputError(self.path, "no such run folder")
        self.recover()
        if not path.exists():
            raise InputError(self.path, f"not a run folder: it has no {RUN_RECORD}")
        # malformed, too deeply nested or of the wrong types (dfabench.records): one line naming the problem
        # imported here, not at the top (no cycle: records imports only dfabench.files): dfabench.records builds
        # its schema types at import (~10 ms), which `dfabench --help` and `dfabench models` do not need
        from dfabench.records import load_json, validate_run_record

        return validate_run_record(load_json(path), path)

    def samples_path(self, task: str) -> Path:
        return self.path / samples_file_name(task)

    def tasks(self) -> list[str]:
        """Tasks that have a per-sample log, in the order of the run record when there is one."""
        self.recover()
        found = {p.name[len("samples-"):-len(".jsonl")] for p in self.path.glob("samples-*.jsonl")}
        order = list(self.read_record().get("tasks", {})) if self.exists() else []
        return [t for t in order if t in found] + sorted(found - set(order))

    def read_samples(self, task: str) -> list[dict[str, Any]]:
        """Every record of a per-sample log, validated (a log of a million samples: :meth:`iter_samples`,
        or :meth:`sample_log` for scoring)."""
        return list(self.iter_samples(task))

    def iter_samples(self, task: str) -> Iterator[dict[str, Any]]:
        """The records of a per-sample log one by one, each validated as it is read: a malformed or
        invalid line is :class:`InputError` naming the file and the line (nothing is held but the line)."""
        for _, _, record in self._validated_lines(self._log_path(task)):
            yield record

    def sample_log(self, task: str) -> SampleLog:
        """Read a per-sample log once, validating every line (the errors of :meth:`iter_samples`), and keep
        only its compact columns and where each line starts: a :class:`SampleLog`."""
        return open_sample_log(self._log_path(task))

    def _log_path(self, task: str) -> Path:
        self.recover()
        path = self.samples_path(task)
        if not path.exists():
            raise InputError(self.path, f"no per-sample log for task {task} ({path.name})")
        return path

    @staticmethod
    def _validated_lines(path: Path, handle=None) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """``(line number, byte offset, record)`` of every non-blank line, validated."""
        from dfabench.records import loads_json, sample_record_problem  # lazily: see read_record

        with contextlib.nullcontext(handle) if handle is not None else open(path, "rb") as stream:
            stream.seek(0)
            offset = 0
            for lineno, line in enumerate(stream, 1):
                start, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                record = loads_json(line, path, f"line {lineno}")
                problem = sample_record_problem(record)
                if problem is not None:
                    raise InputError(path, problem, f"line {lineno}")
                yield lineno, start, record

    # ---- integrity

    def mask_problems(self, record: dict[str, Any], task: str) -> list[str]:
        """What does not hold about the predicted masks of ``task``: every mask its log refers to is
        listed in ``samples[TASK]["masks"]`` and every listed mask has its SHA-256. Nothing is checked
        for a task without that map (schema version 1)."""
        info = (record.get("samples") or {}).get(task) or {}
        masks = info.get("masks")
        if masks is None:
            return []
        if not isinstance(masks, dict):
            return [f"{task}: the mask list in run.json is not a mapping"]
        problems = []
        for rel, digest in sorted(masks.items()):
            path = self.path / str(rel)
            if not path.is_file():
                problems.append(f"{task}: predicted mask {rel} is missing")
            elif sha256_file(path) != digest:
                problems.append(f"{task}: predicted mask {rel} does not match the SHA-256 in run.json")
        try:
            referenced = {r["parsed"].get("mask") for r in self.iter_samples(task) if isinstance(r.get("parsed"), dict)}
        except InputError as exc:
            return problems + [f"{task}: {exc}"]
        unlisted = sorted(str(rel) for rel in referenced if rel is not None and rel not in masks)
        problems += [f"{task}: predicted mask {rel} is not listed in run.json" for rel in unlisted]
        return problems

    def integrity_problems(self, record: dict[str, Any], rewritten: Iterable[str] = ()) -> list[str]:
        """Every per-sample log and predicted mask that does not match the hashes in ``record``; the lost log of a
        task in ``rewritten`` (about to be written anew) is no problem, a changed one is."""
        problems = []
        rewritten = set(rewritten)
        for task, info in (record.get("samples") or {}).items():
            path = self.path / str((info or {}).get("file") or samples_file_name(task))
            if not path.is_file():
                if task not in rewritten:
                    problems.append(f"{task}: per-sample log {path.name} is missing")
                continue
            if sha256_file(path) != (info or {}).get("sha256"):
                problems.append(f"{task}: {path.name} does not match the SHA-256 in run.json")
                continue
            problems += self.mask_problems(record, task)
        return problems

    def check_integrity(self, record: dict[str, Any], action: str, rewritten: Iterable[str] = ()) -> None:
        """Refuse (exit 2, one line) to ``action`` a folder whose logs or masks were changed after they
        were written: rewriting the record would make the change verify (``rewritten``: see
        :meth:`integrity_problems`)."""
        problems = self.integrity_problems(record, rewritten)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InputError(self.path, f"{problems[0]}{more}: the folder was changed after it was written; "
                                        f"refusing to {action} (nothing was changed; `dfabench verify` lists "
                                        "what does not hold)")

    # ---- one-file writes (each its own transaction)

    def write_record(self, record: dict[str, Any]) -> None:
        """Replace run.json alone, as one transaction (a stage writing several files uses :meth:`transaction`)."""
        self._refuse_nested()
        with self.transaction(create=True) as tx:
            tx.write_record(record)

    def write_samples(self, task: str, records: Iterable[dict[str, Any]]) -> str:
        """Replace one per-sample log alone, as one transaction; returns its SHA-256."""
        self._refuse_nested()
        with self.transaction(create=True) as tx:
            return tx.write_samples(task, records)

    def _refuse_nested(self) -> None:
        if holds(self.path):
            raise RuntimeError(f"{self.path} is in a transaction of this process: write through it")
