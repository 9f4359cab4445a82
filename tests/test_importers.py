"""Importers: DeepfakeBench / DF40 index JSON, DFA-Instruct conversations, MMTT annotations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfabench.data.importers import df40_label, import_df40, import_dfa_instruct, import_mmtt, question_task
from dfabench.data.manifest import load_benchmark
from dfabench.errors import DfabenchError, InputError

AUTHOR_PREFIX = "/home/someone/datasets/"


def _png(path: Path, value: int, mask: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (16, 16) if mask else (16, 16, 3)
    array = np.full(shape, value, np.uint8)
    if mask:
        array[4:12, 4:12] = 255
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def df40_layout(tmp_path: Path) -> tuple[Path, Path]:
    """A DF40-style folder (frames as PNG) and an index JSON that names them with an author's absolute paths."""
    data = tmp_path / "data"
    index: dict = {"DF40": {}}

    def video(label_key: str, split: str, name: str, n: int, level: str | None = "c23", masks: bool = False,
              label: str | None = None, relative: bool = False) -> None:
        frames, mask_paths = [], []
        for i in range(n):
            rel = f"DF40/{label_key}/frames/{name}/{i:03d}.png"
            _png(data / rel, 10 * i + len(name))
            frames.append(rel if relative else AUTHOR_PREFIX + rel)
            if masks:
                mrel = f"DF40/{label_key}/masks/{name}/{i:03d}.png"
                _png(data / mrel, 0, mask=True)
                mask_paths.append(AUTHOR_PREFIX + mrel)
        entry = {"label": label or label_key, "frames": frames, **({"masks": mask_paths} if masks else {})}
        splits = index["DF40"].setdefault(label_key, {}).setdefault(split, {})
        (splits.setdefault(level, {}) if level else splits)[name] = entry

    video("simswap_Fake", "train", "000_003", 2, masks=True)
    video("simswap_Fake", "test", "001_004", 2, masks=True)
    video("simswap_Real", "train", "000", 2)
    video("simswap_Real", "test", "001", 3)
    video("heygen_Fake", "test", "h7", 1, level=None, relative=True)  # no compression level, relative path
    video("stylegan3_Fake", "val", "s1", 2, level="c40")
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    src = index_dir / "DF40.json"
    src.write_text(json.dumps(index, indent=1))
    return src, data


def test_df40_labels_map_to_categories():
    assert df40_label("simswap_Fake") == ("fake", "SimSwap", "FS")
    assert df40_label("simswap_Real") == ("real", None, None)
    assert df40_label("FF-real") == ("real", None, None)
    assert df40_label("heygen_Fake")[2] == "FR"
    assert df40_label("StyleGAN-XL_Fake")[2] == "EFS"
    assert df40_label("e4e_Fake")[2] == "FE"
    assert df40_label("FF-F2F") == ("fake", "FF-F2F", "FR")
    assert df40_label("DFDC_Fake") == ("fake", "DFDC", None)
    assert df40_label("nothing_here") == (None, None, None)


def test_import_df40(df40_layout, tmp_path):
    src, data = df40_layout
    out = tmp_path / "bench"
    report = import_df40(src, out, root=data, replace_prefix=(AUTHOR_PREFIX, str(data) + "/"))
    assert report.skipped == [] and report.warnings == []
    assert report.n_imported == 12 and report.out == out
    bench = load_benchmark(out)
    by_id = {s.id: s for s in bench.samples}
    swap = by_id["DF40/simswap_Fake/c23/000_003/000"]
    assert (swap.label, swap.category, swap.technique, swap.split, swap.source_id) == \
        ("fake", "FS", "SimSwap", "train", "DF40/000_003")
    assert swap.mask is not None and (out / swap.mask).is_file()
    assert by_id["DF40/simswap_Real/c23/001/002"].label == "real"
    assert by_id["DF40/simswap_Real/c23/001/002"].category is None
    assert by_id["DF40/heygen_Fake/h7/000"].category == "FR"
    assert {s.category for s in bench.samples if s.technique == "StyleGAN3"} == {"EFS"}
    assert bench.splits() == {"train": 4, "test": 6, "val": 2}
    assert {s.source_id for s in bench.samples if s.split == "test"} == {"DF40/001_004", "DF40/001", "DF40/h7"}
    # one sample per frame, images materialised inside the benchmark (hard links where possible)
    original = data / "DF40/simswap_Fake/frames/000_003/000.png"
    copy = out / swap.image
    assert copy.read_bytes() == original.read_bytes()
    assert os.stat(copy).st_ino == os.stat(original).st_ino
    bench.check_files(bench.samples)
    info = json.loads((out / "benchmark.json").read_text())
    assert info["imported_from"]["format"] == "df40"
    assert json.loads((out / "import-report.json").read_text())["n_imported"] == 12


