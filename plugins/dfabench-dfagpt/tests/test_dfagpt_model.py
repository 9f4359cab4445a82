"""The ``dfagpt`` model: arguments, plugin entry point, and ``dfabench run`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dfabench.api import DfabenchError


def test_the_plugin_registers_dfagpt_without_importing_torch():
    code = (
        "import json, sys\n"
        "from dfabench.plugins import PluginManager\n"
        "pm = PluginManager()\n"
        "info = [p for p in pm.plugins if p.name == 'dfagpt'][0]\n"
        "entry = pm.models.get('dfa-gpt')\n"
        "print(json.dumps({'error': info.error, 'dist': info.distribution, 'name': entry.name,\n"
        "                  'factory': entry.factory,\n"
        "                  'heavy': sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found == {"error": None, "dist": "dfabench-dfagpt", "name": "dfagpt",
                     "factory": "dfabench_dfagpt.model:DFAGPTModel", "heavy": []}


@pytest.mark.parametrize("args, message", [
    ({"adapter": "a"}, "'base' is required"),
    ({"base": "b"}, "'adapter' is required"),
    ({"path": "b", "adapter": "a"}, "base=PATH_OR_NAME"),
    ({"base": "b", "adapter": "/nonexistent/adapter"}, "not a peft adapter folder"),
])
def test_bad_arguments_are_refused_before_loading(args, message):
    from dfabench_dfagpt.model import DFAGPTModel

    with pytest.raises(DfabenchError, match=message):
        DFAGPTModel(**args)


def test_a_missing_projector_file_is_refused(trained, tiny_base):
    from dfabench_dfagpt.model import DFAGPTModel

    _, result = trained
    with pytest.raises(DfabenchError, match="no such file"):
        DFAGPTModel(base=str(tiny_base), adapter=str(result.out), projector=str(result.out / "missing.safetensors"))


def test_dfabench_run_dfagpt_on_df_d_df_c_and_ad(trained, tiny_base, smoke_bench, tmp_path):
    from dfabench.cli import main

    _, result = trained
    out = tmp_path / "run"
    code = main(["run", "--model", "dfagpt", "--model-arg", f"base={tiny_base}", "--model-arg",
                 f"adapter={result.out}", "--tasks", "DF-D,DF-C,AD", "--bench", str(smoke_bench), "--out", str(out),
                 "--limit", "3", "--no-progress", "--n-boot", "10"])
    assert code == 0
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["distribution"] == "dfabench-dfagpt"
    assert record["model"]["identity"]["adapter_sha256"] and record["model"]["identity"]["projector_sha256"]
    for task in ("DF-D", "DF-C", "AD"):
        assert record["counts"][task]["n"] == 3 and record["counts"][task]["n_failed"] == 0
    scores = [json.loads(line)["score"] for line in (out / "samples-DF-D.jsonl").read_text().splitlines()]
    assert len(scores) == 3 and all(0 < s < 1 for s in scores)


def test_projector_weights_that_do_not_fit_are_refused(tiny_base, tmp_path):
    import torch
    from safetensors.torch import save_file

    from dfabench_dfagpt.parts import load_projector
    from dfabench_hf import loading

    model = loading.load_model(str(tiny_base), loading.load_config(str(tiny_base)), dtype="float32")
    wrong = tmp_path / "projector.safetensors"
    save_file({"linear_1.weight": torch.zeros(3, 3)}, str(wrong), metadata={"module": "model.multi_modal_projector"})
    with pytest.raises(DfabenchError, match="do not fit"):
        load_projector(model, wrong)
    save_file({"linear_1.weight": torch.zeros(3, 3)}, str(wrong), metadata={"module": "model.connector"})
    with pytest.raises(DfabenchError, match="projector weights of module 'model.connector'"):
        load_projector(model, wrong)


@pytest.mark.parametrize("family, projector", [("idefics3", "model.connector"), ("qwen2_vl", "model.visual.merger")])
def test_other_families_train_and_load(family, projector, smoke_bench, tmp_path):
    from dfabench_dfagpt.model import DFAGPTModel
    from dfabench_dfagpt.train import TrainConfig, train
    from dfabench_hf import testing

    base = getattr(testing, f"build_tiny_{family}")(tmp_path / family)
    result = train(TrainConfig(base=str(base), bench=str(smoke_bench), out=str(tmp_path / "adapter"), max_steps=2,
                               batch_size=2, limit=2, lora_r=2), progress=False)
    assert json.loads((result.out / "dfagpt.json").read_text())["projector_module"] == projector
    adapter = json.loads((result.out / "adapter_config.json").read_text())
    assert not any(part in t for t in adapter["target_modules"] for part in ("visual", "vision"))
    model = DFAGPTModel(base=str(base), adapter=str(result.out))
    try:
        assert model.identity()["projector_sha256"]
    finally:
        model.close()


def test_an_adapter_trained_on_other_base_weights_is_refused(tmp_path):
    import json
    from types import SimpleNamespace

    import pytest

    from dfabench.api import DfabenchError
    from dfabench_dfagpt.model import DFAGPTModel

    (tmp_path / "dfagpt.json").write_text(json.dumps({"base_fingerprint": "a" * 64}))
    model = SimpleNamespace(adapter_path=tmp_path)
    DFAGPTModel._check_base(model, "a" * 64)  # the same base: fine
    DFAGPTModel._check_base(model, None)  # a hub base without local files: nothing to compare
    with pytest.raises(DfabenchError, match="trained on other base weights"):
        DFAGPTModel._check_base(model, "b" * 64)
