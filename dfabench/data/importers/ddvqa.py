"""DD-VQA question/answer annotations of FaceForensics++ frames -> benchmark (one sample per video key)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench.data.importers.base import (
    COMPRESSION_LEVEL,
    ImportJob,
    ImportReport,
    PathResolver,
    is_file,
    read_json,
    split_from_name,
)
from dfabench.errors import DfabenchError, InputError
from dfabench.parsing import parse_detection
from dfabench.vocab import technique_category

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
            if is_file(self.base / f"{key}{suffix}"):
                return self.base / f"{key}{suffix}", None
        method_dir = self._child(self.base, _DDVQA_FOLDERS[method])
        if method_dir is not None:
            for suffix in _IMAGE_SUFFIXES:
                if is_file(method_dir / f"{video}{suffix}"):
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
                levels = sorted(p.name for p in self._folders[sequences].values() if COMPRESSION_LEVEL.match(p.name))
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
    found = split_from_name(file)
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
    src = Path(src)
    job = ImportJob("ddvqa", src, Path(out), strict, copy)
    if isinstance(frame, bool) or not isinstance(frame, (int, str)) or frame == "":
        raise DfabenchError(f"frame must be a frame index or a frame file name, not {frame!r}")
    resolve = PathResolver(src, root, replace_prefix)
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
            if not is_file(path):
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
        files = sorted((p for p in src.rglob("*") if p.suffix.lower() in (".json", ".jsonl") and is_file(p)
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
        data = read_json(file)
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
