"""The command registry (``dfabench_register_commands``): plugins add commands and groups, a broken
command is listed with its error and exits 2, the core's commands register through the same hook,
and argparse lives in dfabench/cli/ only."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dfabench
from dfabench.cli import build_parser, main
from dfabench.plugins import PluginManager, reset_manager

TESTS = Path(__file__).parent
CORE_COMMANDS = ["plugins", "models", "tasks", "importers", "bench", "import", "import-predictions", "run", "score",
                 "judge", "leaderboard", "merge", "sweep", "verify", "chat", "export", "resources", "view"]


@pytest.fixture
def with_test_commands():
    sys.path.insert(0, str(TESTS))
    try:
        module = importlib.import_module("dfabench_testcommands")
        reset_manager(PluginManager(load_entry_points=False, extra_plugins=[module]))
        yield module
    finally:
        reset_manager(None)
        sys.path.remove(str(TESTS))


def _subcommands(parser) -> dict[str, str]:
    action = next(a for a in parser._actions if a.dest == "command")
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_help_lists_every_core_command_in_order(capsys):
    reset_manager(PluginManager(load_entry_points=False))
    try:
        assert list(_subcommands(build_parser()))[:len(CORE_COMMANDS)] == CORE_COMMANDS
        with pytest.raises(SystemExit) as exit_info:
            main(["--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert all(f"    {name}" in out for name in CORE_COMMANDS)
    finally:
        reset_manager(None)


def test_a_plugin_adds_a_command_and_a_group(with_test_commands, capsys):
    assert main(["greet", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    assert main(["greet", "world", "--shout"]) == 0
    assert capsys.readouterr().out == "HELLO WORLD\n"
    assert main(["greet", "nobody"]) == 1
    assert main(["testgroup", "hello"]) == 0
    assert capsys.readouterr().out == "hello from the group\n"
    assert main(["testgroup"]) == 2  # a group alone: its help
    assert "hello" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # argparse usage errors stay exit 2
        main(["greet"])
    assert exit_info.value.code == 2


def test_a_broken_command_is_listed_with_its_error_and_exits_2(with_test_commands, capsys):
    listed = _subcommands(build_parser())
    assert "greet" in listed and "testgroup" in listed
    assert "(broken: cannot import 'dfabench_no_such_module'" in listed["broken-import"]
    assert "(broken: RuntimeError: this add_arguments is broken on purpose)" in listed["broken-args"]

    assert main(["broken-import", "--any", "thing"]) == 2
    err = capsys.readouterr().err
    assert "command 'broken-import' is broken: cannot import 'dfabench_no_such_module'" in err
    assert main(["broken-args"]) == 2
    assert "this add_arguments is broken on purpose" in capsys.readouterr().err

    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "BROKEN command 'broken-import': cannot import 'dfabench_no_such_module'" in out
    assert "BROKEN command 'broken-args': RuntimeError" in out


def test_two_plugins_claiming_a_command_clash(with_test_commands, capsys):
    import types

    from dfabench import hookimpl

    other = types.ModuleType("dfabench_other_commands")
    other.dfabench_register_commands = hookimpl(
        lambda register: register("greet", "x:y", "x:z", help="another greet"))
    reset_manager(PluginManager(load_entry_points=False, extra_plugins=[with_test_commands, other]))
    assert "broken: " in _subcommands(build_parser())["greet"]
    assert main(["greet", "world"]) == 2
    assert "registered by more than one plugin" in capsys.readouterr().err


def test_running_one_command_builds_only_its_parser(with_test_commands, capsys):
    # the broken commands are not built when another one runs: no import of their modules
    assert main(["greet", "x"]) == 0
    assert "dfabench_no_such_module" not in capsys.readouterr().err


def test_env_plugin_command_runs_in_a_fresh_interpreter(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(TESTS), "DFABENCH_PLUGINS": "dfabench_testcommands"}
    out = subprocess.run([sys.executable, "-m", "dfabench.cli", "greet", "there"], capture_output=True, text=True,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello there\n"
    out = subprocess.run([sys.executable, "-m", "dfabench.cli", "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "greet" in out.stdout and "(broken: " in out.stdout


def test_first_party_plugins_register_their_commands():
    manager = PluginManager()
    names = set(manager.commands.entries)
    if "dfagpt" in {p.name for p in manager.plugins}:
        assert {"dfagpt", "dfagpt train"} <= names
    if "baselines" in {p.name for p in manager.plugins}:
        assert {"baselines", "baselines train", "baselines info"} <= names
    assert set(CORE_COMMANDS) <= names


def test_argparse_is_imported_only_in_the_cli_package():
    root = Path(dfabench.__file__).parent
    offenders = []
    # dfabench/testing/ holds test tools run as ``python -m dfabench.testing.X``, not dfabench commands
    exempt = (root / "cli", root / "testing")
    for path in sorted(root.rglob("*.py")):
        if any(folder in path.parents for folder in exempt):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "argparse" for name in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []


def test_chat_does_not_import_the_cli():
    code = "import sys, dfabench.chat; print('dfabench.cli' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
