"""The leaderboard committed in leaderboard/: every entry verifies and every output is up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfabench.leaderboard import build_leaderboard
from dfabench.leaderboard.build import OUTPUTS
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
    stale = [name for name in OUTPUTS if (tmp_path / name).read_bytes() != (ROOT / name).read_bytes()]
    reports = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert reports == sorted(p.name for p in (ROOT / "reports").iterdir())
    stale += [f"reports/{n}" for n in reports
              if (tmp_path / "reports" / n).read_bytes() != (ROOT / "reports" / n).read_bytes()]
    assert not stale, f"stale in leaderboard/: {stale}: run `dfabench leaderboard build` (scripts/leaderboard-smoke.sh)"


def test_the_committed_leaderboard_holds_the_reported_forgerytalker_numbers():
    import json

    data = json.loads((ROOT / "leaderboard.json").read_text())
    reported = {(r["entry"], r["split"]): r for r in data["reported"]}
    assert reported[("ForgeryTalker", "test")]["as_reported"]["cider"] == 69.48
    assert reported[("ForgeryTalker", "test")]["n"] == 21679
    assert reported[("ForgeryTalker", "validation")]["as_reported"]["iou"] == 73.67
    ranked = {r["entry"] for b in data["boards"] for t in b["tasks"].values() for r in t["rows"]}
    assert "ForgeryTalker" not in ranked
