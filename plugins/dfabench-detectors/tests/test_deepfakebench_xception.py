"""dfb-xception: DeepfakeBench's Xception checkpoint layout loads into timm's legacy_xception.

timm needs torchvision, which does not import beside the CPU torch of .venv: these tests run in the virtualenv
that ``bash .ci/detectors-env.sh`` makes (``.venv-detectors``) and skip elsewhere.

The reference layout is written down here from DeepfakeBench's ``training/networks/xception.py`` (not from timm):
its entry, middle and exit flow, each ``Block``'s ``rep`` list of ``[ReLU, SeparableConv2d, BatchNorm2d]`` per
repetition (the first ReLU dropped where ``start_with_relu=False``), its ``skip``/``skipbn`` where the block
changes width or stride, ``last_linear`` (``last_linear.1`` with dropout) and the always-built ``adjust_channel``.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm", reason="timm (dfb-xception) needs torchvision: run these in .venv-detectors "
                                   "(bash .ci/detectors-env.sh)")
try:
    import torchvision  # noqa: F401
except Exception as exc:  # noqa: BLE001 - torchvision built for another torch raises RuntimeError
    pytest.skip(f"torchvision does not import here ({type(exc).__name__}): run in .venv-detectors",
                allow_module_level=True)

import numpy as np  # noqa: E402
from dfabench.api import InputError  # noqa: E402
from PIL import Image  # noqa: E402

from dfabench_detectors.deepfakebench import XceptionDetector, preprocess, write_random_checkpoint  # noqa: E402

# (in, out, reps, stride, start_with_relu, grow_first) of block1 .. block12
BLOCKS = ([(64, 128, 2, 2, False, True), (128, 256, 2, 2, True, True), (256, 728, 2, 2, True, True)]
          + [(728, 728, 3, 1, True, True)] * 8 + [(728, 1024, 2, 2, True, False)])


def _bn(name: str, n: int) -> dict[str, tuple]:
    return {f"{name}.weight": (n,), f"{name}.bias": (n,), f"{name}.running_mean": (n,), f"{name}.running_var": (n,),
            f"{name}.num_batches_tracked": ()}


def _separable(name: str, cin: int, cout: int) -> dict[str, tuple]:
    return {f"{name}.conv1.weight": (cin, 1, 3, 3), f"{name}.pointwise.weight": (cout, cin, 1, 1)}


def dfb_xception_shapes(dropout: bool = False) -> dict[str, tuple]:
    """The key -> shape of DeepfakeBench's ``Xception`` (``mode: original``, 2 classes) state dict."""
    shapes = {"conv1.weight": (32, 3, 3, 3), **_bn("bn1", 32), "conv2.weight": (64, 32, 3, 3), **_bn("bn2", 64)}
    for number, (cin, cout, reps, stride, start_with_relu, grow_first) in enumerate(BLOCKS, 1):
        block = f"block{number}"
        if cout != cin or stride != 1:
            shapes[f"{block}.skip.weight"] = (cout, cin, 1, 1)
            shapes.update(_bn(f"{block}.skipbn", cout))
        convs = [(cin, cout)] if grow_first else []
        filters = cout if grow_first else cin
        convs += [(filters, filters)] * (reps - 1)
        if not grow_first:
            convs.append((cin, cout))
        shift = 0 if start_with_relu else -1  # rep = rep[1:] drops the leading ReLU
        for j, (a, b) in enumerate(convs):
            shapes.update(_separable(f"{block}.rep.{3 * j + 1 + shift}", a, b))
            shapes.update(_bn(f"{block}.rep.{3 * j + 2 + shift}", b))
    shapes.update(_separable("conv3", 1024, 1536))
    shapes.update(_bn("bn3", 1536))
    shapes.update(_separable("conv4", 1536, 2048))
    shapes.update(_bn("bn4", 2048))
    head = "last_linear.1" if dropout else "last_linear"
    shapes.update({f"{head}.weight": (2, 2048), f"{head}.bias": (2,)})
    shapes.update({"adjust_channel.0.weight": (512, 2048, 1, 1), "adjust_channel.0.bias": (512,),
                   **_bn("adjust_channel.1", 512)})
    return shapes


def random_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of these shapes (BatchNorm variances positive)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.05
    return state


