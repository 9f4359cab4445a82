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

Writing: one transaction per stage
----------------------------------
Every write into a run folder goes through :meth:`RunFolder.transaction`, so that a kill at any
step leaves the old state or the new one, never a mix, and two writers never interleave::

    with RunFolder(path).transaction(create=True) as tx:
        tx.write_bytes("masks/FL/ab12.png", data)
        digest = tx.write_samples("FL", records)
        tx.write_record(record)          # committed when the block ends without an exception

- **Lock.** The transaction holds an exclusive, non-blocking ``fcntl.flock`` on ``.lock`` in the
  folder from its start to its end (for ``run``: from reading the earlier record to the commit).
  A second writer gets :class:`FolderLockedError` (exit 2) naming the folder and the holder's pid.
  The lock file is removed on release; a locker checks that the file it locked is still the one at
  ``.lock``, which makes the removal safe.
- **Staging.** Each new file is written under ``.staging-<pid>-<random>/<its path in the layout>``
  and fsynced. Nothing visible changes while a stage computes; old files stay until the switch.
- **Commit point.** A redo journal ``.commit.json`` (the staging folder, the files to move into
  place, the files of the old generation to delete) is written to ``.commit.json.tmp``, fsynced,
  renamed into place and the folder fsynced. Before that rename the folder is in the old state;
  after it, in the new one.
- **Apply.** Every staged file is renamed onto its name in the layout (``run.json`` last), the
  deletions are done (and directories they empty removed), the directories fsynced, then the
  staging folder and the journal removed.
- **Recovery.** A transaction first recovers the folder under its lock: a journal is rolled
  forward (a rename whose source is gone was done already; every step is idempotent), and with no
  journal the staged files of a transaction that never committed are removed. Readers
  (:meth:`RunFolder.exists`, :meth:`~RunFolder.read_record`, :meth:`~RunFolder.read_samples`,
  :meth:`~RunFolder.tasks`, and so ``dfabench verify``) do the same when they find leftovers and
  the lock is free; while a writer holds it they wait (at most :data:`READER_WAIT_S`) for a
  journal being applied to be gone and read what is there.
- **Fault injection.** ``DFABENCH_FAULT_AFTER=k`` makes the process exit with
  :data:`FAULT_EXIT_CODE` (``os._exit``) right after the k-th file operation of this mechanism
  (a write, fsync, rename, unlink, mkdir or rmdir); the tests kill a stage at every k
  (``tests/test_trust_commit.py``).

The response cache (SQLite) is its own atomic store and not part of a transaction.
:func:`atomic_write_text` (temporary file + rename) is for single files outside run folders.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from dfabench.errors import DfabenchError, InputError

#: 2: ``samples[TASK]["masks"]`` holds the SHA-256 of each predicted mask (version-1 records stay readable)
SCHEMA_VERSION = 2
RUN_RECORD = "run.json"
CACHE_FILE = "cache.sqlite"
LOCK_FILE = ".lock"
JOURNAL_FILE = ".commit.json"
STAGING_PREFIX = ".staging-"
#: ``DFABENCH_FAULT_AFTER=k``: exit right after the k-th file operation of a transaction (tests only)
FAULT_ENV = "DFABENCH_FAULT_AFTER"
FAULT_EXIT_CODE = 86
#: how long a reader waits for another process to finish applying a committed journal
READER_WAIT_S = 30.0


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
    return f"samples-{task}.jsonl"


def samples_text(records: Iterable[dict[str, Any]]) -> str:
    """The bytes (as text) of a per-sample log: one JSON object per line."""
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)


def record_text(record: dict[str, Any]) -> str:
    """The text of ``run.json``."""
    return json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n"


# --------------------------------------------------------------------------- file operations


