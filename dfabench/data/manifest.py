"""Benchmarks: a folder with ``manifest.jsonl`` (one record per sample) and its images.

Record fields (DESIGN.md): ``id``, ``image`` (path relative to the folder), ``label``
(``real``/``fake``), ``category`` (``FS``/``FR``/``FE``/``EFS`` for fakes, null for reals),
``technique``, ``source_id``, ``split``, and optionally ``description``, ``mask`` (relative
path), ``conversations`` (list of ``{"from": "human"|"gpt", "value": str}``, with a human turn
followed by a gpt turn: FC asks the last question and compares with the answer after it), ``meta``
(free JSON, at most :data:`~dfabench.records.MAX_JSON_DEPTH` levels deep with its record).

:func:`load_benchmark` refuses a bad manifest with an :class:`~dfabench.errors.InputError`
naming the file, the record (line and id) and the problem, before any model is called.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from dfabench.errors import InputError
from dfabench.records import MAX_JSON_DEPTH, depth_problem, loads_json
from dfabench.vocab import CATEGORIES, CATEGORY_NAMES, LABELS  # noqa: F401 - CATEGORY_NAMES re-exported

MANIFEST = "manifest.jsonl"
REQUIRED = ("id", "image", "label")
OPTIONAL = ("category", "technique", "source_id", "split", "description", "mask", "conversations")
KNOWN_FIELDS = frozenset(REQUIRED + OPTIONAL + ("meta",))


class Sample(NamedTuple):
    """One benchmark record (immutable; cheap to build by the million)."""

    id: str
    image: str
    label: str
    category: str | None = None
    technique: str | None = None
    source_id: str | None = None
    split: str | None = None
    description: str | None = None
    mask: str | None = None
    conversations: tuple | None = None
    meta: Any = None

    @property
    def cluster(self) -> str:
        """The unit of resampling for confidence intervals: ``source_id``, else the id."""
        return self.source_id if self.source_id is not None else self.id

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "image": self.image, "label": self.label}
        for name in OPTIONAL + ("meta",):
            value = getattr(self, name)
            if value is not None:
                record[name] = list(value) if name == "conversations" else value
        return record


def _path_problem(path_value: Any, field: str) -> str | None:
    """Why a relative path from a manifest is not acceptable (None when it is)."""
    if not isinstance(path_value, str) or not path_value:
        return f"field {field!r} must be a non-empty string"
    if "\\" in path_value or "\0" in path_value:
        return f"{field} path {path_value!r} must use '/' separators"
    if path_value.startswith("/") or (len(path_value) > 1 and path_value[1] == ":"):
        return f"{field} path {path_value!r} is absolute; it must be relative to the benchmark folder"
    if ".." in path_value or path_value.startswith("."):
        norm = os.path.normpath(path_value)
        if norm == ".." or norm.startswith("../") or norm == ".":
            return f"{field} path {path_value!r} escapes the benchmark folder"
    return None


_STRING_FIELDS = ("technique", "source_id", "split", "description")


def _record_problem(raw: dict[str, Any]) -> str | None:
    """The first problem of a decoded record (None when it is valid). Kept separate from building
    the :class:`Sample` so that the common, valid case costs as little as possible."""
    for name in REQUIRED:
        if raw.get(name) is None:
            return f"missing field {name!r}"
    unknown = raw.keys() - KNOWN_FIELDS
    if unknown:
        return (f"unknown field(s) {', '.join(sorted(map(repr, unknown)))} "
                f"(known: {', '.join(REQUIRED + OPTIONAL)}, meta)")
    sample_id = raw["id"]
    if not (isinstance(sample_id, str) and sample_id) and not (
            isinstance(sample_id, int) and not isinstance(sample_id, bool)):
        return "field 'id' must be a non-empty string"
    label = raw["label"]
    if label not in LABELS:
        return f"unknown label {label!r} (expected 'real' or 'fake')"
    category = raw.get("category")
    if category is not None and category not in CATEGORIES:
        return f"unknown category {category!r} (expected one of FS, FR, FE, EFS or null)"
    if label == "real" and category is not None:
        return f"a real image cannot have category {category!r}"
    for name in _STRING_FIELDS:
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            if name == "source_id" and isinstance(value, int) and not isinstance(value, bool):
                continue
            return f"field {name!r} must be a string or null"
    problem = _path_problem(raw["image"], "image")
    if problem:
        return problem
    if raw.get("mask") is not None:
        problem = _path_problem(raw["mask"], "mask")
        if problem:
            return problem
    conversations = raw.get("conversations")
    if conversations is not None and (not isinstance(conversations, list) or not all(
            isinstance(t, dict) and t.get("from") in ("human", "gpt") and isinstance(t.get("value"), str)
            for t in conversations)):
        return "field 'conversations' must be a list of {\"from\": \"human\"|\"gpt\", \"value\": str}"
    if conversations and not _has_question_and_answer(conversations):
        return ("field 'conversations' needs a human turn followed by a gpt turn (FC asks the last question "
                "and compares with the answer after it); this one has "
                + ("only human turns" if all(t["from"] == "human" for t in conversations) else
                   "only gpt turns" if all(t["from"] == "gpt" for t in conversations) else
                   "no gpt turn after a human turn"))
    meta = raw.get("meta")
    if isinstance(meta, (dict, list)) and depth_problem(meta, MAX_JSON_DEPTH - 1):
        return f"field 'meta' is nested deeper than {MAX_JSON_DEPTH - 1} levels"
    return None


def _has_question_and_answer(conversations: list[dict[str, Any]]) -> bool:
    """Whether some human turn is followed (later) by a gpt turn: FC's history and reference."""
    seen_human = False
    for turn in conversations:
        if turn["from"] == "human":
            seen_human = True
        elif seen_human:
            return True
    return False


