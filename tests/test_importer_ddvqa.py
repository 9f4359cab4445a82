"""DD-VQA importer: the release's {key: {question_id: {question, answer}}} files + FaceForensics++ frames."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfabench.data.importers import ddvqa_key, import_ddvqa
from dfabench.data.manifest import load_benchmark
from dfabench.errors import DfabenchError, InputError

IMAGE_Q = "Does the image looks real/fake?"
EYES_Q = "Do the person's eyes look real/fake?"


def _png(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value % 256, np.uint8)).save(path)
    return path


def _qa(*pairs: tuple[str, list[str]]) -> dict:
    return {str(i): {"question": q, "answer": a} for i, (q, a) in enumerate(pairs)}


def _fake(*extra: tuple[str, list[str]]) -> dict:
    return _qa((IMAGE_Q, ["The image looks fake. The person's nose looks very fake because the nose lookes curved.",
                          "The image looks fake. It is an image with manipulated face regions."]),
               (EYES_Q, ["The person's eyes look fake. The eyes look unnaturally asymmetric."]), *extra)


def _real() -> dict:
    return _qa((IMAGE_Q, ["The image looks real. The person has smooth skin, arched eyebrows."]),
               (EYES_Q, ["The person's eyes look real. The person has naturally oval eyes."]))


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


@pytest.fixture
def release(tmp_path: Path) -> tuple[Path, Path]:
    """The release's test_set folder (one file per manipulation) and a FaceForensics++ frames tree."""
    test_set = tmp_path / "DQ_FF++" / "test_set"
    _write(test_set / "Deepfakes" / "Deepfakes.json", {"0_000_003": _fake(), "0_001_004": _fake()})
    _write(test_set / "Face2Face" / "Face2Face.json", {"1_000_003": _fake()})
    _write(test_set / "Neuraltexture" / "Neuraltexture.json", {"6_001_004": _fake()})
    _write(test_set / "Original" / "Original.json", {"5_000": _real(), "5_001": _real(), "4_29829": _fake()})
    ff = tmp_path / "FaceForensics++"
    for method, video in [("Deepfakes", "000_003"), ("Deepfakes", "001_004"), ("Face2Face", "000_003"),
                          ("NeuralTextures", "001_004")]:
        for i, name in enumerate(["10.png", "2.png", "1.png"]):  # natural order: 1, 2, 10
            _png(ff / "manipulated_sequences" / method / "c23" / "frames" / video / name, 40 * i + len(method))
    _png(ff / "original_sequences" / "youtube" / "c23" / "frames" / "000" / "0.png", 7)  # 001 has no frames
    return test_set, ff


def test_ddvqa_key():
    assert ddvqa_key("0_000_003") == ("Deepfakes", "000_003", None)
    assert ddvqa_key("5_044") == ("Original", "044", None)
    assert ddvqa_key("6_154_386") == ("NeuralTextures", "154_386", None)
    assert ddvqa_key("3_579_701_2") == ("FaceSwap", "579_701", "2")
    with pytest.raises(ValueError, match="unknown manipulation id 4"):
        ddvqa_key("4_29829")
    for bad in ("0_000", "5_000_001_2", "x_000_003", "0_000_abc"):
        with pytest.raises(ValueError, match="malformed key"):
            ddvqa_key(bad)


