"""Load an image-text-to-text checkpoint: its processor and its model.

The model class is found in this order: ``AutoModelForImageTextToText``, then
``AutoModelForVision2Seq`` (transformers 4.x), then the classes named in the config's
``architectures``, then ``AutoModelForCausalLM`` (remote-code models such as the original
InternVL-Chat). Only "this auto class does not know that config" moves to the next one; any
other error (a missing file, out of memory) is raised as it is.

The processor comes from ``AutoProcessor``. Qwen2-VL / Qwen2.5-VL processors also build a
video processor, which needs torchvision; when that import fails, :class:`PlaceholderProcessor`
is assembled from the checkpoint's tokenizer, image processor and chat template and expands
``<|image_pad|>`` itself, exactly as the Qwen2-VL processor does for images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dfabench.api import DfabenchError

#: model types whose processor the placeholder fallback knows how to replace
QWEN_VL_TYPES = ("qwen2_vl", "qwen2_5_vl")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DfabenchError(f"model argument device={device!r}, but torch sees no CUDA device")
    return device


def resolve_dtype(dtype: str, device: str):
    """The torch dtype to load with (``"auto"``: the checkpoint's own on a GPU, float32 on the CPU)."""
    import torch

    if dtype == "auto":
        return "auto" if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def _hub_kwargs(revision: str | None, trust_remote_code: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision:
        kwargs["revision"] = revision
    return kwargs


def load_config(path: str, *, revision: str | None = None, trust_remote_code: bool = False):
    from transformers import AutoConfig

    local = Path(path).expanduser()
    looks_local = path.startswith(("/", "./", "../", "~")) or local.exists()
    if looks_local and not local.is_dir():
        raise DfabenchError(f"cannot load the checkpoint {path!r}: no such folder")
    try:
        return AutoConfig.from_pretrained(path, **_hub_kwargs(revision, trust_remote_code))
    except OSError as exc:
        raise DfabenchError(f"cannot load the checkpoint {path!r}: {exc}") from None
    except ValueError as exc:
        hint = "" if trust_remote_code else " (if it needs its own code, add --model-arg trust_remote_code=true)"
        raise DfabenchError(f"cannot load the checkpoint config of {path!r}: {exc}{hint}") from None


def load_processor(path: str, config, *, revision: str | None = None, trust_remote_code: bool = False):
    """The checkpoint's processor, with a pad token and LEFT padding (for batched generation)."""
    from transformers import AutoProcessor

    kwargs = _hub_kwargs(revision, trust_remote_code)
    try:
        processor = AutoProcessor.from_pretrained(path, **kwargs)
    except ImportError:
        if getattr(config, "model_type", None) not in QWEN_VL_TYPES:
            raise
        processor = PlaceholderProcessor.from_pretrained(path, config, **kwargs)
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None or not hasattr(processor, "image_processor"):
        raise DfabenchError(f"{path!r} has no image processor: it is not an image-text-to-text checkpoint")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if getattr(processor, "chat_template", None) is None and getattr(tokenizer, "chat_template", None) is None:
        raise DfabenchError(f"{path!r} has no chat template (processor or tokenizer): cannot build prompts")
    return processor


def _dtype_keyword() -> str:
    """``dtype`` (transformers >= 4.56) or ``torch_dtype`` (older)."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _auto_classes(config) -> list[Any]:
    import transformers

    classes: list[Any] = [getattr(transformers, name) for name in ("AutoModelForImageTextToText",
                                                                    "AutoModelForVision2Seq")
                          if hasattr(transformers, name)]
    for name in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, name, None)
        if cls is not None:
            classes.append(cls)
    classes.append(transformers.AutoModelForCausalLM)
    return classes


def load_model(path: str, config, *, dtype: str = "auto", device: str = "cpu", revision: str | None = None,
               trust_remote_code: bool = False, attn_implementation: str | None = None):
    """Load the model in eval mode on ``device`` (``cuda`` alone spreads it over every visible GPU)."""
    import torch

    kwargs = _hub_kwargs(revision, trust_remote_code)
    kwargs[_dtype_keyword()] = resolve_dtype(dtype, device)
    if device == "cuda" and torch.cuda.device_count() > 1:
        kwargs["device_map"] = "auto"
    else:
        kwargs["device_map"] = {"": device}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    tried = []
    for cls in _auto_classes(config):
        try:
            model = cls.from_pretrained(path, config=config, **kwargs)
        except ValueError as exc:
            if "Unrecognized configuration class" not in str(exc):
                raise
            tried.append(cls.__name__)
            continue
        return model.eval()
    raise DfabenchError(f"no transformers model class loads {path!r} (model type "
                        f"{getattr(config, 'model_type', '?')!r}; tried {', '.join(tried)})")


class PlaceholderProcessor:
    """A processor made of a tokenizer and an image processor, for Qwen2-VL-style checkpoints.

    Each ``<|image_pad|>`` in the text becomes ``grid_t * grid_h * grid_w / merge_size**2``
    copies of itself (one per merged vision patch), then the text is tokenized and
    ``mm_token_type_ids`` marks the image tokens, as ``Qwen2VLProcessor`` does.
    """

    image_token = "<|image_pad|>"

    def __init__(self, tokenizer, image_processor, chat_template: str | None):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)

    @classmethod
    def from_pretrained(cls, path: str, config, **kwargs: Any) -> PlaceholderProcessor:
        from transformers import AutoImageProcessor, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        image_processor = AutoImageProcessor.from_pretrained(path, **kwargs)
        return cls(tokenizer, image_processor, _read_chat_template(path, **kwargs))

    def apply_chat_template(self, messages: list[dict[str, Any]], **kwargs: Any):
        return self.tokenizer.apply_chat_template(messages, chat_template=self.chat_template, **kwargs)

    def __call__(self, text: list[str], images: list[list[Any]] | None = None, **kwargs: Any):
        from transformers import BatchFeature

        return_tensors = kwargs.pop("return_tensors", None)
        data: dict[str, Any] = {}
        texts = list(text)
        if images:
            flat = [image for per_sample in images for image in per_sample]
            image_inputs = self.image_processor(images=flat, return_tensors=return_tensors)
            data.update(image_inputs)
            merge = self.image_processor.merge_size ** 2
            counts = [int(grid.prod()) // merge for grid in image_inputs["image_grid_thw"]]
            index = 0
            for i, sample in enumerate(texts):
                parts = sample.split(self.image_token)
                expanded = parts[0]
                for part in parts[1:]:
                    if index >= len(counts):
                        raise ValueError("more <|image_pad|> placeholders in the text than images")
                    expanded += self.image_token * counts[index] + part
                    index += 1
                texts[i] = expanded
            if index != len(counts):
                raise ValueError(f"{len(counts)} images but {index} <|image_pad|> placeholders in the text")
        encoded = self.tokenizer(texts, return_tensors=return_tensors, **kwargs)
        data.update(encoded)
        ids = encoded["input_ids"]
        data["mm_token_type_ids"] = (ids == self.image_token_id).long() if return_tensors == "pt" else [
            [int(t == self.image_token_id) for t in row] for row in ids]
        return BatchFeature(data=data, tensor_type=None)

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args: Any, **kwargs: Any) -> str:
        return self.tokenizer.decode(*args, **kwargs)


def _read_chat_template(path: str, **kwargs: Any) -> str | None:
    """``chat_template.jinja`` or ``chat_template.json`` of a checkpoint (local or hub), if any."""
    folder = Path(path)
    if folder.is_dir():
        jinja, js = folder / "chat_template.jinja", folder / "chat_template.json"
        if jinja.is_file():
            return jinja.read_text(encoding="utf-8")
        if js.is_file():
            return json.loads(js.read_text(encoding="utf-8")).get("chat_template")
        return None
    from huggingface_hub import hf_hub_download

    for name in ("chat_template.jinja", "chat_template.json"):
        try:
            local = hf_hub_download(path, name, revision=kwargs.get("revision"))
        except Exception:  # noqa: BLE001 - the file is optional; the tokenizer's template is the fallback
            continue
        text = Path(local).read_text(encoding="utf-8")
        return text if name.endswith(".jinja") else json.loads(text).get("chat_template")
    return None
