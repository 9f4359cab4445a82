"""Run folders: the run record, the per-sample logs and the response cache.

A run folder holds

- ``run.json``: the run record (see :data:`SCHEMA_VERSION` and DESIGN.md);
- ``samples-<TASK>.jsonl``: one JSON object per sample (fields below);
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

Every file is written atomically (temporary file + rename), so a run that fails or is killed
never leaves a half-written record and never loses what an earlier run computed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dfabench.errors import InputError

SCHEMA_VERSION = 1
RUN_RECORD = "run.json"
CACHE_FILE = "cache.sqlite"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def samples_file_name(task: str) -> str:
    return f"samples-{task}.jsonl"


class RunFolder:
    """Read and write the files of one run folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def record_path(self) -> Path:
        return self.path / RUN_RECORD

    def exists(self) -> bool:
        return self.record_path.exists()

    def read_record(self) -> dict[str, Any]:
        path = self.record_path
        if not self.path.exists():
            raise InputError(self.path, "no such run folder")
        if not path.exists():
            raise InputError(self.path, f"not a run folder: it has no {RUN_RECORD}")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(path, f"malformed JSON ({exc})") from None
        if not isinstance(record, dict) or "schema_version" not in record:
            raise InputError(path, "not a dfabench run record (no schema_version)")
        if record["schema_version"] > SCHEMA_VERSION:
            raise InputError(path, f"schema version {record['schema_version']} is newer than this "
                                   f"dfabench understands ({SCHEMA_VERSION}); upgrade dfabench")
        return record

    def write_record(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.record_path, json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n")

    def samples_path(self, task: str) -> Path:
        return self.path / samples_file_name(task)

    def tasks(self) -> list[str]:
        """Tasks that have a per-sample log, in the order of the run record when there is one."""
        found = {p.name[len("samples-"):-len(".jsonl")] for p in self.path.glob("samples-*.jsonl")}
        order = list(self.read_record().get("tasks", {})) if self.exists() else []
        return [t for t in order if t in found] + sorted(found - set(order))

    def read_samples(self, task: str) -> list[dict[str, Any]]:
        path = self.samples_path(task)
        if not path.exists():
            raise InputError(self.path, f"no per-sample log for task {task} ({path.name})")
        records = []
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise InputError(path, f"malformed JSON ({exc})", f"line {lineno}") from None
                if not isinstance(record, dict) or "id" not in record:
                    raise InputError(path, "not a sample record (no id)", f"line {lineno}")
                records.append(record)
        return records

    def write_samples(self, task: str, records: Iterable[dict[str, Any]]) -> str:
        """Write a per-sample log atomically; returns its SHA-256 (as stored in run.json)."""
        self.path.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
        atomic_write_text(self.samples_path(task), text)
        return sha256_text(text)


class ResponseCache:
    """SQLite cache of deterministic, successful model responses.

    The key is a SHA-256 over the model identity, the task fingerprint, the sample id, the
    prompt hash and the generation settings (:func:`cache_key`). Each batch is committed as
    soon as it is answered, so a run killed with SIGKILL resumes without asking the model
    again for what it already answered.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                "created REAL DEFAULT (unixepoch('subsec')))"
            )
        except sqlite3.DatabaseError as exc:
            raise InputError(self.path, f"not a usable response cache ({exc})") from None

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, value in self._db.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk):
                    found[key] = json.loads(value)
        return found

    def put_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        rows = [(key, json.dumps(value, ensure_ascii=False)) for key, value in items]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def cache_key(model_fingerprint: str, task_fingerprint: str, sample_id: str, prompt_hash: str,
              settings: dict[str, Any]) -> str:
    return sha256_text(canonical_json([model_fingerprint, task_fingerprint, sample_id, prompt_hash, settings]))