class _FaultCounter:
    """Counts the file operations of this process's transactions; exits after the k-th when asked."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self.count += 1
            count = self.count
        limit = os.environ.get(FAULT_ENV, "").strip()
        if limit.isdigit() and count == int(limit):
            os._exit(FAULT_EXIT_CODE)


_FAULTS = _FaultCounter()


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        _FAULTS.done()
        os.fsync(handle.fileno())
        _FAULTS.done()


def _rename(source: Path, target: Path) -> None:
    os.replace(source, target)
    _FAULTS.done()


def _unlink(path: Path) -> None:
    os.unlink(path)
    _FAULTS.done()


def _mkdir(path: Path) -> None:
    os.mkdir(path)
    _FAULTS.done()


def _rmdir(path: Path) -> None:
    os.rmdir(path)
    _FAULTS.done()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # a file system that cannot fsync a directory
    finally:
        os.close(fd)
    _FAULTS.done()


def _makedirs(path: Path, root: Path) -> None:
    """Create ``path`` and its missing parents below ``root``, one counted mkdir each."""
    missing = []
    while path != root and not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        _mkdir(directory)


def _remove_tree(path: Path) -> None:
    for directory, dirs, files in os.walk(path, topdown=False):
        for name in files:
            _unlink(Path(directory) / name)
        for name in dirs:
            target = Path(directory) / name
            if target.is_symlink():
                _unlink(target)
            else:
                _rmdir(target)
    if path.is_dir():
        _rmdir(path)


def _relpath(relpath: str) -> str:
    """A path of the layout (``run.json``, ``masks/FL/x.png``); hidden names are the mechanism's own."""
    text = str(relpath).replace(os.sep, "/")
    parts = PurePosixPath(text).parts
    if (not parts or text.startswith("/") or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
            or "\\" in text):
        raise ValueError(f"not a file name inside a run folder: {relpath!r}")
    return "/".join(parts)


# --------------------------------------------------------------------------- the lock


class FolderLockedError(DfabenchError):
    """Another process (or transaction) is writing the folder."""

    def __init__(self, path: Path, pid: int | None):
        self.path, self.pid = Path(path), pid
        who = f"another dfabench process (pid {pid})" if pid else "another dfabench process"
        super().__init__(f"{path}: {who} is writing to this folder; wait until it has finished or choose "
                         "another folder (nothing was changed)")


_HELD: set[str] = set()  # folders (real paths) this process holds the lock of
_HELD_LOCK = threading.Lock()


def _key(path: Path) -> str:
    return os.path.realpath(path)


def _holds(path: Path) -> bool:
    with _HELD_LOCK:
        return _key(path) in _HELD


def _lock(root: Path) -> int:
    try:
        import fcntl
    except ImportError:
        raise DfabenchError("writing a run folder needs POSIX file locks (fcntl), which this platform lacks") from None

    path = root / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            try:
                pid_text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            finally:
                os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise FolderLockedError(root, int(pid_text) if pid_text.isdigit() else None) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder before us removed the file we locked: lock the new one
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _unlock(root: Path, fd: int) -> None:
    try:
        os.unlink(root / LOCK_FILE)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- journal and recovery


