"""Sample filters are a registry filled through ``dfabench_register_sample_filters`` (issue 9): a task
spec's ``samples`` names one, a plugin adds its own (tests/dfabench_testparsers.py: ``named-technique``),
and a run records what the filter left out, by reason; a spec naming an unregistered filter is one clear
error naming the spec's file."""

from __future__ import annotations

import json

from dfabench.data.manifest import load_benchmark
from dfabench.plugins import PluginManager
from dfabench.selection import select_samples
from dfabench.tasks import BUILTIN_SAMPLE_FILTERS


def test_builtin_filters_come_through_the_hook_and_every_builtin_task_names_one():
    manager = PluginManager(load_entry_points=False)
    assert set(manager.sample_filters) == set(BUILTIN_SAMPLE_FILTERS)
    assert {manager.sample_filters.get(n).plugin for n in manager.sample_filters} == {"dfabench"}
    for task_id in manager.tasks:
        task = manager.tasks.get(task_id)
        assert callable(manager.sample_filter_for(task))


def test_builtin_filters_keep_their_selection_and_reasons(tiny_bench):
    from dfabench.plugins import get_task

    bench = load_benchmark(tiny_bench)
    pool = bench.select("test")
    chosen, selection = select_samples(get_task("DF-C"), pool, "test")
    assert len(chosen) == 12 and all(s.label == "fake" and s.category for s in chosen)
    assert selection["excluded"] == {"real (the task takes fakes)": 8}
    chosen, selection = select_samples(get_task("DF-D"), pool, "test")
    assert len(chosen) == 20 and selection["excluded"] == {}


def test_a_plugin_filter_selects_the_samples_of_its_task(cli, monkeypatch, tiny_bench, tmp_path):
    manifest = tiny_bench / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    fakes = [r for r in records if r["label"] == "fake"]
    for record in fakes[:5]:
        record["technique"] = None
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels,dfabench_testparsers")
    code, out, err = cli("run", "--model", "constant", "--model-arg", "text=VERDICT: FAKE", "--tasks", "VERDICT-T",
                         "--bench", str(tiny_bench), "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 0, err
    logged = [json.loads(line) for line in (tmp_path / "run" / "samples-VERDICT-T.jsonl").read_text().splitlines()]
    assert len(logged) == len(fakes) - 5
    selection = json.loads((tmp_path / "run" / "run.json").read_text())["tasks"]["VERDICT-T"]["selection"]
    assert selection["excluded"] == {"fake without a technique": 5, "real (the task takes fakes)": 8}
    assert selection["n"] == selection["n_available"] == len(fakes) - 5
    code, out, err = cli("verify", str(tmp_path / "run"), "--bench", str(tiny_bench))
    assert code == 0, out + err


def test_an_unregistered_filter_is_one_error_naming_the_spec_file(cli, monkeypatch, tiny_bench, tmp_path):
    spec = tmp_path / "bad-filter.yaml"
    spec.write_text("id: BAD-F\nversion: '1'\nrequires: generate\nsamples: frontal-faces\nreference: label\n"
                    "prompt: Real or fake?\nparser: detection\nmetrics: detection\n")
    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels,dfabench_testparsers")
    monkeypatch.setenv("DFABENCH_TEST_TASK_YAML", str(spec))
    code, out, err = cli("run", "--model", "constant", "--tasks", "BAD-F", "--bench", str(tiny_bench),
                         "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 2
    assert str(spec) in err and "sample filter 'frontal-faces' is not registered" in err and "named-technique" in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert not (tmp_path / "run").exists() or not (tmp_path / "run" / "run.json").exists()
