"""Shared fixtures of the core tests: tiny benchmark folders made on the fly."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from benchmaker import make_benchmark  # noqa: E402


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
