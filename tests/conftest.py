"""Shared fixtures of the core tests: tiny benchmark folders made on the fly."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from benchmaker import make_benchmark  # noqa: E402


@pytest.fixture(autouse=True)
def _own_verification_cache(tmp_path, monkeypatch):
    """Each test's leaderboard builds keep their verification cache in its own folder: a test that patches the
    verifying code in-process (which the cache key, made from the files, cannot see) never meets another's
    outcome, and nothing is left in the user's cache folder."""
    from dfabench.leaderboard import verified

    monkeypatch.setattr(verified, "default_root", lambda: tmp_path / "verified-cache")


@pytest.fixture
def tiny_bench(tmp_path: Path) -> Path:
    """20 samples: 8 real, 12 fake (3 per category), split test, 10 source ids."""
    return make_benchmark(tmp_path / "bench", n_real=8, n_per_category=3)


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run the CLI in-process with the test models plugin (tests/dfabench_testmodels.py) loaded;
    returns (exit code, stdout, stderr)."""
    from dfabench.cli import main
    from dfabench.plugins import reset_manager

    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels")
    reset_manager(None)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    reset_manager(None)


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    """Where a browser test saves its screenshots (tests/browser_util.py: $DFABENCH_ARTEFACTS or tmp_path)."""
    from browser_util import artefact_folder

    return artefact_folder(tmp_path)


@pytest.fixture
def browser():
    """A headless Chromium (tests/browser_util.py), quit after the test."""
    from browser_util import new_browser

    driver = new_browser()
    yield driver
    driver.quit()


@pytest.fixture
def run_dir(cli, tiny_bench, tmp_path) -> Path:
    """A finished run of ``random`` on DF-D and DF-C of the tiny benchmark."""
    out = tmp_path / "run"
    code, _, err = cli("run", "--model", "random", "--tasks", "DF-D,DF-C", "--bench", str(tiny_bench),
                       "--out", str(out), "--no-progress")
    assert code == 0, err
    return out
