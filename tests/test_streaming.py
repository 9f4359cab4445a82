"""Streaming per-sample logs (issue 14, part 4): logs read and written as streams, ``score`` and ``verify``
of a log read once as compact columns, to the same bytes as the list of its records gives.

Speed and memory at a million samples are measured by benchmarks/bench_score_1m.py, not here.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dfabench.errors import InputError
from dfabench.files import sample_line, samples_text
from dfabench.metrics import RowValues
from dfabench.metrics.statistics import Clusters, factorize_clusters
from dfabench.records.sample import SampleColumns
from dfabench.scoring import rescore_record, rescore_run, scored_records
from dfabench.selection import ids_sha256
from dfabench.store import RunFolder, SampleLog
from dfabench.transaction import _FAULTS

CATEGORIES = ["FS", "FR", "FE", "EFS"]


def _varied(rng: random.Random, i: int, task: str, base: dict) -> dict:
    """A per-sample record with everything scoring has to get right: failures, unparsed answers, missing
    and odd fields, ties and missing scores, clusters by source_id (or the id, or an integer)."""
    record = dict(base)
    fake = rng.random() < 0.65
    category = rng.choice(CATEGORIES) if fake else None
    record.update(id=f"v{i}" + ("é" if i % 11 == 0 else ""), label="fake" if fake else "real", category=category,
                  technique=rng.choice(["a", "b", None, "z"]) if fake else rng.choice([None, "r"]))
    source = rng.choice([f"src{rng.randrange(40)}", None, rng.randrange(25), "missing"])
    if source == "missing":
        record.pop("source_id", None)
    else:
        record["source_id"] = source
    if task == "DF-D":
        record.update(reference=record["label"], parsed=rng.choice(["real", "fake", "fake", None, "maybe"]))
    else:
        record.update(reference=category if fake else rng.choice([None, "real"]),
                      parsed=rng.choice([*CATEGORIES, None, "real"]))
    kind = rng.choice(["float", "float", "tie", "int", None, "missing"])
    score = {"float": rng.random(), "tie": round(rng.random(), 1), "int": rng.randrange(2), None: None}
    if kind == "missing":
        record.pop("score", None)
    else:
        record["score"] = score[kind]
    record["unparsed"] = rng.choice([False, False, True, None])
    record["error"] = rng.choice([None, None, None, None, "", "the model failed"])
    record["metrics"] = rng.choice([None, {"correct": True, "kept": 1}, {}])
    return record


def _synthesize(run: Path, n: int, seed: int = 0, duplicate: bool = False) -> None:
    """Replace the logs of ``run`` by ``n`` varied records each (hashes updated, as a run would write them)."""
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    rng = random.Random(seed)
    for task in ("DF-D", "DF-C"):
        path = run / f"samples-{task}.jsonl"
        base = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
        rows = [_varied(rng, i, task, base) for i in range(n)]
        if duplicate:
            rows.append(dict(rows[0], score=0.25))
        text = samples_text(rows)
        path.write_text(text, encoding="utf-8")
        record["samples"][task]["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    (run / "run.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _rescore_as_lists(run: Path) -> None:
    """What ``dfabench score`` did before logs were streamed: every log read as a list of records, scored
    in place and written whole."""
    folder = RunFolder(run)
    with folder.transaction() as tx:
        record = folder.read_record()
        folder.check_integrity(record, "re-score it")
        samples = {task: folder.read_samples(task) for task in record["samples"]}
        record = rescore_record(folder, record, bench_root=None, tx=tx, samples=samples)
        tx.write_record(record)


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.suffix in (".json", ".jsonl")}


# --------------------------------------------------------------------------- reading


def test_iter_samples_yields_the_records_one_by_one_and_names_file_and_line_of_a_bad_one(run_dir):
    folder = RunFolder(run_dir)
    records = folder.read_samples("DF-D")
    path = folder.samples_path("DF-D")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + "\n" + '{"id": "x", "score": "high"}\n' + "".join(lines[3:]),
                    encoding="utf-8")
    stream = folder.iter_samples("DF-D")
    assert [next(stream) for _ in range(3)] == records[:3]  # read before the bad line is reached
    with pytest.raises(InputError) as streamed:
        next(stream)
    message = str(streamed.value)
    assert "samples-DF-D.jsonl" in message and "line 5" in message and "$.score" in message
    with pytest.raises(InputError) as listed:
        folder.read_samples("DF-D")
    with pytest.raises(InputError) as columns:
        folder.sample_log("DF-D")
    assert str(listed.value) == str(columns.value) == message


def test_iter_samples_refuses_malformed_json_and_a_missing_log_with_one_line(run_dir):
    folder = RunFolder(run_dir)
    path = folder.samples_path("DF-C")
    path.write_text(path.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    n = len(path.read_text(encoding="utf-8").splitlines())
    with pytest.raises(InputError, match=rf"samples-DF-C\.jsonl.*line {n}.*malformed JSON"):
        list(folder.iter_samples("DF-C"))
    with pytest.raises(InputError, match="no per-sample log for task AD"):
        next(folder.iter_samples("AD"))


def test_a_sample_log_is_the_sequence_of_the_records(run_dir):
    folder = RunFolder(run_dir)
    _synthesize(run_dir, 300, seed=3)
    path = folder.samples_path("DF-D")
    path.write_text("\n" + path.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")  # blank lines are skipped
    records = folder.read_samples("DF-D")
    with folder.sample_log("DF-D") as log:
        assert isinstance(log, SampleLog) and len(log) == len(records) == log.columns.n == 300
        assert list(log) == records and list(log) == records  # read again from the file, each time
        assert log[0] == records[0] and log[-1] == records[-1] and log[10:13] == records[10:13]
        first = next(iter(log))
        first["metrics"] = "changed"
        assert log[0] == records[0]  # fresh dicts: changing one changes nothing
        assert list(log.columns.ids) == [r["id"] for r in records]
        assert [log.columns["parsed"][i] for i in range(300)] == [r.get("parsed") for r in records]


# --------------------------------------------------------------------------- writing


def test_write_samples_streams_a_generator_to_the_same_bytes_and_file_operations(run_dir):
    folder = RunFolder(run_dir)
    records = folder.read_samples("DF-D") * 50
    with folder.transaction() as tx:
        tx.write_text("first.txt", "the staging folder is made here\n")
        before = _FAULTS.count
        whole = tx.write_bytes("whole.jsonl", samples_text(records).encode("utf-8"))
        steps_whole = _FAULTS.count - before
        before = _FAULTS.count
        streamed = tx.write_lines("streamed.jsonl", (sample_line(r) for r in records))
        steps_streamed = _FAULTS.count - before
        assert tx.path_of("whole.jsonl").read_bytes() == tx.path_of("streamed.jsonl").read_bytes()
        tx.abort()
    assert whole == streamed and steps_whole == steps_streamed  # fault injection counts the same steps


# --------------------------------------------------------------------------- scoring


@pytest.mark.parametrize("duplicate", [False, True], ids=["unique-ids", "a-duplicate-id"])
def test_score_of_a_streamed_log_gives_the_bytes_of_the_list_path(run_dir, tmp_path, duplicate):
    _synthesize(run_dir, 2000, seed=1, duplicate=duplicate)
    listed, streamed = tmp_path / "listed", tmp_path / "streamed"
    shutil.copytree(run_dir, listed)
    shutil.copytree(run_dir, streamed)
    _rescore_as_lists(listed)
    rescore_run(streamed)
    assert _files(listed) == _files(streamed)
    record = json.loads((streamed / "run.json").read_text(encoding="utf-8"))
    assert record["counts"]["DF-D"]["n"] == 2000 + duplicate and record["counts"]["DF-D"]["n_failed"] > 0
    assert record["metrics"]["DF-D"]["auc"]["value"] is not None
    assert record["breakdowns"]["DF-C"]["classification"]["n_without_reference"] > 0


def test_score_and_verify_of_a_streamed_run_agree(cli, run_dir):
    _synthesize(run_dir, 500, seed=2)
    code, out, err = cli("score", str(run_dir))
    assert code == 0, err
    code, out, _ = cli("verify", str(run_dir))
    # the synthesized logs are not the recorded selection; everything else holds
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert failed and all("recorded selection" in line for line in failed), out
    import re

    assert re.search(r"DF-D: [1-9]\d* metrics re-derived exactly from the per-sample log", out), out
    assert "DF-C: breakdowns re-derived exactly" in out


def test_verify_reads_a_log_as_columns_and_still_names_what_does_not_hold(cli, run_dir):
    folder = RunFolder(run_dir)
    records = folder.read_samples("DF-D")
    records[2]["task"] = "DF-C"
    records[4]["model_fingerprint"] = "0" * 64
    records.append(dict(records[1]))
    text = samples_text(records)
    folder.samples_path("DF-D").write_text(text, encoding="utf-8")
    record = folder.read_record()
    record["samples"]["DF-D"]["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    folder.record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    code, out, _ = cli("verify", str(run_dir))
    assert code == 1
    assert "DF-D: 1 per-sample records name another task (e.g. 'DF-C')" in out
    assert "DF-D: 1 per-sample records carry another model fingerprint (000000000000)" in out
    assert f"DF-D: 1 sample ids are logged more than once (e.g. [{records[1]['id']!r}])" in out


def test_scored_records_merge_row_values_and_dicts_in_provider_order():
    records = [{"id": "a", "metrics": {"old": 1, "x": 0}}, {"id": "b"}, {"id": "c", "metrics": None}]
    # values of the samples at rows 0 and 2; a later provider's value wins, in the place of the first
    parts = [RowValues(["a", "b", "c"], {"x": np.array([True, False])}, rows=[0, 2], convert=bool),
             {"b": {"y": 2}, "c": {"z": 3, "x": True}, "nobody": {"y": 9}}, {}]
    merged = list(scored_records(records, parts))
    assert merged == [{"id": "a", "metrics": {"old": 1, "x": True}}, {"id": "b", "metrics": {"y": 2}},
                      {"id": "c", "metrics": {"x": True, "z": 3}}]
    assert list(merged[2]["metrics"]) == ["x", "z"]
    assert dict(parts[0].items()) == {"a": {"x": True}, "c": {"x": False}} and parts[0]["c"] == {"x": False}


# --------------------------------------------------------------------------- columns and clusters


def test_clusters_taken_from_a_subset_are_those_of_factorizing_the_subset():
    rng = np.random.default_rng(0)
    keys = [f"s{k}" for k in rng.integers(0, 60, size=2000)]
    codes, n_clusters = factorize_clusters(keys)
    clusters = Clusters(codes, n_clusters)
    for _ in range(20):
        rows = rng.permutation(2000)[: rng.integers(0, 2000)]
        expected = factorize_clusters([keys[i] for i in rows])
        got = clusters.take(rows)
        assert np.array_equal(got.codes, expected[0]) and got.n_clusters == expected[1]
    mask = rng.random(2000) < 0.3
    subset = [k for k, m in zip(keys, mask, strict=True) if m]
    assert np.array_equal(clusters.take(mask).codes, factorize_clusters(subset)[0])


def test_columns_cluster_as_the_list_path_and_find_duplicate_ids():
    records = [{"id": "a", "source_id": "s"}, {"id": "b"}, {"id": "s"}, {"id": "c", "source_id": 5},
               {"id": "d", "source_id": "5"}, {"id": "b", "source_id": None}]
    columns = SampleColumns()
    for record in records:
        columns.add(record)
    expected = factorize_clusters([r.get("source_id") if r.get("source_id") is not None else r["id"] for r in records])
    assert np.array_equal(columns.clusters.codes, expected[0]) and columns.clusters.n_clusters == expected[1]
    assert columns.duplicate_ids() == ["b"]
    ids = [f"id-{i}" for i in range(5000)]
    from dfabench.evidence import sorted_ids_sha256

    assert sorted_ids_sha256(reversed(ids)) == ids_sha256(ids)


def test_the_columns_of_a_log_take_a_small_fraction_of_its_records():
    rng = random.Random(0)
    base = {"task": "DF-D", "model_fingerprint": "f" * 64, "prompt": None, "prompt_hash": "score",
            "response": None, "category_scores": None, "cached": False, "timings": {"model_s": 0.001},
            "tokens": None, "judge": None, "parsed_by": "score"}
    n = 50_000
    tracemalloc.start()
    try:
        columns = SampleColumns()
        for i in range(n):
            columns.add(_varied(rng, i, "DF-D", base) | {"source_id": f"src{i // 8}"})
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a list of these records holds over 1,000 bytes a sample; the columns, the distinct source ids included,
    # about 100
    assert held / n < 250


def test_a_coded_column_widens_its_codes_as_distinct_values_come():
    from dfabench.records.sample import CodedColumn

    column = CodedColumn()
    values = [f"v{i}" for i in range(40_000)] + [None, 1, 1.0, True, {"a": [1]}, [1], "v7"]
    for value in values:
        column.append(value)
    assert [column[i] for i in range(len(values))] == values
    assert [type(column[i]) for i in range(len(values))] == [type(v) for v in values]  # 1, 1.0 and true stay apart
    assert column.codes.dtype == np.int32 and column.codes[-1] == column.codes[7]


def test_a_plugin_metric_reads_the_streamed_records_as_dicts_and_its_per_sample_values_land(
        cli, monkeypatch, tiny_bench, tmp_path):
    import dfabench_testparsers

    from dfabench.metrics import MetricOutput, MetricResult

    seen = []

    def answer_lengths(records, context):
        seen.append(type(records).__name__)
        first = records[0]
        assert isinstance(first, dict) and set(first) >= {"id", "response", "parsed", "timings"}
        assert len(records) == sum(1 for _ in records) == len(list(records))  # iterated again: the same
        per_sample = {r["id"]: {"answer_length": len(r.get("response") or "")} for i, r in enumerate(records) if i % 2}
        return MetricOutput(metrics={"fake_rate": MetricResult(0.5, None, None, len(records))}, per_sample=per_sample)

    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels,dfabench_testparsers")
    out = tmp_path / "run"
    code, _, err = cli("run", "--model", "constant", "--model-arg", "text=VERDICT: FAKE", "--tasks", "VERDICT-D",
                       "--bench", str(tiny_bench), "--out", str(out), "--no-progress")
    assert code == 0, err
    monkeypatch.setattr(dfabench_testparsers, "fake_rate", answer_lengths)
    listed = tmp_path / "listed"
    shutil.copytree(out, listed)
    _rescore_as_lists(listed)
    code, _, err = cli("score", str(out))
    assert code == 0, err
    assert seen == ["list", "SampleLog"]
    assert _files(listed) == _files(out)
    records = RunFolder(out).read_samples("VERDICT-D")
    assert list(records[1]["metrics"]) == ["correct", "answer_length"]  # in the providers' order
    assert records[1]["metrics"]["answer_length"] == len("VERDICT: FAKE")
    assert "answer_length" not in records[0]["metrics"]
