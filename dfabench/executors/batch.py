"""One batch of model work, the same wherever it runs (this process or a Ray actor).

:func:`found_outcomes` takes what the response cache already holds; :func:`decode_items` decodes the
images of the rest (a corrupt or oversized image fails that sample only); :func:`call_model` asks the
model once for the batch and, if that raises, once per sample, so one bad sample never takes its batch
down. Each outcome is a dict: ``payload`` (the cacheable answer, :func:`dfabench.answers.answer_payload`)
or ``error``, with ``cached``, ``model_s`` and ``cacheable``. Committing outcomes to the cache is the
driver's job (:func:`dfabench.runner.predict_task`): one writer, wherever the model ran. For a task whose
spec asks for masks from text (FL), a ``generate``-only model's answer gets a mask derived from its text
(:mod:`dfabench.masks`) in its payload; a cached answer whose mask was derived another way is asked again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from dfabench.answers import AnswerError, Item, answer_payload, choice_logprobs, describe_exception
from dfabench.errors import DfabenchError
from dfabench.images import ImageError, decode_image
from dfabench.masks import masker_for
from dfabench.models import GenerateRequest, Model, ScoreRequest
from dfabench.redact import redact

Outcomes = dict[str, dict[str, Any]]


def describe_model(entry, args: dict[str, Any], model: Model) -> dict[str, Any]:
    """What the driver needs of a created, prepared model: its identity record
    (:class:`dfabench.records.ModelIdentity`, whose fingerprint keys the response cache), capabilities,
    default batch size and whether its answers may be cached."""
    from dfabench.records import ModelIdentity

    return {"record": ModelIdentity.create(entry, args, model).to_dict(),
            "capabilities": sorted(model.capabilities),
            "default_batch_size": int(getattr(model, "default_batch_size", 8) or 8),
            "deterministic": bool(getattr(model, "deterministic", True))}


#: the fields of a cached payload that a mask derived from the answer's text adds (dfabench.masks)
_DERIVED_FIELDS = ("mask", "mask_source", "mask_derivation")


def found_outcomes(task, batch: list[Item], found: dict[str, Any],
                   root: str | None = None) -> tuple[Outcomes, list[Item]]:
    """The outcomes of the items the cache answers, and the items left for the model.

    A cached answer whose mask was derived from its text in another way than the task's masker now derives it
    (the detector changed) gets its mask derived again from the cached text and the image under ``root``: the
    model is not asked again, and the new payload goes back to the cache (``cached`` False). Without ``root``
    such an answer is left for the model."""
    out: Outcomes = {}
    todo: list[Item] = []
    masker = masker_for(task)
    for item in batch:
        if item.key not in found:
            todo.append(item)
            continue
        derivation = found[item.key].get("mask_derivation")
        if derivation is not None and (masker is None or derivation.get("method") != masker.identity):
            if masker is None or root is None:
                todo.append(item)
                continue
            out[item.sample.id] = _derive_again(masker, found[item.key], item, root)
            continue
        try:  # a cache written by an earlier version may hold answers the contract now refuses
            choice_logprobs(found[item.key].get("choice_logprobs"), task)
        except AnswerError as exc:
            out[item.sample.id] = {"error": f"model: {exc}", "payload": None, "cached": True, "model_s": 0.0}
            continue
        out[item.sample.id] = {"payload": found[item.key], "cached": True, "model_s": 0.0}
    return out, todo


def _derive_again(masker, cached: dict[str, Any], item: Item, root: str) -> dict[str, Any]:
    """The outcome of a cached text answer whose mask is derived anew (see :func:`found_outcomes`)."""
    image = decode_one(os.path.join(root, item.sample.image))
    if isinstance(image, Exception):
        return {"error": f"image: {image}", "payload": None, "model_s": 0.0}
    payload = {key: value for key, value in cached.items() if key not in _DERIVED_FIELDS}
    payload.update(masker.payload(payload.get("text"), image))
    return {"payload": payload, "cached": False, "model_s": 0.0}


def decode_one(path: str) -> Any:
    """The decoded image, or the :class:`ImageError` saying why not."""
    try:
        return decode_image(path)
    except ImageError as exc:
        return exc


def decode_items(items: list[Item], root: str, pool=None) -> dict[str, Any]:
    """sample id -> decoded image (or its ImageError); ``pool``: an executor to decode in threads."""
    paths = [os.path.join(root, item.sample.image) for item in items]
    decoded = pool.map(decode_one, paths) if pool is not None and len(paths) > 1 else map(decode_one, paths)
    return {item.sample.id: image for item, image in zip(items, decoded, strict=True)}


def call_model(model: Model, task, capability: str, settings, todo: list[Item], images: dict[str, Any],
               root: str) -> Outcomes:
    """Ask ``model`` for ``todo`` (none of them in the cache); a failing image or answer fails its sample only."""
    out: Outcomes = {}
    asked: list[tuple[Item, Any]] = []
    for item in todo:
        image = images.get(item.sample.id)
        if isinstance(image, Exception):
            out[item.sample.id] = {"error": f"image: {image}", "payload": None, "model_s": 0.0}
        else:
            asked.append((item, image))
    if not asked:
        return out

    def make_request(item: Item, image):
        path = os.path.join(root, item.sample.image)
        if capability == "score":
            return ScoreRequest(sample_id=item.sample.id, image=image, image_path=path, task=task.id,
                                reference=task.reference)
        return GenerateRequest(sample_id=item.sample.id, image=image, image_path=path, messages=item.messages,
                               settings=settings, task=task.id, choices=task.choices, reference=task.reference)

    call: Callable = model.score if capability == "score" else model.generate
    # a model that cannot localize answers FL in text: its mask is derived from the text (dfabench.masks)
    masker = masker_for(task) if capability == "generate" else None
    seen = {item.sample.id: image for item, image in asked} if masker is not None else {}
    requests = [make_request(item, image) for item, image in asked]
    sizes = {item.sample.id: getattr(image, "size", None) for item, image in asked}  # (width, height)
    start = time.perf_counter()
    try:
        answers = call(requests)
        if len(answers) != len(requests):
            raise DfabenchError(f"the model returned {len(answers)} answers for {len(requests)} requests")
        elapsed = (time.perf_counter() - start) / len(requests)
        pairs = [(item, answer, elapsed, None) for (item, _), answer in zip(asked, answers, strict=True)]
    except Exception as batch_exc:  # noqa: BLE001 - retried one by one below
        if len(requests) == 1:
            pairs = [(asked[0][0], None, time.perf_counter() - start, describe_exception(batch_exc))]
        else:
            pairs = []
            for (item, _), request in zip(asked, requests, strict=True):
                one_start = time.perf_counter()
                try:
                    answer = call([request])
                    if len(answer) != 1:
                        raise DfabenchError(f"the model returned {len(answer)} answers for 1 request")
                    pairs.append((item, answer[0], time.perf_counter() - one_start, None))
                except Exception as exc:  # noqa: BLE001
                    pairs.append((item, None, time.perf_counter() - one_start, describe_exception(exc)))
    for item, answer, seconds, error in pairs:
        if error is None and answer is not None and getattr(answer, "error", None):
            error = f"model: {redact(answer.error)}"
        if error is not None:
            out[item.sample.id] = {"error": error, "payload": None, "model_s": seconds}
            continue
        try:
            payload, cacheable = answer_payload(answer, task, sizes.get(item.sample.id))
            if masker is not None and payload.get("kind") == "response" and "mask" not in payload:
                payload.update(masker.payload(payload.get("text"), seen[item.sample.id]))
        except AnswerError as exc:
            out[item.sample.id] = {"error": f"model: {exc}", "payload": None, "model_s": seconds}
            continue
        out[item.sample.id] = {"payload": payload, "cached": False, "model_s": seconds, "cacheable": cacheable}
    return out
