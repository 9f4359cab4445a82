"""The locked, journaled commit of a run folder (:class:`Transaction`).

Every write into a run folder goes through :meth:`dfabench.store.RunFolder.transaction`, so that a kill at any
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
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from dfabench.errors import DfabenchError, InputError
from dfabench.files import RUN_RECORD, record_text, sample_line, samples_file_name

if TYPE_CHECKING:
    from dfabench.store import RunFolder

LOCK_FILE = ".lock"
JOURNAL_FILE = ".commit.json"
STAGING_PREFIX = ".staging-"
#: ``DFABENCH_FAULT_AFTER=k``: exit right after the k-th file operation of a transaction (tests only)
FAULT_ENV = "DFABENCH_FAULT_AFTER"
FAULT_EXIT_CODE = 86
#: how long a reader waits for another process to finish applying a committed journal
READER_WAIT_S = 30.0


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


#: a streamed file is written (and hashed) in blocks of about this many bytes
_STREAM_BLOCK = 1 << 20


def _write_stream(path: Path, chunks: Iterable[str]) -> str:
    """Write text chunks as UTF-8, hashing them on the way; the same counted steps as :func:`_write_file`.
    Returns the SHA-256 of the bytes written. Only a block of about :data:`_STREAM_BLOCK` bytes is held."""
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        pending: list[str] = []
        size = 0
        for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            if size >= _STREAM_BLOCK:
                data = "".join(pending).encode("utf-8")
                digest.update(data)
                handle.write(data)
                pending, size = [], 0
        data = "".join(pending).encode("utf-8")
        digest.update(data)
        handle.write(data)
        handle.flush()
        _FAULTS.done()
        os.fsync(handle.fileno())
        _FAULTS.done()
    return digest.hexdigest()


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

    def write_lines(self, relpath: str, lines: Iterable[str]) -> str:
        """Stage a file from text pieces (e.g. one per line), streamed to disk and hashed on the way: the
        whole text is never held. Returns its SHA-256; the same bytes as ``write_text("".join(lines))``."""
        self._check_open()
        rel = _relpath(relpath)
        target = self.staging / rel
        _makedirs(target.parent, self.root)
        digest = _write_stream(target, lines)
        self._staged.pop(rel, None)
        self._staged[rel] = digest
        self._deleted.pop(rel, None)
        return digest

    def write_samples(self, task: str, records: Iterable[dict[str, Any]]) -> str:
        """Stage a per-sample log, one line per record, streamed (``records`` may be a generator: only one
        record at a time is needed); returns its SHA-256 (as stored in run.json)."""
        return self.write_lines(samples_file_name(task), (sample_line(r) for r in records))

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


# --------------------------------------------------------------------------- a folder's transaction


@contextlib.contextmanager
def locked_transaction(folder: RunFolder, *, create: bool = False) -> Iterator[Transaction]:
    """Lock ``folder``, recover it, and yield a :class:`Transaction` that is committed when the block
    ends (and dropped when it raises). ``create``: make the folder if it does not exist."""
    path = folder.path
    if path.exists() and not path.is_dir():
        raise DfabenchError(f"{path} is a file, not a folder")
    created = False
    if not path.is_dir():
        if not create:
            raise InputError(path, "no such run folder")
        path.mkdir(parents=True)
        created = True
    fd = _lock(path)
    key = _key(path)
    with _HELD_LOCK:
        _HELD.add(key)
    tx = Transaction(folder)
    folder.active = tx
    try:
        _recover(path)
        yield tx
        if not tx.closed:
            tx.commit()
    except BaseException:
        tx.abort()
        raise
    finally:
        folder.active = None
        with _HELD_LOCK:
            _HELD.discard(key)
        _unlock(path, fd)
        if created and not tx.committed:
            with contextlib.suppress(OSError):
                path.rmdir()  # only if it stayed empty


def holds(path: Path) -> bool:
    """Whether this process holds the lock of the folder ``path`` (is in a transaction on it)."""
    return _holds(path)


def recover_folder(path: Path) -> None:
    """For a reader: finish or clean up what an interrupted writer left in ``path`` (see the module
    docstring); while a writer holds the lock, wait for a journal being applied to be gone."""
    if not _leftovers(path) or _holds(path):
        return
    try:
        fd = _lock(path)
    except FolderLockedError:
        deadline = time.monotonic() + READER_WAIT_S
        while (path / JOURNAL_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    except OSError as exc:
        if (path / JOURNAL_FILE).exists():
            raise InputError(path, "holds an unfinished commit that cannot be completed here "
                                   f"({exc})") from None
        return  # e.g. a read-only copy with a stray staging folder: it is not part of the run
    try:
        _recover(path)
    finally:
        _unlock(path, fd)
