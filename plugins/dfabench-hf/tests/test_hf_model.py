"""The ``hf`` model on tiny random LLaVA, Idefics3 and Qwen2-VL checkpoints."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from dfabench.api import DfabenchError, GenerateRequest, GenerationSettings

FAMILIES = ("llava", "idefics3", "qwen2_vl")
QUESTIONS = (
    "Has this face been forged? Answer yes or no.",
    "Is this face real?",
    "What kind of technique is used to manipulate the image? Name it and explain in a few words.",
    "Can you detail the specific regions of the facial image where artifacts are evident?",
    "Describe the face.",
    "Yes or no: fake?",
)


def make_request(image, question: str, index: int = 0, *, choices=("yes", "no"), max_new_tokens: int = 10,
                 temperature: float = 0.0, seed: int = 0, with_image: bool = True) -> GenerateRequest:
    content = ([{"type": "image"}] if with_image else []) + [{"type": "text", "text": question}]
    return GenerateRequest(sample_id=f"s{index}", image=image if with_image else None, image_path="",
                           messages=[{"role": "user", "content": content}], task="DF-D", choices=choices,
                           settings=GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature,
                                                       seed=seed))


def make_requests(images) -> list[GenerateRequest]:
    """One request per image, with prompts of different lengths."""
    return [make_request(image, question, i) for i, (image, question) in enumerate(zip(images, QUESTIONS, strict=True))]


def direct_next_token_logprobs(model, request: GenerateRequest) -> torch.Tensor:
    """log_softmax of the logits after the prompt, from one plain forward pass of one request."""
    prompt = model.processor.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
    inputs = model.processor(text=[prompt], images=[[request.image]], return_tensors="pt")
    with torch.no_grad():
        logits = model.model(**inputs).logits
    return torch.log_softmax(logits[0, -1].float(), dim=-1)


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_generation_equals_one_by_one(tiny_models, face_images, family):
    model = tiny_models[family]
    requests = make_requests(face_images)
    batched = model.generate(requests)
    single = [model.generate([request])[0] for request in requests]
    assert len({r.prompt_tokens for r in batched}) > 1, "prompts of different lengths exercise the left padding"
    for one, many in zip(single, batched, strict=True):
        assert many.text == one.text
        assert many.prompt_tokens == one.prompt_tokens
        assert many.completion_tokens == one.completion_tokens
        assert many.choice_logprobs == pytest.approx(one.choice_logprobs, abs=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_choice_logprobs_match_a_direct_forward_pass(tiny_models, face_images, family):
    from dfabench_hf.model import choice_token_ids

    model = tiny_models[family]
    requests = make_requests(face_images)
    responses = model.generate(requests)
    ids = choice_token_ids(model.tokenizer, ("yes", "no"))
    for request, response in zip(requests, responses, strict=True):
        expected = direct_next_token_logprobs(model, request)
        for choice in ("yes", "no"):
            want = torch.logsumexp(expected[ids[choice]], dim=0).item()
            assert response.choice_logprobs[choice] == pytest.approx(want, abs=1e-4)
        p_yes, p_no = (math.exp(response.choice_logprobs[c]) for c in ("yes", "no"))
        assert 0 < p_yes + p_no <= 1 + 1e-6
        assert p_yes / (p_yes + p_no) == pytest.approx(expected[ids["yes"]].exp().sum().item()
                                                       / expected[ids["yes"] + ids["no"]].exp().sum().item(),
                                                       rel=1e-4)


def test_choice_token_ids_merge_spellings_and_drop_ambiguous_tokens(tiny_models):
    from dfabench_hf.model import choice_token_ids

    tokenizer = tiny_models["llava"].tokenizer
    ids = choice_token_ids(tokenizer, ("yes", "no"))
    assert not set(ids["yes"]) & set(ids["no"])
    first = {s: tokenizer.encode(s, add_special_tokens=False)[0] for s in ("yes", " Yes", "no", " No", " yes")}
    assert first["yes"] in ids["yes"] and first[" Yes"] in ids["yes"]
    assert first["no"] in ids["no"] and first[" No"] in ids["no"]
    # the tiny tokenizer splits " yes" into a bare space and "yes": the space never counts
    assert tokenizer.decode([first[" yes"]]).strip() == ""
    assert first[" yes"] not in ids["yes"]


def test_a_choice_without_an_unambiguous_token_gets_no_logprobs(tiny_models, face_images):
    model = tiny_models["llava"]
    response = model.generate([make_request(face_images[0], QUESTIONS[0], choices=("yes", "\u2202x"))])[0]
    assert response.choice_logprobs is None
    assert response.completion_tokens > 0


def test_no_choices_no_logprobs_and_max_new_tokens(tiny_models, face_images):
    model = tiny_models["idefics3"]
    responses = model.generate([make_request(face_images[1], QUESTIONS[2], choices=(), max_new_tokens=3)])
    assert responses[0].choice_logprobs is None
    assert 1 <= responses[0].completion_tokens <= 3


def test_mixed_settings_and_text_only_requests_in_one_batch(tiny_models, face_images):
    model = tiny_models["llava"]
    requests = [make_request(face_images[0], QUESTIONS[0], 0, max_new_tokens=4),
                make_request(face_images[1], QUESTIONS[1], 1, max_new_tokens=7),
                make_request(face_images[2], QUESTIONS[4], 2, with_image=False, choices=()),
                make_request(face_images[3], QUESTIONS[3], 3, max_new_tokens=4)]
    batched = model.generate(requests)
    single = [model.generate([r])[0] for r in requests]
    assert [r.text for r in batched] == [r.text for r in single]
    assert batched[0].completion_tokens <= 4 and batched[1].completion_tokens <= 7


def test_sampling_is_reproducible_with_the_seed(tiny_models, face_images):
    model = tiny_models["qwen2_vl"]
    request = make_request(face_images[0], QUESTIONS[3], temperature=1.5, seed=3, max_new_tokens=12, choices=())
    first = model.generate([request])[0].text
    assert model.generate([request])[0].text == first
    greedy = model.generate([make_request(face_images[0], QUESTIONS[3], max_new_tokens=12, choices=())])[0].text
    samples = {model.generate([make_request(face_images[0], QUESTIONS[3], temperature=1.5, seed=s,
                                            max_new_tokens=12, choices=())])[0].text for s in range(4)}
    assert samples - {greedy}, "sampling at temperature 1.5 should differ from greedy decoding"


def test_max_new_tokens_model_argument_overrides_the_task(tiny_checkpoints, face_images):
    from dfabench_hf.model import HFModel

    model = HFModel(path=str(tiny_checkpoints["llava"]), max_new_tokens="2", batch_size="3")
    try:
        response = model.generate([make_request(face_images[0], QUESTIONS[3], max_new_tokens=50, choices=())])[0]
        assert response.completion_tokens <= 2
        assert model.default_batch_size == 3
    finally:
        model.close()
    assert not hasattr(model, "model")


def test_identity_fingerprints_the_weights(tiny_checkpoints, tiny_models, tmp_path):
    from dfabench_hf.model import HFModel

    identity = tiny_models["llava"].identity()
    assert identity["dtype"] == "float32"
    assert identity["architecture"] == "LlavaForConditionalGeneration"
    assert len(identity["weights_sha256"]) == 64 and identity["config_sha256"] and identity["processor_sha256"]
    assert identity != tiny_models["idefics3"].identity()

    copy = tmp_path / "llava-copy"
    shutil.copytree(tiny_checkpoints["llava"], copy)
    same = HFModel(path=str(copy))
    assert same.identity()["weights_sha256"] == identity["weights_sha256"]
    same.close()

    from safetensors.torch import load_file, save_file

    weights = load_file(copy / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 1.0
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    changed = HFModel(path=str(copy), dtype="bfloat16")
    try:
        assert changed.identity()["weights_sha256"] != identity["weights_sha256"]
        assert changed.identity()["dtype"] == "bfloat16"
    finally:
        changed.close()


def test_a_failing_batch_raises_and_leaves_no_hook(tiny_models, face_images, monkeypatch):
    model = tiny_models["llava"]

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(model.model, "generate", out_of_memory)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        model.generate([make_request(face_images[0], QUESTIONS[0])])
    assert not model.model._forward_hooks


@pytest.mark.parametrize("args, message", [
    ({}, "'path' is required"),
    ({"path": "x", "dtype": "float8"}, "dtype='float8'"),
    ({"path": "x", "device": "gpu"}, "device='gpu'"),
    ({"path": "x", "trust_remote_code": "maybe"}, "expected true or false"),
    ({"path": "x", "batch_size": "0"}, "batch_size='0'"),
    ({"path": "x", "temperature": "1"}, "unknown model argument(s) temperature"),
])
def test_bad_model_arguments_are_refused(args, message):
    from dfabench_hf.options import HFOptions

    with pytest.raises(DfabenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        HFOptions.parse(**args)


def test_model_arguments_are_parsed():
    from dfabench_hf.options import HFOptions

    options = HFOptions.parse(path=" m ", dtype="bf16", device="cuda:1", max_new_tokens="64",
                              trust_remote_code="yes", batch_size="16")
    assert (options.path, options.dtype, options.device, options.max_new_tokens, options.trust_remote_code,
            options.batch_size) == ("m", "bfloat16", "cuda:1", 64, True, 16)


def test_a_missing_checkpoint_is_a_clear_error(tmp_path):
    from dfabench_hf.model import HFModel

    with pytest.raises(DfabenchError, match="cannot load the checkpoint"):
        HFModel(path=str(tmp_path / "nowhere"), device="cpu")