def dfb_xception_state(seed: int = 0, dropout: bool = False) -> dict[str, torch.Tensor]:
    """Random weights in DeepfakeBench's layout (checked against :func:`dfb_xception_shapes`), with BatchNorm
    statistics measured on one batch so that the deep network's output depends on its input."""
    import timm

    torch.manual_seed(seed)
    net = timm.create_model("legacy_xception", pretrained=False, num_classes=2)
    norms = [layer for layer in net.modules() if isinstance(layer, torch.nn.BatchNorm2d)]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in norms:
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) + 0.5)
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) * 0.4 - 0.2)
            layer.momentum = 1.0
        net.train()
        net(preprocess(_faces(4, seed=seed + 100), 256))
    head = "last_linear.1" if dropout else "last_linear"
    state = {(f"{head}." + k.rsplit(".", 1)[1] if k.startswith("fc.") else k): v for k, v in net.state_dict().items()}
    shapes = dfb_xception_shapes(dropout)
    state.update(random_state({k: v for k, v in shapes.items() if k.startswith("adjust_channel.")}, seed))
    assert {k: tuple(v.shape) for k, v in state.items()} == shapes  # DeepfakeBench's layout, key for key
    return state


def timm_reference(state: dict[str, torch.Tensor]):
    """timm's legacy_xception called directly, given the same tensors under timm's own names."""
    import timm

    net = timm.create_model("legacy_xception", pretrained=False, num_classes=2)
    own = {("fc." + k.rsplit(".", 1)[1] if k.startswith("last_linear") else k): v
           for k, v in state.items() if not k.startswith("adjust_channel.")}
    net.load_state_dict(own, strict=True)
    return net.eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    state = dfb_xception_state()
    path = tmp_path_factory.mktemp("xception") / "xception_best.pth"
    torch.save({f"backbone.{k}": v for k, v in state.items()}, path)
    return state, path


def _faces(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (64, 60, 3), dtype=np.uint8)) for _ in range(n)]


def test_xception_checkpoint_loads_and_matches_timm(checkpoint):
    state, path = checkpoint
    model = XceptionDetector(weights=str(path))  # strict: no key missing or unexpected
    assert model.size == 256
    images = _faces(2)
    pixels = preprocess(images, 256)
    with torch.no_grad():
        expected = timm_reference(state)(pixels)
        got = model.net(pixels)
    assert (expected[0] - expected[1]).abs().max() > 1e-3 * expected.abs().max()  # the input matters
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    assert model.fake_probabilities(images) == pytest.approx(torch.softmax(expected, 1)[:, 1].tolist(), abs=1e-5)
    identity = model.identity()
    assert identity["architecture"] == "timm legacy_xception" and identity["timm"]
    assert len(identity["weights_sha256"]) == 64


def test_xception_trained_with_dropout_and_ddp(tmp_path):
    state = dfb_xception_state(seed=1, dropout=True)
    path = tmp_path / "xception_dropout.pth"
    torch.save({f"module.backbone.{k}": v for k, v in state.items()}, path)
    model = XceptionDetector(weights=str(path), size=64)
    pixels = preprocess(_faces(1), 64)
    with torch.no_grad():
        torch.testing.assert_close(model.net(pixels), timm_reference(state)(pixels), rtol=1e-4, atol=1e-5)


def test_an_imagenet_xception_backbone_is_refused(tmp_path):
    """DeepfakeBench's pretrained/xception-b5690688.pth is a backbone to train from, not a detector."""
    shapes = {k: v for k, v in dfb_xception_shapes().items() if not k.startswith(("adjust", "last_linear"))}
    path = tmp_path / "xception-b5690688.pth"
    torch.save({**random_state(shapes), "fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}, path)
    with pytest.raises(InputError) as caught:
        XceptionDetector(weights=str(path))
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "bare xception backbone" in message


def test_an_xception_with_a_wrong_head(checkpoint, tmp_path):
    state, _ = checkpoint
    path = tmp_path / "iid.pth"
    wrong = {**state, "last_linear.weight": torch.zeros(2, 512)}  # the IID detector's adjusted channels
    torch.save({f"backbone.{k}": v for k, v in wrong.items()}, path)
    with pytest.raises(InputError, match=r"backbone\.last_linear\.weight has shape \(2, 512\)"):
        XceptionDetector(weights=str(path))


def test_random_xception_checkpoint_has_deepfakebench_layout(tmp_path):
    path = write_random_checkpoint("dfb-xception", tmp_path / "random.pth")
    written = torch.load(path, weights_only=True)
    assert {k.removeprefix("backbone."): tuple(v.shape) for k, v in written.items()} == dfb_xception_shapes()
    probabilities = XceptionDetector(weights=str(path), size=64).fake_probabilities(_faces(2, seed=5))
    assert probabilities[0] != probabilities[1]
