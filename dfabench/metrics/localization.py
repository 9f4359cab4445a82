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

Where the spec derives masks from the text of models that cannot localize (``metric_options.mask.from_text``,
:mod:`dfabench.masks`), the provider also gives the share of the samples whose mask came from each source,
``mask_source_model``, ``mask_source_coordinates``, ``mask_source_regions`` and ``mask_source_none`` (beside
``coverage``), and the breakdown ``mask`` gains ``sources`` (the count of each ``mask_source``, ``regions:*``
apart) and ``text_methods`` (the identities of the methods that derived them).

Speed: masks are decoded by a small thread pool, each worker returns three pixel counts (|P∩G|, |P|, |G|) and
the metrics are computed from the count arrays at once; at most a few masks are in memory at any time, whatever
the number of samples. An 8-bit greyscale PNG (what dfabench, Pillow and most tools write for a mask) is decoded
here (:func:`_gray8_png`: zlib — zlib-ng's when the ``zlib-ng`` package is installed, several times faster — and
the PNG row filters in numpy), to exactly Pillow's pixels; any other file is decoded by Pillow.
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


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: rows filtered with Average or Paeth (unfiltered byte by byte in Python) above which Pillow decodes instead
_SLOW_ROWS = 2


def _inflate_module():
    """zlib-ng's zlib (``zlib-ng`` on PyPI: the same bytes, several times faster) when it is installed, else
    the standard library's zlib."""
    global _INFLATE
    if _INFLATE is None:
        try:
            from zlib_ng import zlib_ng as module
        except ImportError:
            import zlib as module
        _INFLATE = module
    return _INFLATE


_INFLATE = None


def _gray8_png(data: bytes, limit: int):
    """The pixels of an 8-bit greyscale, non-interlaced PNG (what dfabench and most tools write for a mask) as a
    (height, width) uint8 array, decoded here with zlib and numpy; None for anything else or anything unusual
    (another colour type or depth, interlacing, a bad CRC, truncated or extra data, more than ``limit`` pixels,
    many Average/Paeth rows): Pillow then decodes it, with its own errors. The pixels are exactly Pillow's (the
    PNG filters are defined to the byte; tests/test_mmtt_masks.py compares them on every filter type)."""
    import struct
    import zlib

    import numpy as np

    inflate = _inflate_module()
    if not data.startswith(_PNG_SIGNATURE):
        return None
    pos, end, header, idat, idat_done = 8, len(data), None, [], False
    while pos + 12 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > end:
            return None
        if zlib.crc32(data[pos + 4:body_end]) != struct.unpack_from(">I", data, body_end)[0]:
            return None
        if header is None:
            if kind != b"IHDR" or length != 13:
                return None
            header = struct.unpack_from(">IIBBBBB", data, pos + 8)
        elif kind == b"IDAT":
            if idat_done:
                return None  # IDAT chunks must be consecutive
            idat.append(data[pos + 8:body_end])
        elif kind == b"IEND":
            break
        elif kind[0] & 0x20 == 0:  # another critical chunk (PLTE, ...): not a plain greyscale PNG
            return None
        else:
            idat_done = bool(idat)
        pos = body_end + 4
    else:
        return None
    if header is None or not idat:
        return None
    width, height, depth, colour, compression, filtering, interlace = header
    if (depth, colour, compression, filtering, interlace) != (8, 0, 0, 0, 0) or not width or not height:
        return None
    if width * height > limit:
        return None
    expected = height * (width + 1)
    inflater = inflate.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat), expected)
    except inflate.error:
        return None
    if len(raw) != expected or inflater.unconsumed_tail or not inflater.eof:
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width + 1)
    kinds = rows[:, 0]
    if not kinds.any():
        return rows[:, 1:]
    if kinds.max() > 4 or np.count_nonzero(kinds >= 3) > _SLOW_ROWS:
        return None
    out = rows.copy()[:, 1:]  # writable (one contiguous copy: faster than copying the strided pixels alone)
    sub = np.flatnonzero(kinds == 1)
    if sub.size:  # Sub: each byte plus the one to its left (a row on its own): all such rows at once
        out[sub] = np.cumsum(out[sub], axis=1, dtype=np.uint8)
    # then, top to bottom, the rows that depend on the row above: Up (each byte plus the one above, modulo 256:
    # one vectorised addition a row) and Average / Paeth (byte by byte; few, or Pillow decodes instead)
    for row in np.flatnonzero(kinds >= 2).tolist():
        if kinds[row] == 2:
            if row:
                np.add(out[row], out[row - 1], out=out[row])
        else:
            _average_or_paeth(out, row, int(kinds[row]))
    return out


