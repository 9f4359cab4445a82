"""The plugin manager: registration, lazy factories, isolation of broken plugins, did-you-mean."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import pytest

from dfabench import hookimpl
from dfabench.errors import DfabenchError, UnknownNameError
from dfabench.plugins import PluginManager


def _module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    return module


def test_builtins_register_through_the_hooks():
    manager = PluginManager(load_entry_points=False)
    assert {"constant", "random"} <= set(manager.models)
    assert {"DF-D", "DF-C", "AD", "FC", "FL"} <= set(manager.tasks)
    assert {"detection", "ranking", "classification"} <= set(manager.metrics)
    builtin = manager.plugins[0]
    assert builtin.builtin and builtin.error is None
    assert builtin.hooks == sorted(["dfabench_register_commands", "dfabench_register_importers",
                                    "dfabench_register_metrics", "dfabench_register_models",
                                    "dfabench_register_parsers", "dfabench_register_sample_filters",
                                    "dfabench_register_tasks"])


def test_string_factory_is_imported_only_when_created():
    def register_models(register):
        register("lazy", "dfabench_nonexistent_module_xyz:Model", capabilities=("generate",))

    plugin = _module("p", dfabench_register_models=register_models)
    manager = PluginManager(load_entry_points=False, extra_plugins=[plugin])
    entry = manager.models.get("lazy")  # listing works: nothing imported
    assert entry.capabilities == ("generate",)
    with pytest.raises(DfabenchError, match="cannot import 'dfabench_nonexistent_module_xyz'"):
        entry.create()


def test_a_hook_that_raises_is_reported_and_the_rest_still_load():
    def broken(register):
        raise RuntimeError("boom in plugin")

    def good(register):
        register("good-model", "dfabench.models:ConstantModel")

    plugins = [_module("broken_plugin", dfabench_register_models=broken),
               _module("good_plugin", dfabench_register_models=good)]
    manager = PluginManager(load_entry_points=False, extra_plugins=plugins)
    assert "good-model" in manager.models and "constant" in manager.models
    [bad] = manager.broken()
    assert bad.name == "broken_plugin" and "RuntimeError: boom in plugin" in bad.error


def test_bad_capability_is_a_plugin_error():
    def register_models(register):
        register("x", "m:X", capabilities=("telepathy",))

    plugin = _module("p", dfabench_register_models=register_models)
    manager = PluginManager(load_entry_points=False, extra_plugins=[plugin])
    assert "telepathy" in manager.broken()[0].error


def test_unknown_names_get_did_you_mean():
    manager = PluginManager(load_entry_points=False)
    with pytest.raises(UnknownNameError, match=r"unknown model 'constnt'; did you mean 'constant'"):
        manager.models.get("constnt")
    assert manager.models.get("CONSTANT").name == "constant"  # case-insensitive
    assert manager.tasks.get("dfd").id == "DF-D"  # alias


def test_broken_plugin_module_never_breaks_the_cli(tmp_path):
    (tmp_path / "dfabench_broken_plugin.py").write_text("raise ImportError('this plugin is broken on purpose')\n")
    (tmp_path / "dfabench_ok_plugin.py").write_text(textwrap.dedent("""
        from dfabench import hookimpl

        @hookimpl
        def dfabench_register_models(register):
            register("ok-model", "dfabench.models:ConstantModel", description="from an env plugin")
    """))
    env = {"PYTHONPATH": str(tmp_path), "DFABENCH_PLUGINS": "dfabench_broken_plugin,dfabench_ok_plugin",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "dfabench.cli", "models"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "ok-model" in out.stdout and "constant" in out.stdout
    assert "dfabench_broken_plugin" in out.stderr and "broken on purpose" in out.stderr
    out = subprocess.run([sys.executable, "-m", "dfabench.cli", "plugins"], capture_output=True, text=True, env=env)
    assert out.returncode == 0
    assert "BROKEN: ImportError: this plugin is broken on purpose" in out.stdout


def test_listing_models_imports_no_heavy_library():
    code = ("import sys; from dfabench.cli import main; main(['models']); "
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'nltk', 'sentence_transformers', 'openai', "
            "'sklearn', 'lmms_eval') if m in sys.modules]; print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


_QA_SPEC = """\
id: {id}
version: "1"
requires: [generate]
samples: all
reference: label
prompt: "Is this face real or fake?"
parser: detection
metrics: [{metric}]
{extra}
"""


@pytest.fixture
def qa_plugin(cli, monkeypatch, tmp_path):
    """An env plugin registering QA-D from a YAML spec with a key typo, and QA-M naming an unknown metric."""
    (tmp_path / "v1.yaml").write_text(_QA_SPEC.format(id="QA-D", metric="detection", extra="promtp: typo"))
    (tmp_path / "m1.yaml").write_text(_QA_SPEC.format(id="QA-M", metric="detecton", extra=""))
    (tmp_path / "dfabench_qa_bad_tasks.py").write_text(textwrap.dedent(f"""
        from dfabench import hookimpl

        @hookimpl
        def dfabench_register_tasks(register):
            register({str(tmp_path / "v1.yaml")!r})
    """))
    (tmp_path / "dfabench_qa_metric_task.py").write_text(textwrap.dedent(f"""
        from dfabench import hookimpl

        @hookimpl
        def dfabench_register_tasks(register):
            register({str(tmp_path / "m1.yaml")!r})
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("dfabench_qa_bad_tasks", "dfabench_qa_metric_task"):  # imported by an earlier test: from its folder
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels,dfabench_qa_bad_tasks,dfabench_qa_metric_task")
    return tmp_path