def _where(lineno: int | None, raw: Any) -> str | None:
    rid = raw.get("id") if isinstance(raw, dict) else None
    if lineno is None:
        return f"id {rid!r}" if rid is not None else None
    return f"line {lineno}" + (f" (id {rid!r})" if rid is not None else "")


def parse_record(raw: Any, manifest: Path, lineno: int | None = None) -> Sample:
    """Validate one decoded manifest record and turn it into a :class:`Sample`."""
    if not isinstance(raw, dict):
        raise InputError(manifest, "a record must be a JSON object", _where(lineno, raw))
    problem = _record_problem(raw)
    if problem is not None:
        raise InputError(manifest, problem, _where(lineno, raw))
    get = raw.get
    sample_id, source_id, conversations = raw["id"], get("source_id"), get("conversations")
    return Sample(
        sample_id if isinstance(sample_id, str) else str(sample_id), raw["image"], raw["label"], get("category"),
        get("technique"), source_id if source_id is None or isinstance(source_id, str) else str(source_id),
        get("split"), get("description"), get("mask"),
        tuple(conversations) if conversations is not None else None, get("meta"),
    )


def read_manifest(manifest: Path) -> list[Sample]:
    """Read and validate a manifest file. Raises :class:`InputError` on the first problem.

    The common case (every record valid) takes a fast path: records are built directly and
    checked in bulk. Any doubt sends the file through :func:`_read_manifest_checked`, which
    finds the first bad record and says exactly what is wrong with it.
    """
    manifest = Path(manifest)
    try:
        handle = open(manifest, encoding="utf-8")
    except FileNotFoundError:
        raise InputError(manifest, "no such file") from None
    except OSError as exc:
        raise InputError(manifest, f"cannot read ({exc.strerror})") from None
    decode = json.JSONDecoder().decode
    samples: list[Sample] = []
    append = samples.append
    try:
        with handle:
            for line in handle:
                append(Sample(**decode(line)))
        valid = bool(samples) and _bulk_valid(samples)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        # malformed, too deep, or an unhashable value where a label belongs: the checked path says which
        valid = False
    if not valid:
        return _read_manifest_checked(manifest)
    for index, sample in enumerate(samples):
        if sample.conversations is not None:
            samples[index] = sample._replace(conversations=tuple(sample.conversations))
    return samples


