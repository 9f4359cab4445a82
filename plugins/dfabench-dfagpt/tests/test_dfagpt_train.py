"""LoRA instruction tuning: assistant-only labels, lower loss, reload, resume, the command line."""

from __future__ import annotations

import json

import pytest
import torch

from dfabench.api import DfabenchError


def load_tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_conversations_become_chat_messages_with_the_image_in_place():
    from dfabench_dfagpt.data import conversation_messages

    messages = conversation_messages([
        {"from": "human", "value": "<image>\nIs this a deepfake?"}, {"from": "gpt", "value": "Yes."},
        {"from": "human", "value": "Which technique?"}, {"from": "gpt", "value": "Face swapping."}])
    assert messages == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this a deepfake?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Yes."}]},
        {"role": "user", "content": [{"type": "text", "text": "Which technique?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Face swapping."}]},
    ]
    no_placeholder = conversation_messages([{"from": "human", "value": "Real?"}, {"from": "gpt", "value": "No."}])
    assert no_placeholder[0]["content"][0] == {"type": "image"}
    with pytest.raises(DfabenchError, match="no assistant turn"):
        conversation_messages([{"from": "human", "value": "<image> Real?"}], "sample 'x'")


@pytest.mark.parametrize("family", ["llava", "idefics3", "qwen2_vl"])
def test_labels_cover_exactly_the_assistant_answers(family, smoke_bench, tmp_path):
    from dfabench.api import load_benchmark
    from dfabench_dfagpt.data import build_examples, collate, conversation_messages
    from dfabench_hf import loading, testing

    path = getattr(testing, f"build_tiny_{family}")(tmp_path / family)
    processor = loading.load_processor(str(path), loading.load_config(str(path)))
    benchmark = load_benchmark(smoke_bench)
    examples = build_examples(processor, benchmark, "train", limit=3)
    inputs, labels = collate(processor, examples)
    eos = processor.tokenizer.eos_token
    for row, example in enumerate(examples):
        sample = next(s for s in benchmark.samples if s.id == example.sample_id)
        answers = [m["content"][0]["text"] for m in conversation_messages(sample.conversations)
                   if m["role"] == "assistant"]
        assert len(example.spans) == len(answers)
        texts = [processor.tokenizer.decode(inputs["input_ids"][row, start:end]).strip()
                 for start, end in example.spans]
        for text, answer in zip(texts, answers, strict=True):
            assert text in (answer, answer + eos)  # LLaVA-1.5's template ends a turn without a token
        assert texts[-1] == answers[-1] + eos, "the last answer ends with the end-of-sequence token"
        labelled = labels[row] != -100
        assert int(labelled.sum()) == example.n_target_tokens
        assert not labelled[inputs["attention_mask"][row] == 0].any()


def test_text_only_prefix_lengths_agree_with_the_processor(tiny_base, smoke_bench, monkeypatch):
    from dfabench.api import load_benchmark
    from dfabench_dfagpt import data
    from dfabench_hf import loading

    processor = loading.load_processor(str(tiny_base), loading.load_config(str(tiny_base)))
    benchmark = load_benchmark(smoke_bench)
    fast = data.build_examples(processor, benchmark, "train", limit=4)
    monkeypatch.setattr(data, "_common_suffix", lambda a, b: 0)  # every prefix through the processor
    slow = data.build_examples(processor, benchmark, "train", limit=4)
    assert [e.spans for e in fast] == [e.spans for e in slow]
    assert all(len(e.spans) >= 1 for e in fast)


def test_training_lowers_the_loss(trained, tiny_base, smoke_bench):
    from dfabench.api import load_benchmark
    from dfabench_dfagpt.data import build_examples
    from dfabench_dfagpt.train import evaluate_loss
    from dfabench_hf import loading

    config, result = trained
    examples = build_examples(result.processor, load_benchmark(smoke_bench), "train", limit=config.limit)
    base = loading.load_model(str(tiny_base), loading.load_config(str(tiny_base)), dtype="float32")
    before = evaluate_loss(base, result.processor, examples)
    after = evaluate_loss(result.model, result.processor, examples)
    assert after < 0.9 * before
    assert result.steps == 16 and len(result.losses) == 16
    assert sum(result.losses[-4:]) < sum(result.losses[:4])


def test_the_output_folder_holds_adapter_projector_and_record(trained, tiny_base, smoke_bench):
    from dfabench.api import load_benchmark
    from dfabench_hf.fingerprint import checkpoint_fingerprint

    config, result = trained
    out = result.out
    for name in ("adapter_model.safetensors", "adapter_config.json", "projector.safetensors", "dfagpt.json",
                 "train_log.jsonl"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()
    record = json.loads((out / "dfagpt.json").read_text())
    assert record["base"] == str(tiny_base)
    assert record["base_fingerprint"] == checkpoint_fingerprint(tiny_base)["weights_sha256"]
    assert record["benchmark"]["fingerprint"] == load_benchmark(smoke_bench).fingerprint()
    assert record["benchmark"]["samples"] == 8
    assert record["hyperparameters"] == config.hyperparameters()
    assert record["steps"] == 16 and record["projector_module"].endswith("multi_modal_projector")
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and all("language_model" in t for t in adapter["target_modules"])
    lora = load_tensors(out / "adapter_model.safetensors")
    assert lora and all("vision" not in k for k in lora)
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in lora.items()), "LoRA B starts at 0: it must train"
    projector = load_tensors(out / "projector.safetensors")
    base = load_tensors(tiny_base / "model.safetensors")
    trained_w = projector["linear_1.weight"]
    base_w = next(v for k, v in base.items() if k.endswith("multi_modal_projector.linear_1.weight"))
    assert not torch.equal(trained_w, base_w), "the projector is trained"


