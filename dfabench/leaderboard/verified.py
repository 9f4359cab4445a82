"""The build's verification cache: an entry verified once is not re-derived again while nothing it depends on changed.

Verifying an entry re-derives every metric from its per-sample logs (seconds for 20,000 samples); a leaderboard
of a hundred entries regenerated after each new submission would verify the 99 old ones again for nothing. The
build keeps what verifying an entry gave — the verification report, the checker's Markdown report and the tie
test's per-sample rows — in the user's cache folder (``$DFABENCH_CACHE_DIR/verified/`` or
``~/.cache/dfabench/verified/``), under a key that is a SHA-256 over everything the outcome depends on:

- the **entry's folder** (where it is) and **content**: the relative path, size and SHA-256 of every file in
  it, through symbolic links (the run record, the logs, ``entry.json``, masks; read, not trusted by name or
  time), so an edited byte is a new key;
- the **benchmark** it was checked against (its fingerprint: the manifest, images and masks), or none;
- the **verifying code** (:func:`code_identity`): the bytes of dfabench's sources and task specs, of every
  loaded plugin's package, and the name and version of every installed distribution (numpy and nltk change
  numbers too), with the Python version and machine; and the **resources** text metrics read (where WordNet and
  the embedding model are, with their files' names and sizes, or why they are unavailable).

Nothing in the cache is trusted that the key does not pin: a cached outcome is the outcome verifying the same
bytes with the same code gave on this machine, and each file names the key it was written under (a file copied
under another key is a miss). The cache is local (never committed with the entries: a submission cannot bring its
own verdict), written atomically (a file per key, renamed into place), and a damaged file is ignored and verified
again. Only settled outcomes are kept: verified, or excluded for a reason in the entry itself; an entry that
could not be read at all, or that cannot be re-derived on this machine (a missing resource, which the user may
install next), is verified again next time. ``dfabench leaderboard build --no-cache`` verifies every entry again;
the outputs are byte-identical either way (a test checks it). Files not used for :data:`KEEP_DAYS` days are
removed by the next build.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: cached outcomes not used for this many days are removed by the next build
KEEP_DAYS = 60
#: the layout of a cached file; a new one ignores the old files (they age out)
FORMAT = 2
_SOURCE_SUFFIXES = {".py", ".yaml", ".yml", ".json"}


def default_root() -> Path:
    from dfabench.data import cache_dir

    return cache_dir() / "verified"


def _tree_digest(digest: Any, root: Path, suffixes: set[str] | None = None) -> None:
    """Add every file under ``root`` (relative path, size, SHA-256 of its bytes) to ``digest``, in path order,
    following symbolic links to folders (a folder reached twice is taken once); ``suffixes``: only the files
    with these endings, and no ``__pycache__`` folder under ``root`` (for source trees)."""
    files = []
    seen: set[str] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        if suffixes is not None:
            subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        for name in names:
            path = Path(folder) / name
            if (suffixes is None or path.suffix in suffixes) and path.is_file():
                files.append((path.relative_to(root).as_posix(), path))
    for relative, path in sorted(files):
        file_digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                file_digest.update(block)
        digest.update(f"{relative}\0{path.stat().st_size}\0{file_digest.hexdigest()}\n".encode())


def _listing_digest(digest: Any, root: Path) -> None:
    """Add the names and sizes of the files under ``root`` (a resource folder: WordNet, the embedding model)."""
    if not root.is_dir():
        digest.update(f"absent {root}\n".encode())
        return
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\n".encode())


def resources_identity(digest: Any) -> None:
    """Add what the re-derivation of text metrics reads besides the code: where WordNet (METEOR) and the
    embedding model are, or why not, and their files' names and sizes (found again, never loaded)."""
    from dfabench.metrics.resources import resolve_embedding_model, wordnet_dir

    try:
        folder = wordnet_dir()
        digest.update(f"wordnet {folder}\n".encode())
        _listing_digest(digest, Path(folder))
    except Exception as exc:  # noqa: BLE001 - unavailable is a state too
        digest.update(f"wordnet unavailable {type(exc).__name__}: {exc}\n".encode())
    try:
        path, identity = resolve_embedding_model()
        digest.update(f"embedding {identity} {path}\n".encode())
        _listing_digest(digest, Path(path).expanduser())
    except Exception as exc:  # noqa: BLE001
        digest.update(f"embedding unavailable {type(exc).__name__}: {exc}\n".encode())


def _module_root(module: Any) -> Path | None:
    """The folder of a plugin's top-level package (or its one file)."""
    top = sys.modules.get(getattr(module, "__name__", "").split(".")[0])
    if top is None:
        return None
    if getattr(top, "__path__", None):
        return Path(next(iter(top.__path__)))
    file = getattr(top, "__file__", None)
    return Path(file) if file else None


def code_identity() -> str:
    """SHA-256 of what verifying an entry runs here: dfabench's sources and task specs, every loaded plugin's
    package, every installed distribution's name and version, the Python version and the machine."""
    import platform
    from importlib import resources

    import dfabench
    from dfabench.plugins import get_manager

    digest = hashlib.sha256(f"format {FORMAT}\npython {sys.version}\nmachine {platform.machine()}\n".encode())
    roots = {Path(dfabench.__file__).resolve().parent, Path(str(resources.files("dfabench.task_specs"))).resolve()}
    for module in get_manager().pm.get_plugins():
        root = _module_root(module)
        if root is not None:
            roots.add(root.resolve())
    for root in sorted(roots):
        digest.update(f"root {root.name}\n".encode())
        if root.is_dir():
            _tree_digest(digest, root, _SOURCE_SUFFIXES)
        elif root.is_file():
            digest.update(root.read_bytes())
    digest.update("\n".join(installed_distributions()).encode())
    resources_identity(digest)
    return digest.hexdigest()


