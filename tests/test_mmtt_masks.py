"""FL mask scoring against a reference implementation of the official MMTT script's protocol.

``official_evaluate`` below follows ``scripts/evaluation/evaluate_metrics.py`` of
NattyLianJc/Generating-Attribution-Reports line by line (``evaluate_masks`` + the averaging of ``main``,
serial instead of a process pool): images whose predicted mask is missing are skipped, as there.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from dfabench.errors import InputError
from dfabench.metrics import MetricContext
from dfabench.metrics.localization import count_pairs, mask_metrics, mask_scores, scores_from_counts


def official_evaluate_masks(pred_path, gt_path):
    try:
        gt_img = Image.open(gt_path).convert("L")
        target_size = gt_img.size
        gt = np.array(gt_img) > 127
        pred_img = Image.open(pred_path).convert("L")
        pred_img = pred_img.resize(target_size, Image.NEAREST)
        pred = np.array(pred_img) > 127
        intersection = np.logical_and(pred, gt).sum()
        union = np.logical_or(pred, gt).sum()
        pred_sum = pred.sum()
        gt_sum = gt.sum()
        iou = 1.0 if union == 0 else float(intersection / union)
        precision = float(intersection / pred_sum) if pred_sum > 0 else (1.0 if gt_sum == 0 else 0.0)
        recall = float(intersection / gt_sum) if gt_sum > 0 else (1.0 if pred_sum == 0 else 0.0)
        return iou, precision, recall
    except Exception:  # noqa: BLE001 - as the official script
        return None


def official_evaluate(pairs):
    """The script's mIoU, precision, recall over ``(pred_path, gt_path)`` pairs, and its matched count."""
    totals, valid = [0.0, 0.0, 0.0], 0
    for pred_path, gt_path in pairs:
        if not (os.path.exists(pred_path) and os.path.exists(gt_path)):
            continue
        result = official_evaluate_masks(pred_path, gt_path)
        if result:
            totals = [t + r for t, r in zip(totals, result, strict=True)]
            valid += 1
    return {name: (total / valid if valid else 0) for name, total in zip(("iou", "precision", "recall"), totals,
                                                                          strict=True)}, valid