def test_the_saved_adapter_reloads_to_identical_logits(trained, tiny_base):
    from PIL import Image

    from dfabench_dfagpt.model import DFAGPTModel
    from dfabench_hf.model import HFModel

    config, result = trained
    question = {"type": "text", "text": "Has this face been forged?"}
    messages = [{"role": "user", "content": [{"type": "image"}, question]}]
    image = Image.new("RGB", (40, 30), (120, 80, 60))
    loaded = DFAGPTModel(base=str(tiny_base), adapter=str(result.out))
    plain = HFModel(path=str(tiny_base))
    without_projector = DFAGPTModel(base=str(tiny_base), adapter=str(result.out), projector="none")
    try:
        prompt = loaded.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = loaded.processor(text=[prompt], images=[[image]], return_tensors="pt")
        result.model.eval()
        with torch.no_grad():
            expected = result.model(**inputs).logits
            got = loaded.model(**inputs).logits
            base_logits = plain.model(**inputs).logits
            partial = without_projector.model(**inputs).logits
        assert torch.equal(got, expected)
        assert not torch.allclose(base_logits, expected, atol=1e-3)
        assert not torch.allclose(partial, expected, atol=1e-3)
        identity = loaded.identity()
        assert identity["weights_sha256"] == plain.identity()["weights_sha256"]
        assert len(identity["adapter_sha256"]) == 64 and len(identity["projector_sha256"]) == 64
        assert without_projector.identity()["projector_sha256"] is None
    finally:
        for model in (loaded, plain, without_projector):
            model.close()


class Interrupted(Exception):
    pass


def test_resume_gives_the_same_adapter_as_uninterrupted_training(tiny_base, smoke_bench, tmp_path):
    from dataclasses import replace

    from dfabench_dfagpt.train import TrainConfig, checkpoint_dirs, train

    common = dict(base=str(tiny_base), bench=str(smoke_bench), max_steps=4, batch_size=2, limit=5, lr=5e-3,
                  lora_r=4, lora_alpha=8, lora_dropout=0.1, save_every=2, seed=1)
    # 3 steps per epoch: the checkpoint at step 2 is mid-epoch, the resumed run crosses into epoch 2
    straight = train(TrainConfig(out=str(tmp_path / "straight"), **common), progress=False)

    config = TrainConfig(out=str(tmp_path / "resumed"), **common)

    def crash(step, loss):
        if step == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config, progress=False, on_step=crash)
    assert [p.name for p in checkpoint_dirs(config.out)] == ["step-00000002"]
    with pytest.raises(DfabenchError, match="add --resume"):
        train(config, progress=False)
    with pytest.raises(DfabenchError, match="the run differs"):
        train(replace(config, lr=1e-3), resume=True, progress=False)
    resumed = train(config, resume=True, progress=False)
    assert resumed.resumed_from == 2
    assert resumed.losses == straight.losses
    for name in ("adapter_model.safetensors", "projector.safetensors"):
        a, b = load_tensors(straight.out / name), load_tensors(resumed.out / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    with pytest.raises(DfabenchError, match="already holds a trained adapter"):
        train(config, resume=True, progress=False)


def test_the_train_command(tiny_base, smoke_bench, tmp_path, capsys):
    from dfabench_dfagpt.cli import main

    out = tmp_path / "cli-adapter"
    code = main(["train", "--base", str(tiny_base), "--bench", str(smoke_bench), "--out", str(out),
                 "--max-steps", "2", "--batch-size", "2", "--limit", "4", "--lora-r", "2",
                 "--target-modules", "q_proj,k_proj,v_proj", "--no-progress"])
    assert code == 0
    assert "trained 2 steps" in capsys.readouterr().out
    record = json.loads((out / "dfagpt.json").read_text())
    assert record["hyperparameters"]["target_modules"] == ["q_proj", "k_proj", "v_proj"]
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 2

    assert main(["train", "--base", str(tiny_base), "--bench", str(smoke_bench), "--out", str(tmp_path / "x"),
                 "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
    assert main(["train", "--base", str(tiny_base), "--bench", str(smoke_bench), "--out", str(tmp_path / "y"),
                 "--split", "nosuch"]) == 2
    assert "no sample has split 'nosuch'" in capsys.readouterr().err
    assert main(["train", "--base", str(tiny_base), "--bench", str(smoke_bench), "--out", str(tmp_path / "z"),
                 "--target-modules", "nothing_here", "--max-steps", "1"]) == 2
    assert "no linear layer of the language model is named nothing_here" in capsys.readouterr().err


def test_the_progress_line_without_tqdm(monkeypatch, capsys):
    import sys

    from dfabench_dfagpt.train import _Progress

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    bar = _Progress(total=3, initial=1, enabled=True)
    assert bar.bar is None
    bar.update(2, 1.25, 1e-3)
    bar.close()
    assert "step 2/3 loss 1.2500 lr 1.00e-03" in capsys.readouterr().err


def test_learning_rate_warms_up_then_decays_to_zero():
    from dfabench_dfagpt.train import learning_rate_factor

    factors = [learning_rate_factor(s, 10, 2) for s in range(11)]
    assert factors[0] == 0.5 and factors[1] == 1.0
    assert all(a >= b for a, b in zip(factors[1:], factors[2:], strict=False))
    assert factors[10] == pytest.approx(0.0)