_NONE = type(None)


def _bulk_valid(samples: list[Sample]) -> bool:
    """Checks over all records at once; False means 'look closer', not 'invalid'."""
    if {s.label for s in samples} - set(LABELS):
        return False
    if {s.category for s in samples} - {None, *CATEGORIES}:
        return False
    if any(s.category is not None for s in samples if s.label == "real"):
        return False
    if {type(s.id) for s in samples} != {str} or {type(s.image) for s in samples} != {str}:
        return False
    for name in _STRING_FIELDS:
        if {type(getattr(s, name)) for s in samples} - {str, _NONE}:
            return False
    if {type(s.mask) for s in samples} - {str, _NONE} or {type(s.conversations) for s in samples} - {list, _NONE}:
        return False
    if any(not s.id or _suspect_path(s.image) for s in samples):
        return False
    if any(_suspect_path(s.mask) for s in samples if s.mask is not None):
        return False
    if any(_record_problem(s._asdict()) for s in samples if s.conversations is not None):
        return False
    if any(depth_problem(s.meta, MAX_JSON_DEPTH - 1) for s in samples if isinstance(s.meta, (dict, list))):
        return False
    return len({s.id for s in samples}) == len(samples)


def _suspect_path(path: str) -> bool:
    return not path or ".." in path or path[0] in "/." or "\\" in path or "\0" in path or path[1:2] == ":"


def _read_manifest_checked(manifest: Path) -> list[Sample]:
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    with open(manifest, "rb") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            raw = loads_json(line, manifest, f"line {lineno}")
            sample = parse_record(raw, manifest, lineno)
            first = seen.setdefault(sample.id, lineno)
            if first != lineno:
                raise InputError(manifest, f"duplicate id {sample.id!r} (first on line {first})",
                                 _where(lineno, raw))
            samples.append(sample)
    if not samples:
        raise InputError(manifest, "the manifest has no records")
    return samples


