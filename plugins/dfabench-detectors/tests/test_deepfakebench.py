"""DeepfakeBench checkpoints (dfb-efficientnet-b4, dfb-clip): loading DeepfakeBench's key layout, the test
transform, P(fake), bad input, and a dfabench run end to end. dfb-xception: tests/test_deepfakebench_xception.py.

The checkpoints here are random weights saved in DeepfakeBench's layout by networks built the way DeepfakeBench
builds them: EfficientNet-B4 with ``efficientnet_pytorch`` (what DeepfakeBench uses) and its stem replaced, CLIP
with ``CLIPModel(...).vision_model`` + ``head`` (as ``clip_detector.py``); each wrapped in a detector module with
DeepfakeBench's attribute names, so its ``state_dict()`` is what DeepfakeBench's trainer saves.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from dfabench.api import DfabenchError, InputError, ScoreRequest  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from dfabench_detectors.deepfakebench import (  # noqa: E402
    CLIPDetector,
    EfficientNetB4Detector,
    XceptionDetector,
    clip_config,
    preprocess,
    write_random_checkpoint,
)


def _randomise_norms(module: nn.Module, seed: int) -> None:
    """BatchNorm / LayerNorm affine weights away from their identity defaults, then BatchNorm statistics measured
    on one batch (train mode, momentum 1): a swapped or dropped normalisation layer shows in the outputs, and
    the activations of the deep CNN neither vanish nor explode, so the outputs depend on the input."""
    generator = torch.Generator().manual_seed(seed)
    norms = [layer for layer in module.modules() if isinstance(layer, nn.BatchNorm2d)]
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.BatchNorm2d, nn.LayerNorm)):
                layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) + 0.5)
                layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) * 0.4 - 0.2)
        if norms:
            for layer in norms:
                layer.momentum = 1.0
            module.train()
            module(preprocess(_faces(4, seed=seed + 100), 256))
            for layer in norms:
                layer.momentum = 0.1
    module.eval()


def _assert_input_matters(logits: torch.Tensor) -> None:
    """Different images give different outputs (random weights can make a deep network constant)."""
    assert (logits[0] - logits[1]).abs().max() > 1e-3 * logits.abs().max()


# --------------------------------------------------------------------------- DeepfakeBench's layouts


class DfbEfficientNetB4Backbone(nn.Module):
    """DeepfakeBench's ``networks/efficientnetb4.py`` EfficientNetB4 (mode original, no dropout), built with
    efficientnet_pytorch as DeepfakeBench does: the stem replaced by an unpadded conv, ``_fc`` by Identity."""

    def __init__(self):
        super().__init__()
        from efficientnet_pytorch import EfficientNet

        self.efficientnet = EfficientNet.from_name("efficientnet-b4")
        self.efficientnet._conv_stem = nn.Conv2d(3, 48, kernel_size=3, stride=2, bias=False)
        self.efficientnet._fc = nn.Identity()
        self.last_layer = nn.Linear(1792, 2)

    def forward(self, x):
        features = self.efficientnet.extract_features(x)
        return self.last_layer(F.adaptive_avg_pool2d(features, (1, 1)).flatten(1))


class DfbCLIPDetector(nn.Module):
    """DeepfakeBench's ``detectors/clip_detector.py``: ``CLIPModel(...).vision_model`` + ``head``."""

    def __init__(self, vision: dict):
        super().__init__()
        from transformers import CLIPConfig, CLIPModel

        text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=64,
                    max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
        self.backbone = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).vision_model
        self.head = nn.Linear(vision["hidden_size"], 2)

    def forward(self, x):
        return self.head(self.backbone(x)["pooler_output"])


