"""The importers' shared base (issue 9): one way to write a benchmark folder, used by every importer and
the smoke builder; the importers split by format; the data modules under ~500 lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dfabench.data
from dfabench.data import importers, smoke
from dfabench.data.importers import base
from dfabench.data.manifest import load_benchmark

DATA = Path(dfabench.data.__file__).resolve().parent


def test_staged_folder_puts_the_folder_in_place_whole(tmp_path):
    out = tmp_path / "bench"
    with base.staged_folder(out, "importing") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".bench.importing-") and not out.exists()
        (tmp / "images").mkdir()
        (tmp / "images" / "a.png").write_bytes(b"x")
        base.write_benchmark(tmp, [{"id": "a", "image": "images/a.png", "label": "real"}], {"name": "b"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]
    assert json.loads((out / "benchmark.json").read_text()) == {"name": "b"}
    assert [s.id for s in load_benchmark(out).samples] == ["a"]


def test_staged_folder_leaves_nothing_on_an_error(tmp_path):
    out = tmp_path / "bench"
    out.mkdir()
    (out / "keep.txt").write_text("earlier")
    with pytest.raises(RuntimeError), base.staged_folder(out, "building", replace=True) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"] and (out / "keep.txt").read_text() == "earlier"
    with pytest.raises(OSError), base.staged_folder(out, "importing"):  # not replace: only an empty folder goes
        pass
    assert (out / "keep.txt").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["bench"]


def test_the_smoke_builder_and_the_importers_write_through_the_base(tmp_path, monkeypatch):
    used: list[str] = []
    real = base.staged_folder

    def spy(out, purpose, **kwargs):
        used.append(purpose)
        return real(out, purpose, **kwargs)

    monkeypatch.setattr(base, "staged_folder", spy)
    monkeypatch.setattr(smoke, "staged_folder", spy)
    pytest.importorskip("skimage")
    pytest.importorskip("matplotlib")
    bench = smoke.build_smoke(tmp_path / "smoke", seed=0, size="tiny")
    index = tmp_path / "test.json"
    sample = load_benchmark(bench).samples[0]
    index.write_text(json.dumps([{"id": "x", "image": str(bench / sample.image),
                                  "conversations": [{"from": "human", "value": "Is this face real?"},
                                                    {"from": "gpt", "value": "Yes."}]}]))
    report = importers.import_dfa_instruct(index, tmp_path / "imported")
    assert report.n_imported == 1 and used == ["building", "importing"]


def test_importers_are_split_by_format_and_keep_their_old_names():
    assert {p.stem for p in (DATA / "importers").glob("*.py")} == {
        "__init__", "base", "df40", "dfa_instruct", "mmtt", "ddvqa"}
    for name in ("ImportReport", "import_df40", "import_dfa_instruct", "import_mmtt", "import_ddvqa", "df40_label",
                 "ddvqa_key", "question_task", "question_polarity", "COPY_MODES", "REPORT_FILE"):
        assert hasattr(importers, name), name


def test_data_modules_are_under_500_lines():
    sizes = {str(p.relative_to(DATA)): len(p.read_text(encoding="utf-8").splitlines()) for p in DATA.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 500} == {}