def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _cases(tmp_path, rng):
    """Pairs of (truth array, prediction array or None): other sizes, empty masks, soft masks, colour masks."""
    def blob(h, w, soft=False):
        mask = np.zeros((h, w), np.uint8)
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        mask[y:y + rng.integers(1, h // 2 + 1), x:x + rng.integers(1, w // 2 + 1)] = 255
        return rng.integers(0, 256, (h, w), dtype=np.uint8) if soft else mask

    cases = [
        (np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.uint8)),        # both empty: all 1
        (np.zeros((32, 32), np.uint8), blob(32, 32)),                         # empty truth
        (blob(32, 32), np.zeros((32, 32), np.uint8)),                         # empty prediction
        (blob(40, 30), blob(17, 23)),                                         # upsampled, other aspect
        (blob(24, 24), blob(97, 61)),                                         # downsampled
        (blob(33, 47, soft=True), blob(33, 47, soft=True)),                   # soft masks: > 127
        (np.full((16, 16), 127, np.uint8), np.full((16, 16), 128, np.uint8)),  # the threshold itself
        (blob(20, 20), np.stack([blob(20, 20, soft=True)] * 3, axis=-1)),     # an RGB prediction
    ]
    cases += [(blob(int(rng.integers(8, 64)), int(rng.integers(8, 64)), soft=bool(rng.random() < 0.3)),
               blob(int(rng.integers(8, 64)), int(rng.integers(8, 64)), soft=bool(rng.random() < 0.3)))
              for _ in range(40)]
    return cases


@pytest.fixture
def mask_run(tmp_path):
    """A benchmark root and a run folder with the cases as FL records; one prediction missing, one unreadable."""
    rng = np.random.default_rng(7)
    bench, run = tmp_path / "bench", tmp_path / "run"
    records, pairs = [], []
    for index, (truth, pred) in enumerate(_cases(tmp_path, rng)):
        _save(bench / f"masks/{index}.png", truth)
        record = {"id": f"s{index}", "image": None, "reference": {"mask": f"masks/{index}.png"}, "parsed": {}}
        _save(run / f"pred/{index}.png", pred)
        record["parsed"] = {"mask": f"pred/{index}.png"}
        records.append(record)
        pairs.append((str(run / f"pred/{index}.png"), str(bench / f"masks/{index}.png")))
    os.remove(run / "pred/3.png")                       # missing: the script skips it
    (run / "pred/4.png").write_bytes(b"not a png")      # unreadable: the script's evaluate_masks gives None
    records[5]["error"] = "the model failed"            # a failed sample: no prediction at all
    os.remove(run / "pred/5.png")
    return bench, run, records, pairs


def _context(bench, run, protocol=None):
    return MetricContext(task="FL", n_boot=50, bench_root=str(bench), run_dir=str(run),
                         options={"protocol": protocol} if protocol else {})


def test_covered_samples_score_as_the_official_script(mask_run):
    bench, run, records, pairs = mask_run
    expected, matched = official_evaluate(pairs)
    output = mask_metrics(records, _context(bench, run))
    breakdown = output.breakdowns["mask"]
    assert breakdown["n_with_mask"] == matched == len(records) - 3 and breakdown["protocol"] == "mmtt"
    for name, value in expected.items():
        assert breakdown["covered_only"][name] == pytest.approx(value, abs=1e-6)
    assert output.metrics["coverage"].value == pytest.approx(matched / len(records))


def test_per_image_scores_equal_the_official_ones_and_missing_predictions_count_as_empty(mask_run):
    bench, run, records, pairs = mask_run
    output = mask_metrics(records, _context(bench, run))
    for record, (pred_path, gt_path) in zip(records, pairs, strict=True):
        values = output.per_sample[record["id"]]
        official = official_evaluate_masks(pred_path, gt_path)
        if official is None:  # no usable prediction: dfabench scores an empty mask and says why
            assert "mask_missing" in values
            empty = np.zeros((1, 1), np.uint8)
            official = official_evaluate_masks(str(_save(run / "empty.png", empty)), gt_path)
        else:
            assert "mask_missing" not in values
        assert [values["iou"], values["precision"], values["recall"]] == pytest.approx(list(official), abs=1e-6)
    assert output.per_sample["s3"]["mask_missing"] == "the predicted mask file is missing"
    assert output.per_sample["s4"]["mask_missing"].startswith("the predicted mask cannot be read")
    assert output.per_sample["s5"]["mask_missing"] == "no predicted mask"
    means = {name: np.mean([output.per_sample[r["id"]][name] for r in records]) for name in ("iou", "f1")}
    assert output.metrics["iou"].value == pytest.approx(means["iou"], abs=1e-12)
    assert output.metrics["f1"].value == pytest.approx(means["f1"], abs=1e-12)
    assert output.metrics["iou"].n == len(records)


def test_all_predictions_present_give_exactly_the_official_numbers(mask_run):
    bench, run, records, pairs = mask_run
    kept = [(r, p) for r, p in zip(records, pairs, strict=True) if r["id"] not in ("s3", "s4", "s5")]
    expected, _ = official_evaluate([p for _, p in kept])
    output = mask_metrics([r for r, _ in kept], _context(bench, run))
    for name, value in expected.items():
        assert output.metrics[name].value == pytest.approx(value, abs=1e-6)
    assert output.metrics["coverage"].value == 1.0


def test_edge_cases_and_f1():
    empty, full = np.zeros((4, 4), bool), np.ones((4, 4), bool)
    assert mask_scores(empty, empty) == {"iou": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert mask_scores(empty, full) == {"iou": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert mask_scores(full, empty) == {"iou": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    half = np.zeros((4, 4), bool)
    half[:2] = True
    assert mask_scores(half, full) == {"iou": 0.5, "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3)}
    counts = scores_from_counts([[1, 2, 4], [0, 0, 0]])
    assert counts["iou"].tolist() == [0.2, 1.0]


def test_threaded_counting_keeps_the_order_and_equals_the_serial_one(mask_run):
    bench, run, records, pairs = mask_run
    triples = [(gt, pred, None) for pred, gt in pairs]
    assert list(count_pairs(triples, workers=1)) == list(count_pairs(triples, workers=4))


def test_strict_protocol_refuses_a_reference_of_another_size_than_its_image(mask_run):
    bench, run, records, _ = mask_run
    _save(bench / "images/0.png", np.zeros((5, 5, 3), np.uint8))
    records[0]["image"] = "images/0.png"
    assert mask_metrics(records, _context(bench, run))  # mmtt: the script does not look at the image
    with pytest.raises(InputError, match=r"id 's0'.*never resized"):
        mask_metrics(records, _context(bench, run, "strict"))


def test_unknown_protocol_and_unreadable_reference_are_clear_errors(mask_run):
    bench, run, records, _ = mask_run
    with pytest.raises(InputError, match="protocol must be one of mmtt, strict"):
        mask_metrics(records, _context(bench, run, "coco"))
    (bench / "masks/2.png").write_bytes(b"broken")
    with pytest.raises(InputError, match=r"masks/2.png: id 's2': cannot read the reference mask"):
        mask_metrics(records, _context(bench, run))


# --------------------------------------------------------------------------- the fast PNG decoder of masks


def _png(pixels, filters, *, crc_ok=True, depth=8, colour=0, interlace=0, extra=b""):
    """An 8-bit greyscale PNG of ``pixels`` with the given filter type for each row (written here, by the PNG
    specification's forward filters), so that every filter is exercised."""
    import struct
    import zlib

    pixels = np.asarray(pixels, dtype=np.int64)
    height, width = pixels.shape
    lines = []
    for row in range(height):
        line, above = pixels[row], pixels[row - 1] if row else np.zeros(width, dtype=np.int64)
        left = np.concatenate([[0], line[:-1]])
        upper_left = np.concatenate([[0], above[:-1]])
        kind = filters[row]
        if kind == 0:
            out = line
        elif kind == 1:
            out = line - left
        elif kind == 2:
            out = line - above
        elif kind == 3:
            out = line - (left + above) // 2
        else:
            p = left + above - upper_left
            pa, pb, pc = np.abs(p - left), np.abs(p - above), np.abs(p - upper_left)
            predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, upper_left))
            out = line - predictor
        lines.append(bytes([kind]) + bytes((out % 256).astype(np.uint8)))

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) ^ (0 if crc_ok or kind != b"IDAT" else 1)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(lines) + extra))
            + chunk(b"IEND", b""))