def write_manifest(path: Path, samples: Iterable[Sample | dict[str, Any]]) -> int:
    """Write records as ``manifest.jsonl`` (atomically). Returns the number of records."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for sample in samples:
            record = sample.to_record() if isinstance(sample, Sample) else sample
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


class Benchmark:
    """A validated benchmark folder."""

    def __init__(self, root: Path, samples: list[Sample], manifest: Path):
        self.root = Path(root)
        self.samples = samples
        self.manifest = Path(manifest)
        self._fingerprint: str | None = None
        self._file_sha256: dict[str, str] = {}

    @property
    def name(self) -> str:
        info = self.info()
        return info.get("name") or self.root.name

    def info(self) -> dict[str, Any]:
        """The optional ``benchmark.json`` beside the manifest (name, description, version)."""
        path = self.root / "benchmark.json"
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(path, f"malformed JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(path, "must hold a JSON object")
        return data

    def path_of(self, relative: str) -> Path:
        return self.root / relative

    def splits(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sample in self.samples:
            key = sample.split or "(none)"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def select(self, split: str | None = None) -> list[Sample]:
        """Samples of one split (``None`` or ``"all"``: every sample)."""
        if split in (None, "all"):
            return list(self.samples)
        chosen = [s for s in self.samples if s.split == split]
        if not chosen:
            raise InputError(self.manifest, f"no sample has split {split!r} "
                                            f"(splits: {', '.join(sorted(self.splits()))})")
        return chosen

    def check_files(self, samples: Iterable[Sample]) -> None:
        """Refuse (before any model call) when an image or mask file is missing, or reaches
        outside the benchmark folder through a symbolic link."""
        root = str(self.root)
        real_root = os.path.realpath(root) + os.sep
        inside: dict[str, bool] = {}  # directory -> its real path is inside the folder
        for sample in samples:
            for name in ("image", "mask"):
                relative = getattr(sample, name)
                if relative is None:
                    continue
                path = os.path.join(root, relative)
                try:
                    mode = os.lstat(path).st_mode
                except OSError:
                    mode = None
                if mode is not None and stat.S_ISLNK(mode):
                    ok = os.path.isfile(path)
                    escapes = not os.path.realpath(path).startswith(real_root)
                else:
                    ok = mode is not None and stat.S_ISREG(mode)
                    directory = os.path.dirname(path)
                    if directory not in inside:
                        inside[directory] = (os.path.realpath(directory) + os.sep).startswith(real_root)
                    escapes = not inside[directory]
                if not ok:
                    raise InputError(self.manifest, f"{name} file {relative!r} does not exist",
                                     f"id {sample.id!r}")
                if escapes:
                    raise InputError(self.manifest, f"{name} path {relative!r} escapes the benchmark folder "
                                                    "(through a symbolic link)", f"id {sample.id!r}")

    def fingerprint(self) -> str:
        """SHA-256 over the manifest bytes and the bytes of every image and mask it names.

        File hashes are cached in ``.dfabench-fingerprint.json`` in the folder, keyed by
        path, size and modification time, so a re-run only stats the files.
        """
        if self._fingerprint is None:
            self._fingerprint, self._file_sha256 = fingerprint_and_file_hashes(self)
        return self._fingerprint

    def image_sha256(self, sample: Sample) -> str:
        """SHA-256 of the sample's image file: the hash the fingerprint took (no file is hashed twice),
        or, for an image the fingerprint did not cover, its hash now (kept). ``"missing"`` when there is
        no such file."""
        if self._fingerprint is None:
            self.fingerprint()
        digest = self._file_sha256.get(sample.image)
        if digest is None:
            path = os.path.join(str(self.root), sample.image)
            digest = self._file_sha256[sample.image] = _hash_file(path) if os.path.isfile(path) else "missing"
        return digest


def _iter_files(samples: Iterable[Sample]) -> Iterator[str]:
    seen: set[str] = set()
    for sample in samples:
        for relative in (sample.image, sample.mask):
            if relative is not None and relative not in seen:
                seen.add(relative)
                yield relative


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compute_fingerprint(benchmark: Benchmark) -> str:
    return fingerprint_and_file_hashes(benchmark)[0]


def fingerprint_and_file_hashes(benchmark: Benchmark) -> tuple[str, dict[str, str]]:
    """The benchmark fingerprint and the SHA-256 of each image and mask file (relative path -> hash)."""
    cache_path = benchmark.root / ".dfabench-fingerprint.json"
    try:
        cache = json.loads(cache_path.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    digest = hashlib.sha256()
    digest.update(b"dfabench-benchmark-v1\0")
    digest.update(benchmark.manifest.read_bytes())
    fresh: dict[str, list] = {}
    root = str(benchmark.root)
    for relative in sorted(_iter_files(benchmark.samples)):
        path = os.path.join(root, relative)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            file_hash = "missing"
            fresh[relative] = [-1, -1, file_hash]
        else:
            entry = cache.get(relative)
            if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
                file_hash = entry[2]
            else:
                file_hash = _hash_file(path)
            fresh[relative] = [stat.st_size, stat.st_mtime_ns, file_hash]
        digest.update(f"{relative}\0{file_hash}\n".encode())
    if fresh != cache:
        from dfabench.store import atomic_write_text

        try:
            atomic_write_text(cache_path, json.dumps(fresh))
        except OSError:
            pass  # a read-only benchmark folder: hash again next time
    return digest.hexdigest(), {relative: entry[2] for relative, entry in fresh.items()}


def load_benchmark(path: str | Path) -> Benchmark:
    """Load a benchmark folder (or its manifest file) and validate every record."""
    path = Path(path)
    if path.is_file():
        manifest, root = path, path.parent
    else:
        manifest, root = path / MANIFEST, path
        if not path.exists():
            raise InputError(path, "no such benchmark folder")
        if not manifest.exists():
            raise InputError(path, f"not a benchmark folder: it has no {MANIFEST}")
    return Benchmark(root, read_manifest(manifest), manifest)
