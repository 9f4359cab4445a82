"""Importers: public dataset layouts -> dfabench benchmarks (``dfabench import FORMAT SRC --out DIR``).

Each importer reads an index / annotation file, turns every record it can into a manifest record,
materialises the images (and masks) inside ``out`` (a benchmark's paths are relative to its folder)
and returns an :class:`ImportReport`. A record that cannot be imported (a missing image file, an
unknown label, an unparseable answer, a malformed entry) is listed in ``ImportReport.skipped`` with
the reason, and also in ``out/import-report.json``; with ``strict=True`` the first such record
raises an :class:`~dfabench.errors.InputError` naming the file and the record instead. A file
that is not valid JSON raises an ``InputError`` naming the file. When nothing can be imported,
nothing is written.

Common options:

- ``root``: the folder relative image paths are resolved against (default: the index file's folder);
- ``replace_prefix=(old, new)``: published index files carry their authors' absolute paths;
  a path starting with ``old`` gets ``new`` instead (before it is resolved);
- ``copy``: ``"link"`` (default: a hard link when the file system allows it, else a copy) or
  ``"copy"``. Symbolic links are not offered: the core refuses links that leave the benchmark folder.

Formats: :func:`import_df40` (DeepfakeBench / DF40 index JSON), :func:`import_dfa_instruct`
(DFA-Instruct-style LLaVA conversation JSON), :func:`import_mmtt` (MMTT / ForgeryTalker annotations),
:func:`import_ddvqa` (DD-VQA question/answer annotations of FaceForensics++ frames).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


# --------------------------------------------------------------------------- shared machinery


class _PathResolver:
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


class _Import:
    """Collects planned samples, skipped records and warnings of one import."""

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
        from dfabench.data.manifest import MANIFEST, load_benchmark, parse_record, write_manifest

        if not self.planned:
            first = f"; first: {self.skipped[0][0]}: {self.skipped[0][1]}" if self.skipped else ""
            raise InputError(self.src, f"nothing could be imported ({len(self.skipped)} records skipped{first})")
        # validate every record the way load_benchmark will, before anything is written
        manifest_path = self.out / MANIFEST
        for planned in self.planned:
            parse_record(planned.record, f"id {planned.record['id']!r}", manifest_path)
        tmp = self.out.with_name(f".{self.out.name}.importing-{os.getpid()}")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            for planned in self.planned:
                self._place(planned.image, tmp / planned.record["image"])
                if planned.mask is not None:
                    self._place(planned.mask, tmp / planned.record["mask"])
            write_manifest(tmp / MANIFEST, [p.record for p in self.planned])
            counts = _counts(p.record for p in self.planned)
            (tmp / "benchmark.json").write_text(json.dumps(
                {"name": info.get("name") or self.out.name, "imported_from": {"format": self.fmt,
                                                                              "src": str(self.src)},
                 **{k: v for k, v in info.items() if k != "name"}, "counts": counts}, indent=2) + "\n",
                encoding="utf-8")
            (tmp / REPORT_FILE).write_text(json.dumps(
                {"format": self.fmt, "src": str(self.src), "n_imported": len(self.planned),
                 "n_skipped": len(self.skipped), "skipped": [list(s) for s in self.skipped],
                 "warnings": [list(w) for w in self.warnings], "counts": counts}, indent=2) + "\n",
                encoding="utf-8")
            if self.out.exists():
                self.out.rmdir()  # _check_out made sure it is empty
            os.replace(tmp, self.out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
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


def _read_json(src: Path) -> Any:
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


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


# --------------------------------------------------------------------------- DF40 / DeepfakeBench

#: label names of real data in DeepfakeBench / DF40 index files end with one of these words
_REAL_WORDS = frozenset({"real", "pristine", "original", "authentic", "genuine", "youtube"})
_FAKE_WORDS = frozenset({"fake", "synthesis", "forged", "manipulated"})
_FAKE_SUFFIX = re.compile(r"[_\-\s]+(?:fake|synthesis|forged|manipulated)$", re.IGNORECASE)


def df40_label(name: str) -> tuple[str | None, str | None, str | None]:
    """Read a DeepfakeBench / DF40 label (``simswap_Fake``, ``FF-real``, ``FF-DF``, ``DFDC_Fake``).

    Returns ``(label, technique, category)``: label ``"real"``/``"fake"`` or ``None`` when the
    name says neither; for fakes the technique (DF40 display name when it is one of the 40) and
    its category (``None`` when the technique is unknown).
    """
    from dfabench.parsing import TECHNIQUE_NAMES, canonical_technique, technique_category

    words = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]
    if not words:
        return None, None, None
    if words[-1] in _REAL_WORDS or words == ["real"]:
        return "real", None, None
    category = technique_category(name)
    if words[-1] not in _FAKE_WORDS and category is None:
        return None, None, None
    key = canonical_technique(name)
    if key is not None:
        return "fake", TECHNIQUE_NAMES[key], category
    technique = str(name)
    while True:
        stripped = _FAKE_SUFFIX.sub("", technique)
        if stripped == technique:
            break
        technique = stripped
    if technique.lower() in _FAKE_WORDS:
        technique = None  # a bare "fake" names no technique
    return "fake", technique, category


_LEVEL = re.compile(r"^(c\d+|raw|hq|lq)$", re.IGNORECASE)


def _video_groups(value: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]] | None:
    """The videos of one split: ``{video: {...}}`` or ``{c23: {video: {...}}, ...}``; None if neither.

    Keys are compression levels when every key looks like one (``c23``, ``c40``, ``raw``) and no
    value is a video entry; each video entry is checked on its own afterwards.
    """
    if all(_LEVEL.match(str(k)) and isinstance(v, dict) and "frames" not in v for k, v in value.items()) and value:
        if not all(isinstance(videos, dict) for videos in value.values()):
            return None
        return [(str(level), videos) for level, videos in value.items()]
    return [(None, value)]


def import_df40(src: Path, out: Path, *, root: Path | None = None, replace_prefix: tuple[str, str] | None = None,
                strict: bool = False, copy: str = "link", compression: str | None = None) -> ImportReport:
    """Import a DeepfakeBench / DF40 dataset index JSON: one sample per frame.

    Layout: ``{dataset: {label_key: {split: {[c23|c40]: {video: {"label", "frames": [...],
    "masks": [...]}}}}}}``. ``source_id`` is ``dataset/video``; the split comes from the file
    (``train``/``val``/``test``); each fake's technique comes from its label (``simswap_Fake``,
    ``FF-DF``) and its category from the technique (the 40 DF40 techniques and FaceForensics++'s).
    A fake of an unknown technique is imported with no category (listed in ``warnings``).
    ``compression`` keeps only that level (e.g. ``"c23"``) when the file has several.
    """
    src = Path(src)
    job = _Import("df40", src, Path(out), strict, copy)
    resolve = _PathResolver(src, root, replace_prefix)
    data = _read_json(src)
    if not isinstance(data, dict) or not data:
        raise InputError(src, "not a DeepfakeBench / DF40 index: expected a JSON object "
                              "{dataset: {label: {split: {[c23|c40]: {video: {label, frames}}}}}}")
    unknown_techniques: dict[str, int] = {}
    for dataset, labels in data.items():
        if not isinstance(labels, dict):
            job.skip(str(dataset), "malformed: expected an object {label: {split: ...}}")
            continue
        for label_key, splits in labels.items():
            where = f"{dataset}/{label_key}"
            if not isinstance(splits, dict):
                job.skip(where, "malformed: expected an object {split: ...}")
                continue
            for split, value in splits.items():
                groups = _video_groups(value) if isinstance(value, dict) else None
                if groups is None:
                    job.skip(f"{where}/{split}", "malformed: expected {video: {label, frames}} or "
                                                 "{c23|c40: {video: {label, frames}}}")
                    continue
                for level, videos in groups:
                    if compression is not None and level is not None and level != compression:
                        continue
                    for video, entry in videos.items():
                        if not isinstance(entry, dict):
                            where = "/".join(p for p in (str(dataset), str(label_key), str(split), level, str(video))
                                             if p is not None)
                            job.skip(where, "malformed video entry: expected an object {label, frames, masks}")
                            continue
                        _df40_video(job, resolve, str(dataset), str(label_key), str(split), level, str(video),
                                    entry, unknown_techniques)
    for technique, n in sorted(unknown_techniques.items()):
        job.warn(technique, f"technique {technique!r} is not one of the known DF40 / FaceForensics++ techniques: "
                            f"its {n} fake samples have no category (DF-C skips them)")
    return job.finish({"name": src.stem, "description": f"imported from the DeepfakeBench / DF40 index {src.name}"})


def _df40_video(job: _Import, resolve: Callable[[str], Path], dataset: str, label_key: str, split: str,
                level: str | None, video: str, entry: Any, unknown_techniques: dict[str, int]) -> None:
    where = "/".join(p for p in (dataset, label_key, split, level, video) if p is not None)
    frames = entry.get("frames")
    if not isinstance(frames, list) or not frames:
        job.skip(where, "malformed video entry: 'frames' must be a non-empty list of paths")
        return
    label_name = entry.get("label", label_key)
    if not isinstance(label_name, str):
        job.skip(where, f"malformed video entry: 'label' must be a string, not {label_name!r}")
        return
    label, technique, category = df40_label(label_name)
    if label is None:
        job.skip(where, f"unknown label {label_name!r}: neither real nor a known fake technique")
        return
    masks = entry.get("masks")
    if masks is not None and (not isinstance(masks, list) or len(masks) != len(frames)):
        if masks:  # an empty list or null just means "no masks"
            job.warn(where, "'masks' is not a list as long as 'frames': masks ignored")
        masks = None
    for index, frame in enumerate(frames):
        if not isinstance(frame, str) or not frame:
            job.skip(f"{where}[{index}]", f"frame path must be a non-empty string, not {frame!r}")
            continue
        path = resolve(frame)
        name = Path(frame.replace("\\", "/")).name
        record_name = f"{where}/{name}"
        if not _is_file(path):
            job.skip(record_name, f"frame file {str(path)!r} does not exist")
            continue
        if label == "fake" and category is None:
            key = technique or label_name
            unknown_techniques[key] = unknown_techniques.get(key, 0) + 1
        parts = [p for p in (dataset, label_key, split, level, video) if p is not None] + [name]
        record: dict[str, Any] = {
            "id": job.unique_id("/".join(p for p in (dataset, label_key, level, video, Path(name).stem) if p)),
            "image": job.destination("images", parts, path.suffix),
            "label": label,
            "category": category,
            "technique": technique,
            "source_id": f"{dataset}/{video}",
            "split": split,
            "meta": {"dataset": dataset, "label_key": label_key, "video": video, "frame": index,
                     **({"compression": level} if level is not None else {})},
        }
        mask_path = None
        if masks is not None and label == "fake" and masks[index]:
            if isinstance(masks[index], str) and _is_file(resolve(masks[index])):
                mask_path = resolve(masks[index])
                record["mask"] = job.destination("masks", parts, mask_path.suffix)
            else:
                job.warn(record_name, f"mask {masks[index]!r} does not exist: imported without a mask")
        job.add({k: v for k, v in record.items() if v is not None}, path, mask_path)


# --------------------------------------------------------------------------- DFA-Instruct

_ROLE = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt"}
_YES_NO = re.compile(r"^\s*(is|are|has|have|does|do|was|were|did)\b")
_CATEGORY_WORDS = re.compile(r"\b(technique|kind|type|category|categories|method|approach|which forgery)\b")
_REGION_WORDS = re.compile(r"\b(regions?|where|areas?|artifacts?|artefacts?|describe|details?|explain|parts?)\b")
_FORGERY_WORDS = re.compile(r"\b(forged|forgery|fake|real|authentic|genuine|manipulated|manipulation|deepfake|"
                            r"tampered|altered|synthesi[sz]ed|pristine|edited)\b")


_ASKS_REAL = re.compile(r"\b(real|authentic|genuine|pristine|original|unaltered|unmanipulated|untampered)\b")
_ASKS_FAKE = re.compile(r"\b(forged|forgery|fake|manipulated|manipulation|deepfake|tampered|altered|"
                        r"synthesi[sz]ed|edited|generated|doctored)\b")


def question_polarity(question: str) -> str | None:
    """What a *yes* answers to a DF-D question: ``"fake"`` ("Has this face been forged?"), ``"real"``
    ("Is this face authentic?") or None when the question names both or neither ("real or fake?")."""
    text = question.replace("<image>", " ").lower()
    asks_real, asks_fake = bool(_ASKS_REAL.search(text)), bool(_ASKS_FAKE.search(text))
    if asks_fake and not asks_real:
        return "fake"
    if asks_real and not asks_fake:
        return "real"
    return None


def question_task(question: str) -> str | None:
    """Which DFA capability a DFA-Instruct question asks about: ``DF-D``, ``DF-C``, ``AD`` or None (FC)."""
    text = question.replace("<image>", " ").strip().lower()
    if _CATEGORY_WORDS.search(text):
        return "DF-C"
    if _YES_NO.match(text) and _FORGERY_WORDS.search(text):
        return "DF-D"
    if _REGION_WORDS.search(text):
        return "AD"
    if _FORGERY_WORDS.search(text):
        return "DF-D"
    return None


def _conversation_pairs(turns: list[dict[str, str]]) -> list[tuple[str, str]]:
    pairs = []
    for first, second in zip(turns, turns[1:], strict=False):
        if first["from"] == "human" and second["from"] == "gpt":
            pairs.append((first["value"], second["value"]))
    return pairs


def _clean_turns(raw: Any) -> list[dict[str, str]] | None:
    if not isinstance(raw, list) or not raw:
        return None
    turns = []
    for turn in raw:
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            return None
        role = _ROLE.get(str(turn.get("from", "")).lower())
        if role is None:
            return None
        turns.append({"from": role, "value": turn["value"]})
    return turns


def _records_of(data: Any, src: Path, keys: tuple[str, ...], what: str) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in keys:
            if isinstance(data.get(key), list):
                return data[key]
    raise InputError(src, f"expected a JSON list of {what} records")


def _split_from_name(src: Path) -> str | None:
    words = set(re.split(r"[^a-z]+", src.stem.lower()))
    for split in ("train", "val", "test"):
        if split in words:
            return split
    return "val" if "valid" in words or "validation" in words else None


def import_dfa_instruct(src: Path, out: Path, *, root: Path | None = None,
                        replace_prefix: tuple[str, str] | None = None, strict: bool = False, copy: str = "link",
                        split: str | None = None) -> ImportReport:
    """Import DFA-Instruct-style LLaVA conversation JSON: ``[{"id", "image", "conversations": [...]}]``.

    The label comes from the DF-D answer (``parse_detection``), the category of a fake from the
    DF-C answer (``parse_category``), the reference description from the AD answer; the
    conversations are kept. Which turn is which is read from the question (:func:`question_task`).
    Optional per-record fields ``split``, ``source_id``, ``technique``, ``mask`` are kept; ``split``
    (option) sets the split of records that have none (default: from the file name, e.g. ``test.json``).
    """
    from dfabench.parsing import parse_category, parse_detection

    src = Path(src)
    job = _Import("dfa-instruct", src, Path(out), strict, copy)
    resolve = _PathResolver(src, root, replace_prefix)
    items = _records_of(_read_json(src), src, ("data", "annotations", "samples"), "{id, image, conversations}")
    default_split = split if split is not None else _split_from_name(src)
    for index, item in enumerate(items):
        where = f"record {index}"
        if not isinstance(item, dict):
            job.skip(where, "malformed record: expected an object {id, image, conversations}")
            continue
        raw_id = item.get("id")
        if raw_id is not None:
            where += f" (id {raw_id!r})"
        if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or raw_id == "":
            job.skip(where, "malformed record: 'id' must be a non-empty string or an integer")
            continue
        image = item.get("image")
        if not isinstance(image, str) or not image:
            job.skip(where, "malformed record: 'image' must be a non-empty path string")
            continue
        turns = _clean_turns(item.get("conversations"))
        if turns is None:
            job.skip(where, "malformed record: 'conversations' must be a non-empty list of "
                            "{\"from\": \"human\"|\"gpt\", \"value\": str}")
            continue
        answers: dict[str, str] = {}
        questions: dict[str, str] = {}
        for question, answer in _conversation_pairs(turns):
            task = question_task(question)
            if task is not None and task not in answers:
                answers[task], questions[task] = answer, question
        if "DF-D" in answers:
            # "Is this face real?" -> "Yes." means real: a yes answers the question's own polarity
            label = parse_detection(answers["DF-D"], yes_means=question_polarity(questions["DF-D"]) or "fake")
            if label is None:
                job.skip(where, f"unparseable DF-D answer {answers['DF-D'][:80]!r}")
                continue
        elif "DF-C" in answers and parse_category(answers["DF-C"]) is not None:
            label = "fake"  # a DF-C answer naming a category presupposes a fake
        else:
            job.skip(where, "no DF-D (detection) turn to take the label from")
            continue
        category = None
        if label == "fake":
            if "DF-C" in answers:
                category = parse_category(answers["DF-C"])
                if category is None:
                    job.skip(where, f"unparseable DF-C answer {answers['DF-C'][:80]!r}")
                    continue
            else:
                job.warn(where, "a fake with no DF-C turn: imported with no category")
        path = resolve(image)
        if not _is_file(path):
            job.skip(where, f"image file {str(path)!r} does not exist")
            continue
        mask_path = None
        if isinstance(item.get("mask"), str) and item["mask"]:
            mask_path = resolve(item["mask"])
            if not _is_file(mask_path):
                job.warn(where, f"mask {item['mask']!r} does not exist: imported without a mask")
                mask_path = None
        parts = _relative_parts(image)
        record: dict[str, Any] = {
            "id": job.unique_id(str(raw_id)),
            "image": job.destination("images", parts, path.suffix),
            "label": label,
            "category": category,
            "technique": item.get("technique") if isinstance(item.get("technique"), str) else None,
            "source_id": str(item["source_id"]) if isinstance(item.get("source_id"), (str, int)) else None,
            "split": item.get("split") if isinstance(item.get("split"), str) else default_split,
            "description": answers.get("AD") if label == "fake" else None,
            "conversations": turns,
        }
        if mask_path is not None:
            record["mask"] = job.destination("masks", parts, mask_path.suffix)
        job.add({k: v for k, v in record.items() if v is not None}, path, mask_path)
    return job.finish({"name": src.stem, "description": f"imported from the DFA-Instruct-style file {src.name}"})


def _relative_parts(path_value: str) -> list[str]:
    """Path components to mirror inside ``images/`` (at most the last three)."""
    parts = [p for p in path_value.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return parts[-3:] if parts else ["image"]


# --------------------------------------------------------------------------- MMTT


def import_mmtt(src: Path, out: Path, *, root: Path | None = None, replace_prefix: tuple[str, str] | None = None,
                strict: bool = False, copy: str = "link", split: str | None = None) -> ImportReport:
    """Import MMTT / ForgeryTalker annotations (forgery localization + interpretation, task FL).

    Records (a JSON list, JSON lines, or an object with an ``annotations`` / ``data`` / ``images``
    list): ``image_id``, ``caption`` (the report; a list of reports keeps the first), the image in
    ``img_path`` or ``relative_path``, and ``mask_path``. Every MMTT image is a fake; its category
    comes from a ``category`` / ``technique`` / ``method`` field when there is one. A record without
    a mask is imported without one (listed in ``warnings``); a mask path that does not exist skips it.
    ``split`` sets the split (default: from the file name, e.g. ``test.json``).
    """
    from dfabench.data.manifest import CATEGORIES
    from dfabench.parsing import technique_category

    src = Path(src)
    job = _Import("mmtt", src, Path(out), strict, copy)
    resolve = _PathResolver(src, root, replace_prefix)
    items = _records_of(_read_json(src), src, ("annotations", "data", "images", "samples"),
                        "{image_id, caption, img_path, mask_path}")
    default_split = split if split is not None else _split_from_name(src)
    for index, item in enumerate(items):
        where = f"record {index}"
        if not isinstance(item, dict):
            job.skip(where, "malformed record: expected an object {image_id, caption, img_path, mask_path}")
            continue
        raw_id = item.get("image_id", item.get("id"))
        if raw_id is not None:
            where += f" (image_id {raw_id!r})"
        if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or raw_id == "":
            job.skip(where, "malformed record: 'image_id' must be a non-empty string or an integer")
            continue
        image = next((item[k] for k in ("img_path", "relative_path", "image") if isinstance(item.get(k), str)
                      and item[k]), None)
        if image is None:
            job.skip(where, "malformed record: no image path ('img_path' or 'relative_path')")
            continue
        caption = item.get("caption")
        if isinstance(caption, list) and caption and all(isinstance(c, str) for c in caption):
            caption = caption[0]
        if not isinstance(caption, str) or not caption.strip():
            job.skip(where, "malformed record: 'caption' must be a non-empty string")
            continue
        path = resolve(image)
        if not _is_file(path):
            job.skip(where, f"image file {str(path)!r} does not exist")
            continue
        mask_value = item.get("mask_path")
        mask_path = None
        if isinstance(mask_value, str) and mask_value:
            mask_path = resolve(mask_value)
            if not _is_file(mask_path):
                job.skip(where, f"mask file {str(mask_path)!r} does not exist")
                continue
        else:
            job.warn(where, "no 'mask_path': imported without a mask (FL mask metrics skip it)")
        category, technique = None, None
        for key in ("category", "technique", "method", "forgery_type"):
            value = item.get(key)
            if isinstance(value, str) and value:
                if value.upper() in CATEGORIES:
                    category = value.upper()
                else:
                    technique = technique or value
                    category = category or technique_category(value)
        parts = _relative_parts(image)
        record: dict[str, Any] = {
            "id": job.unique_id(str(raw_id)),
            "image": job.destination("images", parts, path.suffix),
            "label": "fake",
            "category": category,
            "technique": technique,
            "source_id": str(item["source_id"]) if isinstance(item.get("source_id"), (str, int)) else None,
            "split": item.get("split") if isinstance(item.get("split"), str) else default_split,
            "description": caption,
        }
        if mask_path is not None:
            record["mask"] = job.destination("masks", parts, mask_path.suffix)
        job.add({k: v for k, v in record.items() if v is not None}, path, mask_path)
    return job.finish({"name": src.stem, "description": f"imported from the MMTT annotation file {src.name}"})


# --------------------------------------------------------------------------- DD-VQA

#: DD-VQA manipulation ids (the first part of a record key) -> FaceForensics++ manipulation (the
#: DD-VQA README; 4 is not used). 5 is the original, real videos.
DDVQA_MANIPULATIONS: dict[int, str] = {0: "Deepfakes", 1: "Face2Face", 2: "FaceShifter", 3: "FaceSwap",
                                       5: "Original", 6: "NeuralTextures"}
_DDVQA_REAL = "Original"
#: folder names (lower case, letters and digits only) a manipulation's frames may be filed under
_DDVQA_FOLDERS: dict[str, tuple[str, ...]] = {
    "Deepfakes": ("deepfakes",), "Face2Face": ("face2face",), "FaceShifter": ("faceshifter",),
    "FaceSwap": ("faceswap",), "NeuralTextures": ("neuraltextures", "neuraltexture"),
    "Original": ("original", "originals", "youtube", "real"),
}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_SPLIT_FOLDER = re.compile(r"^(train|val|valid|validation|test)(?:[_-]?set)?$", re.IGNORECASE)
#: a question about the whole image ("Does the image looks real/fake?", "This image is fake. Describe ...")
_IMAGE_QUESTION = re.compile(r"^\W*(?:(?:does|do|is|are)\s+)?(?:the|this)\s+image\b", re.IGNORECASE)
#: the verdict sentence an image-level answer opens with; the description is what follows
_VERDICT = re.compile(r"^\s*the\s+image\s+looks\s+(?:real|fake)\s*[.!]?\s*", re.IGNORECASE)


def ddvqa_key(key: str) -> tuple[str, str, str | None]:
    """Read a DD-VQA record key: ``"0_000_003"`` -> ``("Deepfakes", "000_003", None)``.

    A key is ``<manipulation id>_<FaceForensics++ video id>``: ``<target>_<source>`` for a
    manipulated video, ``<video>`` for an original one (``5_044``), optionally followed by
    ``_<question index>`` (one key per question, ``3_579_701_0``). Returns the manipulation
    (:data:`DDVQA_MANIPULATIONS`), the video id and the question index (``None`` when there is
    none); raises ``ValueError`` saying what is wrong with a malformed key.
    """
    parts = str(key).split("_")
    if not parts[0].isdigit():
        raise ValueError(f"malformed key {key!r}: expected <manipulation id>_<video id>, e.g. '0_000_003'")
    if int(parts[0]) not in DDVQA_MANIPULATIONS:
        known = ", ".join(f"{i} {name}" for i, name in DDVQA_MANIPULATIONS.items())
        raise ValueError(f"unknown manipulation id {parts[0]} in key {key!r} (DD-VQA ids: {known})")
    method = DDVQA_MANIPULATIONS[int(parts[0])]
    n_video = 1 if method == _DDVQA_REAL else 2
    if not 1 + n_video <= len(parts) <= 2 + n_video or not all(p.isdigit() for p in parts):
        shape = "5_<video>" if method == _DDVQA_REAL else f"{parts[0]}_<target video>_<source video>"
        raise ValueError(f"malformed key {key!r}: a {method} key is {shape}[_<question index>]")
    question = parts[1 + n_video] if len(parts) == 2 + n_video else None
    return method, "_".join(parts[1:1 + n_video]), question


def _natural(name: str) -> list[Any]:
    """Sort key: ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


class _FrameFinder:
    """Finds the image of a DD-VQA record under ``base`` (the layouts of :func:`import_ddvqa`)."""

    def __init__(self, base: Path, compression: str | None, frame: int | str):
        self.base, self.compression, self.frame = base, compression, frame
        self._folders: dict[Path, dict[str, Path]] = {}

    def _child(self, folder: Path | None, names: Iterable[str]) -> Path | None:
        """The sub-folder of ``folder`` whose name, lower case and letters and digits only, is one of ``names``."""
        if folder is None:
            return None
        if folder not in self._folders:
            try:
                with os.scandir(folder) as entries:
                    self._folders[folder] = {re.sub(r"[^a-z0-9]+", "", e.name.lower()): Path(e.path)
                                             for e in entries if e.is_dir()}
            except OSError:
                self._folders[folder] = {}
        return next((self._folders[folder][n] for n in names if n in self._folders[folder]), None)

    def find(self, key: str, method: str, video: str) -> tuple[Path, str | None]:
        """``(image, frame file name or None)``; raises ``LookupError`` saying where it looked."""
        for suffix in _IMAGE_SUFFIXES:
            if _is_file(self.base / f"{key}{suffix}"):
                return self.base / f"{key}{suffix}", None
        method_dir = self._child(self.base, _DDVQA_FOLDERS[method])
        if method_dir is not None:
            for suffix in _IMAGE_SUFFIXES:
                if _is_file(method_dir / f"{video}{suffix}"):
                    return method_dir / f"{video}{suffix}", None
            if (method_dir / video).is_dir():
                return self._pick(method_dir / video)
        if method == _DDVQA_REAL:
            sequences = self._child(self._child(self.base, ("originalsequences",)), ("youtube",))
        else:
            sequences = self._child(self._child(self.base, ("manipulatedsequences",)), _DDVQA_FOLDERS[method])
        if sequences is not None:
            if self.compression:
                levels = [self.compression]
            else:
                self._child(sequences, ())  # lists the folder
                levels = sorted(p.name for p in self._folders[sequences].values() if _LEVEL.match(p.name))
            found = [(level, folder) for level in levels for kind in ("frames", "images")
                     if (folder := sequences / level / kind / video).is_dir()]
            if len({level for level, _ in found}) > 1:
                raise LookupError(f"the frames of video {video} are filed under several compression levels "
                                  f"({', '.join(sorted({level for level, _ in found}))}): choose one (compression)")
            if found:
                return self._pick(found[0][1])
        tree = "original_sequences/youtube" if method == _DDVQA_REAL else f"manipulated_sequences/{method}"
        raise LookupError(f"no image found for {key!r} under {str(self.base)!r} (looked for {key}.png|jpg, "
                          f"{method}/{video}.png|jpg, {method}/{video}/<frames> and {tree}/<c23|c40>/frames/{video}/)")

    def _pick(self, folder: Path) -> tuple[Path, str]:
        try:
            with os.scandir(folder) as entries:
                frames = sorted((e.name for e in entries if e.is_file() and Path(e.name).suffix.lower()
                                 in _IMAGE_SUFFIXES), key=_natural)
        except OSError as exc:
            raise LookupError(f"cannot read the frame folder {str(folder)!r} ({exc.strerror})") from None
        if not frames:
            raise LookupError(f"the frame folder {str(folder)!r} holds no images")
        if isinstance(self.frame, str):
            name = next((f for f in frames if self.frame in (f, Path(f).stem)), None)
            if name is None:
                raise LookupError(f"the frame folder {str(folder)!r} has no frame {self.frame!r}")
        elif -len(frames) <= self.frame < len(frames):
            name = frames[self.frame]
        else:
            raise LookupError(f"the frame folder {str(folder)!r} has {len(frames)} frames: frame {self.frame} "
                              f"is out of range")
        return folder / name, name


def _ddvqa_split(file: Path, src: Path) -> str | None:
    """The split of a DD-VQA file: from its name (``test.json``), else from the nearest folder above it
    named like a split (``test``, ``test_set``, ``train_set``, ``val``): up to ``src`` when ``src`` is a
    folder, else the file's folder and the one above (``test_set/Deepfakes/Deepfakes.json``)."""
    found = _split_from_name(file)
    if found is not None:
        return found
    if src.is_dir():
        names = [p.name for p in file.relative_to(src).parents if p.name] + [src.resolve().name]
    else:
        names = [p.name for p in file.resolve().parents[:2]]
    for name in names:
        match = _SPLIT_FOLDER.match(name)
        if match:
            split = match.group(1).lower()
            return "val" if split.startswith("val") else split
    return None


@dataclass
class _DdvqaRecord:
    where: str
    file: Path
    split: str | None
    method: str
    video: str
    questions: dict[str, Any] = field(default_factory=dict)
    image: Any = None
    problem: str | None = None


def import_ddvqa(src: Path, out: Path, *, root: Path | None = None, replace_prefix: tuple[str, str] | None = None,
                 strict: bool = False, copy: str = "link", split: str | None = None, compression: str | None = None,
                 frame: int | str = 0) -> ImportReport:
    """Import DD-VQA (Zhang et al., "Common Sense Reasoning for Deepfake Detection", ECCV 2024).

    The format is that of the authors' release (github.com/Reality-Defender/Research-DD-VQA,
    ``DQ_FF++/{train,test}_set/<Method>/<Method>.json``): one JSON object per file,
    ``{key: {question_id: {"question": str, "answer": [str, ...]}}}``, one key per annotated
    FaceForensics++ video (:func:`ddvqa_key`: ``0_000_003`` is Deepfakes video ``000_003``, ``5_044``
    original video ``044``) and one answer per annotator. Also accepted: JSON lines of such objects, and
    one key per question (``3_579_701_0: {question, answer}``, as in the authors' M2F2-Det evaluation
    files). ``src`` is one file or a folder whose ``.json`` / ``.jsonl`` files are read together
    (e.g. ``DQ_FF++/test_set``); a key found twice is imported once (the other is listed as skipped).

    One sample per key: the label and technique come from the key's manipulation id (5 is real),
    the category from the technique (Deepfakes, FaceSwap, FaceShifter -> FS; Face2Face,
    NeuralTextures -> FR), ``source_id`` is ``FF++/<target video>`` (an original video and its
    manipulations form one cluster). The questions, in question-id order, with each question's first
    answer become the ``conversations`` (the first question prefixed ``<image>\\n``); every annotator's
    answers are kept in ``meta["answers"]``. A fake's ``description`` is the first answer to the
    image-level question ("Does the image look real/fake?"), its opening verdict sentence removed.
    An image-level answer contradicting the key's label is listed in ``warnings``.

    The release holds no images and does not say which frame of a video was annotated, so the image
    of a key is looked up under ``root`` (default: the file's folder, or ``src`` itself when it is a
    folder), first match wins: ``<key>.png|jpg`` (e.g. ``0_000_003.png``), ``<Method>/<video>.png|jpg``,
    a frame folder ``<Method>/<video>/``, or a FaceForensics++ frames tree
    ``manipulated_sequences/<Method>/<level>/frames/<video>/`` and
    ``original_sequences/youtube/<level>/frames/<video>/`` (``images/`` instead of ``frames/`` too;
    ``compression`` picks the level, e.g. ``"c23"``, when there are several). Method folders match
    in any case (``NeuralTextures`` or ``Neuraltexture``; originals: ``Original`` or ``youtube``).
    From a frame folder ``frame`` picks the frame: an index into its frames in natural order
    (default 0: the first) or a file name. A key may also name its image itself in an ``"image"``
    field beside its questions (a path; ``replace_prefix`` applies), which wins over the search.
    ``split`` sets the split (default: from the file name or a folder above it, e.g. ``test_set``).
    """
    from dfabench.parsing import parse_detection, technique_category

    src = Path(src)
    job = _Import("ddvqa", src, Path(out), strict, copy)
    if isinstance(frame, bool) or not isinstance(frame, (int, str)) or frame == "":
        raise DfabenchError(f"frame must be a frame index or a frame file name, not {frame!r}")
    resolve = _PathResolver(src, root, replace_prefix)
    if root is None and src.is_dir():
        resolve.base = src
    finder = _FrameFinder(resolve.base, compression, frame)
    records = _ddvqa_read(src, split)
    for key, item in records.items():
        where = item.where
        if item.problem is not None:
            job.skip(where, item.problem)
            continue
        turns: list[dict[str, str]] = []
        answers: list[list[str]] = []
        image_answer = None
        for question_id in sorted(item.questions, key=_natural):
            entry = item.questions[question_id]
            question = entry.get("question") if isinstance(entry, dict) else None
            given = entry.get("answer", entry.get("answers")) if isinstance(entry, dict) else None
            given = [given] if isinstance(given, str) else given
            if not isinstance(question, str) or not question.strip() or not isinstance(given, list) \
                    or not all(isinstance(a, str) for a in given) or not any(a.strip() for a in given):
                item.problem = (f"malformed question {question_id!r}: expected "
                                "{\"question\": str, \"answer\": [str, ...]} with a non-empty answer")
                break
            texts = [a.strip() for a in given if a.strip()]
            turns.append({"from": "human", "value": ("<image>\n" if not turns else "") + question.strip()})
            turns.append({"from": "gpt", "value": texts[0]})
            answers.append(texts)
            if image_answer is None and _IMAGE_QUESTION.match(question):
                image_answer = texts[0]
        if item.problem is not None:
            job.skip(where, item.problem)
            continue
        if not turns:
            job.skip(where, "no questions")
            continue
        frame_name = None
        if item.image is not None:
            if not isinstance(item.image, str) or not item.image:
                job.skip(where, f"malformed record: 'image' must be a non-empty path string, not {item.image!r}")
                continue
            path = resolve(item.image)
            if not _is_file(path):
                job.skip(where, f"image file {str(path)!r} does not exist")
                continue
        else:
            try:
                path, frame_name = finder.find(key, item.method, item.video)
            except LookupError as exc:
                job.skip(where, str(exc))
                continue
        label = "real" if item.method == _DDVQA_REAL else "fake"
        said = parse_detection(image_answer) if image_answer is not None else None
        if said is not None and said != label:
            job.warn(where, f"the image-level answer says {said!r}, the key ({item.method}) says {label!r}: "
                            f"imported as {label!r}")
        description = None
        if label == "fake":
            description = _VERDICT.sub("", image_answer).strip() if image_answer is not None else ""
            if not description:
                job.warn(where, "a fake with no image-level answer describing it: imported with no description")
                description = None
        record: dict[str, Any] = {
            "id": job.unique_id(key),
            "image": job.destination("images", [item.method, item.video], path.suffix),
            "label": label,
            "category": technique_category(item.method) if label == "fake" else None,
            "technique": item.method if label == "fake" else None,
            "source_id": f"FF++/{item.video.split('_')[0]}",
            "split": item.split,
            "description": description,
            "conversations": turns,
            "meta": {"ddvqa_key": key, "manipulation": item.method, "video": item.video,
                     **({"frame": frame_name} if frame_name is not None else {}), "answers": answers},
        }
        job.add({k: v for k, v in record.items() if v is not None}, path)
    frame_note = f"frame {frame!r} of each frame folder" if isinstance(frame, str) else \
        f"frame index {frame} (natural order) of each frame folder"
    return job.finish({"name": src.stem if src.is_file() else src.name,
                       "description": f"imported from the DD-VQA annotations {src.name}",
                       "frame": f"{frame_note}; DD-VQA does not say which frame of a video was annotated"})


def _ddvqa_read(src: Path, split: str | None) -> dict[str, _DdvqaRecord]:
    """The records of a DD-VQA file or folder by key (per-question keys merged); malformed ones carry a problem."""
    if src.is_dir():
        files = sorted((p for p in src.rglob("*") if p.suffix.lower() in (".json", ".jsonl") and _is_file(p)
                        and not any(part.startswith(".") for part in p.relative_to(src).parts)),
                       key=lambda p: p.relative_to(src).as_posix())
        if not files:
            raise InputError(src, "a folder with no .json / .jsonl DD-VQA annotation files")
    else:
        files = [src]
    expected = "expected a JSON object {key: {question_id: {\"question\": str, \"answer\": [str, ...]}}}"
    records: dict[str, _DdvqaRecord] = {}

    def problem(where: str, file: Path, reason: str) -> None:  # reported in file order, with the records
        records[f"\0{len(records)}"] = _DdvqaRecord(where, file, None, "", "", problem=reason)

    for file in files:
        name = file.relative_to(src).as_posix() if src.is_dir() else file.name
        prefix = f"{name}: " if src.is_dir() else ""
        data = _read_json(file)
        objects = data if isinstance(data, list) else [data]
        if not objects or not all(isinstance(o, dict) for o in objects):
            if not src.is_dir():
                raise InputError(file, f"not a DD-VQA annotation file: {expected}")
            problem(name, file, f"not a DD-VQA annotation file: {expected}")  # e.g. DQ_FF++/split/test.json
            continue
        file_split = split if split is not None else _ddvqa_split(file, src)
        for obj in objects:
            for raw_key, value in obj.items():
                where = prefix + str(raw_key)
                try:
                    method, video, question = ddvqa_key(raw_key)
                except ValueError as exc:
                    problem(where, file, str(exc))
                    continue
                key = raw_key.rsplit("_", 1)[0] if question is not None else raw_key
                record = records.get(key)
                if record is not None and (record.file != file or question is None):
                    first = record.file.relative_to(src).as_posix() if src.is_dir() else record.file.name
                    problem(where, file, f"duplicate key {key!r}: already read from {first}")
                    continue
                if record is None:
                    record = records[key] = _DdvqaRecord(prefix + key, file, file_split, method, video)
                if not isinstance(value, dict):
                    record.problem = record.problem or f"malformed record: {expected}"
                elif question is not None:
                    if question in record.questions:
                        record.problem = record.problem or f"question {question} given twice"
                    record.questions[question] = value
                else:
                    for question_id, entry in value.items():
                        if question_id == "image":
                            record.image = entry
                        else:
                            record.questions[str(question_id)] = entry
    return records
