"""A judged FL run (the judge grades its reports: FL v3 scores judge_score) still verifies:
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


def test_running_a_judged_task_again_keeps_its_judgments_unless_its_answers_changed(cli, tmp_path: Path):
    import io

    from dfabench.plugins import get_task
    from dfabench.runner import _carry_judgments
    from dfabench.store import RunFolder

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2, with_masks=True)
    out = tmp_path / "run"
    command = ("run", "--model", "masker", "--tasks", "FL", "--bench", str(bench), "--out", str(out),
               "--no-progress", "--n-boot", "50")
    code, _, err = cli(*command)
    assert code == 0, err
    with ChatServer(responder=judge_reply, model="judge-fl-2026") as server:
        code, _, err = cli("judge", str(out), "--judge-model", "j", "--base-url", server.base_url, "--tasks", "FL")
    assert code == 0, err
    judged = json.loads((out / "run.json").read_text())
    assert judged["metrics"]["FL"]["judge_score"]["value"] is not None  # FL v3 scores the judge

    code, _, err = cli(*command)  # the same command again (a resume): every answer from the cache
    assert code == 0, err
    again = json.loads((out / "run.json").read_text())
    assert again["metrics"]["FL"]["judge_score"] == judged["metrics"]["FL"]["judge_score"]
    assert again["judge"]["tasks"]["FL"] == judged["judge"]["tasks"]["FL"]
    code, text, err = cli("verify", str(out), "--bench", str(bench))
    assert code == 0, text + err

    # an answer that changed: the task's judgments are dropped as a whole, and a line says so
    folder = RunFolder(out)
    records = folder.read_samples("FL")
    for record in records:
        record.pop("judge", None)
    records[0]["response"] = records[0]["parsed"]["text"] = "another report"
    stream = io.StringIO()
    kept = _carry_judgments(folder, again, [(get_task("FL"), records)], stream)
    assert kept == set() and all("judge" not in r for r in records)
    assert "judgments are dropped" in stream.getvalue()
    records = folder.read_samples("FL")
    for record in records:
        record.pop("judge", None)
    assert _carry_judgments(folder, again, [(get_task("FL"), records)], io.StringIO()) == {"FL"}
    assert all("judge" in r for r in records)
