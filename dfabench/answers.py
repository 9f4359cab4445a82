"""The answer contract: what a model's answer must be, and the per-sample record made from it.

:func:`answer_payload` turns a :class:`~dfabench.models.Response` or :class:`~dfabench.models.Scores`
into the JSON-able form the response cache stores, refusing (:class:`AnswerError`) an answer that
breaks the contract: a probability outside [0, 1], ``choice_logprobs`` that are not log-probabilities
of the task's choices (:func:`choice_logprobs`), a mask that is not a 2-D array of the image's shape
(:func:`encode_mask`). :func:`sample_record` makes one sample's record of a per-sample log from that
payload (parsing the text, staging a predicted mask in the run's transaction).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dfabench.data.manifest import Sample
from dfabench.models import Response, Scores
from dfabench.redact import redact_clip
from dfabench.store import RunFolder
from dfabench.tasks import TaskSpec

NO_CATEGORIES = "model gave no category probabilities"


@dataclass
class Item:
    """One sample's request: the sample, its response-cache key, its prompt's hash and its messages."""

    sample: Sample
    key: str
    prompt_hash: str
    messages: list[dict[str, Any]] | None


def describe_exception(exc: BaseException) -> str:
    """One line for a sample's error field: the first line of the message, redacted, then cut to 500 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"model raised {type(exc).__name__}" + (f": {redact_clip(text, 500)}" if text else "")


class AnswerError(ValueError):
    """A model answer that breaks the contract (a probability outside 0..1, a mask that is no mask)."""