def test_import_df40_copy_mode_and_compression_filter(df40_layout, tmp_path):
    src, data = df40_layout
    report = import_df40(src, tmp_path / "bench", root=data, replace_prefix=(AUTHOR_PREFIX, str(data) + "/"),
                         copy="copy", compression="c40")
    bench = load_benchmark(report.out)
    # c23 videos are left out; the c40 ones and those filed without a level stay
    assert sorted(s.technique for s in bench.samples) == ["HeyGen", "StyleGAN3", "StyleGAN3"]
    image = report.out / bench.samples[0].image
    assert os.stat(image).st_nlink == 1  # a copy, not a link


def test_df40_relative_paths_resolve_against_the_index_folder(tmp_path):
    _png(tmp_path / "frames/v1/0.png", 5)
    src = tmp_path / "index.json"
    src.write_text(json.dumps({"Celeb-DF": {"Celeb-real": {"test": {"v1": {"label": "Celeb-real",
                                                                           "frames": ["frames/v1/0.png"]}}}}}))
    report = import_df40(src, tmp_path / "bench")
    assert report.n_imported == 1 and load_benchmark(tmp_path / "bench").samples[0].label == "real"


def test_df40_bad_records_are_listed_or_fail_when_strict(df40_layout, tmp_path):
    src, data = df40_layout
    index = json.loads(src.read_text())
    videos = index["DF40"]["simswap_Fake"]["test"]["c23"]
    videos["001_004"]["frames"].append(AUTHOR_PREFIX + "DF40/simswap_Fake/frames/001_004/999.png")  # missing
    videos["bad_entry"] = {"label": "simswap_Fake", "frames": "not a list"}
    videos["no_frames"] = {"label": "simswap_Fake"}
    videos["not_an_object"] = ["x.png"]
    index["DF40"]["mystery"] = {"test": {"c23": {"m1": {"label": "mystery", "frames": [AUTHOR_PREFIX + "x.png"]}}}}
    index["DF40"]["DFDC_Fake"] = {"test": {"d1": {"label": "DFDC_Fake", "frames": [
        AUTHOR_PREFIX + "DF40/simswap_Real/frames/001/000.png"]}}}
    src.write_text(json.dumps(index))
    options = {"root": data, "replace_prefix": (AUTHOR_PREFIX, str(data) + "/")}

    report = import_df40(src, tmp_path / "bench", **options)
    skipped = dict(report.skipped)
    assert "does not exist" in skipped["DF40/simswap_Fake/test/c23/001_004/999.png"]
    assert "'frames' must be a non-empty list" in skipped["DF40/simswap_Fake/test/c23/bad_entry"]
    assert "unknown label 'mystery'" in skipped["DF40/mystery/test/c23/m1"]
    assert "'frames' must be a non-empty list" in skipped["DF40/simswap_Fake/test/c23/no_frames"]
    assert "expected an object" in skipped["DF40/simswap_Fake/test/c23/not_an_object"]
    assert report.n_imported == 13  # 12 good frames + the DFDC fake, whose technique has no category
    assert any("DFDC" in what for _, what in report.warnings)
    dfdc = [s for s in load_benchmark(report.out).samples if s.technique == "DFDC"]
    assert len(dfdc) == 1 and dfdc[0].label == "fake" and dfdc[0].category is None
    assert json.loads((report.out / "import-report.json").read_text())["n_skipped"] == 5

    with pytest.raises(InputError) as caught:
        import_df40(src, tmp_path / "strict", strict=True, **options)
    assert str(src) in str(caught.value) and "DF40/simswap_Fake/test/c23/" in str(caught.value)
    assert not (tmp_path / "strict").exists()


def test_df40_malformed_files_name_the_file(tmp_path):
    src = tmp_path / "broken.json"
    src.write_text('{"DF40": {"simswap_Fake": ')
    with pytest.raises(InputError, match=r"broken\.json: malformed JSON"):
        import_df40(src, tmp_path / "out")
    src.write_text("[1, 2]")
    with pytest.raises(InputError, match="not a DeepfakeBench / DF40 index"):
        import_df40(src, tmp_path / "out")
    src.write_text(json.dumps({"DF40": {"x_Fake": {"test": {"v": {"label": "x_Fake", "frames": ["nope.png"]}}}}}))
    with pytest.raises(InputError, match=r"nothing could be imported \(1 records skipped; first: DF40/x_Fake/test/v"):
        import_df40(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="no such file"):
        import_df40(tmp_path / "absent.json", tmp_path / "out")


