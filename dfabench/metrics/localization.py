"""Forgery-mask metrics of the FL task: the MMTT / ForgeryTalker protocol, to the letter.

The ``mask`` provider reads its protocol from the FL spec (``metric_options: {mask: {protocol: ...}}``):

- ``mmtt`` (the default) is the official evaluation script's (``scripts/evaluation/evaluate_metrics.py`` of
  ``NattyLianJc/Generating-Attribution-Reports``): both masks are read with Pillow's ``convert("L")``, the
  prediction is resized to the reference's size with nearest-neighbour, and a pixel is forged when it is
  ``> 127`` (soft masks are binarised the same way);
- ``strict``: the same, except that 16-bit and float masks are scaled to 8 bits first (:mod:`dfabench.images`)
  and a reference mask whose size is not its image's is refused, naming the sample.

Per image, with P the predicted and G the reference pixels: IoU = |P∩G| / |P∪G| (1 when the union is empty),
precision = |P∩G| / |P| (when P is empty: 1 if G is empty too, else 0), recall = |P∩G| / |G| (when G is empty:
1 if P is empty too, else 0); F1, their harmonic mean (0 when both are 0), is an extra column the script does
not have. Each metric is the mean over images.

Where the script silently skips an image whose predicted mask is missing, dfabench counts it: a sample that
failed, gave no mask, or whose mask file is missing or unreadable is scored as an empty prediction, flagged
per sample (``mask_missing``) and left out of ``coverage`` (the share of samples with a readable predicted
mask), which is reported beside the metrics. The breakdown ``mask`` gives the script's own numbers (the means
over the covered samples only) so that the two can be compared directly.

Speed: masks are decoded by a small thread pool (Pillow and numpy release the GIL), each worker returns
three pixel counts (|P∩G|, |P|, |G|) and the metrics are computed from the count arrays at once; at most a
few masks are in memory at any time, whatever the number of samples.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from dfabench.errors import InputError
from dfabench.metrics import MetricContext, MetricOutput, MetricResult

THRESHOLD = 127
NAMES = ("iou", "precision", "recall", "f1")
PROTOCOLS = ("mmtt", "strict")
DEFAULT_PROTOCOL = "mmtt"
#: decoding threads (masks are independent; more than a few does not pay on a laptop)
WORKERS = min(8, os.cpu_count() or 1)


class MaskSizeError(ValueError):
    """A reference mask whose size is not its image's."""


def mask_scores(pred, truth) -> dict[str, float]:
    """IoU, precision, recall and F1 of two boolean masks of the same shape."""
    import numpy as np

    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    counts = np.array([[np.count_nonzero(pred & truth), np.count_nonzero(pred), np.count_nonzero(truth)]])
    return {name: float(values[0]) for name, values in scores_from_counts(counts).items()}


def scores_from_counts(counts) -> dict[str, Any]:
    """IoU, precision, recall and F1 arrays from an ``(n, 3)`` integer array of (|P∩G|, |P|, |G|) rows,
    by the rules of the module docstring (the same floating-point divisions as the official script)."""
    import numpy as np

    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
    inter, pred, truth = counts[:, 0], counts[:, 1], counts[:, 2]
    union = pred + truth - inter
    iou = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    precision = np.where(pred > 0, inter / np.maximum(pred, 1), (truth == 0).astype(float))
    recall = np.where(truth > 0, inter / np.maximum(truth, 1), (pred == 0).astype(float))
    total = precision + recall
    f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1.0), 0.0)
    return {"iou": iou, "precision": precision, "recall": recall, "f1": f1}


def load_mask(path: str, size: tuple[int, int] | None = None, *, expect_size: tuple[int, int] | None = None,
              protocol: str = "strict"):
    """A mask file as a boolean array (> 127). ``size`` = (width, height): resize (nearest) to it — both
    protocols do this to a *predicted* mask. ``protocol``: ``strict`` scales 16-bit and float masks to 8 bits
    first (the rule of :mod:`dfabench.images`), ``mmtt`` converts with Pillow's ``convert("L")`` as the
    official script does. ``expect_size``: the mask must have this size, else :class:`MaskSizeError` — a
    *reference* mask is never resized."""
    import numpy as np
    from PIL import Image

    from dfabench.images import apply_pixel_limit, to_gray

    apply_pixel_limit()
    with Image.open(path) as image:
        if expect_size is not None and image.size != tuple(expect_size):
            raise MaskSizeError(f"the mask is {image.size[0]}x{image.size[1]} but its image is "
                                f"{expect_size[0]}x{expect_size[1]} (a reference mask is never resized)")
        image.load()
        if protocol == "mmtt":
            image = image if image.mode == "L" else image.convert("L")
        else:
            image = to_gray(image)
        if size is not None and image.size != tuple(size):
            image = image.resize(tuple(size), Image.NEAREST)
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