class DfbDetector(nn.Module):
    """A DeepfakeBench detector: its backbone under ``backbone`` (xception, efficientnetb4)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(x)


#: a tiny CLIP vision tower (64 wide: one 64-wide head, as the loader infers heads from the width)
TINY_CLIP = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1, image_size=32,
                 patch_size=8)


@pytest.fixture(scope="module")
def effnet(tmp_path_factory):
    """(the DeepfakeBench EfficientNet-B4 detector with random weights, its checkpoint file)."""
    pytest.importorskip("efficientnet_pytorch", reason="efficientnet_pytorch (DeepfakeBench's EfficientNet, the "
                                                       "reference) is a test dependency: pip install "
                                                       "efficientnet_pytorch==0.7.1")
    torch.manual_seed(0)
    detector = DfbDetector(DfbEfficientNetB4Backbone())
    _randomise_norms(detector, 1)
    detector.eval()
    path = tmp_path_factory.mktemp("effnet") / "effnb4_best.pth"
    torch.save(detector.state_dict(), path)
    return detector, path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    torch.manual_seed(0)
    detector = DfbCLIPDetector(TINY_CLIP)
    _randomise_norms(detector, 2)
    detector.eval()
    path = tmp_path_factory.mktemp("clip") / "clip_best.pth"
    torch.save(detector.state_dict(), path)
    return detector, path


def _faces(n: int, side: int = 48, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (side, side + 7, 3), dtype=np.uint8)) for _ in range(n)]


def _logits(model, images, size):
    with torch.no_grad():
        return model.net(preprocess(images, size))


# --------------------------------------------------------------------------- loading and outputs


def test_efficientnet_b4_checkpoint_loads_and_matches_deepfakebench(effnet):
    reference, path = effnet
    assert any(k.startswith("backbone.efficientnet._blocks.31.") for k in reference.state_dict())
    model = EfficientNetB4Detector(weights=str(path))  # strict: no key missing or unexpected
    assert model.size == 256
    images = _faces(2)
    pixels = preprocess(images, 256)
    with torch.no_grad():
        expected = reference(pixels)
        got = model.net(pixels)
    _assert_input_matters(expected)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    p_fake = model.fake_probabilities(images)
    assert p_fake == pytest.approx(torch.softmax(expected, dim=1)[:, 1].tolist(), abs=1e-5)


def test_random_checkpoints_have_deepfakebench_layout(effnet, tmp_path):
    """write_random_checkpoint (benchmarks, trying the plumbing) writes exactly DeepfakeBench's keys and shapes."""
    reference, _ = effnet
    path = write_random_checkpoint("dfb-efficientnet-b4", tmp_path / "random.pth")
    written = torch.load(path, weights_only=True)
    assert {k: tuple(v.shape) for k, v in written.items()} == {
        k: tuple(v.shape) for k, v in reference.state_dict().items()}
    probabilities = EfficientNetB4Detector(weights=str(path), size=64).fake_probabilities(_faces(2, seed=5))
    assert probabilities[0] != probabilities[1]


def test_efficientnet_b4_matches_at_other_input_sizes(effnet):
    """efficientnet_pytorch pads statically for 380 inputs whatever the input: the mapping holds at odd sizes."""
    reference, path = effnet
    model = EfficientNetB4Detector(weights=str(path), size=67)
    pixels = preprocess(_faces(1), 67)
    with torch.no_grad():
        expected = reference(pixels)
        torch.testing.assert_close(model.net(pixels), expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_clip_checkpoint_loads_and_matches_deepfakebench(clip):
    reference, path = clip
    model = CLIPDetector(weights=str(path))
    assert model.size == 32  # the position embeddings' input size
    identity = model.identity()
    assert identity["vision"] == {"width": 64, "layers": 2, "heads": 1, "mlp": 128, "patch": 8, "image_size": 32}
    images = _faces(3, side=40)
    pixels = preprocess(images, 32)
    with torch.no_grad():
        expected = reference(pixels)
    _assert_input_matters(expected)
    torch.testing.assert_close(_logits(model, images, 32), expected, rtol=1e-4, atol=1e-5)
    scores = model.score([ScoreRequest(f"s{i}", image, f"s{i}.png", task="DF-D") for i, image in enumerate(images)])
    assert [s.fake for s in scores] == pytest.approx(torch.softmax(expected, 1)[:, 1].tolist(), abs=1e-6)
    assert all(s.categories is None and s.error is None for s in scores)  # DF-C: n/a, never a guess


def test_checkpoint_variants_load_the_same(clip, tmp_path):
    """DistributedDataParallel's ``module.`` prefix, the ``position_ids`` buffer of older transformers, a
    ``{"state_dict": ...}`` wrapper and safetensors all give the same network."""
    from safetensors.torch import save_file

    reference, path = clip
    state = reference.state_dict()
    positions = state["backbone.embeddings.position_embedding.weight"].shape[0]
    variants = {
        "ddp.pth": {f"module.{k}": v for k, v in state.items()},
        "old.pth": {**state, "backbone.embeddings.position_ids": torch.arange(positions).unsqueeze(0)},
        "wrapped.pth": {"state_dict": state},
    }
    for name, content in variants.items():
        torch.save(content, tmp_path / name)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "clip.safetensors"))
    images = _faces(2, side=32)
    expected = CLIPDetector(weights=str(path)).fake_probabilities(images)
    for name in [*variants, "clip.safetensors"]:
        assert CLIPDetector(weights=str(tmp_path / name)).fake_probabilities(images) == pytest.approx(expected), name


