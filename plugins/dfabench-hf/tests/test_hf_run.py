"""End to end: ``dfabench run --model hf`` on the smoke benchmark with a tiny LLaVA."""

from __future__ import annotations

import json
import math

import pytest


@pytest.fixture(scope="session")
def smoke_bench(tmp_path_factory):
    from dfabench.data.smoke import build_smoke

    return build_smoke(tmp_path_factory.mktemp("smoke") / "bench", seed=0, size="small")


def test_dfabench_run_hf_on_df_d_df_c_and_ad(tiny_checkpoints, tiny_models, smoke_bench, tmp_path):
    from PIL import Image

    from dfabench.api import GenerateRequest, GenerationSettings
    from dfabench.cli import main
    from dfabench.plugins import get_manager

    out = tmp_path / "run"
    code = main(["run", "--model", "hf", "--model-arg", f"path={tiny_checkpoints['llava']}",
                 "--tasks", "DF-D,DF-C,AD", "--bench", str(smoke_bench), "--out", str(out),
                 "--limit", "4", "--batch-size", "3", "--no-progress", "--n-boot", "10"])
    assert code == 0
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["distribution"] == "dfabench-hf"
    assert record["model"]["identity"]["weights_sha256"] == tiny_models["llava"].identity()["weights_sha256"]
    for task in ("DF-D", "DF-C", "AD"):
        assert record["counts"][task]["n"] == 4
        assert record["counts"][task]["n_failed"] == 0

    # every DF-D score is P(yes) from the choice log-probabilities of the same model, called directly
    spec = get_manager().tasks.get("DF-D")
    samples = [json.loads(line) for line in (out / "samples-DF-D.jsonl").read_text().splitlines()]
    assert len(samples) == 4
    model = tiny_models["llava"]
    for sample in samples:
        assert sample["error"] is None and sample["response"]
        image = Image.open(smoke_bench / sample["image"]).convert("RGB")
        request = GenerateRequest(sample_id=sample["id"], image=image, image_path="", messages=spec.messages(),
                                  settings=GenerationSettings(max_new_tokens=32), task="DF-D",
                                  choices=tuple(spec.choices))
        logprobs = model.generate([request])[0].choice_logprobs
        p_yes = math.exp(logprobs["yes"]) / (math.exp(logprobs["yes"]) + math.exp(logprobs["no"]))
        assert sample["score"] == pytest.approx(p_yes, abs=1e-4)
        assert 0.0 < sample["score"] < 1.0