def test_import_refuses_a_non_empty_output_and_unknown_copy_mode(df40_layout, tmp_path):
    src, data = df40_layout
    out = tmp_path / "used"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(DfabenchError, match="not empty"):
        import_df40(src, out, root=data)
    with pytest.raises(DfabenchError, match="symbolic links are not supported"):
        import_df40(src, tmp_path / "other", copy="symlink")


# --------------------------------------------------------------------------- DFA-Instruct


def _turns(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    turns = []
    for i, (question, answer) in enumerate(pairs):
        turns.append({"from": "human", "value": ("<image>\n" if i == 0 else "") + question})
        turns.append({"from": "gpt", "value": answer})
    return turns


DFD = "Has this face been forged?"
DFC = "What kind of technique is used to manipulate the image?"
AD = "Can you detail the specific regions of the facial image where artifacts is evident?"


@pytest.fixture
def dfa_file(tmp_path: Path) -> Path:
    for name in ("a", "b", "c", "d", "e", "f"):
        _png(tmp_path / "imgs" / f"{name}.png", ord(name))
    records = [
        {"id": "a", "image": "imgs/a.png", "conversations": _turns(
            (DFD, "Yes."), (DFC, "Face swapping is used. The identity was replaced."),
            (AD, "1. Eyes: blurred.\n2. Mouth and lips: a visible seam."), ("Why?", "Because of the seam."))},
        {"id": "b", "image": "imgs/b.png", "conversations": _turns((DFD, "No, this face is real."))},
        {"id": "c", "image": "imgs/c.png", "source_id": "person-7", "conversations": _turns(
            (DFD, "Yes, it has been manipulated."), (DFC, "Entire face synthesis is used."))},
        {"id": "d", "image": "imgs/d.png", "conversations": _turns((DFD, "It is hard to tell."))},
        {"id": "e", "image": "imgs/e.png", "conversations": _turns((DFD, "Yes."), (DFC, "I am not sure."))},
        {"id": "f", "image": "imgs/missing.png", "conversations": _turns((DFD, "Yes."), (DFC, "Face editing."))},
        {"id": "g", "image": "imgs/f.png", "conversations": [{"from": "robot", "value": "hi"}]},
        {"id": 8, "image": "imgs/f.png", "conversations": _turns(
            (DFC, "Face reenactment is used: the lips were moved."))},
    ]
    src = tmp_path / "dfa_test.json"
    src.write_text(json.dumps(records))
    return src


def test_question_task():
    assert question_task("<image>\n" + DFD) == "DF-D"
    assert question_task(DFC) == "DF-C"
    assert question_task(AD) == "AD"
    assert question_task("Is this image real or fake?") == "DF-D"
    assert question_task("Which regions show artifacts?") == "AD"
    assert question_task("What is the person wearing?") is None


def test_import_dfa_instruct(dfa_file, tmp_path):
    report = import_dfa_instruct(dfa_file, tmp_path / "bench")
    bench = load_benchmark(report.out)
    by_id = {s.id: s for s in bench.samples}
    assert sorted(by_id) == ["8", "a", "b", "c"]
    assert (by_id["a"].label, by_id["a"].category) == ("fake", "FS")
    assert by_id["a"].description.startswith("1. Eyes: blurred.")
    assert len(by_id["a"].conversations) == 8 and by_id["a"].conversations[0]["value"].startswith("<image>\n")
    assert (by_id["b"].label, by_id["b"].category, by_id["b"].description) == ("real", None, None)
    assert (by_id["c"].category, by_id["c"].source_id) == ("EFS", "person-7")
    assert (by_id["8"].label, by_id["8"].category) == ("fake", "FR")  # a DF-C answer presupposes a fake
    assert {s.split for s in bench.samples} == {"test"}  # from the file name
    skipped = dict(report.skipped)
    assert "unparseable DF-D answer" in skipped["record 3 (id 'd')"]
    assert "unparseable DF-C answer" in skipped["record 4 (id 'e')"]
    assert "does not exist" in skipped["record 5 (id 'f')"]
    assert "'conversations' must be" in skipped["record 6 (id 'g')"]
    assert len(report.skipped) == 4


def test_dfa_instruct_strict_and_malformed(dfa_file, tmp_path):
    with pytest.raises(InputError, match=r"record 3 \(id 'd'\): unparseable DF-D answer"):
        import_dfa_instruct(dfa_file, tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("[{\"id\": 1,")
    with pytest.raises(InputError, match=r"bad\.json: malformed JSON"):
        import_dfa_instruct(bad, tmp_path / "out")
    bad.write_text(json.dumps({"id": "x"}))
    with pytest.raises(InputError, match="expected a JSON list"):
        import_dfa_instruct(bad, tmp_path / "out")


def test_split_option_and_prefix_rewrite(dfa_file, tmp_path):
    records = json.loads(dfa_file.read_text())
    for record in records:
        record["image"] = "/authors/box/" + record["image"]
    src = tmp_path / "moved.json"
    src.write_text(json.dumps(records))
    report = import_dfa_instruct(src, tmp_path / "bench", replace_prefix=("/authors/box/", str(tmp_path) + "/"),
                                 split="val")
    assert report.n_imported == 4
    assert {s.split for s in load_benchmark(report.out).samples} == {"val"}


# --------------------------------------------------------------------------- MMTT


def test_import_mmtt(tmp_path):
    _png(tmp_path / "img/1.png", 1)
    _png(tmp_path / "img/2.png", 2)
    _png(tmp_path / "img/3.png", 3)
    _png(tmp_path / "mask/1.png", 0, mask=True)
    lines = [
        {"image_id": 1, "caption": "The nose is blurred.", "img_path": "img/1.png", "mask_path": "mask/1.png"},
        {"image_id": "two", "caption": ["The eyes are mismatched.", "other"], "relative_path": "img/2.png"},
        {"image_id": 3, "caption": "x", "img_path": "img/3.png", "mask_path": "mask/none.png"},
        {"image_id": 4, "caption": "", "img_path": "img/3.png"},
    ]
    src = tmp_path / "mmtt_train.jsonl"
    src.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    report = import_mmtt(src, tmp_path / "bench")
    bench = load_benchmark(report.out)
    by_id = {s.id: s for s in bench.samples}
    assert sorted(by_id) == ["1", "two"]
    assert by_id["1"].mask is not None and by_id["1"].description == "The nose is blurred."
    assert by_id["two"].mask is None and by_id["two"].description == "The eyes are mismatched."
    assert {s.label for s in bench.samples} == {"fake"} and {s.split for s in bench.samples} == {"train"}
    assert [r for r, _ in report.skipped] == ["record 2 (image_id 3)", "record 3 (image_id 4)"]
    assert report.warnings and "no 'mask_path'" in report.warnings[0][1]


def test_cli_import_prints_the_report(df40_layout, tmp_path, capsys):
    from dfabench.cli import main

    src, data = df40_layout
    code = main(["import", "df40", str(src), "--out", str(tmp_path / "cli"),
                 "--replace-prefix", f"{AUTHOR_PREFIX}={data}/"])
    assert code == 0
    captured = capsys.readouterr()
    assert "imported 11 samples" in captured.out  # the relative path is not under the index's folder
    assert "skipped 1 records" in captured.err and "DF40/heygen_Fake/test/h7/000.png" in captured.err
    code = main(["import", "df40", str(src), "--out", str(tmp_path / "cli-root"), "--root", str(data),
                 "--replace-prefix", f"{AUTHOR_PREFIX}={data}/"])
    assert code == 0 and "imported 12 samples" in capsys.readouterr().out
    code = main(["import", "df40", str(src), "--out", str(tmp_path / "cli2"), "--strict"])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(("question", "answer", "label"), [
    ("<image>\nHas this face been forged?", "Yes.", "fake"),
    ("<image>\nIs this face real?", "Yes.", "real"),
    ("<image>\nIs this an authentic photo?", "Yes, it is.", "real"),
    ("<image>\nIs this face genuine?", "No.", "fake"),
    ("<image>\nIs this image real?", "No, it is fake.", "fake"),
    ("<image>\nIs this face real or fake?", "It is fake.", "fake"),
])
def test_dfa_instruct_yes_answers_the_question_asked(tmp_path, question, answer, label):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    record = {"id": "a", "image": "a.png", "conversations": [
        {"from": "human", "value": question}, {"from": "gpt", "value": answer},
        {"from": "human", "value": "What kind of technique is used to manipulate the image?"},
        {"from": "gpt", "value": "Face swapping is used."}]}
    (tmp_path / "data.json").write_text(json.dumps([record]))
    import_dfa_instruct(tmp_path / "data.json", tmp_path / "out")
    assert load_benchmark(tmp_path / "out").samples[0].label == label
