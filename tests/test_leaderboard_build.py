"""The leaderboard's outputs: deterministic files, the CSV, reported entries apart, ties in the JSON, escaping,
and the submission checker (``dfabench leaderboard check``)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

#: what an entry's name or answer may hold: tags, attribute-breaking quotes, Markdown and CSV control characters
PAYLOAD = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)> | **bold** [x](javascript:alert(3)) =1+1 `c`"

REPORTED = {
    "format": "dfabench-reported-entry", "format_version": 1, "name": "PaperModel", "model": "Paper model v1",
    "benchmark": "MMTT", "split": "test", "task": "FL", "n": 100, "scale": 100,
    "metrics": {"iou": 66.06, "cider": 69.48}, "protocol": "the paper's protocol",
    "citation": {"text": "Someone et al., 2025", "url": "https://example.org/paper", "where": "Table 2"},
}


@pytest.fixture
def entries(cli, tiny_bench, tmp_path):
    folder = tmp_path / "lb" / "entries"
    for model, args in (("constant", []), ("random", ["--model-arg", "seed=1"])):
        run = tmp_path / "runs" / model
        assert cli("run", "--model", model, *args, "--tasks", "DF-D,DF-C", "--bench", str(tiny_bench),
                   "--out", str(run), "--no-progress")[0] == 0
        assert cli("leaderboard", "submit", str(run), "--entries", str(folder), "--name", model)[0] == 0
    (tmp_path / "lb" / "reported").mkdir()
    (tmp_path / "lb" / "reported" / "paper.json").write_text(json.dumps(REPORTED))
    return folder


def _build(cli, entries: Path, out: Path) -> dict:
    code, _, err = cli("leaderboard", "build", "--entries", str(entries), "--out", str(out), "--replicates", "200")
    assert code == 0, err
    return json.loads((out / "leaderboard.json").read_text())


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_same_entries_give_byte_identical_files_wherever_they_lie(cli, entries, tmp_path):
    _build(cli, entries, tmp_path / "a")
    _build(cli, entries, tmp_path / "b")
    moved = tmp_path / "elsewhere" / "lb"
    shutil.copytree(entries.parent, moved)
    _build(cli, moved / "entries", tmp_path / "c")
    first = _files(tmp_path / "a")
    assert {"README.md", "leaderboard.json", "leaderboard.csv", "index.html", "reports/constant.md",
            "reports/random.md"} <= set(first)
    assert first == _files(tmp_path / "b") == _files(tmp_path / "c")
    assert str(tmp_path) not in "".join(v.decode() for v in first.values())


def test_ties_method_and_ranks_are_in_the_json(cli, entries, tmp_path):
    data = _build(cli, entries, tmp_path / "out")
    assert data["ranking"]["method"] == "paired cluster bootstrap" and data["ranking"]["replicates"] == 200
    task = data["boards"][0]["tasks"]["DF-D"]
    assert task["ranking"]["metric"] == "balanced_accuracy"
    assert sorted(r["rank"] for r in task["rows"]) in ([1, 1], [1, 2])
    assert all(r["report"] == f"reports/{r['entry']}.md" for r in task["rows"])
    page = (tmp_path / "out" / "README.md").read_text()
    assert "200 replicates" in page and "rank = 1 + the number of entries significantly better" in page


def test_reported_entries_are_shown_apart_and_never_ranked(cli, entries, tmp_path):
    data = _build(cli, entries, tmp_path / "out")
    [reported] = data["reported"]
    assert reported["values"] == {"cider": pytest.approx(0.6948), "iou": pytest.approx(0.6606)}
    assert reported["as_reported"] == {"cider": 69.48, "iou": 66.06}
    ranked = {r["entry"] for b in data["boards"] for t in b["tasks"].values() for r in t["rows"]}
    assert "PaperModel" not in ranked
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "leaderboard.csv").read_text())))
    assert {r["provenance"] for r in rows} == {"verified", "reported"}
    assert all(r["rank"] == "" for r in rows if r["provenance"] == "reported")
    assert "## Reported (not reproduced)" in (tmp_path / "out" / "README.md").read_text()


def test_a_malformed_reported_file_is_listed_with_its_name_and_problem(cli, entries, tmp_path):
    bad = dict(REPORTED, citation={"text": "x", "url": "http://insecure.example"})
    (entries.parent / "reported" / "bad.json").write_text(json.dumps(bad))
    code, _, err = cli("leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "out"))
    assert code == 1
    assert "reported/bad.json: $.citation.url" in err


def test_the_csv_has_one_row_per_entry_task_and_metric(cli, entries, tmp_path):
    data = _build(cli, entries, tmp_path / "out")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "leaderboard.csv").read_text())))
    verified = [r for r in rows if r["provenance"] == "verified"]
    expected = sum(len(t["columns"]) * len(t["rows"]) for b in data["boards"] for t in b["tasks"].values())
    assert len(verified) == expected
    row = next(r for r in verified if r["entry"] == "constant" and r["task"] == "DF-D" and r["metric"] == "accuracy")
    assert float(row["value"]) == pytest.approx(data["boards"][0]["tasks"]["DF-D"]["rows"][0]["values"]["accuracy"]
                                                ["value"]) or row["value"]
    assert row["n"] == "20" and row["n_failed"] == "0"


def test_every_entry_text_is_escaped_in_every_output(cli, entries, tmp_path):
    meta = entries / "constant" / "entry.json"
    meta.write_text(json.dumps({"name": PAYLOAD}))
    _build(cli, entries, tmp_path / "out")
    html = (tmp_path / "out" / "index.html").read_text()
    assert html.count("<script") == 1  # the page's own script only
    assert "<img" not in html and "onerror=alert" not in html.replace("onerror=alert(2)&gt;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&gt;&lt;img" in html
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "<script>" not in readme and "&lt;script&gt;" in readme and "\\*\\*bold\\*\\*" in readme
    assert "\\| \\*\\*bold" in readme  # the pipe cannot split the table cell
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "leaderboard.csv").read_text())))
    assert any(r["entry"] == PAYLOAD for r in rows)  # CSV quoting keeps it one field


def test_check_passes_a_good_entry_and_prints_a_markdown_report(cli, entries, tiny_bench):
    code, out, _ = cli("leaderboard", "check", str(entries / "random"), "--bench", str(tiny_bench))
    assert code == 0, out
    assert out.startswith("## dfabench leaderboard check: random") and "**PASSED**" in out
    assert "run.json matches the published JSON Schema of the run record" in out
    assert "samples-DF-D.jsonl: all 20 lines match the published JSON Schema" in out
    assert "| DF-D | done | 20 | 20 | 0 (0.0%) | 0 (0.0%) |" in out
    assert "benchmark fingerprint" in out and "### Metrics (re-derived)" in out


def test_check_fails_on_an_edited_log(cli, entries):
    log = entries / "constant" / "samples-DF-C.jsonl"
    log.write_text(log.read_text().replace('"parsed": "FS"', '"parsed": "FR"', 1))
    code, out, _ = cli("leaderboard", "check", str(entries / "constant"))
    assert code == 1
    assert "FAILED" in out and "samples-DF-C.jsonl does not match the SHA-256" in out


def test_check_names_where_a_record_leaves_the_published_schema(cli, entries):
    record_path = entries / "constant" / "run.json"
    record = json.loads(record_path.read_text())
    record["seed"] = "zero"
    record_path.write_text(json.dumps(record))
    code, out, _ = cli("leaderboard", "check", str(entries / "constant"))
    assert code == 1
    assert "run.json does not match the JSON Schema of the run record: $.seed: 'zero' is not of type" in out
    assert str(entries) not in out  # no local path in a report meant to be pasted


def test_check_without_jsonschema_says_what_to_install(cli, entries, monkeypatch):
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    code, out, _ = cli("leaderboard", "check", str(entries / "random"))
    assert code == 1 and "cannot check here" in out and "pip install jsonschema" in out
    assert "NOT FULLY CHECKED HERE" in out


@pytest.mark.parametrize(("line", "problem"), [(b"[" * 100_000 + b"]" * 100_000, "nested deeper than"),
                                               (b'{"id": "\xff\xfe"}', "not UTF-8 text")])
def test_check_reports_a_deeply_nested_or_non_utf8_log_line_as_one_failure(cli, entries, line, problem):
    import hashlib

    entry = entries / "constant"
    log = entry / "samples-DF-D.jsonl"
    data = log.read_bytes() + line + b"\n"
    log.write_bytes(data)
    record = json.loads((entry / "run.json").read_text())
    record["samples"]["DF-D"]["sha256"] = hashlib.sha256(data).hexdigest()
    (entry / "run.json").write_text(json.dumps(record))
    code, out, err = cli("leaderboard", "check", str(entry))
    assert code == 1 and "Traceback" not in out + err
    assert "samples-DF-D.jsonl: 1 of 21 lines do not match the JSON Schema" in out and problem in out