def _probability(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise AnswerError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise AnswerError(f"{what} must be a probability in [0, 1], not {value!r}")
    return value


def choice_logprobs(value: Any, task: TaskSpec | None) -> dict[str, float] | None:
    """The answer's ``choice_logprobs`` when they keep the contract: ``None``, or a dict whose keys are
    exactly the task's answer choices and whose values are log-probabilities (finite, <= 0; up to
    1e-6 above 0 is taken as rounding). :class:`AnswerError` with the reason otherwise — a score is
    never made from, or silently dropped for, values that are not log-probabilities of the choices."""
    if value is None or task is None:
        return value
    if not isinstance(value, dict):
        raise AnswerError(f"choice_logprobs must be a dict of answer choice -> log-probability, not "
                          f"{type(value).__name__}")
    choices = tuple(task.choices)
    if not choices:
        raise AnswerError(f"choice_logprobs given for task {task.id}, which has no answer choices")
    if set(value) != set(choices):
        extra = sorted(map(str, set(value) - set(choices)))
        missing = sorted(set(choices) - set(value))
        detail = "; ".join(part for part in (f"unknown {extra}" if extra else "",
                                             f"missing {missing}" if missing else "") if part)
        raise AnswerError(f"choice_logprobs keys must be the task's choices {list(choices)} ({detail}); "
                          "give None when some choice has no log-probability")
    out: dict[str, float] = {}
    for choice in choices:
        number = value[choice]
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise AnswerError(f"choice_logprobs[{choice!r}] is not a number: {number!r}")
        if not math.isfinite(number) or number > 1e-6:
            raise AnswerError(f"choice_logprobs[{choice!r}] = {number!r} is not a log-probability "
                              "(finite and <= 0)")
        out[choice] = float(number)
    return out


def answer_payload(answer: Response | Scores, task: TaskSpec | None = None,
             size: tuple[int, int] | None = None) -> tuple[dict[str, Any], bool]:
    """A JSON-able form of a model answer (what the cache stores); :class:`AnswerError` when the
    answer breaks the contract. ``task``: its answer choices check ``choice_logprobs``; ``size``:
    the image's (width, height), which a predicted mask must have."""
    if isinstance(answer, Scores):
        categories = answer.categories
        if categories is not None:
            if not isinstance(categories, dict):
                raise AnswerError(f"category probabilities must be a dict, not {type(categories).__name__}")
            categories = {str(k): _probability(v, f"P({k})") for k, v in categories.items()}
        return {"kind": "scores", "fake": _probability(answer.fake, "P(fake)"), "categories": categories}, True
    if not isinstance(answer, Response):
        raise AnswerError(f"expected a Response, got {type(answer).__name__}")
    payload = {"kind": "response", "text": answer.text if answer.text is not None else "",
               "prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
               "choice_logprobs": choice_logprobs(answer.choice_logprobs, task)}
    if answer.mask is not None:
        import numpy as np

        mask = np.asarray(answer.mask)
        payload["mask"] = encode_mask(mask, size)
    return payload, True


def encode_mask(mask, size: tuple[int, int] | None = None) -> str:
    """A predicted mask as a base64 PNG of 0/255. Accepted: a 2-D boolean array, integers 0..255
    (forged where > 127), or floats in [0, 1] (forged where >= 0.5, a probability map), of the
    image's shape (height, width) when ``size`` = (width, height) is given (never resized here)."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0:
        raise AnswerError(f"a mask must be a 2-D array (height x width), got shape {array.shape}")
    if size is not None and tuple(array.shape) != (size[1], size[0]):
        raise AnswerError(f"the mask has shape {tuple(array.shape)} but the image is {size[0]}x{size[1]}: a mask "
                          f"must have the image's shape (height, width) = ({size[1]}, {size[0]})")
    if array.dtype == bool:
        binary = array
    elif np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise AnswerError("an integer mask must hold values in 0..255 (forged where > 127)")
        binary = array > 127
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise AnswerError("a float mask must hold probabilities in [0, 1] (forged where >= 0.5)")
        binary = array >= 0.5
    else:
        raise AnswerError(f"a mask of dtype {array.dtype} is not supported")
    buffer = io.BytesIO()
    Image.fromarray(binary.astype(np.uint8) * 255, mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def sample_record(task: TaskSpec, item: Item, outcome: dict[str, Any], folder: RunFolder,
                   parse: Callable[[str], Any], model_fingerprint: str | None = None) -> dict[str, Any]:
    sample = item.sample
    payload = outcome.get("payload")
    record: dict[str, Any] = {
        "id": sample.id, "task": task.id, "model_fingerprint": model_fingerprint, "image": sample.image,
        "label": sample.label,
        "category": sample.category, "technique": sample.technique, "source_id": sample.source_id,
        "prompt": _last_user_text(item.messages), "prompt_hash": item.prompt_hash,
        "reference": task.reference_of(sample), "response": None, "parsed": None, "score": None,
        "category_scores": None, "unparsed": False, "error": outcome.get("error"),
        "cached": bool(outcome.get("cached")), "timings": {"model_s": round(outcome.get("model_s", 0.0), 6)},
        "tokens": None, "metrics": {}, "judge": None,
    }
    if record["error"] is not None or payload is None:
        return record
    if payload.get("kind") == "scores":
        record["score"] = payload.get("fake")
        record["category_scores"] = payload.get("categories")
        if task.parser == "detection":
            if record["score"] is None:
                record["error"] = "model gave no probability of fake"
            else:
                record["parsed"] = "fake" if record["score"] >= 0.5 else "real"
                record["parsed_by"] = "score"
        elif task.parser == "category":
            categories = payload.get("categories") or {}
            if not categories:
                record["error"] = NO_CATEGORIES
            else:
                record["parsed"] = max(sorted(categories), key=lambda c: categories[c])
                record["parsed_by"] = "score"
        else:
            record["error"] = f"a score-only model cannot answer a {task.parser} task"
        return record
    text = payload.get("text") or ""
    record["response"] = text
    if payload.get("prompt_tokens") is not None or payload.get("completion_tokens") is not None:
        record["tokens"] = {"prompt": payload.get("prompt_tokens"), "completion": payload.get("completion_tokens")}
    parsed = parse(text)
    if task.reference == "mask_and_description":
        mask_path = None
        if payload.get("mask"):
            mask_path = _write_mask(folder, task.id, sample.id, payload["mask"])
        parsed = {"text": parsed, "mask": mask_path}
        record["unparsed"] = mask_path is None
        # how the mask was obtained: the model's, or derived from the text (dfabench.masks)
        record["mask_source"] = payload.get("mask_source") or ("model" if mask_path else "none")
        if payload.get("mask_derivation") is not None:
            record["mask_derivation"] = payload["mask_derivation"]
    else:
        record["unparsed"] = parsed is None
    record["parsed"] = parsed
    # how the answer was read: the rules, or not at all (an extractor may read it later: dfabench.extract)
    record["parsed_by"] = "none" if record["unparsed"] else "rule"
    if task.parser == "detection":
        record["score"] = task.fake_probability(payload.get("choice_logprobs"))
    return record


def _write_mask(folder: RunFolder, task: str, sample_id: str, encoded: str) -> str:
    """Stage a predicted mask in the run's transaction (committed with the logs, hashed in run.json)."""
    import base64
    import hashlib

    relpath = f"masks/{task}/{hashlib.sha256(sample_id.encode()).hexdigest()[:16]}.png"
    folder.active_transaction().write_bytes(relpath, base64.b64decode(encoded))
    return relpath


def _last_user_text(messages: list[dict[str, Any]] | None) -> str | None:
    if not messages:
        return None
    for message in reversed(messages):
        if message["role"] == "user":
            return "".join(p.get("text", "") for p in message["content"] if p.get("type") == "text")
    return None
