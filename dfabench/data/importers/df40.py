"""DeepfakeBench / DF40 dataset index JSON -> benchmark (one sample per frame)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dfabench.data.importers.base import COMPRESSION_LEVEL, ImportJob, ImportReport, PathResolver, is_file, read_json
from dfabench.errors import InputError
from dfabench.vocab import TECHNIQUE_NAMES, canonical_technique, technique_category

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


def _video_groups(value: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]] | None:
    """The videos of one split: ``{video: {...}}`` or ``{c23: {video: {...}}, ...}``; None if neither.

    Keys are compression levels when every key looks like one (``c23``, ``c40``, ``raw``) and no
    value is a video entry; each video entry is checked on its own afterwards.
    """
    if value and all(COMPRESSION_LEVEL.match(str(k)) and isinstance(v, dict) and "frames" not in v
                     for k, v in value.items()):
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
    job = ImportJob("df40", src, Path(out), strict, copy)
    resolve = PathResolver(src, root, replace_prefix)
    data = read_json(src)
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


def _df40_video(job: ImportJob, resolve: Callable[[str], Path], dataset: str, label_key: str, split: str,
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
        if not is_file(path):
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
            if isinstance(masks[index], str) and is_file(resolve(masks[index])):
                mask_path = resolve(masks[index])
                record["mask"] = job.destination("masks", parts, mask_path.suffix)
            else:
                job.warn(record_name, f"mask {masks[index]!r} does not exist: imported without a mask")
        job.add({k: v for k, v in record.items() if v is not None}, path, mask_path)


