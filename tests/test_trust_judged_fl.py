"""A judged FL run (the judge grades its reports; FL's spec scores no judge metric) still verifies:
the judge's summary numbers are re-derived from the per-sample results by the judge metric's own rule."""

from __future__ import annotations

import json
from pathlib import Path

from benchmaker import make_benchmark

from dfabench.testing.chat_server import ChatServer, judge_reply


def test_a_judged_fl_run_verifies_and_a_forged_judge_count_does_not(cli, tmp_path: Path):
    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2, with_masks=True)
    out = tmp_path / "run"
    code, _, err = cli("run", "--model", "masker", "--tasks", "FL", "--bench", str(bench), "--out", str(out),
                       "--no-progress", "--n-boot", "50")
    assert code == 0, err
    with ChatServer(responder=judge_reply, model="judge-fl-2026") as server:
        code, _, err = cli("judge", str(out), "--judge-model", "j", "--base-url", server.base_url, "--tasks", "FL")
    assert code == 0, err
    record = json.loads((out / "run.json").read_text())
    assert record["judge"]["tasks"]["FL"]["n_judged"] == 8
    code, text, err = cli("verify", str(out), "--bench", str(bench))
    assert code == 0, text + err

    record["judge"]["tasks"]["FL"]["n_judged"] = 7
    (out / "run.json").write_text(json.dumps(record))
    code, text, err = cli("verify", str(out))
    assert code == 1
    assert "judge's summary numbers differ" in text + err
