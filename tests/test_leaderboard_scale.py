"""What keeps big builds and checks fast (benchmarks/bench_leaderboard.py measures them) without changing a byte:
entries verified in parallel processes give the same files as one process; the tie test's rows made where an
entry was verified are those of its log; the checker validates each shape of log line once and still finds
every line that leaves the published schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmaker import submitted_entries

from dfabench.leaderboard import build_leaderboard
from dfabench.leaderboard.build import load_one
from dfabench.leaderboard.check import shape_function
from dfabench.leaderboard.ties import sample_rows
from dfabench.records import SCHEMA_DIR, SCHEMA_FILES
from dfabench.store import RunFolder


@pytest.fixture
def entries(cli, tiny_bench, tmp_path) -> Path:
    return submitted_entries(cli, tiny_bench, tmp_path)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_entries_verified_in_parallel_processes_give_the_same_files(entries, tmp_path):
    (entries / "broken").mkdir()  # excluded with its reason, in either way
    (entries / "broken" / "run.json").write_text("{")
    one = build_leaderboard(entries, tmp_path / "one", jobs=1)
    two = build_leaderboard(entries, tmp_path / "two", jobs=2)
    assert one.excluded == two.excluded and len(one.excluded) == 1 and one.excluded[0].startswith("broken: ")
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    ranking = one.data["boards"][0]["tasks"]["DF-D"]["ranking"]
    assert ranking["method"] == "paired cluster bootstrap" and ranking["n_samples"] == 20


def test_the_rows_made_where_an_entry_was_verified_are_those_of_its_log(entries):
    loaded = load_one(entries / "random-1", {})
    assert loaded.excluded is None and loaded.report.startswith("## dfabench leaderboard check")
    rows = loaded.entry.rows
    assert set(rows) == {"DF-D", "DF-C"}
    [(metric, made)] = rows["DF-D"].items()
    assert metric == build_leaderboard(entries, entries.parent / "lb").data["boards"][0]["tasks"]["DF-D"][
        "ranking"]["metric"]  # the metric the board ranks by
    fresh = sample_rows(metric, RunFolder(entries / "random-1").read_samples("DF-D"))
    assert made.ids_sha256 == fresh.ids_sha256 and made.n == 20 and made.clusters == fresh.clusters
    assert made.matrix.shape == fresh.matrix.shape and (made.matrix == fresh.matrix).all()


def test_lines_of_one_shape_share_a_verdict_and_every_bad_line_is_found(entries, tmp_path):
    import jsonschema

    from dfabench.leaderboard.check import _log_errors

    schema = json.loads((SCHEMA_DIR / SCHEMA_FILES["sample-record"]).read_text())
    shape = shape_function(schema)
    good = RunFolder(entries / "constant").read_samples("DF-D")
    assert len({shape(s) for s in good}) <= 2  # 20 lines, one or two shapes: validated once or twice
    bad = [dict(good[0], parsed_by="magic"), dict(good[1], score="high"), dict(good[2], source_id=1.5),
           dict(good[3], judge={"score": "x"}), {k: v for k, v in good[4].items() if k != "id"}]
    ok = [dict(good[5], source_id=3.0), dict(good[6], extra={"anything": [1]}), dict(good[7], metrics={"a": "b"})]
    validator = jsonschema.Draft202012Validator(schema)
    for sample in bad:
        assert not validator.is_valid(sample) and all(shape(sample) != shape(s) for s in good)
    for sample in ok:
        assert validator.is_valid(sample)
    log = tmp_path / "samples-DF-D.jsonl"
    log.write_text("".join(json.dumps(s) + "\n" for s in [*good, *ok, *bad, *good]))
    status, text = _log_errors(validator, log)
    assert status == "FAIL" and f"{len(bad)} of {2 * len(good) + len(ok) + len(bad)} lines" in text
    assert f"line {len(good) + len(ok) + 1}:" in text  # the first bad line, named
    log.write_text("".join(json.dumps(s) + "\n" for s in [*good, *ok]))
    assert _log_errors(validator, log)[0] == "ok"


def test_a_schema_keyword_the_shapes_do_not_know_keys_on_the_whole_value():
    shape = shape_function({"type": "object", "properties": {"x": {"type": "string", "pattern": "^a"}}})
    assert shape({"x": "abc"}) != shape({"x": "bcd"})
    plain = shape_function({"type": "object", "properties": {"x": {"type": "string"}}})
    assert plain({"x": "abc"}) == plain({"x": "bcd"}) != plain({"x": 1})


def test_jobs_below_one_is_one_clear_error(cli, entries, tmp_path):
    code, _, err = cli("leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "lb"), "--jobs", "0")
    assert code == 2 and "--jobs must be at least 1, not 0" in err
    assert not (tmp_path / "lb").exists()