def test_import_ddvqa_release_folder(release, tmp_path):
    test_set, ff = release
    report = import_ddvqa(test_set, tmp_path / "bench", root=ff)
    bench = load_benchmark(report.out)
    by_id = {s.id: s for s in bench.samples}
    assert sorted(by_id) == ["0_000_003", "0_001_004", "1_000_003", "5_000", "6_001_004"]
    df, f2f, nt, real = by_id["0_000_003"], by_id["1_000_003"], by_id["6_001_004"], by_id["5_000"]
    assert (df.label, df.category, df.technique) == ("fake", "FS", "Deepfakes")
    assert (f2f.category, f2f.technique, nt.category, nt.technique) == ("FR", "Face2Face", "FR", "NeuralTextures")
    assert (real.label, real.category, real.technique, real.description) == ("real", None, None, None)
    # an original video and its manipulations are one cluster
    assert df.source_id == f2f.source_id == real.source_id == "FF++/000"
    assert {s.split for s in bench.samples} == {"test"}  # from the test_set folder
    # the verdict sentence is not part of the reference description; the conversation keeps it
    assert df.description == "The person's nose looks very fake because the nose lookes curved."
    assert [t["from"] for t in df.conversations] == ["human", "gpt", "human", "gpt"]
    assert df.conversations[0]["value"] == "<image>\n" + IMAGE_Q
    assert df.conversations[1]["value"].startswith("The image looks fake. The person's nose")
    assert df.conversations[2]["value"] == EYES_Q
    assert len(df.meta["answers"][0]) == 2  # every annotator's answers are kept
    # the first frame in natural order of the video's frame folder
    assert df.meta["frame"] == "1.png" and df.meta["video"] == "000_003" and df.meta["ddvqa_key"] == "0_000_003"
    original = ff / "manipulated_sequences/Deepfakes/c23/frames/000_003/1.png"
    assert (report.out / df.image).read_bytes() == original.read_bytes()
    assert os.stat(report.out / df.image).st_ino == os.stat(original).st_ino  # linked, not copied
    bench.check_files(bench.samples)
    skipped = dict(report.skipped)
    assert "unknown manipulation id 4" in skipped["Original/Original.json: 4_29829"]
    assert "no image found for '5_001'" in skipped["Original/Original.json: 5_001"]
    assert len(report.skipped) == 2 and report.warnings == []
    assert report.counts == {"test": {"FR": 2, "FS": 2, "real": 1}}
    info = json.loads((report.out / "benchmark.json").read_text())
    assert info["imported_from"]["format"] == "ddvqa" and "frame" in info


def test_ddvqa_frame_and_compression_options(release, tmp_path):
    test_set, ff = release
    report = import_ddvqa(test_set, tmp_path / "b1", root=ff, frame=-1, copy="copy", split="val")
    bench = load_benchmark(report.out)
    df = {s.id: s for s in bench.samples}["0_000_003"]
    assert df.meta["frame"] == "10.png" and os.stat(report.out / df.image).st_nlink == 1
    assert {s.split for s in bench.samples} == {"val"}
    report = import_ddvqa(test_set, tmp_path / "b2", root=ff, frame="2")
    assert {s.id: s for s in load_benchmark(report.out).samples}["0_000_003"].meta["frame"] == "2.png"
    # a second compression level makes the choice explicit
    _png(ff / "manipulated_sequences/Deepfakes/c40/frames/000_003/0.png", 1)
    report = import_ddvqa(test_set, tmp_path / "b3", root=ff)
    assert "several compression levels (c23, c40)" in dict(report.skipped)["Deepfakes/Deepfakes.json: 0_000_003"]
    report = import_ddvqa(test_set, tmp_path / "b4", root=ff, compression="c40")
    assert [s.id for s in load_benchmark(report.out).samples] == ["0_000_003"]
    with pytest.raises(DfabenchError, match="frame must be"):
        import_ddvqa(test_set, tmp_path / "b5", root=ff, frame=1.5)


def test_ddvqa_other_layouts_and_per_question_keys(tmp_path):
    """Flat <key>.png, <Method>/<video>.jpg, <Method>/<video>/ frames, an explicit image; one key per question."""
    images = tmp_path / "crops"
    _png(images / "0_000_003.png", 1)
    _png(images / "neuraltextures" / "001_004.jpg", 2)
    _png(images / "youtube" / "002" / "frame_0.png", 3)
    _png(images / "youtube" / "002" / "frame_1.png", 4)
    _png(tmp_path / "mine" / "f2f.png", 5)
    lines = [
        {"0_000_003_0": {"question": "This image is fake. Describe the authenticity of the image based on nose.",
                         "answer": ["It is an image with manipulated face regions."]}},
        {"0_000_003_1": {"question": "The nose in the image is fake, tell me why.", "answer": "The nose is curved."}},
        {"6_001_004": _fake()},
        {"5_002": _real()},
        {"1_005_006": {**_fake(), "image": "/authors/box/f2f.png"}},
    ]
    src = tmp_path / "ddvqa_train.jsonl"
    src.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    report = import_ddvqa(src, tmp_path / "bench", root=images, replace_prefix=("/authors/box/", f"{tmp_path}/mine/"))
    assert report.skipped == [] and report.warnings == []
    bench = load_benchmark(report.out)
    by_id = {s.id: s for s in bench.samples}
    assert sorted(by_id) == ["0_000_003", "1_005_006", "5_002", "6_001_004"]
    merged = by_id["0_000_003"]
    assert [t["value"] for t in merged.conversations][1::2] == ["It is an image with manipulated face regions.",
                                                               "The nose is curved."]
    assert merged.description == "It is an image with manipulated face regions."
    assert "frame" not in merged.meta
    assert by_id["6_001_004"].image.endswith(".jpg")
    assert by_id["5_002"].meta["frame"] == "frame_0.png"
    assert (report.out / by_id["1_005_006"].image).read_bytes() == (tmp_path / "mine/f2f.png").read_bytes()
    assert {s.split for s in bench.samples} == {"train"}  # from the file name


