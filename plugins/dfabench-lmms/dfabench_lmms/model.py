"""The ``lmms`` model: an lmms-eval model, by its registry name, as a dfabench model.

Arguments (``--model-arg k=v``):

``lmms_model`` (required)
    the lmms-eval registry name (``llava_hf``, ``qwen2_vl``, ``idefics2``, ... see
    ``python -c "import lmms_eval.models as m; print(m.list_available_models())"``).
``lmms_args``
    lmms-eval's model arguments, as its ``--model_args`` takes them
    (``"pretrained=PATH,device_map=cpu"``), or a JSON object.
``batch_size`` (default 1)
    lmms-eval's own batch size (several of its model classes only accept 1).
``device``
    passed to the lmms-eval class unless ``lmms_args`` sets it; default ``cuda`` when torch
    sees a GPU, else ``cpu``.
``chat``
    ``true``: use the model's chat-template class (lmms-eval's ``doc_to_messages`` protocol, which
    carries multi-turn history and system prompts as messages); ``false``: its "simple" class
    (one context string: earlier turns are written into it as ``USER: ...`` / ``ASSISTANT: ...``
    lines); default: what lmms-eval itself prefers (the chat class where there is one).
``empty_is_error`` (default true)
    lmms-eval's model classes catch generation errors and return an empty answer; an empty
    answer is therefore recorded as a failed sample, not as an answer.

Each batch of dfabench requests becomes lmms-eval ``Instance``\\ s for ``generate_until``. lmms-eval
model classes look documents up in ``model.task_dict[task][split][doc_id]`` and call the
instance's ``doc_to_visual`` / ``doc_to_messages`` on them; this module installs an in-memory
task (``dfabench``, split ``test``) whose documents are the requests themselves.

Identity: the registry name, the resolved class, the lmms-eval version, the parsed model
arguments and, when ``pretrained`` is a local folder, a fingerprint of its weight files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from dfabench.api import DfabenchError, GenerateRequest, Model, Response, open_rgb, sha256_file

TASK_NAME = "dfabench"
SPLIT = "test"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def _import_lmms_eval():
    try:
        import lmms_eval  # noqa: F401
        from lmms_eval.api.instance import Instance
        from lmms_eval.models import get_model
    except ImportError as exc:
        raise DfabenchError(f"the 'lmms' model needs lmms-eval ({exc}): pip install 'dfabench-lmms[lmms]', best in "
                            "its own virtual environment (lmms-eval brings its own torch; see "
                            "plugins/dfabench-lmms/README.md or .ci/lmms-env.sh)") from None
    return Instance, get_model


def _as_bool(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise DfabenchError(f"lmms: model argument {name} must be true or false, not {value!r}")


def parse_lmms_args(value: str | dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """``lmms_args`` -> (the ``key=value,...`` string lmms-eval takes, the parsed dict)."""
    if value is None or value == "":
        return "", {}
    if isinstance(value, dict):
        parsed = dict(value)
        text = ",".join(f"{k}={v}" for k, v in parsed.items())
        return text, parsed
    if not isinstance(value, str):
        raise DfabenchError(f"lmms: lmms_args must be a 'key=value,...' string, not {value!r}")
    parsed = {}
    for pair in value.split(","):
        if not pair.strip():
            continue
        key, sep, item = pair.partition("=")
        if not sep or not key.strip():
            raise DfabenchError(f"lmms: bad lmms_args item {pair!r}: expected key=value")
        parsed[key.strip()] = item.strip()
    return value, parsed


def weights_fingerprint(folder: str | Path) -> str | None:
    """SHA-256 over the names and contents of the weight files in a local checkpoint folder."""
    try:
        from dfabench_hf.fingerprint import checkpoint_fingerprint
    except ImportError:
        checkpoint_fingerprint = None
    if checkpoint_fingerprint is not None:
        return checkpoint_fingerprint(folder).get("weights_sha256")
    folder = Path(folder)
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                   if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not names:
        return None
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}\0{sha256_file(folder / name)}\n".encode())
    return digest.hexdigest()


def to_lmms_messages(messages: list[dict[str, Any]], image: Any) -> list[dict[str, Any]]:
    """dfabench messages -> lmms-eval's chat protocol (``{"type": "image", "url": PIL image}``)."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts = []
        for part in content or ():
            if part.get("type") == "image":
                parts.append({"type": "image", "url": image})
            elif part.get("type") == "text":
                parts.append({"type": "text", "text": part.get("text", "")})
        out.append({"role": message["role"], "content": parts})
    return out


def to_context(messages: list[dict[str, Any]]) -> str:
    """dfabench messages -> one context string for lmms-eval's simple model classes.

    A single question is its text; earlier turns are written as ``USER: ...`` / ``ASSISTANT: ...``
    lines before the last question, a system prompt first.
    """

    def text_of(message: dict[str, Any]) -> str:
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(p.get("text", "") for p in content or () if p.get("type") == "text").strip()

    lines = []
    *history, last = messages
    for message in history:
        if message["role"] == "system":
            lines.append(text_of(message))
        else:
            lines.append(f"{message['role'].upper()}: {text_of(message)}")
    if lines:
        return "\n".join(lines + [f"USER: {text_of(last)}"])
    return text_of(last)