def installed_distributions() -> list[str]:
    """The installed distributions as the import path shows them: the names of the ``*.dist-info`` and
    ``*.egg-info`` folders (``numpy-2.1.3.dist-info``: name and version) and ``*.pth`` files in every folder on
    ``sys.path``, sorted. Read from the folder listings (a few milliseconds), not from each package's metadata
    (parsing 300 METADATA files takes most of a second)."""
    found = set()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        found.update(name for name in names if name.endswith((".dist-info", ".egg-info", ".egg-link", ".pth")))
    return sorted(found)


def entry_key(path: Path, bench_fingerprint: str | None, code: str) -> str:
    """The cache key of verifying the entry folder ``path`` (against the benchmark of ``bench_fingerprint``,
    or none) with the code :func:`code_identity` named ``code``. The folder's path is part of it: the reports
    name the folder, so a copy elsewhere is verified afresh."""
    digest = hashlib.sha256(f"dfabench verified entry\0{code}\0bench {bench_fingerprint}\0"
                            f"folder {Path(path).absolute()}\n".encode())
    _tree_digest(digest, Path(path))
    return digest.hexdigest()


@dataclass
class Outcome:
    """What verifying one entry gave: the verification report (``None`` when it never ran: an entry without a run
    record), the reason it is excluded (``None``: verified), the checker's Markdown report, and the tie test's
    rows (task -> metric -> :class:`~dfabench.leaderboard.ties.SampleRows`)."""

    report: Any
    excluded: str | None
    markdown: str | None
    rows: dict[str, dict[str, Any]] | None


class VerifiedCache:
    """The cache folder; ``code``: :func:`code_identity` (made once per build, in the parent process)."""

    def __init__(self, root: Path, code: str):
        self.root = Path(root)
        self.code = code

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> Outcome | None:
        """The outcome kept under ``key``, or None (none kept, or a damaged file: verified again)."""
        path = self._file(key)
        try:
            outcome = _load(path, key)
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 - a damaged or foreign file is only a miss
            return None
        try:
            os.utime(path)  # in use: kept
        except OSError:
            pass
        return outcome

    def put(self, key: str, outcome: Outcome) -> None:
        """Keep ``outcome`` under ``key`` (atomically; a cache that cannot be written is skipped)."""
        path = self._file(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                handle.write(_dump(outcome, key))
            os.replace(tmp, path)
        except OSError:
            pass

    def writable_problem(self) -> str | None:
        """Why nothing can be kept in the cache folder (None: it can): tried with a probe file."""
        probe = self.root / f".probe.{os.getpid()}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            return f"{type(exc).__name__}: {exc.strerror or exc}"
        return None

    def prune(self, days: float = KEEP_DAYS) -> int:
        """Remove cached outcomes not used for ``days`` days (and stray temporary files); the number removed."""
        cutoff = time.time() - days * 86400
        removed = 0
        if not self.root.is_dir():
            return 0
        for path in self.root.glob("*/*"):
            try:
                if path.stat().st_mtime < cutoff or (path.name.startswith(".") and path.stat().st_mtime < time.time()
                                                     - 3600):
                    path.unlink()
                    removed += 1
            except OSError:
                pass
        return removed


def _dump(outcome: Outcome, key: str) -> bytes:
    """One ``.npz`` (no pickles): ``meta`` (JSON, as bytes) and each tie-rows matrix and cluster codes."""
    import numpy as np

    arrays: dict[str, Any] = {}
    rows_meta: dict[str, dict[str, Any]] = {}
    for t_index, (task, by_metric) in enumerate(sorted((outcome.rows or {}).items())):
        for m_index, (metric, rows) in enumerate(sorted(by_metric.items())):
            names: dict[Any, int] = {}
            codes = np.array([names.setdefault(c, len(names)) for c in rows.clusters], dtype=np.int64)
            stem = f"r{t_index}_{m_index}"
            arrays[f"{stem}_matrix"] = np.ascontiguousarray(rows.matrix, dtype=float)
            arrays[f"{stem}_codes"] = codes
            rows_meta.setdefault(task, {})[metric] = {"stem": stem, "n": rows.n, "ids_sha256": rows.ids_sha256,
                                                      "clusters": list(names)}
    report = outcome.report
    meta = {"format": FORMAT, "key": key, "excluded": outcome.excluded, "markdown": outcome.markdown,
            "rows": rows_meta if outcome.rows is not None else None,
            "report": None if report is None else {"target": report.target, "passed": report.passed,
                                                   "failed": report.failed, "unverifiable": report.unverifiable}}
    arrays["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _load(path: Path, key: str) -> Outcome:
    import numpy as np

    from dfabench.evidence import VerifyReport
    from dfabench.leaderboard.ties import SampleRows

    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes().decode("utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')}")
        if meta.get("key") != key:  # a file copied under another key is not this entry's outcome
            raise ValueError("the file holds another key's outcome")
        rows = None
        if meta["rows"] is not None:
            rows = {}
            for task, by_metric in meta["rows"].items():
                for metric, info in by_metric.items():
                    names = info["clusters"]
                    matrix = data[f"{info['stem']}_matrix"]
                    codes = data[f"{info['stem']}_codes"].tolist()
                    rows.setdefault(task, {})[metric] = SampleRows(int(info["n"]), str(info["ids_sha256"]),
                                                                   tuple(names[c] for c in codes), matrix)
    report = meta["report"]
    if report is not None:
        report = VerifyReport(report["target"], list(report["passed"]), list(report["failed"]),
                              list(report["unverifiable"]))
    return Outcome(report, meta["excluded"], meta["markdown"], rows)
