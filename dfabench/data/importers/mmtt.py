"""MMTT / ForgeryTalker annotations (forgery localization + interpretation, task FL) -> benchmark."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dfabench.data.importers.base import (
    ImportJob,
    ImportReport,
    PathResolver,
    is_file,
    read_json,
    records_of,
    relative_parts,
    split_from_name,
)
from dfabench.errors import InputError
from dfabench.vocab import CATEGORIES, FACE_REGIONS, technique_category

#: the split an MMTT file's name says: ``train-mutilabel-simple.json``, ``eval-mutilabel-simple.json``, ``test-...``
_SPLIT_WORDS = {"train": "train", "eval": "val", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def mmtt_split(path: Path) -> str | None:
    """The split of an MMTT annotation file from its name (``eval`` is the validation split), else None."""
    words = re.split(r"[^a-z]+", path.stem.lower())
    return next((_SPLIT_WORDS[w] for w in words if w in _SPLIT_WORDS), None) or split_from_name(path)


def _annotation_files(src: Path) -> list[Path]:
    """``src`` itself, or the annotation files (``*.json`` / ``*.jsonl`` with a split in the name) of a folder."""
    if not src.is_dir():
        return [src]
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".json", ".jsonl") and mmtt_split(p))
    if not files:
        raise InputError(src, "a folder with no MMTT annotation file (train-/eval-/test-*.json)")
    return files


def import_mmtt(src: Path, out: Path, *, root: Path | None = None, replace_prefix: tuple[str, str] | None = None,
                strict: bool = False, copy: str = "link", split: str | None = None) -> ImportReport:
    """Import MMTT / ForgeryTalker annotations (forgery localization + interpretation, task FL), v1 or v2.

    ``src``: an annotation file, or a folder of them (the v2 release's ``train-mutilabel-simple.json``,
    ``eval-mutilabel-simple.json``, ``test-mutilabel.json``: each file's split from its name, ``eval`` being
    ``val``). Records (a JSON list, JSON lines, or an object with an ``annotations`` / ``data`` / ``images``
    list): ``image_id``, ``caption`` (the report; a list of reports keeps the first), the image in
    ``img_path`` or ``relative_path``, and ``mask_path``; v2 adds ``instance_id`` and ``multilabel`` (the 21
    face regions the caption names, :data:`dfabench.vocab.FACE_REGIONS`), kept in the sample's ``meta``. A
    ``multilabel`` that is not 21 zeros and ones skips the record; one that differs from the regions the
    caption names by MMTT's rule (:func:`dfabench.metrics.regions.regions_named`) is kept and listed in
    ``warnings``. Every MMTT image is a fake; its category comes from a ``category`` / ``technique`` /
    ``method`` field when there is one. A record without a mask is imported without one (listed in
    ``warnings``); a mask path that does not exist skips it. ``split`` sets the split of every record
    (default: from the file name).
    """
    src = Path(src)
    files = _annotation_files(src)
    job = ImportJob("mmtt", src, Path(out), strict, copy)
    for path in files:
        prefix = f"{path.name}: " if len(files) > 1 else ""
        _import_file(job, path, prefix, PathResolver(path, root, replace_prefix),
                     split if split is not None else mmtt_split(path))
    return job.finish({"name": src.stem, "description": f"imported from the MMTT annotations {src.name}"})


def _import_file(job: ImportJob, src: Path, prefix: str, resolve: PathResolver, default_split: str | None) -> None:
    items = records_of(read_json(src), src, ("annotations", "data", "images", "samples"),
                       "{image_id, caption, img_path, mask_path}")
    for index, item in enumerate(items):
        where = f"{prefix}record {index}"
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
        meta = _meta(job, where, item, caption)
        if meta is None:
            continue
        path = resolve(image)
        if not is_file(path):
            job.skip(where, f"image file {str(path)!r} does not exist")
            continue
        mask_value = item.get("mask_path")
        mask_path = None
        if isinstance(mask_value, str) and mask_value:
            mask_path = resolve(mask_value)
            if not is_file(mask_path):
                job.skip(where, f"mask file {str(mask_path)!r} does not exist")
                continue
        else:
            job.warn(where, "no 'mask_path': imported without a mask (FL mask metrics skip it)")
        category, technique = _category(item)
        parts = relative_parts(image)
        record: dict[str, Any] = {
            "id": job.unique_id(str(raw_id)),
            "image": job.destination("images", parts, path.suffix),
            "label": "fake",
            "category": category,
            "technique": technique,
            "source_id": str(item["source_id"]) if isinstance(item.get("source_id"), (str, int)) else None,
            "split": item.get("split") if isinstance(item.get("split"), str) else default_split,
            "description": caption,
            "meta": meta or None,
        }
        if mask_path is not None:
            record["mask"] = job.destination("masks", parts, mask_path.suffix)
        job.add({k: v for k, v in record.items() if v is not None}, path, mask_path)


def _meta(job: ImportJob, where: str, item: dict[str, Any], caption: str) -> dict[str, Any] | None:
    """The v2 fields kept in ``meta`` (``instance_id``, ``multilabel``); None when the record is skipped."""
    from dfabench.metrics.regions import multilabel

    meta: dict[str, Any] = {}
    instance = item.get("instance_id")
    if instance is not None:
        if not isinstance(instance, (str, int)) or isinstance(instance, bool):
            job.skip(where, "malformed record: 'instance_id' must be a string or an integer")
            return None
        meta["instance_id"] = instance
    labels = item.get("multilabel")
    if labels is not None:
        if not (isinstance(labels, list) and len(labels) == len(FACE_REGIONS)
                and all(v in (0, 1) and not isinstance(v, bool) for v in labels)):
            job.skip(where, f"malformed record: 'multilabel' must be {len(FACE_REGIONS)} zeros and ones "
                            f"(the face regions {', '.join(FACE_REGIONS)})")
            return None
        meta["multilabel"] = labels
        derived = multilabel(caption)
        if derived != labels:
            differ = [r for r, a, b in zip(FACE_REGIONS, labels, derived, strict=True) if a != b]
            job.warn(where, f"'multilabel' differs from the regions the caption names in: {', '.join(differ)}")
    return meta


def _category(item: dict[str, Any]) -> tuple[str | None, str | None]:
    category, technique = None, None
    for key in ("category", "technique", "method", "forgery_type"):
        value = item.get(key)
        if isinstance(value, str) and value:
            if value.upper() in CATEGORIES:
                category = value.upper()
            else:
                technique = technique or value
                category = category or technique_category(value)
    return category, technique