def _average_or_paeth(out, row: int, kind: int) -> None:
    """Undo the Average (3) or Paeth (4) filter of one row, byte by byte (its row above is final)."""
    width = out.shape[1]
    values = out[row].tolist()
    up = out[row - 1].tolist() if row else [0] * width
    left = upper_left = 0
    for i in range(width):
        if kind == 3:
            left = (values[i] + ((left + up[i]) >> 1)) & 0xFF
        else:
            a, b, c = left, up[i], upper_left
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            left = (values[i] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 0xFF
            upper_left = up[i]
        values[i] = left
    out[row] = values


def _fast_mask(path: str, size, expect_size):
    """:func:`load_mask` of an 8-bit greyscale PNG by :func:`_gray8_png`, or None (use Pillow)."""
    import numpy as np

    from dfabench.images import max_image_pixels

    try:
        with open(path, "rb") as handle:
            data = handle.read(1 << 24)
            if handle.read(1):
                return None
    except OSError:
        return None
    pixels = _gray8_png(data, max_image_pixels())
    if pixels is None:
        return None
    height, width = pixels.shape
    if expect_size is not None and (width, height) != tuple(expect_size):
        raise MaskSizeError(f"the mask is {width}x{height} but its image is "
                            f"{expect_size[0]}x{expect_size[1]} (a reference mask is never resized)")
    if size is not None and (width, height) != tuple(size):
        from PIL import Image

        return np.asarray(Image.fromarray(np.ascontiguousarray(pixels), mode="L").resize(tuple(size), Image.NEAREST)
                          ) > THRESHOLD
    return pixels > THRESHOLD


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

    fast = _fast_mask(path, size, expect_size)  # an 8-bit greyscale PNG: the same pixels, decoded faster
    if fast is not None:
        return fast
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
    from_text = _from_text(context.options)
    counts = np.zeros((len(records), 3), dtype=np.int64)
    missing: dict[str, str] = {}
    sources: dict[str, int] = {}
    methods: set[str] = set()
    for index, (record, result) in enumerate(zip(records, count_pairs(_pairs(records, context), protocol=protocol),
                                                 strict=True)):
        if from_text:
            source = _source_of(record, context)
            sources[source] = sources.get(source, 0) + 1
            derivation = record.get("mask_derivation")
            if isinstance(derivation, dict) and isinstance(derivation.get("method"), str):
                methods.add(derivation["method"])
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
    if from_text:
        from dfabench.masks import SOURCE_GROUPS, SOURCES, source_group

        for group in SOURCE_GROUPS:
            share = sum(n for source, n in sources.items() if source_group(source) == group) / len(records)
            output.metrics[f"mask_source_{group}"] = MetricResult(float(share), n=len(records))
    output.breakdowns["mask"] = {
        "protocol": protocol, "n": len(records), "n_with_mask": int(covered.sum()), "n_missing": len(missing),
        # the official script's numbers: the means over the samples that have a predicted mask
        "covered_only": {name: (float(scores[name][covered].mean()) if covered.any() else None)
                         for name in ("iou", "precision", "recall")},
    }
    if from_text:
        # how the masks were obtained (dfabench.masks): the count of each source, and the identities of the
        # methods that derived masks from text (two runs compare only when these are the same)
        output.breakdowns["mask"]["sources"] = {source: sources.get(source, 0) for source in SOURCES}
        output.breakdowns["mask"]["text_methods"] = sorted(methods)
    return output


def _from_text(options: dict[str, Any]) -> bool:
    """Whether the spec derives masks from text (``from_text``); its options are checked here too, so a
    re-scored run with options that are not valid is refused naming them."""
    if options.get("from_text") is None:
        return False
    from dfabench.masks import options_problem

    problem = options_problem(options["from_text"])
    if problem is not None:
        raise InputError("the FL task spec", problem)
    return True


def _source_of(record: dict[str, Any], context: MetricContext) -> str:
    """A sample's ``mask_source``: as recorded (a failed sample: ``none``; a record without one, from an
    older dfabench: ``model`` when it has a mask)."""
    from dfabench.masks import SOURCES

    if record.get("error"):
        return "none"
    source = record.get("mask_source")
    if source is None:
        return "model" if (record.get("parsed") or {}).get("mask") else "none"
    if source not in SOURCES:
        raise InputError(context.run_dir or "(run folder)", f"mask_source {source!r} is not one of "
                         f"{', '.join(SOURCES)}", f"id {record['id']!r}")
    return source
