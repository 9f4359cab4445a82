"""A tiny local transformers model judges a run end to end (issue 10): the judge is a model in a role. Its
judgments are garbage (random weights); they are parsed strictly and every failure is counted, never scored."""

from __future__ import annotations

import json


def test_a_tiny_hf_model_judges_a_run(tiny_checkpoints, tmp_path):
    from dfabench.cli import main
    from dfabench.data.smoke import build_smoke

    bench = build_smoke(tmp_path / "bench", seed=0, size="small")
    run = tmp_path / "run"
    assert main(["run", "--model", "constant", "--tasks", "AD", "--bench", str(bench), "--out", str(run),
                 "--limit", "3", "--no-progress", "--n-boot", "10"]) == 0
    code = main(["judge", str(run), "--judge", "hf", "--judge-arg", f"path={tiny_checkpoints['llava']}",
                 "--max-tokens", "24"])
    assert code in (0, 1)  # 1: some judgments failed (random weights rarely write a valid judgment)
    record = json.loads((run / "run.json").read_text())
    judge = record["judge"]
    assert judge["output"] == "text"  # a local model enforces no response_format: prompted for JSON
    assert len(judge["judge_fingerprint"]) == 64
    samples = [json.loads(line) for line in (run / "samples-AD.jsonl").read_text().splitlines()]
    results = [s["judge"] for s in samples]
    assert len(results) == 3
    failed = [r for r in results if r["score"] is None]
    assert all(r["failure"] in ("unparseable", "model_error") and r["error"] for r in failed)
    assert all(0.0 <= r["score"] <= 1.0 for r in results if r["score"] is not None)
    assert judge["tasks"]["AD"]["n_failed"] == len(failed) and judge["tasks"]["AD"]["n_judged"] == 3 - len(failed)
    assert (code == 1) == bool(failed)
    report = judge["calibration"]["artifact-description-v2"]
    assert report["n"] == 9 and report["n_failed"] + report["n_in_range"] + len(report["out_of_range"]) == 9