def test_clip_config_of_deepfakebench_vit_b16():
    """DeepfakeBench's CLIP detector is openai/clip-vit-base-patch16's vision tower: its tensors give that config."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    vit_b16 = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                               image_size=224, patch_size=16)
    with torch.device("meta"):
        shapes = {f"backbone.{k}": v for k, v in CLIPVisionModel(vit_b16).state_dict().items()}
    config = clip_config(shapes, Path("clip_best.pth"))
    for field in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "image_size",
                  "patch_size"):
        assert getattr(config, field) == getattr(vit_b16, field), field
    assert config.hidden_act == "quick_gelu"


def test_identity_carries_the_weights_hash(effnet, tmp_path):
    import hashlib

    _, path = effnet
    identity = EfficientNetB4Detector(weights=str(path)).identity()
    assert identity["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert identity["input"]["size"] == 256 and identity["input"]["mean"] == [0.5, 0.5, 0.5]
    assert identity["output"] == "softmax(logits)[:, 1]"
    json.dumps(identity)  # part of the run record


# --------------------------------------------------------------------------- the test transform


def test_preprocess_is_deepfakebench_normalisation():
    array = np.zeros((4, 4, 3), dtype=np.uint8)
    array[..., 0], array[..., 1], array[..., 2] = 0, 255, 51
    pixels = preprocess([Image.fromarray(array)], 4)  # already at size: no resize
    assert pixels.shape == (1, 3, 4, 4)
    assert torch.allclose(pixels[0, :, 0, 0], torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))


def test_preprocess_resize_is_bicubic_rounded_to_uint8():
    flat = np.full((50, 70, 3), 200, dtype=np.uint8)
    assert torch.allclose(preprocess([flat], 32), torch.full((1, 3, 32, 32), 200 / 127.5 - 1))
    ramp = np.tile(np.arange(0, 250, 5, dtype=np.uint8)[None, :, None], (50, 1, 3))
    resized = ((preprocess([ramp], 25) + 1) * 127.5).round()
    row = resized[0, 0, 0]
    assert torch.all(row[1:] >= row[:-1])  # a ramp stays monotone
    assert torch.allclose((preprocess([ramp], 25) + 1) * 127.5, resized, atol=1e-4)  # whole grey levels


def test_preprocess_agrees_with_cv2_inter_cubic():
    cv2 = pytest.importorskip("cv2", reason="OpenCV (DeepfakeBench's resize) is in .venv-detectors only")
    rng = np.random.default_rng(3)
    for shape, size in (((300, 260, 3), 256), ((100, 90, 3), 224), ((180, 180, 3), 256)):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        expected = cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        got = ((preprocess([image], size)[0].permute(1, 2, 0) + 1) * 127.5).round().numpy()
        assert np.abs(got - expected).max() <= 1, shape  # cv2 works in fixed point: at most one grey level


# --------------------------------------------------------------------------- bad input


def _one_line_naming(error: DfabenchError, path: Path) -> str:
    message = str(error)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_weights_are_required():
    with pytest.raises(DfabenchError, match="weights=PATH is required"):
        EfficientNetB4Detector()


def test_a_missing_file(tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(InputError) as caught:
        CLIPDetector(weights=str(path))
    assert "no such weights file" in _one_line_naming(caught.value, path)


def test_another_detectors_checkpoint(clip):
    _, path = clip
    with pytest.raises(InputError) as caught:
        EfficientNetB4Detector(weights=str(path))
    message = _one_line_naming(caught.value, path)
    assert "not a DeepfakeBench efficientnetb4 checkpoint" in message
    assert "use --model dfb-clip" in message


def test_missing_keys(effnet, tmp_path):
    reference, _ = effnet
    state = reference.state_dict()
    del state["backbone.efficientnet._blocks.7._se_reduce.weight"]
    path = tmp_path / "cut.pth"
    torch.save(state, path)
    with pytest.raises(InputError) as caught:
        EfficientNetB4Detector(weights=str(path))
    message = _one_line_naming(caught.value, path)
    assert "1 key missing" in message and "blocks.7.squeeze_excite.reduce.weight" in message


def test_unexpected_keys_and_wrong_shapes(clip, tmp_path):
    reference, _ = clip
    state = reference.state_dict()
    extra = tmp_path / "extra.pth"
    torch.save({**state, "backbone.adapter.weight": torch.zeros(3)}, extra)
    with pytest.raises(InputError) as caught:
        CLIPDetector(weights=str(extra))
    assert "1 unexpected (e.g. backbone.adapter.weight)" in _one_line_naming(caught.value, extra)
    wide = tmp_path / "three-way.pth"
    torch.save({**state, "head.weight": torch.zeros(3, 64), "head.bias": torch.zeros(3)}, wide)
    with pytest.raises(InputError) as caught:
        CLIPDetector(weights=str(wide))
    assert "head.weight has shape (3, 64), the network needs (2, 64)" in _one_line_naming(caught.value, wide)


def test_a_bare_backbone_is_not_a_detector(clip, tmp_path):
    reference, _ = clip
    path = tmp_path / "backbone.pth"
    torch.save(reference.backbone.state_dict(), path)
    with pytest.raises(InputError) as caught:
        CLIPDetector(weights=str(path))
    assert "not a DeepfakeBench clip checkpoint" in _one_line_naming(caught.value, path)


@pytest.mark.parametrize("content, problem", [
    ([torch.zeros(2)], "not a state dict"),
    (torch.zeros(2), "not a state dict"),
    ({"epoch": 3, "weights": torch.zeros(2)}, "not a state dict: 1 of 2 entries are not tensors"),
    ({}, "not a state dict"),
])
def test_not_a_state_dict(tmp_path, content, problem):
    path = tmp_path / "odd.pth"
    torch.save(content, path)
    with pytest.raises(InputError) as caught:
        CLIPDetector(weights=str(path))
    assert problem in _one_line_naming(caught.value, path)


class _Payload:
    """Unpickling this would create a file: the loader must refuse it, never run it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.pth"
    torch.save({"backbone.x": _Payload(marker)}, path)
    with pytest.raises(InputError) as caught:
        EfficientNetB4Detector(weights=str(path))
    assert "cannot read the weights" in _one_line_naming(caught.value, path)
    assert not marker.exists()
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not safetensors at all")
    with pytest.raises(InputError) as caught:
        CLIPDetector(weights=str(garbage))
    assert "cannot read the weights" in _one_line_naming(caught.value, garbage)


