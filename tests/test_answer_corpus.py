"""The labelled answer corpus (tests/answers/) and the parsers measured on it (issue 11).

The corpus is well formed; on ``dev.jsonl`` (the part the rules were tuned on) the parsers are exactly
right; on ``heldout.jsonl`` (never tuned on) they meet the issue's aims: no confident wrong label and a
coverage of at least 97% in each task.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_parsing", ROOT / "benchmarks" / "bench_parsing.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

DEV, HELDOUT = bench.DEV, bench.HELDOUT


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return bench.load_corpus(DEV) + bench.load_corpus(HELDOUT)


def test_corpus_is_well_formed(corpus: list[dict]) -> None:
    ids = [row["id"] for row in corpus]
    assert len(ids) == len(set(ids)), "answer ids must be unique across dev and heldout"
    assert len(corpus) >= 400
    assert {row["task"] for row in corpus} == {"DF-D", "DF-C"}
    assert all(row["label"] is None or row["label"] in bench.TASK_LABELS[row["task"]] for row in corpus)
    families = {row["style"].split("/")[0] for row in corpus}
    assert len(families) >= 6, families
    assert any(re.search(r"[\u4e00-\u9fff]", row["answer"]) for row in corpus), "Chinese answers are missing"
    for name in ("DF-D", "DF-C"):
        labels = {row["label"] for row in corpus if row["task"] == name}
        assert labels == {None, *bench.TASK_LABELS[name]}, f"{name}: every label and 'cannot tell' appear"


def test_heldout_is_about_a_third() -> None:
    n_dev, n_heldout = len(bench.load_corpus(DEV)), len(bench.load_corpus(HELDOUT))
    assert 0.25 <= n_heldout / (n_dev + n_heldout) <= 0.40


def test_a_malformed_corpus_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = {"id": "x", "task": "DF-D", "style": "gpt-4o/terse", "answer": "Yes.", "label": "fake"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "y", "label": "FS"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: label 'FS' is not a DF-D label"):
        bench.load_corpus(path)
    path.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: malformed JSON"):
        bench.load_corpus(path)


def test_the_measure_counts_a_label_on_a_cannot_tell_answer_as_confident_wrong(tmp_path: Path) -> None:
    rows = [{"id": "a", "task": "DF-D", "style": "s/t", "answer": "Yes.", "label": None},
            {"id": "b", "task": "DF-D", "style": "s/t", "answer": "It might be fake.", "label": None},
            {"id": "c", "task": "DF-D", "style": "s/t", "answer": "No.", "label": "real"},
            {"id": "d", "task": "DF-D", "style": "s/t", "answer": "Hmm.", "label": "fake"}]
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = bench.measure(path)["DF-D"]
    assert report["confident_wrong"] == ["a"]
    assert report["precision"] == 0.5 and report["coverage"] == 0.5 and report["abstention"] == 0.5
    assert report["confusion"]["-"]["fake"] == 1 and report["confusion"]["fake"]["-"] == 1
    assert not bench.meets_aims(bench.measure(path))


@pytest.mark.parametrize("task", ["DF-D", "DF-C"])
def test_parsers_are_exactly_right_on_dev(task: str) -> None:
    rows = [row for row in bench.load_corpus(DEV) if row["task"] == task]
    wrong = {row["id"]: (row["answer"], row["label"], bench.parse(row)) for row in rows
             if bench.parse(row) != row["label"]}
    assert wrong == {}


@pytest.mark.parametrize("task", ["DF-D", "DF-C"])
def test_heldout_meets_the_aims(task: str) -> None:
    report = bench.measure(HELDOUT)[task]
    assert report["confident_wrong"] == []
    assert report["coverage"] >= bench.AIM_COVERAGE
