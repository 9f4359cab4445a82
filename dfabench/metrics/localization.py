"""Forgery-mask metrics of the FL task (MMTT / ForgeryTalker protocol).

Both masks are binarised at 127 (a pixel is forged when its value is > 127; 16-bit and float masks
are scaled to 8 bits first, :mod:`dfabench.images`); the predicted mask is resized to the reference's
size (nearest neighbour) when they differ. A reference mask must have its image's size: one that does
not is refused, naming the sample, never resized. Per image:
IoU = |P∩G| / |P∪G|, precision = |P∩G| / |P|, recall = |P∩G| / |G|, F1 their harmonic mean; an
empty prediction of an empty reference scores 1 on all four, an empty prediction of a non-empty
reference (or the reverse) scores 0. Each metric is the mean over images. A sample that failed or
gave no mask is scored as an empty prediction (it is counted in ``n_failed`` / ``n_unparsed`` as well), never dropped.
"""

from __future__ import annotations

import os
from typing import Any

from dfabench.errors import InputError
from dfabench.metrics import MetricContext, MetricOutput, MetricResult

THRESHOLD = 127
NAMES = ("iou", "precision", "recall", "f1")


def mask_scores(pred, truth) -> dict[str, float]:
    """IoU, precision, recall and F1 of two boolean masks of the same shape."""
    import numpy as np

    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    inter = float(np.logical_and(pred, truth).sum())
    p, g = float(pred.sum()), float(truth.sum())
    union = p + g - inter
    iou = 1.0 if union == 0 else inter / union
    precision = (1.0 if g == 0 else 0.0) if p == 0 else inter / p
    recall = (1.0 if p == 0 else 0.0) if g == 0 else inter / g
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"iou": iou, "precision": precision, "recall": recall, "f1": f1}


class MaskSizeError(ValueError):
    """A reference mask whose size is not its image's."""


def load_mask(path: str, size: tuple[int, int] | None = None, *, expect_size: tuple[int, int] | None = None):
    """A mask file as a boolean array (> 127; 16-bit and float masks are scaled to 8 bits first, by
    the rule of :mod:`dfabench.images`). ``size`` = (width, height): resize (nearest) to it — the MMTT
    protocol does this to a *predicted* mask. ``expect_size``: the mask must have this size, else
    :class:`MaskSizeError` — a *reference* mask is never resized."""
    import numpy as np
    from PIL import Image

    from dfabench.images import apply_pixel_limit, to_gray

    apply_pixel_limit()
    with Image.open(path) as image:
        if expect_size is not None and image.size != tuple(expect_size):
            raise MaskSizeError(f"the mask is {image.size[0]}x{image.size[1]} but its image is "
                                f"{expect_size[0]}x{expect_size[1]} (a reference mask is never resized)")
        image.load()
        image = to_gray(image)
        if size is not None and image.size != size:
            image = image.resize(size, Image.NEAREST)
        return np.asarray(image) > THRESHOLD


def image_size(path: str) -> tuple[int, int] | None:
    """(width, height) of an image file from its header; None when it cannot be read (the image's
    own failure is reported where it is decoded)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError):
        return None


def load_reference_mask(mask_path: str, image_path: str | None):
    """A reference mask as a boolean array, refused (:class:`MaskSizeError`) when its size is not
    the size of its image."""
    return load_mask(mask_path, expect_size=image_size(image_path) if image_path else None)


def mask_metrics(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """The ``mask`` provider: ``iou``, ``precision``, ``recall``, ``f1`` (means over images)."""
    import numpy as np

    from dfabench.metrics.statistics import bootstrap_mean

    output = MetricOutput()
    if not records:
        for name in NAMES:
            output.metrics[name] = MetricResult.undefined("no samples")
        return output
    if not context.bench_root or not os.path.isdir(context.bench_root):
        # not a property of the model: refuse rather than turn the numbers into "undefined"
        raise InputError(context.bench_root or "(benchmark)", "the benchmark folder with the reference masks is "
                         "not available here; pass --bench DIR")
    values: dict[str, list[float]] = {name: [] for name in NAMES}
    clusters = []
    for record in records:
        reference = record.get("reference") or {}
        truth_path = os.path.join(context.bench_root, reference["mask"])
        image_path = os.path.join(context.bench_root, record["image"]) if record.get("image") else None
        try:
            truth = load_reference_mask(truth_path, image_path)
        except MaskSizeError as exc:
            raise InputError(truth_path, str(exc), f"id {record['id']!r}") from None
        except (OSError, ValueError) as exc:
            raise InputError(truth_path, f"cannot read the reference mask ({exc})", f"id {record['id']!r}") from None
        predicted = (record.get("parsed") or {}).get("mask") if not record.get("error") else None
        if predicted and context.run_dir:
            pred = load_mask(os.path.join(context.run_dir, predicted), size=(truth.shape[1], truth.shape[0]))
        else:
            pred = np.zeros_like(truth)
        scores = mask_scores(pred, truth)
        output.per_sample[record["id"]] = dict(scores)
        for name in NAMES:
            values[name].append(scores[name])
        clusters.append(record.get("source_id") or record["id"])
    for name in NAMES:
        array = np.asarray(values[name], dtype=float)
        low, high = bootstrap_mean(array, clusters, n_boot=context.n_boot, seed=context.seed,
                                   confidence=context.confidence)
        output.metrics[name] = MetricResult(float(array.mean()), low, high, len(array))
    return output