def test_sizes_the_model_cannot_take(clip, effnet):
    _, clip_path = clip
    with pytest.raises(InputError) as caught:
        CLIPDetector(weights=str(clip_path), size=224)
    assert "position embeddings are for 32x32 inputs" in _one_line_naming(caught.value, clip_path)
    _, effnet_path = effnet
    with pytest.raises(InputError) as caught:
        EfficientNetB4Detector(weights=str(effnet_path), size=8)
    assert "cannot take size 8" in _one_line_naming(caught.value, effnet_path)
    with pytest.raises(DfabenchError, match="size must be an integer"):
        EfficientNetB4Detector(weights=str(effnet_path), size="big")
    with pytest.raises(DfabenchError, match="device must be"):
        EfficientNetB4Detector(weights=str(effnet_path), device="tpu")


def test_xception_without_timm_says_where_it_runs(tmp_path):
    try:
        import timm  # noqa: F401
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - the case under test
        pass
    else:
        pytest.skip("timm and torchvision work here: tests/test_deepfakebench_xception.py covers dfb-xception")
    with pytest.raises(DfabenchError) as caught:
        XceptionDetector(weights=str(tmp_path / "xception_best.pth"))
    message = str(caught.value)
    assert "\n" not in message
    assert "dfabench-detectors[timm]" in message and ".ci/detectors-env.sh" in message


# --------------------------------------------------------------------------- a run, end to end


@pytest.mark.slow  # about 20 s, most of it building the smoke benchmark into a fresh cache folder
def test_dfabench_run_on_the_smoke_benchmark(effnet, tmp_path, monkeypatch, capsys):
    pytest.importorskip("skimage", reason="the smoke benchmark needs dfabench[smoke]")
    from dfabench.cli import main

    _, path = effnet
    monkeypatch.setenv("DFABENCH_CACHE_DIR", str(tmp_path / "cache"))  # the smoke benchmark is built there
    out = tmp_path / "run"
    code = main(["run", "--model", "dfb-efficientnet-b4", "--model-arg", f"weights={path}", "--model-arg", "size=64",
                 "--tasks", "DF-D,DF-C", "--bench", "smoke", "--out", str(out), "--limit", "24", "--no-progress",
                 "--n-boot", "50"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads((out / "run.json").read_text())
    assert record["counts"]["DF-D"]["n"] == 24 and record["counts"]["DF-D"]["n_failed"] == 0
    assert 0 <= record["metrics"]["DF-D"]["auc"]["value"] <= 1
    assert record["model"]["identity"]["weights_sha256"] == EfficientNetB4Detector(
        weights=str(path), size=64).identity()["weights_sha256"]
    assert "DF-C" not in record["metrics"] or not record["metrics"]["DF-C"]  # no category probabilities: n/a
    samples = [json.loads(line) for line in (out / "samples-DF-D.jsonl").read_text().splitlines()]
    assert len(samples) == 24 and all(0 <= s["score"] <= 1 for s in samples)
    assert os.path.isfile(out / "run.json")