@pytest.fixture(params=["zlib", "zlib-ng"])
def inflater(request, monkeypatch):
    from dfabench.metrics import localization

    if request.param == "zlib-ng":
        pytest.importorskip("zlib_ng")
        from zlib_ng import zlib_ng as module
    else:
        import zlib as module
    monkeypatch.setattr(localization, "_INFLATE", module)
    return module


@pytest.mark.parametrize("filters", ["none", "sub", "up", "average", "paeth", "mixed"])
def test_the_fast_png_decoder_gives_pillows_pixels_for_every_filter(filters, inflater, tmp_path):
    from dfabench.metrics.localization import _gray8_png, load_mask

    rng = np.random.default_rng(len(filters))
    pixels = rng.integers(0, 256, (9, 13))
    pixels[3:6] = 255 * (rng.random((3, 13)) > 0.5)  # binary rows, as in a mask
    kinds = {"none": [0] * 9, "sub": [1] * 9, "up": [2] * 9, "average": [3] * 9, "paeth": [4] * 9,
             "mixed": [2, 1, 0, 4, 2, 2, 3, 1, 2]}[filters]
    data = _png(pixels, kinds)
    path = tmp_path / "m.png"
    path.write_bytes(data)
    with Image.open(path) as image:
        expected = np.asarray(image)
    assert np.array_equal(expected, pixels)  # the test's encoder is right
    decoded = _gray8_png(data, 1 << 30)
    if sum(k >= 3 for k in kinds) > 2:
        assert decoded is None  # many Average / Paeth rows: Pillow decodes those
    else:
        assert decoded is not None and np.array_equal(decoded, expected)
    assert np.array_equal(load_mask(str(path), protocol="mmtt"), expected > 127)
    assert np.array_equal(load_mask(str(path), size=(7, 5), protocol="mmtt"),
                          np.asarray(Image.fromarray(expected.astype(np.uint8)).resize((7, 5), Image.NEAREST)) > 127)


def test_the_fast_png_decoder_leaves_anything_unusual_to_pillow(inflater, tmp_path):
    from dfabench.metrics.localization import _gray8_png

    pixels = np.arange(20).reshape(4, 5) * 12
    assert np.array_equal(_gray8_png(_png(pixels, [1, 2, 0, 2]), 1 << 30), pixels)
    assert _gray8_png(_png(pixels, [0] * 4, crc_ok=False), 1 << 30) is None
    assert _gray8_png(_png(pixels, [0] * 4, extra=b"\0" * 7), 1 << 30) is None  # more data than the image
    assert _gray8_png(_png(pixels, [0] * 4)[:-20], 1 << 30) is None  # truncated
    assert _gray8_png(_png(pixels, [0] * 4, interlace=1), 1 << 30) is None
    assert _gray8_png(_png(pixels, [0] * 4), 19) is None  # above the pixel limit
    for mode in ("RGB", "P", "I;16", "LA", "1"):
        path = tmp_path / f"{mode.replace(';', '')}.png"
        Image.fromarray(pixels.astype(np.uint8)).convert(mode).save(path)
        assert _gray8_png(path.read_bytes(), 1 << 30) is None, mode
    # Pillow's own masks (adaptive filters), binary and soft: the same pixels
    rng = np.random.default_rng(3)
    for soft in (False, True):
        mask = np.zeros((64, 64), dtype=np.uint8)
        mask[10:40, 5:50] = 255
        if soft:
            mask = (mask * rng.random((64, 64))).astype(np.uint8)
        path = tmp_path / "pil.png"
        Image.fromarray(mask).save(path)
        decoded = _gray8_png(path.read_bytes(), 1 << 30)
        assert decoded is None or np.array_equal(decoded, mask)
