"""The response cache of a run folder (``cache.sqlite``): its own atomic store, not part of a transaction."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dfabench.errors import InputError
from dfabench.files import canonical_json, sha256_text


class ResponseCache:
    """SQLite cache of deterministic, successful model responses.

    The key is a SHA-256 over the model identity, the task fingerprint, the sample id, the
    SHA-256 of the image's content, the prompt hash and the generation settings (:func:`cache_key`).
    Each batch is committed as soon as it is answered, so a run killed with SIGKILL resumes without
    asking the model again for what it already answered.
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
              settings: dict[str, Any], image_sha256: str) -> str:
    """The response-cache key of one request. ``image_sha256`` is the content of the image the model is
    shown: a cache shared between benchmarks whose ids coincide answers only for the same image."""
    return sha256_text(canonical_json([model_fingerprint, task_fingerprint, sample_id, image_sha256, prompt_hash,
                                       settings]))