def _read_journal(path: Path) -> dict[str, Any]:
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
        staging = journal["staging"]
        files = [_relpath(f) for f in journal["files"]]
        delete = [_relpath(f) for f in journal["delete"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"not a commit journal of dfabench ({exc}); "
                               "remove it by hand if it is not one") from None
    if not (isinstance(staging, str) and staging.startswith(STAGING_PREFIX) and "/" not in staging):
        raise InputError(path, f"not a commit journal of dfabench (staging folder {staging!r})")
    return {"staging": staging, "files": files, "delete": delete}


def _apply(root: Path, journal: dict[str, Any]) -> None:
    """Roll a committed journal forward; every step can be repeated after a kill."""
    staging = root / journal["staging"]
    touched: set[Path] = {root}
    for rel in journal["files"]:
        source, target = staging / rel, root / rel
        if os.path.lexists(source):
            _makedirs(target.parent, root)
            _rename(source, target)
        touched.add(target.parent)
    for rel in journal["delete"]:
        target = root / rel
        if os.path.lexists(target):
            _unlink(target)
        parent = target.parent
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            _rmdir(parent)
            parent = parent.parent
        touched.add(parent)
    for directory in sorted(touched, key=lambda p: len(p.parts), reverse=True):
        if directory.is_dir():
            _fsync_dir(directory)
    if staging.is_dir():
        _remove_tree(staging)
    _unlink(root / JOURNAL_FILE)
    _fsync_dir(root)


def _leftovers(root: Path) -> bool:
    try:
        with os.scandir(root) as entries:
            return any(e.name.startswith((JOURNAL_FILE, STAGING_PREFIX)) for e in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _recover(root: Path) -> None:
    """Under the lock: finish a committed journal, remove what an uncommitted transaction staged."""
    journal = root / JOURNAL_FILE
    if journal.exists():
        _apply(root, _read_journal(journal))
    removed = False
    with os.scandir(root) as entries:
        stray = [Path(e.path) for e in entries if e.name == JOURNAL_FILE + ".tmp" or e.name.startswith(STAGING_PREFIX)]
    for path in stray:
        if path.is_dir() and not path.is_symlink():
            _remove_tree(path)
        else:
            _unlink(path)
        removed = True
    if removed:
        _fsync_dir(root)


# --------------------------------------------------------------------------- transactions


class Transaction:
    """The new generation of a run folder's files, staged until :meth:`commit` (see the module docstring).

    Obtain one with :meth:`RunFolder.transaction`; paths are relative to the folder, in its layout."""

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.root = folder.path
        #: where the new files are staged; its tree mirrors the layout
        self.staging = self.root / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        self._staged: dict[str, str] = {}
        self._deleted: dict[str, None] = {}
        self.committed = False
        self.closed = False

    # ---- staging

    def write_bytes(self, relpath: str, data: bytes) -> str:
        """Stage a file; returns its SHA-256."""
        self._check_open()
        rel = _relpath(relpath)
        target = self.staging / rel
        _makedirs(target.parent, self.root)
        _write_file(target, data)
        digest = hashlib.sha256(data).hexdigest()
        self._staged.pop(rel, None)
        self._staged[rel] = digest
        self._deleted.pop(rel, None)
        return digest

    def write_text(self, relpath: str, text: str) -> str:
        return self.write_bytes(relpath, text.encode("utf-8"))

    def write_samples(self, task: str, records: Iterable[dict[str, Any]]) -> str:
        """Stage a per-sample log; returns its SHA-256 (as stored in run.json)."""
        return self.write_text(samples_file_name(task), samples_text(records))

    def write_record(self, record: dict[str, Any]) -> None:
        self.write_text(RUN_RECORD, record_text(record))

    def delete(self, relpath: str) -> None:
        """Delete a file of the current generation at the switch (a staged file of that name is dropped)."""
        self._check_open()
        rel = _relpath(relpath)
        if rel in self._staged:
            del self._staged[rel]
            _unlink(self.staging / rel)
        if os.path.lexists(self.root / rel):
            self._deleted[rel] = None

    def delete_tree(self, relpath: str = "") -> None:
        """Delete, at the switch, every file under ``relpath`` (the whole folder for ``""``, the
        response cache included) that this transaction does not write anew; hidden names are kept."""
        self._check_open()
        base = self.root / _relpath(relpath) if relpath else self.root
        if not base.is_dir():
            return
        for directory, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith("."):
                    continue
                rel = (Path(directory) / name).relative_to(self.root).as_posix()
                if rel not in self._staged:
                    self._deleted[rel] = None

    def sha256_of(self, relpath: str) -> str:
        """The SHA-256 of a file staged in this transaction."""
        return self._staged[_relpath(relpath)]

    def staged(self) -> dict[str, str]:
        """The staged files (relative path -> SHA-256), in staging order."""
        return dict(self._staged)

    def path_of(self, relpath: str) -> Path:
        """Where a file of the new generation can be read now: its staged copy, or the committed one."""
        rel = _relpath(relpath)
        return self.staging / rel if rel in self._staged else self.root / rel

    # ---- the switch

    def commit(self) -> None:
        """Write the journal (the commit point) and apply it. Called when the ``with`` block ends."""
        self._check_open()
        if not self._staged and not self._deleted:
            self.abort()
            return
        for directory in sorted({(self.staging / rel).parent for rel in self._staged},
                                key=lambda p: len(p.parts), reverse=True):
            _fsync_dir(directory)
        files = sorted(self._staged, key=lambda rel: rel == RUN_RECORD)  # run.json last
        journal = {"format": 1, "staging": self.staging.name, "files": files, "delete": list(self._deleted)}
        tmp = self.root / (JOURNAL_FILE + ".tmp")
        _write_file(tmp, (json.dumps(journal, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
        _rename(tmp, self.root / JOURNAL_FILE)
        _fsync_dir(self.root)
        self.committed = True
        _apply(self.root, _read_journal(self.root / JOURNAL_FILE))
        self.closed = True

    def abort(self) -> None:
        """Drop everything staged; the folder stays as it was."""
        if self.closed:
            return
        self.closed = True
        if not self.committed and self.staging.is_dir():
            _remove_tree(self.staging)

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"the transaction on {self.root} is closed")


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
        if self.path.exists() and not self.path.is_dir():
            raise DfabenchError(f"{self.path} is a file, not a folder")
        created = False
        if not self.path.is_dir():
            if not create:
                raise InputError(self.path, "no such run folder")
            self.path.mkdir(parents=True)
            created = True
        fd = _lock(self.path)
        key = _key(self.path)
        with _HELD_LOCK:
            _HELD.add(key)
        tx = Transaction(self)
        self.active = tx
        try:
            _recover(self.path)
            yield tx
            if not tx.closed:
                tx.commit()
        except BaseException:
            tx.abort()
            raise
        finally:
            self.active = None
            with _HELD_LOCK:
                _HELD.discard(key)
            _unlock(self.path, fd)
            if created and not tx.committed:
                with contextlib.suppress(OSError):
                    self.path.rmdir()  # only if it stayed empty

    def active_transaction(self) -> Transaction:
        """The transaction this folder object is in (a stage's helpers stage through it)."""
        if self.active is None:
            raise RuntimeError(f"no transaction is open on {self.path}")
        return self.active

    def recover(self) -> None:
        """Finish or clean up what an interrupted writer left (see the module docstring)."""
        if not _leftovers(self.path) or _holds(self.path):
            return
        try:
            fd = _lock(self.path)
        except FolderLockedError:
            deadline = time.monotonic() + READER_WAIT_S
            while (self.path / JOURNAL_FILE).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            return
        except OSError as exc:
            if (self.path / JOURNAL_FILE).exists():
                raise InputError(self.path, "holds an unfinished commit that cannot be completed here "
                                            f"({exc})") from None
            return  # e.g. a read-only copy with a stray staging folder: it is not part of the run
        try:
            _recover(self.path)
        finally:
            _unlock(self.path, fd)

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
        from dfabench.records import load_json, validate_run_record

        # malformed, too deeply nested or of the wrong types (dfabench.records): one line naming the problem
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
        self.recover()
        path = self.samples_path(task)
        if not path.exists():
            raise InputError(self.path, f"no per-sample log for task {task} ({path.name})")
        records = []
        from dfabench.records import loads_json, sample_record_problem

        with open(path, "rb") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                record = loads_json(line, path, f"line {lineno}")
                problem = sample_record_problem(record)
                if problem is not None:
                    raise InputError(path, problem, f"line {lineno}")
                records.append(record)
        return records

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
            referenced = {r["parsed"].get("mask") for r in self.read_samples(task) if isinstance(r.get("parsed"), dict)}
        except InputError as exc:
            return problems + [f"{task}: {exc}"]
        unlisted = sorted(str(rel) for rel in referenced if rel is not None and rel not in masks)
        problems += [f"{task}: predicted mask {rel} is not listed in run.json" for rel in unlisted]
        return problems

    def integrity_problems(self, record: dict[str, Any]) -> list[str]:
        """Every per-sample log and predicted mask that does not match the hashes in ``record``."""
        problems = []
        for task, info in (record.get("samples") or {}).items():
            path = self.path / str((info or {}).get("file") or samples_file_name(task))
            if not path.is_file():
                problems.append(f"{task}: per-sample log {path.name} is missing")
                continue
            if sha256_file(path) != (info or {}).get("sha256"):
                problems.append(f"{task}: {path.name} does not match the SHA-256 in run.json")
                continue
            problems += self.mask_problems(record, task)
        return problems

    def check_integrity(self, record: dict[str, Any], action: str) -> None:
        """Refuse (exit 2, one line) to ``action`` a folder whose logs or masks were changed after they
        were written: rewriting the record would make the change verify."""
        problems = self.integrity_problems(record)
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
        if _holds(self.path):
            raise RuntimeError(f"{self.path} is in a transaction of this process: write through it")


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