def test_a_plugin_whose_task_spec_fails_is_warned_about_and_named_first_without_core_paths(qa_plugin, cli,
                                                                                           tiny_bench):
    for command in (("tasks",), ("tasks", "--json"), ("models",), ("models", "--json")):
        code, out, err = cli(*command)
        assert code == 0, err
        [line] = [x for x in err.splitlines() if "dfabench_qa_bad_tasks" in x]
        assert line.startswith("warning: plugin dfabench_qa_bad_tasks") and "v1.yaml" in line and "promtp" in line
        assert "dfabench/tasks.py" not in line and "dfabench/plugins.py" not in line
    code, _, err = cli("run", "--model", "constant", "--tasks", "QA-D", "--bench", str(tiny_bench),
                       "--out", str(qa_plugin / "run"), "--no-progress")
    assert code == 2
    assert err.index("failed to load") < err.index("did you mean"), err  # the likely cause first
    assert "v1.yaml" in err and "dfabench/tasks.py" not in err
    code, _, err = cli("run", "--model", "constnt", "--tasks", "DF-D", "--bench", str(tiny_bench),
                       "--out", str(qa_plugin / "run"), "--no-progress")
    # the broken plugin failed in its task hook: not a cause of an unknown model
    assert code == 2 and "did you mean 'constant'" in err and "dfabench_qa_bad_tasks" not in err


def test_a_task_spec_naming_an_unknown_metric_is_refused_naming_the_spec_file(qa_plugin, cli, tiny_bench):
    code, _, err = cli("run", "--model", "constant", "--tasks", "QA-M", "--bench", str(tiny_bench),
                       "--out", str(qa_plugin / "run"), "--no-progress")
    assert code == 2 and "m1.yaml" in err and "unknown metric 'detecton'" in err, err
    assert "did you mean 'detection'" in err
    assert not (qa_plugin / "run" / "run.json").exists()


@pytest.mark.parametrize(("name", "distribution"), [("openai", "dfabench-openai"), ("HF", "dfabench-hf"),
                                                    ("lmms-eval", "dfabench-lmms"), ("dfagpt", "dfabench-dfagpt"),
                                                    ("dfb-xception", "dfabench-detectors"),
                                                    ("learned-mobilenet", "dfabench-detectors")])
def test_an_unknown_first_party_model_names_its_plugin_and_the_install_command(name, distribution):
    manager = PluginManager(load_entry_points=False)
    with pytest.raises(UnknownNameError, match=f"first-party plugin {distribution}.*pip install -e "
                                               f"plugins/{distribution}"):
        manager.models.get(name)
    with pytest.raises(UnknownNameError) as caught:
        manager.models.get("constnt")
    assert "pip install" not in str(caught.value)


def test_the_judge_and_run_both_say_which_plugin_provides_an_unknown_model(cli, tmp_path, tiny_bench):
    from dfabench.plugins import reset_manager
    from dfabench.roles import check_role_entry

    reset_manager(PluginManager(load_entry_points=False))  # as in the demo's venv: no first-party plugin installed
    with pytest.raises(UnknownNameError, match="pip install -e plugins/dfabench-openai"):
        check_role_entry("judge", "openai")
    code, _, err = cli("run", "--model", "hf", "--tasks", "DF-D", "--bench", str(tiny_bench),
                       "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 2 and "pip install -e plugins/dfabench-hf" in err, err
