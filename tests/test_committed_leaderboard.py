"""The leaderboard committed in leaderboard/: every entry verifies and the tables are up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfabench.leaderboard import build_leaderboard
from dfabench.plugins import reset_manager
from dfabench.verify import verify

ROOT = Path(__file__).resolve().parents[1] / "leaderboard"
ENTRIES = sorted(p for p in (ROOT / "entries").iterdir() if p.is_dir()) if (ROOT / "entries").is_dir() else []


@pytest.mark.parametrize("entry", ENTRIES, ids=[p.name for p in ENTRIES])
def test_every_committed_entry_verifies(entry):
    report = verify(entry)
    assert report.ok, "\n".join(report.lines())


def test_committed_leaderboard_is_up_to_date(tmp_path):
    reset_manager(None)
    result = build_leaderboard(ROOT / "entries", tmp_path)
    assert not result.excluded
    assert (tmp_path / "README.md").read_text() == (ROOT / "README.md").read_text(), (
        "leaderboard/README.md is stale: run `dfabench leaderboard build`")