def pair_counts(truth_path: str, pred_path: str | None, *, protocol: str = DEFAULT_PROTOCOL,
                image_path: str | None = None) -> tuple[int, int, int, str | None]:
    """(|P∩G|, |P|, |G|, why the prediction is missing or None) of one sample. A reference mask that cannot be
    used raises (:class:`MaskSizeError`, ``OSError``, ``ValueError``); a missing or unreadable predicted mask
    counts as an empty prediction, with the reason."""
    import numpy as np

    expect = image_size(image_path) if protocol == "strict" and image_path else None
    truth = load_mask(truth_path, expect_size=expect, protocol=protocol)
    g = int(np.count_nonzero(truth))
    if pred_path is None:
        return 0, 0, g, "no predicted mask"
    try:
        pred = load_mask(pred_path, size=(truth.shape[1], truth.shape[0]), protocol=protocol)
    except FileNotFoundError:
        return 0, 0, g, "the predicted mask file is missing"
    except (OSError, ValueError) as exc:
        return 0, 0, g, f"the predicted mask cannot be read ({exc})"
    return int(np.count_nonzero(pred & truth)), int(np.count_nonzero(pred)), g, None


def count_pairs(pairs: Iterable[tuple[str, str | None, str | None]], *, protocol: str = DEFAULT_PROTOCOL,
                workers: int = WORKERS) -> Iterator[tuple[int, int, int, str | None] | BaseException]:
    """:func:`pair_counts` of each ``(truth_path, pred_path, image_path)``, in order, decoded by ``workers``
    threads with a bounded number in flight; a reference mask that cannot be used yields its exception."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def one(pair):
        truth_path, pred_path, image_path = pair
        try:
            return pair_counts(truth_path, pred_path, protocol=protocol, image_path=image_path)
        except (OSError, ValueError) as exc:
            return exc

    if workers <= 1:
        yield from map(one, pairs)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for pair in pairs:
            pending.append(pool.submit(one, pair))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _protocol(options: dict[str, Any]) -> str:
    protocol = options.get("protocol", DEFAULT_PROTOCOL)
    if protocol not in PROTOCOLS:
        raise InputError("the FL task spec", f"metric_options.mask.protocol must be one of {', '.join(PROTOCOLS)}, "
                         f"not {protocol!r}")
    return protocol


def _pairs(records: list[dict[str, Any]], context: MetricContext):
    for record in records:
        reference = record.get("reference") or {}
        if not reference.get("mask"):
            raise InputError(context.bench_root, "a sample of the FL task has no reference mask",
                             f"id {record['id']!r}")
        predicted = (record.get("parsed") or {}).get("mask") if not record.get("error") else None
        yield (os.path.join(context.bench_root, reference["mask"]),
               os.path.join(context.run_dir, predicted) if predicted and context.run_dir else None,
               os.path.join(context.bench_root, record["image"]) if record.get("image") else None)


def mask_metrics(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """The ``mask`` provider: ``iou``, ``precision``, ``recall``, ``f1`` (means over images), ``coverage``."""
    import numpy as np

    from dfabench.metrics.statistics import bootstrap_mean

    output = MetricOutput()
    if not records:
        for name in (*NAMES, "coverage"):
            output.metrics[name] = MetricResult.undefined("no samples")
        return output
    protocol = _protocol(context.options)
    if not context.bench_root or not os.path.isdir(context.bench_root):
        # not a property of the model: refuse rather than turn the numbers into "undefined"
        raise InputError(context.bench_root or "(benchmark)", "the benchmark folder with the reference masks is "
                         "not available here; pass --bench DIR")
    counts = np.zeros((len(records), 3), dtype=np.int64)
    missing: dict[str, str] = {}
    for index, (record, result) in enumerate(zip(records, count_pairs(_pairs(records, context), protocol=protocol),
                                                 strict=True)):
        if isinstance(result, BaseException):
            truth_path = os.path.join(context.bench_root, record["reference"]["mask"])
            reason = str(result) if isinstance(result, MaskSizeError) else f"cannot read the reference mask ({result})"
            raise InputError(truth_path, reason, f"id {record['id']!r}")
        counts[index] = result[:3]
        if result[3] is not None:
            missing[record["id"]] = result[3]
    scores = scores_from_counts(counts)
    covered = np.array([record["id"] not in missing for record in records])
    for index, record in enumerate(records):
        values = {name: float(scores[name][index]) for name in NAMES}
        if record["id"] in missing:
            values["mask_missing"] = missing[record["id"]]
        output.per_sample[record["id"]] = values
    clusters = [record.get("source_id") or record["id"] for record in records]
    for name in NAMES:
        low, high = bootstrap_mean(scores[name], clusters, n_boot=context.n_boot, seed=context.seed,
                                   confidence=context.confidence)
        output.metrics[name] = MetricResult(float(scores[name].mean()), low, high, len(records))
    output.metrics["coverage"] = MetricResult(float(covered.mean()), n=len(records))
    output.breakdowns["mask"] = {
        "protocol": protocol, "n": len(records), "n_with_mask": int(covered.sum()), "n_missing": len(missing),
        # the official script's numbers: the means over the samples that have a predicted mask
        "covered_only": {name: (float(scores[name][covered].mean()) if covered.any() else None)
                         for name in ("iou", "precision", "recall")},
    }
    return output
