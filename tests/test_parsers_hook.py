"""Parsers are a registry filled through ``dfabench_register_parsers`` (issue 9): a plugin adds a
parser and a task spec naming it, and a run with that task works; a spec naming an unregistered
parser is one clear error naming the spec's file."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from dfabench import hookimpl
from dfabench.errors import InputError
from dfabench.parsing import PARSERS
from dfabench.plugins import PluginManager


def _plugin(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook, impl in hooks.items():
        setattr(module, hook, hookimpl(impl))
    return module


def test_builtin_parsers_come_through_the_hook():
    manager = PluginManager(load_entry_points=False)
    assert set(manager.parsers) == set(PARSERS)
    for name, parse in PARSERS.items():
        assert manager.parsers.get(name).load() is parse and manager.parsers.get(name).plugin == "dfabench"
    for task_id in manager.tasks:
        assert manager.parser_for(manager.tasks.get(task_id)) is PARSERS[manager.tasks.get(task_id).parser]


def test_a_plugin_parser_runs_in_a_task_the_plugin_registers(cli, monkeypatch, tiny_bench, tmp_path):
    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels,dfabench_testparsers")
    code, out, err = cli("run", "--model", "constant", "--model-arg", "text=Hmm. VERDICT: FAKE", "--tasks",
                         "VERDICT-D", "--bench", str(tiny_bench), "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 0, err
    lines = (tmp_path / "run" / "samples-VERDICT-D.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records and all(r["parsed"] == "fake" and not r["unparsed"] for r in records)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    accuracy = run["metrics"]["VERDICT-D"]["accuracy"]["value"]
    assert accuracy == pytest.approx(sum(r["label"] == "fake" for r in records) / len(records))


def test_an_unregistered_parser_is_one_error_naming_the_spec_file(cli, monkeypatch, tiny_bench, tmp_path):
    spec = tmp_path / "bad-task.yaml"
    spec.write_text("id: BAD-P\nversion: '1'\nrequires: generate\nsamples: all\nreference: label\n"
                    "prompt: Real or fake?\nparser: no-such-parser\nmetrics: detection\n")
    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels,dfabench_testparsers")
    monkeypatch.setenv("DFABENCH_TEST_TASK_YAML", str(spec))
    code, out, err = cli("run", "--model", "constant", "--tasks", "BAD-P", "--bench", str(tiny_bench),
                         "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 2
    assert str(spec) in err and "'no-such-parser' is not registered" in err and "verdict" in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert not (tmp_path / "run" / "run.json").exists()


def test_a_parser_name_two_plugins_register_is_refused():
    def one(register):
        register("mine", lambda text, options=None: "fake")

    def two(register):
        register("mine", lambda text, options=None: "real")

    def task(register):
        register({"id": "MINE", "version": "1", "requires": "generate", "samples": "all", "reference": "label",
                  "prompt": "?", "parser": "mine", "metrics": "detection"})

    manager = PluginManager(load_entry_points=False, extra_plugins=[
        _plugin("p_one", dfabench_register_parsers=one, dfabench_register_tasks=task),
        _plugin("p_two", dfabench_register_parsers=two)])
    assert "mine" not in manager.parsers and any("parser 'mine'" in c for p in manager.clashing() for c in p.clashes)
    with pytest.raises(InputError, match="more than one plugin"):
        manager.parser_for(manager.tasks.get("MINE"))


def test_the_task_spec_no_longer_keeps_a_closed_list_of_parsers():
    from dfabench.tasks import TaskSpec

    spec = TaskSpec.from_dict({"id": "X", "version": "1", "requires": "generate", "samples": "all",
                               "reference": "label", "prompt": "?", "parser": "a-plugin-parser",
                               "metrics": "detection"})
    assert spec.parser == "a-plugin-parser"
    with pytest.raises(InputError, match="'parser'"):
        TaskSpec.from_dict({"id": "X", "version": "1", "requires": "generate", "samples": "all",
                            "reference": "label", "prompt": "?", "parser": ["x"], "metrics": "detection"})


def test_the_readme_documents_the_parsers_hook():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "dfabench_register_parsers(register)" in readme and '"parser": "verdict"' in readme
