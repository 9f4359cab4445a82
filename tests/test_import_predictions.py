"""``dfabench import-predictions``: a small MMTT release imported as a benchmark, its predictions as a run.

The mask numbers are compared with the reference implementation of the official MMTT script
(tests/test_mmtt_masks.py), the text numbers with pycocoevalcap (and its Java tokenizer when Java is there).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from test_mmtt_masks import official_evaluate

CAPTIONS = ["The lips are +15 brighter than the U.S.-style skin; the chin is blurred.",
            "The eyes show A.I.-generated reflections (about 30%) and the nose is warped.",
            "Forehead and hairline: ghosting, -10 contrast, a GAN-like blending boundary.",
            "The mouth region's texture doesn't match; the jaw-line is smoothed.",
            "Both cheeks have color mismatch, e.g., near the left ear.",
            "The face is swapped: the eyebrows and the eyes carry the artifacts."]
ANSWERS = ["The lips are brighter and the chin is blurred.", "The eyes show reflections and a warped nose.",
           "Ghosting on the forehead, a blending boundary.", "The mouth texture does not match.",
           "Color mismatch on both cheeks.", "The eyes and the eyebrows are forged."]


def _mask(h, w, box):
    mask = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = 255
    return mask


@pytest.fixture
def mmtt_release(tmp_path):
    """An MMTT-format dataset (images, masks, a JSON list) and its released predictions (JSONL + masks)."""
    data, preds = tmp_path / "mmtt", tmp_path / "release"
    rng = np.random.default_rng(3)
    records, lines = [], []
    for i, (caption, answer) in enumerate(zip(CAPTIONS, ANSWERS, strict=True)):
        rel = f"fake/vid{i}/{i:03d}.jpg"
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(data / rel)
        (data / "masks").mkdir(exist_ok=True)
        Image.fromarray(_mask(32, 40, (4 + i, 20, 6, 30))).save(data / f"masks/{i:03d}.png")
        records.append({"image_id": 100 + i, "instance_id": f"inst{i}", "img_path": rel,
                        "mask_path": f"masks/{i:03d}.png", "caption": caption})
        lines.append({"image_id": 100 + i, "img_path": rel, "caption": answer})
        pred = preds / "masks" / f"fake/vid{i}/{i:03d}.png"
        pred.parent.mkdir(parents=True, exist_ok=True)
        if i == 1:  # another size: resized with nearest-neighbour
            Image.fromarray(_mask(16, 20, (3, 12, 2, 14))).save(pred)
        elif i == 2:  # a soft mask: > 127
            Image.fromarray(rng.integers(0, 256, (32, 40), dtype=np.uint8)).save(pred)
        elif i == 3:  # empty
            Image.fromarray(np.zeros((32, 40), np.uint8)).save(pred)
        else:
            Image.fromarray(_mask(32, 40, (8, 26, 10 + i, 34))).save(pred)
    (data / "test.json").write_text(json.dumps(records))
    preds.mkdir(exist_ok=True)
    (preds / "predictions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return data, preds


def _official_pairs(data, preds, records):
    return [(str(preds / "masks" / (r["img_path"].rsplit(".", 1)[0] + ".png")), str(data / r["mask_path"]))
            for r in records]


def _import_bench(cli, data, tmp_path):
    bench = tmp_path / "bench"
    code, _, err = cli("import", "mmtt", str(data / "test.json"), "--out", str(bench))
    assert code == 0, err
    return bench


def test_imported_mmtt_predictions_score_and_verify_as_the_official_protocol(cli, mmtt_release, tmp_path):
    data, preds = mmtt_release
    bench = _import_bench(cli, data, tmp_path)
    out = tmp_path / "run"
    code, stdout, err = cli("import-predictions", "mmtt", str(preds / "predictions.jsonl"), "--bench", str(bench),
                            "--out", str(out), "--model-name", "ForgeryTalker", "--strict")
    assert code == 0, err
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["name"] == "ForgeryTalker"
    imported = record["model"]["identity"]["imported_predictions"]
    assert imported["format"] == "mmtt" and len(imported["sha256"]) == 64
    records = json.loads((data / "test.json").read_text())
    expected, matched = official_evaluate(_official_pairs(data, preds, records))
    assert matched == len(records)
    for name, value in expected.items():
        assert record["metrics"]["FL"][name]["value"] == pytest.approx(value, abs=1e-6)
    assert record["metrics"]["FL"]["coverage"]["value"] == 1.0
    assert record["counts"]["FL"] == {"n": 6, "n_failed": 0, "n_unparsed": 0}
    regions = record["breakdowns"]["FL"]["regions"]["per_region"]
    assert regions["eye"]["n_reference"] == 2 and regions["eye"]["tp"] == 2  # captions 1 and 5 name the eyes
    pycoco = pytest.importorskip("pycocoevalcap.cider.cider")
    from pycocoevalcap.bleu.bleu import Bleu

    from dfabench.metrics.text_tokens import tokenize
    gts = {i: [" ".join(tokenize(c))] for i, c in enumerate(CAPTIONS)}
    res = {i: [" ".join(tokenize(a))] for i, a in enumerate(ANSWERS)}
    assert record["metrics"]["FL"]["cider"]["value"] == pytest.approx(pycoco.Cider().compute_score(gts, res)[0])
    assert record["metrics"]["FL"]["bleu_4"]["value"] == pytest.approx(Bleu(4).compute_score(gts, res, verbose=0)[0][3])
    if shutil.which("java"):
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        java = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(CAPTIONS)})
        assert java == gts  # the official script's tokens
    assert cli("score", str(out))[0] == 0
    code, _, err = cli("verify", str(out), "--bench", str(bench))
    assert code == 0, err
    report = json.loads((out / "import-report.json").read_text())
    assert report["problems"] == [] and report["n_predictions"] == 6


def test_problems_are_counted_per_sample_and_strict_fails(cli, mmtt_release, tmp_path):
    data, preds = mmtt_release
    bench = _import_bench(cli, data, tmp_path)
    lines = (preds / "predictions.jsonl").read_text().splitlines()
    lines.append(json.dumps({"image_id": 999, "img_path": "fake/x.jpg", "caption": "not in the benchmark"}))
    lines.append(lines[0])  # a duplicate
    lines.append("[1, 2]")  # not an object
    del lines[5]  # image 105: no prediction at all
    (preds / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    (preds / "masks/fake/vid4/004.png").unlink()  # missing mask
    (preds / "masks/fake/vid2/002.png").write_bytes(b"not a png")  # unreadable mask
    out = tmp_path / "run"
    code, _, err = cli("import-predictions", "mmtt", str(preds / "predictions.jsonl"), "--bench", str(bench),
                       "--out", str(out))
    assert code == 0, err
    report = json.loads((out / "import-report.json").read_text())
    assert report["counts"] == {"duplicate": 1, "malformed": 1, "missing_mask": 1, "no_prediction": 1,
                                "unknown_id": 1, "unreadable_mask": 1}
    assert {p["id"] for p in report["problems"] if p["id"]} == {"100", "999", "105", "104", "102"}
    record = json.loads((out / "run.json").read_text())
    assert record["counts"]["FL"] == {"n": 6, "n_failed": 1, "n_unparsed": 2}
    assert record["metrics"]["FL"]["coverage"]["value"] == pytest.approx(3 / 6)
    records = json.loads((data / "test.json").read_text())
    # the script silently skips the missing and the unreadable mask (105 is not in its common ids)
    expected, matched = official_evaluate(_official_pairs(data, preds, records[:5]))
    breakdown = record["breakdowns"]["FL"]["mask"]
    assert matched == breakdown["n_with_mask"] == 3
    for name, value in expected.items():
        assert breakdown["covered_only"][name] == pytest.approx(value, abs=1e-6)
    assert cli("verify", str(out), "--bench", str(bench))[0] == 0
    code, _, err = cli("import-predictions", "mmtt", str(preds / "predictions.jsonl"), "--bench", str(bench),
                       "--out", str(tmp_path / "strict"), "--strict")
    assert code != 0 and "problems in the predictions (--strict)" in err and "line 7" in err


def test_generic_jsonl_and_lmms_eval_logs_import(cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2)
    samples = [json.loads(line) for line in (bench / "manifest.jsonl").read_text().splitlines()]
    generic = tmp_path / "generic.jsonl"
    generic.write_text("".join(json.dumps({"id": s["id"], "task": "DF-D",
                                           "score": 0.9 if s["label"] == "fake" else 0.2}) + "\n" for s in samples))
    code, _, err = cli("import-predictions", "jsonl", str(generic), "--bench", str(bench), "--out", str(tmp_path / "a"))
    assert code == 0, err
    record = json.loads((tmp_path / "a/run.json").read_text())
    assert record["metrics"]["DF-D"]["auc"]["value"] == 1.0 and record["model"]["name"] == "generic"
    logs = tmp_path / "samples.jsonl"
    logs.write_text("".join(json.dumps({"doc_id": i, "doc": {"id": s["id"], "task": "DF-D"}, "resps": [["yes"]],
                                        "filtered_resps": ["Yes." if s["label"] == "fake" else "No."]}) + "\n"
                            for i, s in enumerate(samples)))
    code, _, err = cli("import-predictions", "lmms-eval", str(logs), "--bench", str(bench), "--out",
                       str(tmp_path / "b"), "--model-name", "llava")
    assert code == 0, err
    record = json.loads((tmp_path / "b/run.json").read_text())
    assert record["metrics"]["DF-D"]["accuracy"]["value"] == 1.0
    assert cli("verify", str(tmp_path / "b"), "--bench", str(bench))[0] == 0
    logs.write_text(json.dumps({"doc_id": 0, "doc": {"question": "?"}, "resps": [["yes"]]}) + "\n")
    code, _, err = cli("import-predictions", "lmms-eval", str(logs), "--bench", str(bench), "--out",
                       str(tmp_path / "c"), "--strict")
    assert code != 0 and "samples.jsonl: line 1" in err and "'doc' must be the exported document" in err


def test_the_leaderboard_marks_an_entry_of_imported_predictions(cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2)
    samples = [json.loads(line) for line in (bench / "manifest.jsonl").read_text().splitlines()]
    generic = tmp_path / "generic.jsonl"
    generic.write_text("".join(json.dumps({"id": s["id"], "task": "DF-D", "score": 0.7}) + "\n" for s in samples))
    assert cli("import-predictions", "jsonl", str(generic), "--bench", str(bench), "--out", str(tmp_path / "run"),
               "--model-name", "PaperNet")[0] == 0
    assert cli("leaderboard", "submit", str(tmp_path / "run"), "--entries", str(tmp_path / "entries"))[0] == 0
    code, _, err = cli("leaderboard", "build", "--entries", str(tmp_path / "entries"), "--out", str(tmp_path / "lb"),
                       "--bench", str(bench))
    assert code == 0, err
    assert "PaperNet (imported predictions)" in (tmp_path / "lb" / "README.md").read_text()
    assert "PaperNet (imported predictions)" in (tmp_path / "lb" / "index.html").read_text()
    rows = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())["boards"][0]["tasks"]["DF-D"]["rows"]
    assert rows[0]["imported_predictions"]["format"] == "jsonl"


def test_a_score_beside_the_text_is_kept_and_a_score_alone_is_not_a_failure(cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2)
    samples = [json.loads(line) for line in (bench / "manifest.jsonl").read_text().splitlines()]
    lines = []
    for index, s in enumerate(samples):
        line = {"id": s["id"], "task": "DF-D", "score": 0.9 if s["label"] == "fake" else 0.1}
        if index:  # the first has a score only, in a file where the others have text too
            line["text"] = "Yes, it is forged." if s["label"] == "fake" else "No, it is real."
        lines.append(line)
    preds = tmp_path / "mixed.jsonl"
    preds.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, _, err = cli("import-predictions", "jsonl", str(preds), "--bench", str(bench), "--out", str(tmp_path / "r"))
    assert code == 0, err
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["metrics"]["DF-D"]["auc"]["value"] == 1.0  # every score kept, the score-only one too
    logs = [json.loads(x) for x in (tmp_path / "r" / "samples-DF-D.jsonl").read_text().splitlines()]
    first = next(r for r in logs if r["id"] == samples[0]["id"])
    assert first["error"] is None and first["unparsed"] and first["score"] == pytest.approx(lines[0]["score"])
    assert record["counts"]["DF-D"]["n_failed"] == 0


def test_a_bad_line_is_counted_and_strict_refuses_before_writing(cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2)
    samples = [json.loads(line) for line in (bench / "manifest.jsonl").read_text().splitlines()]
    lines = [json.dumps({"id": s["id"], "task": "DF-D", "score": 0.5}) for s in samples[1:]]
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join([*lines, "{not json"]) + "\n")
    code, _, err = cli("import-predictions", "jsonl", str(preds), "--bench", str(bench), "--out", str(tmp_path / "a"))
    assert code == 0, err  # counted, not fatal
    report = json.loads((tmp_path / "a" / "import-report.json").read_text())
    assert report["counts"]["malformed"] == 1 and report["counts"]["no_prediction"] == 1
    code, _, err = cli("import-predictions", "jsonl", str(preds), "--bench", str(bench), "--out", str(tmp_path / "b"),
                       "--strict")
    assert code == 2 and "malformed line" in err
    assert not (tmp_path / "b").exists()
    preds.write_text("\n".join(lines) + "\n")  # well formed, but a sample of the split has no prediction
    code, _, err = cli("import-predictions", "jsonl", str(preds), "--bench", str(bench), "--out", str(tmp_path / "c"),
                       "--strict")
    assert code == 2 and "has no prediction" in err and "nothing was written" in err
    assert not (tmp_path / "c").exists()