def test_ddvqa_bad_records_are_listed_or_fail_when_strict(tmp_path):
    _png(tmp_path / "img" / "0_000_003.png", 1)
    _png(tmp_path / "img" / "0_001_004.png", 2)
    _png(tmp_path / "img" / "5_000.png", 3)
    _png(tmp_path / "img" / "3_002_005.png", 4)
    data = {
        "0_000_003": _fake(),
        "0_001_004": _qa((EYES_Q, ["The person's eyes look fake."])),  # no image-level question
        "5_000": _qa((IMAGE_Q, ["The image looks fake. Blurry."])),  # contradicts the key
        "3_002_005": {"0": {"question": IMAGE_Q, "answer": []}},
        "0_009_010": _fake(),  # no image
        "2_003_004": "not an object",
        "junk": _fake(),
    }
    src = _write(tmp_path / "ann.json", data)
    report = import_ddvqa(src, tmp_path / "bench", root=tmp_path / "img")
    assert sorted(s.id for s in load_benchmark(report.out).samples) == ["0_000_003", "0_001_004", "5_000"]
    skipped = dict(report.skipped)
    assert "malformed question '0'" in skipped["3_002_005"]
    assert "no image found for '0_009_010'" in skipped["0_009_010"]
    assert "malformed record" in skipped["2_003_004"]
    assert "malformed key 'junk'" in skipped["junk"]
    warnings = dict(report.warnings)
    assert "no image-level answer" in warnings["0_001_004"]
    assert "says 'fake'" in warnings["5_000"]
    assert json.loads((report.out / "import-report.json").read_text())["n_skipped"] == 4

    with pytest.raises(InputError) as caught:
        import_ddvqa(src, tmp_path / "strict", root=tmp_path / "img", strict=True)
    assert str(src) in str(caught.value) and "3_002_005: malformed question" in str(caught.value)
    assert not (tmp_path / "strict").exists()


def test_ddvqa_folder_skips_other_files_and_duplicates(release, tmp_path):
    test_set, ff = release
    _write(test_set / "split.json", [["000", "003"], ["001", "004"]])  # the release's FF++ split lists
    _write(test_set / "zz_again.json", {"0_000_003": _fake()})
    report = import_ddvqa(test_set, tmp_path / "bench", root=ff)
    skipped = dict(report.skipped)
    assert "not a DD-VQA annotation file" in skipped["split.json"]
    assert "already read from Deepfakes/Deepfakes.json" in skipped["zz_again.json: 0_000_003"]
    assert report.n_imported == 5
    with pytest.raises(InputError, match=r"test_set: Deepfakes/Deepfakes\.json: 0_000_003: no image found"):
        import_ddvqa(test_set, tmp_path / "strict", root=tmp_path / "nowhere", strict=True)


def test_ddvqa_malformed_files_name_the_file(tmp_path):
    src = tmp_path / "broken.json"
    src.write_text('{"0_000_003": {')
    with pytest.raises(InputError, match=r"broken\.json: malformed JSON"):
        import_ddvqa(src, tmp_path / "out")
    src.write_text(json.dumps([["000", "003"]]))
    with pytest.raises(InputError, match=r"broken\.json: not a DD-VQA annotation file"):
        import_ddvqa(src, tmp_path / "out")
    src.write_text(json.dumps({"0_000_003": _fake()}))
    with pytest.raises(InputError, match=r"nothing could be imported \(1 records skipped; first: 0_000_003: no image"):
        import_ddvqa(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .json / .jsonl"):
        import_ddvqa(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(InputError, match="no such file"):
        import_ddvqa(tmp_path / "absent.json", tmp_path / "out")
