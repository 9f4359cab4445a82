"""MMTT / ForgeryTalker annotations (forgery localization + interpretation, task FL) -> benchmark."""

from __future__ import annotations

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
from dfabench.vocab import CATEGORIES, technique_category


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
    src = Path(src)
    job = ImportJob("mmtt", src, Path(out), strict, copy)
    resolve = PathResolver(src, root, replace_prefix)
    items = records_of(read_json(src), src, ("annotations", "data", "images", "samples"),
                        "{image_id, caption, img_path, mask_path}")
    default_split = split if split is not None else split_from_name(src)
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
        category, technique = None, None
        for key in ("category", "technique", "method", "forgery_type"):
            value = item.get(key)
            if isinstance(value, str) and value:
                if value.upper() in CATEGORIES:
                    category = value.upper()
                else:
                    technique = technique or value
                    category = category or technique_category(value)
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
        }
        if mask_path is not None:
            record["mask"] = job.destination("masks", parts, mask_path.suffix)
        job.add({k: v for k, v in record.items() if v is not None}, path, mask_path)
    return job.finish({"name": src.stem, "description": f"imported from the MMTT annotation file {src.name}"})


# --------------------------------------------------------------------------- DD-VQA

