"""The parts of a LLaVA-style model that DFA-GPT trains: the projector and the LLM's LoRA targets.

DFA-GPT keeps the vision encoder frozen, trains the projector (vision features -> LLM
embeddings) and trains LoRA matrices on the language model only. The projector is found by
its name in transformers' implementations (``multi_modal_projector`` for LLaVA / LLaVA-NeXT,
``connector`` for Idefics3 / SmolVLM, ``visual.merger`` for Qwen2-VL, ``mm_projector`` for
original LLaVA code); LoRA targets are the linear layers with one of the requested names
outside the vision encoder and the projector.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dfabench.api import DfabenchError

PROJECTOR_NAMES = ("multi_modal_projector", "mm_projector", "connector", "visual.merger")
#: module names of vision encoders (and projectors) that LoRA must not touch
VISION_NAMES = ("vision_tower", "vision_model", "visual", "image_encoder", "vision_encoder") + PROJECTOR_NAMES
PROJECTOR_FILE = "projector.safetensors"


@contextmanager
def quiet_peft() -> Iterator[None]:
    """Silence the transformers 5 deprecation warning that peft triggers (``is_gradient_checkpointing``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def find_projector(model) -> tuple[str, Any]:
    """``(qualified name, module)`` of the vision-language projector."""
    for name, module in model.named_modules():
        if any(name == wanted or name.endswith("." + wanted) for wanted in PROJECTOR_NAMES):
            return name, module
    raise DfabenchError(f"{type(model).__name__}: no projector module found (looked for "
                        f"{', '.join(PROJECTOR_NAMES)}); DFA-GPT needs a LLaVA-style model")


def lora_target_modules(model, names: list[str] | tuple[str, ...]) -> list[str]:
    """Qualified names of the language model's linear layers called one of ``names``."""
    import torch

    targets = []
    for name, module in model.named_modules():
        parts = name.split(".")
        if parts[-1] not in names or not isinstance(module, torch.nn.Linear):
            continue
        if any(vision in parts for vision in VISION_NAMES):
            continue
        targets.append(name)
    if not targets:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise DfabenchError(f"no linear layer of the language model is named {', '.join(names)} "
                            f"(--target-modules); {type(model).__name__} has {', '.join(linear[:16])}")
    return targets


def save_projector(module, path: Path, name: str) -> None:
    """Write the projector's weights as safetensors, with its module name in the metadata."""
    from safetensors.torch import save_file

    tensors = {key: value.detach().to("cpu").contiguous() for key, value in module.state_dict().items()}
    save_file(tensors, str(path), metadata={"module": name, "format": "pt"})


def load_projector(model, path: Path) -> str:
    """Load projector weights into ``model`` (every key must match). Returns the module name."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    name, module = find_projector(model)
    with safe_open(str(path), framework="pt") as handle:
        saved_name = (handle.metadata() or {}).get("module")
    if saved_name and saved_name.rsplit(".", 1)[-1] != name.rsplit(".", 1)[-1]:
        raise DfabenchError(f"{path}: projector weights of module {saved_name!r}, "
                            f"but this model's projector is {name!r}")
    tensors = load_file(str(path))
    own = module.state_dict()
    if set(tensors) != set(own) or any(tensors[k].shape != own[k].shape for k in own):
        raise DfabenchError(f"{path}: the projector weights do not fit this base model's {name!r} "
                            f"(keys or shapes differ)")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})
    return name