class LmmsModel(Model):
    """An lmms-eval model class wrapped as a dfabench model (see the module docstring)."""

    capabilities = frozenset({"generate"})
    default_batch_size = 8

    def __init__(self, lmms_model: str | None = None, lmms_args: str | dict[str, Any] | None = None,
                 batch_size: int = 1, device: str | None = None, chat: bool | None = None,
                 empty_is_error: bool = True):
        if not lmms_model or not isinstance(lmms_model, str):
            raise DfabenchError("lmms: give the lmms-eval model name, e.g. --model-arg lmms_model=llava_hf")
        Instance, get_model = _import_lmms_eval()
        self._instance_class = Instance
        self.lmms_model = lmms_model
        self.arg_string, self.lmms_args = parse_lmms_args(lmms_args)
        chat = _as_bool("chat", chat)
        self.empty_is_error = bool(_as_bool("empty_is_error", empty_is_error))
        try:
            batch_size = int(batch_size)
        except (TypeError, ValueError):
            raise DfabenchError(f"lmms: batch_size must be an integer, not {batch_size!r}") from None
        if batch_size < 1:
            raise DfabenchError("lmms: batch_size must be at least 1")
        try:
            cls = get_model(lmms_model, force_simple=chat is False)
        except Exception as exc:  # noqa: BLE001 - lmms-eval raises several kinds
            raise DfabenchError(f"lmms: lmms-eval has no usable model {lmms_model!r} ({type(exc).__name__}: {exc})") \
                from None
        if chat is True and getattr(cls, "is_simple", True):
            raise DfabenchError(f"lmms: lmms-eval model {lmms_model!r} has no chat-template class (use chat=false)")
        self.model_class = cls
        extra: dict[str, Any] = {"batch_size": batch_size}
        if "device" not in self.lmms_args:
            extra["device"] = device or _default_device()
        try:
            self.lm = cls.create_from_arg_string(self.arg_string, extra)
        except Exception as exc:  # noqa: BLE001 - one clear line for the user
            raise DfabenchError(f"lmms: cannot create lmms-eval model {lmms_model!r} with "
                                f"{self.arg_string!r}: {type(exc).__name__}: {exc}") from None
        self.is_chat = not getattr(self.lm, "is_simple", True)
        self._identity: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            from importlib import metadata

            identity: dict[str, Any] = {
                "lmms_model": self.lmms_model,
                "lmms_class": f"{self.model_class.__module__}.{self.model_class.__qualname__}",
                "lmms_eval_version": metadata.version("lmms-eval"),
                "lmms_args": self.lmms_args,
            }
            pretrained = self.lmms_args.get("pretrained")
            if isinstance(pretrained, str) and os.path.isdir(pretrained):
                identity["weights_sha256"] = weights_fingerprint(pretrained)
            self._identity = identity
        return dict(self._identity)

    # ------------------------------------------------------------------ generation

    @staticmethod
    def _image_of(request: GenerateRequest):
        if request.image is not None:
            return request.image.convert("RGB") if request.image.mode != "RGB" else request.image
        return open_rgb(request.image_path)

    def _doc_to_visual(self, doc: dict[str, Any]) -> list[Any]:
        return [doc["image"]] if doc["has_image"] else []

    def _doc_to_messages(self, doc: dict[str, Any], **_: Any) -> list[dict[str, Any]]:
        return to_lmms_messages(doc["request"].messages, doc["image"])

    def _instance(self, request: GenerateRequest, doc_id: int):
        settings = request.settings
        gen_kwargs: dict[str, Any] = {"max_new_tokens": int(settings.max_new_tokens),
                                      "temperature": float(settings.temperature), "top_p": float(settings.top_p),
                                      "num_beams": 1, "do_sample": settings.temperature > 0}
        context = to_context(request.messages)
        if self.is_chat:
            arguments = (context, self._doc_to_messages, gen_kwargs, doc_id, TASK_NAME, SPLIT)
        else:
            arguments = (context, gen_kwargs, self._doc_to_visual, doc_id, TASK_NAME, SPLIT)
        return self._instance_class(request_type="generate_until", arguments=arguments, idx=0,
                                    metadata={"task": TASK_NAME, "doc_id": doc_id, "repeats": 1})

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        """One ``generate_until`` call for the batch; one response per request, in order."""
        if not requests:
            return []
        docs = {}
        for doc_id, request in enumerate(requests):
            has_image = any(p.get("type") == "image" for m in request.messages
                            for p in (m.get("content") if isinstance(m.get("content"), list) else ()))
            docs[doc_id] = {"request": request, "has_image": has_image,
                            "image": self._image_of(request) if has_image else None}
        self.lm.task_dict = {TASK_NAME: {SPLIT: docs}}
        try:
            outputs = self.lm.generate_until([self._instance(r, i) for i, r in enumerate(requests)])
        finally:
            self.lm.task_dict = {}
        if len(outputs) != len(requests):
            raise DfabenchError(f"lmms-eval returned {len(outputs)} answers for {len(requests)} requests")
        return [self._response(output) for output in outputs]

    def _response(self, output: Any) -> Response:
        text, counts = _unwrap(output)
        response = Response(text=text)
        if counts is not None:
            response.prompt_tokens = getattr(counts, "input_tokens", None)
            response.completion_tokens = getattr(counts, "output_tokens", None)
        if self.empty_is_error and not text.strip():
            response.error = ("lmms-eval returned an empty answer (its model classes turn generation errors "
                              "into empty answers: see its log; empty_is_error=false keeps them as answers)")
        return response

    def close(self) -> None:
        lm = getattr(self, "lm", None)
        if lm is not None:
            self.lm = None
            del lm
            import gc

            gc.collect()


def _unwrap(output: Any) -> tuple[str, Any]:
    try:
        from lmms_eval.api.instance import unwrap_generation_output
    except ImportError:  # older lmms-eval: plain strings
        return (output if isinstance(output, str) else json.dumps(output, default=str)), None
    text, counts = unwrap_generation_output(output)
    if isinstance(text, list):
        text = text[-1] if text else ""
    return str(text), counts


def _default_device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
