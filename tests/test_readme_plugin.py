"""The plugin example of the README, copied from the README, installed with pip, listed and run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_files() -> dict[str, str]:
    text = README.read_text()
    blocks = re.findall(r"<!-- plugin-example:(\S+) -->\n```\w*\n(.*?)```", text, flags=re.S)
    return dict(blocks)


def test_readme_has_the_example_files():
    assert set(readme_files()) == {"pyproject.toml", "dfabench_brightness.py"}


@pytest.mark.slow
def test_plugin_written_from_the_readme_installs_lists_and_runs(tmp_path, tiny_bench):
    source = tmp_path / "dfabench-brightness"
    source.mkdir()
    for name, content in readme_files().items():
        (source / name).write_text(content)
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    env.pop("DFABENCH_PLUGINS", None)

    def dfabench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dfabench.cli", *args], capture_output=True, text=True, env=env)

    listed = dfabench("models")
    assert listed.returncode == 0, listed.stderr
    assert "brightness" in listed.stdout and "dfabench-brightness" in listed.stdout
    plugins = dfabench("plugins")
    assert "dfabench-brightness" in plugins.stdout and "BROKEN" not in plugins.stdout
    out = tmp_path / "run"
    ran = dfabench("run", "--model", "brightness", "--model-arg", "gain=1.5", "--tasks", "DF-D",
                   "--bench", str(tiny_bench), "--out", str(out), "--no-progress")
    assert ran.returncode == 0, ran.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["distribution"] == "dfabench-brightness"
    assert record["model"]["identity"] == {"gain": 1.5}
    assert record["counts"]["DF-D"] == {"n": 20, "n_failed": 0, "n_unparsed": 0}
    assert record["metrics"]["DF-D"]["auc"]["value"] is not None
