"""DeepfakeBench's released detector checkpoints as dfabench models: ``dfb-xception``, ``dfb-efficientnet-b4``,
``dfb-clip``.

DeepfakeBench (SCLBD/DeepfakeBench, ``training/``) saves a detector with ``torch.save(model.state_dict())``;
under DistributedDataParallel every key gains a ``module.`` prefix (stripped here). What each checkpoint holds,
and how its test loader feeds it, read off DeepfakeBench's code:

- **xception** (``detectors/xception_detector.py``, ``networks/xception.py``, the FaceForensics++ Xception):
  keys ``backbone.conv1`` .. ``backbone.block12.rep.N`` .. ``backbone.bn4``, the head ``backbone.last_linear``
  (``backbone.last_linear.1`` when trained with dropout) and an unused ``backbone.adjust_channel`` (kept by
  every checkpoint, used by no test path in ``mode: original``). Built here with timm's ``legacy_xception``,
  whose layers carry the same names (the head is ``fc``); timm needs torchvision.
- **efficientnetb4** (``networks/efficientnetb4.py``): ``efficientnet_pytorch``'s EfficientNet-B4 with its stem
  replaced by a plain ``Conv2d(3, 48, 3, stride=2)`` (no padding) and its ``_fc`` by ``Identity``, then
  ``backbone.last_layer`` = ``Linear(1792, 2)`` on the average-pooled features. Built here with transformers'
  ``EfficientNetModel``: B4's coefficients, the stem's padding removed, and ``depthwise_padding=[6]``, because
  efficientnet_pytorch pads its stride-2 depthwise convolutions statically for a 380x380 input whatever the
  input is: (0, 1) for the 3x3 ones at even sizes, (1, 2) for the 5x5 one of stage 6, but (2, 2) for the 5x5
  one of stage 3 (block 6, an odd 95 there), which is transformers' symmetric padding.
- **clip** (``detectors/clip_detector.py``): ``CLIPModel.from_pretrained("openai/clip-vit-base-patch16")
  .vision_model`` as ``backbone`` (transformers' names: ``backbone.embeddings.patch_embedding`` ..
  ``backbone.post_layernorm``; older checkpoints also hold ``backbone.embeddings.position_ids``) and ``head`` =
  ``Linear(768, 2)`` on the ``pooler_output``. Built here with transformers' ``CLIPVisionModel``, its sizes read
  off the checkpoint's tensors (ViT-B/16 at 224 for DeepfakeBench's).
- **which output is P(fake)**: every detector's ``forward`` gives ``prob = softmax(cls, dim=1)[:, 1]`` and
  ``training/test.py`` scores with it; label 1 is fake (``config/test_config.yaml``'s ``label_dict``).
- **preprocessing** (``dataset/abstract_dataset.py``, test mode, no augmentation): the aligned face crop,
  decoded as RGB, ``cv2.resize(img, (resolution, resolution), interpolation=cv2.INTER_CUBIC)`` into uint8, then
  ``ToTensor`` (/255) and ``Normalize(mean, std)``; the configs (``config/detector/{xception,efficientnetb4,
  clip}.yaml``) give resolution 256, 256, 224 and mean = std = (0.5, 0.5, 0.5) for all three (CLIP included:
  not CLIP's own statistics). Here the resize is torch's bicubic interpolation (the same kernel, a = -0.75,
  half-pixel centres, edge pixels replicated, no antialiasing), rounded and clipped to uint8 as cv2 does: it
  agrees with cv2 to within one grey level (cv2 computes in fixed point), and needs no OpenCV.

Model arguments: ``weights=PATH`` (required: a ``.pth`` read with ``torch.load(weights_only=True)``, or a
``.safetensors``), ``size`` (the input side, DeepfakeBench's resolution by default), ``device`` (``cpu``, or
``cuda`` / ``cuda:N``). The SHA-256 of the weights file is part of the model's identity.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfabench.api import DfabenchError, InputError, Model, ScoreRequest, Scores, sha256_file

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

#: the input side the CNNs must get at least (Xception's stem and five stride-2 stages leave 1x1 at 32)
MIN_SIZE = 32
MAX_SIZE = 2048
#: DeepfakeBench's normalisation for all three detectors (``config/detector/*.yaml``)
DFB_MEAN = (0.5, 0.5, 0.5)
DFB_STD = (0.5, 0.5, 0.5)
#: a key of each DeepfakeBench detector's checkpoint that no other of the three has
_SIGNATURES = {
    "xception": ("backbone.block1.rep.0.pointwise.weight", "dfb-xception"),
    "efficientnetb4": ("backbone.efficientnet._conv_stem.weight", "dfb-efficientnet-b4"),
    "clip": ("backbone.embeddings.patch_embedding.weight", "dfb-clip"),
}
_OPTIONAL_LEAVES = ("num_batches_tracked",)


# --------------------------------------------------------------------------- reading a checkpoint


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file: ``.safetensors``, else ``torch.load(weights_only=True)`` (never a pickle
    of arbitrary objects). A ``{"state_dict": {...}}`` wrapper is opened; DistributedDataParallel's ``module.``
    prefix is removed. Anything that is not a mapping of names to tensors is an :class:`InputError`."""
    import torch

    if not path.is_file():
        raise InputError(path, "no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever the decoder says, the file is bad input
        raise InputError(path, f"cannot read the weights (torch.load with weights_only=True, or safetensors): "
                               f"{_first_line(exc)}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise InputError(path, f"not a state dict (a mapping of names to tensors) but {type(state).__name__}")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(path, f"not a state dict: {len(bad)} of {len(state)} entries are not tensors "
                               f"(e.g. {str(bad[0])[:60]!r})")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _guess(state: dict[str, Any]) -> str:
    """What the checkpoint looks like, for a message: another DeepfakeBench detector, a bare backbone, or nothing."""
    for detector, (key, model) in _SIGNATURES.items():
        if key in state:
            return f"; it looks like a DeepfakeBench {detector} checkpoint: use --model {model}"
    for detector, (key, _) in _SIGNATURES.items():
        if key.removeprefix("backbone.") in state or key.replace("backbone.efficientnet.", "") in state:
            return (f"; it looks like a bare {detector} backbone (ImageNet weights?), not a trained DeepfakeBench "
                    "detector (whose keys start with 'backbone.')")
    return ""


# --------------------------------------------------------------------------- the three networks


@dataclass(frozen=True)
class DetectorSpec:
    """One DeepfakeBench detector: its name there, its test resolution, and the library that builds it."""

    model: str  # the dfabench model name
    detector: str  # DeepfakeBench's ``model_name``
    resolution: int
    library: str
    architecture: str
    fixed_size: bool = False  # a ViT: its position embeddings fix the input size
    channels_last: bool = True  # a CNN: NHWC convolutions (1.4-1.7x faster on the CPU here)


XCEPTION = DetectorSpec("dfb-xception", "xception", 256, "timm", "timm legacy_xception")
EFFICIENTNET_B4 = DetectorSpec("dfb-efficientnet-b4", "efficientnetb4", 256, "transformers",
                               "transformers EfficientNetModel (B4)")
CLIP = DetectorSpec("dfb-clip", "clip", 224, "transformers", "transformers CLIPVisionModel", fixed_size=True,
                    channels_last=False)


def _import_timm(spec: DetectorSpec):
    try:
        import timm
        import torchvision  # noqa: F401  (timm's image code needs it; a mismatched build fails here)
    except Exception as exc:  # noqa: BLE001 - ImportError, or torchvision's RuntimeError beside the wrong torch
        raise DfabenchError(
            f"{spec.model}: needs timm and torchvision, which do not work here ({_first_line(exc, 120)}); install "
            "the plugin's timm extra where torch and torchvision match (pip install 'dfabench-detectors[timm]' "
            "torch==2.14.1 torchvision==0.29.1), e.g. the virtualenv that `bash .ci/detectors-env.sh` makes "
            "(.venv-detectors)") from None
    return timm


def _import_transformers(spec: DetectorSpec):
    try:
        import transformers
    except ImportError:
        raise DfabenchError(f"{spec.model}: needs transformers: pip install 'dfabench-detectors[transformers]'") \
            from None
    return transformers


def build_xception() -> nn.Module:
    """timm's ``legacy_xception`` with a 2-way head: DeepfakeBench's Xception in ``mode: original``."""
    import warnings

    from torch import nn

    timm = _import_timm(XCEPTION)

    class XceptionNet(nn.Module):
        def __init__(self):
            super().__init__()
            with warnings.catch_warnings():  # timm warns that the legacy name is deprecated
                warnings.simplefilter("ignore")
                self.backbone = timm.create_model("legacy_xception", pretrained=False, num_classes=2)

        def forward(self, pixels):
            return self.backbone(pixels)

    return XceptionNet()


def efficientnet_b4_config():
    """transformers' EfficientNet configured as DeepfakeBench's EfficientNet-B4 (see the module docstring)."""
    from transformers import EfficientNetConfig

    return EfficientNetConfig(width_coefficient=1.4, depth_coefficient=1.8, image_size=380, hidden_dim=1792,
                              depthwise_padding=[6], batch_norm_eps=1e-3, hidden_act="swish")


def build_efficientnet_b4() -> nn.Module:
    """EfficientNet-B4 features (the stem unpadded, as DeepfakeBench replaces it), mean-pooled, ``Linear(1792, 2)``."""
    from torch import nn

    _import_transformers(EFFICIENTNET_B4)
    from transformers import EfficientNetModel

    class EfficientNetB4Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.efficientnet = EfficientNetModel(efficientnet_b4_config())
            self.efficientnet.embeddings.padding = nn.Identity()
            self.last_layer = nn.Linear(1792, 2)

        def forward(self, pixels):
            features = self.efficientnet(pixel_values=pixels).last_hidden_state
            return self.last_layer(features.mean(dim=(2, 3)))

    return EfficientNetB4Net()


def clip_config(state: dict[str, torch.Tensor], path: Path):
    """A ``CLIPVisionConfig`` with the sizes of the checkpoint's tensors (ViT-B/16 at 224 for DeepfakeBench's):
    width and patch from the patch embedding, the input side from the position embeddings, depth from the layer
    count, the MLP width from ``fc1``; 64-wide attention heads, QuickGELU, as OpenAI's CLIP."""
    from transformers import CLIPVisionConfig

    try:
        hidden, channels, patch, _ = state["backbone.embeddings.patch_embedding.weight"].shape
        positions = state["backbone.embeddings.position_embedding.weight"].shape[0]
        intermediate = state["backbone.encoder.layers.0.mlp.fc1.weight"].shape[0]
    except (KeyError, ValueError):
        raise InputError(path, "not a DeepfakeBench clip checkpoint: no CLIP vision embeddings "
                               f"(backbone.embeddings.patch_embedding / position_embedding){_guess(state)}") from None
    grid = math.isqrt(max(positions - 1, 0))
    if grid * grid != positions - 1 or hidden % 64 or channels != 3:
        raise InputError(path, f"not a CLIP vision tower: {positions} position embeddings, width {hidden}, "
                               f"{channels} input channels")
    layers = 1 + max(int(m[1]) for k in state if (m := re.match(r"backbone\.encoder\.layers\.(\d+)\.", k)))
    return CLIPVisionConfig(hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                            num_attention_heads=hidden // 64, image_size=grid * patch, patch_size=patch,
                            hidden_act="quick_gelu", layer_norm_eps=1e-5)


def build_clip(config) -> nn.Module:
    """transformers' CLIP vision tower (``pooler_output``: the final layer norm of the class token), ``head``."""
    from torch import nn

    _import_transformers(CLIP)
    from transformers import CLIPVisionModel

    class CLIPNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = CLIPVisionModel(config)
            self.head = nn.Linear(config.hidden_size, 2)

        def forward(self, pixels):
            return self.head(self.backbone(pixel_values=pixels).pooler_output)

    return CLIPNet()


# --------------------------------------------------------------------------- DeepfakeBench keys -> these networks

_EFFICIENTNET_BLOCK = {"_expand_conv": "expansion.expand_conv", "_bn0": "expansion.expand_bn",
                       "_depthwise_conv": "depthwise_conv.depthwise_conv", "_bn1": "depthwise_conv.depthwise_norm",
                       "_se_reduce": "squeeze_excite.reduce", "_se_expand": "squeeze_excite.expand",
                       "_project_conv": "projection.project_conv", "_bn2": "projection.project_bn"}
_EFFICIENTNET_TOP = {"_conv_stem": "embeddings.convolution", "_bn0": "embeddings.batchnorm",
                     "_conv_head": "encoder.top_conv", "_bn1": "encoder.top_bn"}


def map_xception(key: str) -> str | None:
    """A DeepfakeBench xception key -> timm's (inside :func:`build_xception`); ``None``: dropped (unused)."""
    if key.startswith("backbone.adjust_channel."):
        return None  # built by every DeepfakeBench Xception, used only in the IID detector's mode
    match = re.fullmatch(r"backbone\.last_linear\.(?:1\.)?(weight|bias)", key)
    if match:
        return f"backbone.fc.{match[1]}"
    return key


def map_efficientnet_b4(key: str) -> str | None:
    """A DeepfakeBench efficientnetb4 key -> transformers' (inside :func:`build_efficientnet_b4`)."""
    if key.startswith("backbone.last_layer."):
        return key.removeprefix("backbone.")
    match = re.fullmatch(r"backbone\.efficientnet\._blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if match and match[2] in _EFFICIENTNET_BLOCK:
        return f"efficientnet.encoder.blocks.{match[1]}.{_EFFICIENTNET_BLOCK[match[2]]}.{match[3]}"
    match = re.fullmatch(r"backbone\.efficientnet\.(\w+)\.(\w+)", key)
    if match and match[1] in _EFFICIENTNET_TOP:
        return f"efficientnet.{_EFFICIENTNET_TOP[match[1]]}.{match[2]}"
    return key  # no place in the network: reported as unexpected


def map_clip(key: str, prefix: str = "") -> str | None:
    """A DeepfakeBench clip key -> transformers' ``CLIPVisionModel`` (``prefix``: ``vision_model.`` in
    transformers 4, where that model wraps the tower; nothing in 5)."""
    if key == "backbone.embeddings.position_ids":
        return None  # a buffer older transformers saved: always arange(positions)
    if key.startswith("backbone."):
        return f"backbone.{prefix}{key.removeprefix('backbone.')}"
    return key


def load_detector(spec: DetectorSpec, path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Build ``spec``'s network and load the DeepfakeBench checkpoint at ``path`` into it, with no key missing,
    none unexpected and every shape equal (else one :class:`InputError` line naming the file). Returns the
    network (eval mode) and what the identity records of its architecture."""
    if spec is XCEPTION:
        _import_timm(spec)  # before reading a large file: a missing library is the first thing to say
    else:
        _import_transformers(spec)
    state = read_state_dict(path)
    extra: dict[str, Any] = {}
    if spec is XCEPTION:
        net, mapper = build_xception(), map_xception
    elif spec is EFFICIENTNET_B4:
        net, mapper = build_efficientnet_b4(), map_efficientnet_b4
    else:
        config = clip_config(state, path)
        net = build_clip(config)
        prefix = "vision_model." if any(k.startswith("backbone.vision_model.") for k in net.state_dict()) else ""
        mapper = lambda key: map_clip(key, prefix)  # noqa: E731
        extra = {"vision": {"width": config.hidden_size, "layers": config.num_hidden_layers,
                            "heads": config.num_attention_heads, "mlp": config.intermediate_size,
                            "patch": config.patch_size, "image_size": config.image_size}}
    expected = net.state_dict()
    mapped: dict[str, Any] = {}
    for key, value in state.items():
        target = mapper(key)
        if target is not None:
            mapped[target] = value
    missing = [k for k in expected if k not in mapped and not k.endswith(_OPTIONAL_LEAVES)]
    unexpected = [k for k in mapped if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{_count(missing, 'key')} missing (e.g. {', '.join(missing[:2])})")
        if unexpected:
            original = [k for k in state if mapper(k) in unexpected]
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(original[:2])})")
        raise InputError(path, f"not a DeepfakeBench {spec.detector} checkpoint: {'; '.join(parts)}{_guess(state)}")
    for key, value in mapped.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            original = next(k for k in state if mapper(k) == key)
            raise InputError(path, f"not a DeepfakeBench {spec.detector} checkpoint: {original} has shape "
                                   f"{tuple(value.shape)}, the network needs {tuple(expected[key].shape)}")
    for key in expected:
        if key not in mapped:  # an optional buffer (num_batches_tracked): the network's own value
            mapped[key] = expected[key]
    net.load_state_dict({k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in mapped.items()},
                        strict=True)
    net.eval()
    return net, extra


def vit_b16_config():
    """openai/clip-vit-base-patch16's vision tower, DeepfakeBench's CLIP backbone."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                            image_size=224, patch_size=16, hidden_act="quick_gelu", layer_norm_eps=1e-5)


def write_random_checkpoint(model: str, path: str | Path, seed: int = 0) -> Path:
    """Write randomly initialised weights in DeepfakeBench's key layout for ``model`` (``dfb-xception``,
    ``dfb-efficientnet-b4``, ``dfb-clip`` at ViT-B/16): the full-size network, for benchmarks and trying the
    plumbing. Its scores mean nothing. (The tests check the layout against DeepfakeBench's own construction.)"""
    import torch
    from torch import nn

    def torch_init(net: nn.Module) -> nn.Module:
        """PyTorch's initialisation of the layers, then BatchNorm statistics measured on one random batch: with
        the libraries' own small init (transformers draws BatchNorm scales near 0) the activations of a deep CNN
        vanish, and its output no longer depends on its input."""
        norms = [layer for layer in net.modules() if isinstance(layer, nn.BatchNorm2d)]
        for layer in net.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
                layer.reset_parameters()
        for layer in norms:
            layer.momentum = 1.0
        net.train()
        with torch.no_grad():
            net(torch.rand(4, 3, 128, 128) * 2 - 1)
        for layer in norms:
            layer.momentum = 0.1
        return net.eval()

    torch.manual_seed(seed)
    path = Path(path)
    if model == XCEPTION.model:
        state = {("backbone.last_linear." + k.rsplit(".", 1)[1] if k.startswith("backbone.fc.") else k): v
                 for k, v in torch_init(build_xception()).state_dict().items()}
        adjust = {"0.weight": torch.randn(512, 2048, 1, 1) * 0.03, "0.bias": torch.zeros(512),
                  "1.weight": torch.ones(512), "1.bias": torch.zeros(512), "1.running_mean": torch.zeros(512),
                  "1.running_var": torch.ones(512), "1.num_batches_tracked": torch.tensor(0)}
        state.update({f"backbone.adjust_channel.{k}": v for k, v in adjust.items()})
    elif model == EFFICIENTNET_B4.model:
        block = {v: k for k, v in _EFFICIENTNET_BLOCK.items()}
        top = {v: k for k, v in _EFFICIENTNET_TOP.items()}
        state = {}
        for key, value in torch_init(build_efficientnet_b4()).state_dict().items():
            match = re.fullmatch(r"efficientnet\.encoder\.blocks\.(\d+)\.(\w+\.\w+)\.(\w+)", key)
            module, _, leaf = key.removeprefix("efficientnet.").rpartition(".")
            if match:
                state[f"backbone.efficientnet._blocks.{match[1]}.{block[match[2]]}.{match[3]}"] = value
            elif module in top:
                state[f"backbone.efficientnet.{top[module]}.{leaf}"] = value
            else:
                state[f"backbone.{key}"] = value  # last_layer
    elif model == CLIP.model:
        net = build_clip(vit_b16_config())
        state = {k.replace("backbone.vision_model.", "backbone."): v for k, v in net.state_dict().items()}
    else:
        raise DfabenchError(f"write_random_checkpoint: unknown model {model!r} (dfb-xception, dfb-efficientnet-b4, "
                            "dfb-clip)")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.contiguous() for k, v in state.items()}, path)
    return path


# --------------------------------------------------------------------------- preprocessing


def preprocess(images, size: int, mean=DFB_MEAN, std=DFB_STD) -> torch.Tensor:
    """DeepfakeBench's test transform of aligned face crops (PIL images or HxWx3 uint8 arrays) -> a float batch
    (N, 3, size, size): RGB, bicubic resize to ``size`` x ``size`` rounded to uint8 (cv2.INTER_CUBIC's kernel),
    /255, then ``(x - mean) / std``."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    out = []
    for image in images:
        array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.uint8)
        if array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"expected an RGB image, got an array of shape {array.shape}")
        pixels = torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).unsqueeze(0).float()
        if tuple(pixels.shape[2:]) != (size, size):
            pixels = F.interpolate(pixels, size=(size, size), mode="bicubic", align_corners=False, antialias=False)
            pixels = pixels.round().clamp(0, 255)
        out.append(pixels)
    batch = torch.cat(out) / 255.0
    return (batch - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


# --------------------------------------------------------------------------- the dfabench models


def _parse_device(model: str, device: Any) -> str:
    import torch

    text = str(device).strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise DfabenchError(f"{model}: device must be 'cpu', 'cuda' or 'cuda:N', not {device!r}")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise DfabenchError(f"{model}: device {text!r} asked for, but torch {torch.__version__} sees no CUDA device")
    return text


class DeepfakeBenchDetector(Model):
    """A DeepfakeBench detector checkpoint, score-capable: DF-D gets P(fake) = softmax(logits)[:, 1]; it gives
    no category probabilities (DF-C then reads n/a)."""

    capabilities = frozenset({"score"})
    deterministic = True
    default_batch_size = 8
    spec: DetectorSpec

    def __init__(self, weights: str | None = None, size: int | None = None, device: str = "cpu"):
        import torch

        name = self.spec.model
        if not weights or not isinstance(weights, str):
            raise DfabenchError(f"{name}: --model-arg weights=PATH is required (a DeepfakeBench {self.spec.detector} "
                                "checkpoint, .pth or .safetensors; the hub cannot be reached from here)")
        self.weights = Path(weights).expanduser()
        self.device = _parse_device(name, device)
        self.net, extra = load_detector(self.spec, self.weights)
        native = extra.get("vision", {}).get("image_size", self.spec.resolution)
        if size is None:
            size = native
        if isinstance(size, bool) or not isinstance(size, int):
            raise DfabenchError(f"{name}: size must be an integer (pixels), not {size!r}")
        if self.spec.fixed_size and size != native:
            raise InputError(self.weights, f"{name} cannot take size {size}: the checkpoint's position embeddings "
                                           f"are for {native}x{native} inputs (use size={native})")
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise InputError(self.weights, f"{name} cannot take size {size}: the input side must be from {MIN_SIZE} "
                                           f"to {MAX_SIZE} pixels (DeepfakeBench tests at {self.spec.resolution})")
        self.size = size
        self.net.to(self.device)
        if self.spec.channels_last:
            self.net.to(memory_format=torch.channels_last)
        # on the CPU, batches beyond a few images run no faster for the CNNs (benchmarks/bench_detectors.py)
        self.default_batch_size = 32 if self.device.startswith("cuda") else 8
        self._identity = {
            "detector": f"DeepfakeBench {self.spec.detector}",
            "weights_file": self.weights.name,
            "weights_sha256": sha256_file(self.weights),
            "architecture": self.spec.architecture,
            **extra,
            "input": {"size": self.size, "resize": "bicubic a=-0.75 (cv2.INTER_CUBIC), rounded to uint8",
                      "mean": list(DFB_MEAN), "std": list(DFB_STD)},
            "output": "softmax(logits)[:, 1]",
            "torch": torch.__version__,
            self.spec.library: _version(self.spec.library),
        }

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def fake_probabilities(self, images) -> list[float]:
        """P(fake) of each image (PIL images or HxWx3 uint8 arrays), in one forward pass."""
        import torch

        pixels = preprocess(images, self.size).to(self.device)
        if self.spec.channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            logits = self.net(pixels)
        return torch.softmax(logits.float(), dim=1)[:, 1].cpu().tolist()

    def score(self, requests: list[ScoreRequest]) -> list[Scores]:
        return [Scores(fake=p) for p in self.fake_probabilities([r.image for r in requests])]

    def close(self) -> None:
        self.net = None


def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:  # pragma: no cover - imported, so installed
        return None


class XceptionDetector(DeepfakeBenchDetector):
    """``dfb-xception``: DeepfakeBench's Xception (timm ``legacy_xception``; needs the timm extra)."""

    spec = XCEPTION


class EfficientNetB4Detector(DeepfakeBenchDetector):
    """``dfb-efficientnet-b4``: DeepfakeBench's EfficientNet-B4 (transformers ``EfficientNetModel``)."""

    spec = EFFICIENTNET_B4


class CLIPDetector(DeepfakeBenchDetector):
    """``dfb-clip``: DeepfakeBench's CLIP ViT-B/16 detector (transformers ``CLIPVisionModel``)."""

    spec = CLIP
