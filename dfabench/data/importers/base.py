"""The machinery every importer shares: the import job, path resolution, reading index files and
writing the benchmark folder (which :mod:`dfabench.data.smoke` uses too).

An importer creates an :class:`ImportJob`, resolves each record's paths with a :class:`PathResolver`,
and calls ``job.add`` for each record it can import, ``job.skip`` (an error under ``strict``) or
``job.warn`` for the others; ``job.finish`` validates every record, places the images and masks
(hard links or copies), writes the manifest, ``benchmark.json`` and ``import-report.json`` into a
staging folder and puts it in place whole (:func:`staged_folder`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench.data.manifest import MANIFEST, Sample, load_benchmark, parse_record, write_manifest
from dfabench.errors import DfabenchError, InputError

COPY_MODES = ("link", "copy")
REPORT_FILE = "import-report.json"


@dataclass
class ImportReport:
    """What an import did."""

    #: number of samples written to the manifest
    n_imported: int
    #: records that could not be imported: (record, reason)
    skipped: list[tuple[str, str]]
    #: the benchmark folder
    out: Path
    #: imported, but with something missing: (record, what), e.g. a fake whose category is unknown
    warnings: list[tuple[str, str]] = field(default_factory=list)
    #: samples per split and label/category, e.g. {"test": {"real": 10, "FS": 4}}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


class PathResolver:
    """Turns a path string of an index file into a local path."""

    def __init__(self, src: Path, root: Path | None, replace_prefix: tuple[str, str] | None):
        self.base = Path(root) if root is not None else src.parent
        if replace_prefix is not None:
            if len(replace_prefix) != 2 or not all(isinstance(p, str) for p in replace_prefix):
                raise DfabenchError(f"replace_prefix must be a pair of strings (old, new), not {replace_prefix!r}")
            if not replace_prefix[0]:
                raise DfabenchError("replace_prefix: the prefix to replace is empty")
        self.replace_prefix = replace_prefix

    def __call__(self, value: str) -> Path:
        if self.replace_prefix is not None:
            old, new = self.replace_prefix
            if value.startswith(old):
                value = new + value[len(old):]
        if "\\" in value and os.sep == "/":
            value = value.replace("\\", "/")
        path = Path(value)
        return path if path.is_absolute() else self.base / path


_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def _safe_parts(parts: Iterable[str]) -> list[str]:
    out = []
    for part in parts:
        part = _UNSAFE.sub("_", str(part)).strip("_") or "_"
        out.append("_" + part if part in (".", "..") else part)
    return out


@dataclass
class _Planned:
    record: dict[str, Any]
    image: Path
    mask: Path | None = None


class ImportJob:
    """One import: collects planned samples, skipped records (an error under ``strict``) and warnings,
    and writes the benchmark folder (:meth:`finish`)."""

    def __init__(self, fmt: str, src: Path, out: Path, strict: bool, copy: str):
        if copy not in COPY_MODES:
            hint = " (symbolic links are not supported: the core refuses links leaving the benchmark folder)" \
                if copy == "symlink" else ""
            raise DfabenchError(f"copy must be one of {', '.join(COPY_MODES)}, not {copy!r}{hint}")
        self.fmt, self.src, self.out, self.strict, self.copy = fmt, Path(src), Path(out), strict, copy
        self.planned: list[_Planned] = []
        self.skipped: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []
        self._ids: dict[str, int] = {}
        self._destinations: set[str] = set()
        _check_out(self.out)

    def skip(self, record: str, reason: str) -> None:
        if self.strict:
            raise InputError(self.src, reason, record)
        self.skipped.append((record, reason))

    def warn(self, record: str, what: str) -> None:
        self.warnings.append((record, what))

    def unique_id(self, wanted: str) -> str:
        count = self._ids.get(wanted, 0)
        self._ids[wanted] = count + 1
        return wanted if count == 0 else f"{wanted}#{count + 1}"

    def destination(self, folder: str, parts: list[str], suffix: str) -> str:
        """A unique relative path ``folder/part/.../name`` inside the benchmark."""
        safe = _safe_parts(parts)
        stem = safe[-1]
        if suffix and not stem.lower().endswith(suffix.lower()):
            stem += suffix
        candidate = "/".join([folder, *safe[:-1], stem])
        n = 1
        while candidate.lower() in self._destinations:
            n += 1
            base, dot, ext = stem.rpartition(".")
            name = f"{base}-{n}.{ext}" if dot else f"{stem}-{n}"
            candidate = "/".join([folder, *safe[:-1], name])
        self._destinations.add(candidate.lower())
        return candidate

    def add(self, record: dict[str, Any], image: Path, mask: Path | None = None) -> None:
        self.planned.append(_Planned(record, image, mask))

    def finish(self, info: dict[str, Any]) -> ImportReport:
        if not self.planned:
            first = f"; first: {self.skipped[0][0]}: {self.skipped[0][1]}" if self.skipped else ""
            raise InputError(self.src, f"nothing could be imported ({len(self.skipped)} records skipped{first})")
        # validate every record the way load_benchmark will, before anything is written
        manifest_path = self.out / MANIFEST
        for planned in self.planned:
            parse_record(planned.record, f"id {planned.record['id']!r}", manifest_path)
        counts = _counts(p.record for p in self.planned)
        with staged_folder(self.out, "importing") as tmp:  # _check_out made sure ``out`` is empty
            for planned in self.planned:
                self._place(planned.image, tmp / planned.record["image"])
                if planned.mask is not None:
                    self._place(planned.mask, tmp / planned.record["mask"])
            write_benchmark(tmp, [p.record for p in self.planned], {
                "name": info.get("name") or self.out.name,
                "imported_from": {"format": self.fmt, "src": str(self.src)},
                **{k: v for k, v in info.items() if k != "name"}, "counts": counts})
            write_json(tmp / REPORT_FILE, {
                "format": self.fmt, "src": str(self.src), "n_imported": len(self.planned),
                "n_skipped": len(self.skipped), "skipped": [list(s) for s in self.skipped],
                "warnings": [list(w) for w in self.warnings], "counts": counts})
        load_benchmark(self.out)  # the result must load; raises with the record if not
        return ImportReport(n_imported=len(self.planned), skipped=self.skipped, out=self.out,
                            warnings=self.warnings, counts=counts)

    def _place(self, source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.copy == "link":
            try:
                os.link(source, target)
                return
            except OSError:
                pass  # another file system, or links not allowed: copy
        shutil.copyfile(source, target)


def _check_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise DfabenchError(f"{out}: exists and is not a folder")
        if any(out.iterdir()):
            raise DfabenchError(f"{out}: the output folder is not empty; choose a new or empty folder")


def _counts(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        split = record.get("split") or "(none)"
        key = "real" if record["label"] == "real" else record.get("category") or "fake (unknown category)"
        counts.setdefault(split, {})
        counts[split][key] = counts[split].get(key, 0) + 1
    return {split: dict(sorted(v.items())) for split, v in sorted(counts.items())}


def read_json(src: Path) -> Any:
    """An index / annotation file's JSON (or JSON lines); an unreadable or malformed file raises an InputError."""
    src = Path(src)
    try:
        text = src.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(src, "no such file") from None
    except IsADirectoryError:
        raise InputError(src, "is a folder; give the index / annotation file") from None
    except UnicodeDecodeError as exc:
        raise InputError(src, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InputError(src, f"cannot read ({exc.strerror})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        if src.suffix.lower() == ".jsonl" or _looks_like_jsonl(text):
            return _read_jsonl(src, text)
        raise InputError(src, f"malformed JSON ({exc})") from None


def _looks_like_jsonl(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) > 1 and lines[0].lstrip().startswith("{") and lines[0].rstrip().endswith("}")


def _read_jsonl(src: Path, text: str) -> list[Any]:
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise InputError(src, f"malformed JSON ({exc})", f"line {lineno}") from None
    return records


def is_file(path: Path) -> bool:
    """Whether ``path`` is a file (False, not an error, for a path the system cannot even look at)."""
    try:
        return path.is_file()
    except OSError:
        return False


#: a compression-level folder or key of FaceForensics++-style trees (``c23``, ``c40``, ``raw``)
COMPRESSION_LEVEL = re.compile(r"^(c\d+|raw|hq|lq)$", re.IGNORECASE)


def records_of(data: Any, src: Path, keys: tuple[str, ...], what: str) -> list[Any]:
    """The records of an annotation file: the JSON list itself, or the list under the first of ``keys``."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in keys:
            if isinstance(data.get(key), list):
                return data[key]
    raise InputError(src, f"expected a JSON list of {what} records")


def split_from_name(src: Path) -> str | None:
    """The split a file's name says (``test.json``, ``dfa_train.json``, ``validation.jsonl``), else None."""
    words = set(re.split(r"[^a-z]+", src.stem.lower()))
    for split in ("train", "val", "test"):
        if split in words:
            return split
    return "val" if "valid" in words or "validation" in words else None


def relative_parts(path_value: str) -> list[str]:
    """Path components to mirror inside ``images/`` (at most the last three)."""
    parts = [p for p in path_value.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return parts[-3:] if parts else ["image"]


# --------------------------------------------------------------------------- writing a benchmark folder


@contextlib.contextmanager
def staged_folder(out: Path, purpose: str, *, replace: bool = False) -> Iterator[Path]:
    """Build a benchmark folder out of sight and put it in place whole.

    Yields a fresh folder ``.<name>.<purpose>-<pid>`` beside ``out``. When the block ends without an
    error it becomes ``out``: an existing ``out`` is removed first, which must then be empty unless
    ``replace`` (an earlier build that may go). On an error the staging folder is removed and ``out``
    is left as it was, so no reader ever sees a half-written benchmark.
    """
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{purpose}-{os.getpid()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if out.exists():
            if replace:
                shutil.rmtree(out)
            else:
                out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented JSON (UTF-8, a final newline): the benchmark folder's JSON files."""
    Path(path).write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def write_benchmark(folder: Path, samples: Iterable[Sample | dict[str, Any]], info: dict[str, Any]) -> int:
    """Write a benchmark's ``manifest.jsonl`` and ``benchmark.json`` (``info``) into ``folder``;
    returns the number of samples."""
    n = write_manifest(Path(folder) / MANIFEST, samples)
    write_json(Path(folder) / "benchmark.json", info)
    return n
