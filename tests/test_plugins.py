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
