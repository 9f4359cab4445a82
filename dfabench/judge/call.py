"""Asking the judge: each work item becomes a :class:`~dfabench.models.GenerateRequest` for the judge model (a
registered model in the ``judge`` role, :mod:`dfabench.roles`), and each answer a :class:`CallResult` — a judgment
parsed strictly by the rubric, or a failure with its kind (never a score).

The judge model does its own batching, concurrency and retries (the ``openai`` plugin's, the ``hf`` plugin's
batches), exactly as for a model under test. Each answered batch is committed to the judge cache as it arrives,
so an interrupted judge run resumes without asking again.

How a judgment is asked for is the run's *output mode* (:func:`dfabench.judge.plan.output_mode`): ``json_schema``
sends the rubric's JSON Schema as the request's ``response_format``, ``json_object`` asks for JSON mode, ``text``
sends neither (the prompt asks for the JSON object). A model that enforces a weaker form than asked (an endpoint
that refused json_schema) says so in ``Response.output_format``; each result records the mode it was produced
under, and that mode is part of its judge identity.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dfabench.judge.plan import WorkItem
from dfabench.judge.rubric import JudgmentError
from dfabench.judge.settings import JudgeSettings
from dfabench.models import GenerateRequest, GenerationSettings, Response
from dfabench.redact import redact_clip
from dfabench.roles import RoleModel, ask


@dataclass
class CallResult:
    ok: bool
    judgment: dict[str, Any] | None = None
    error: str | None = None
    kind: str | None = None  # failure kind: refusal, unparseable, http_500, timeout, model_error, ...
    model: str | None = None
    output: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1


@dataclass
class Tally:
    """Requests and tokens over a judge run."""

    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: Counter = field(default_factory=Counter)

    def add(self, result: CallResult) -> None:
        self.attempts += 1
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens

    def cost(self, settings: JudgeSettings) -> float | None:
        if settings.price_input is None and settings.price_output is None:
            return None
        return token_cost(self.prompt_tokens, self.completion_tokens, settings)


def token_cost(prompt_tokens: float, completion_tokens: float, settings: JudgeSettings) -> float:
    """USD for these token counts at --price-in / --price-out (per million tokens; a missing price counts 0)."""
    return (prompt_tokens * (settings.price_input or 0.0) + completion_tokens * (settings.price_output or 0.0)) / 1e6


def _scrub(text: str) -> str:
    """Text from the judge, made safe to record: every credential redacted, one line, at most 300 characters."""
    return redact_clip(text, 300, (), one_line=True)


def judge_request(item: WorkItem, output: str, settings: JudgeSettings) -> GenerateRequest:
    """The request for one judgment: the rubric's prompt, greedy decoding, the reply limit, the output mode."""
    image = None
    if item.image_path is not None:
        from dfabench.images import open_rgb  # PIL: only when images are sent

        try:
            image = open_rgb(item.image_path)
        except (OSError, ValueError):
            image = None  # the file is still sent as it is by a model that sends files (openai); others fail it
    response_format = (item.rubric.response_format() if output == "json_schema"
                       else {"type": "json_object"} if output == "json_object" else None)
    return GenerateRequest(sample_id=item.key, image=image, image_path=item.image_path or "", messages=item.messages,
                           settings=GenerationSettings(max_new_tokens=settings.max_tokens or item.rubric.max_tokens,
                                                       temperature=0.0),
                           task=item.task, reference="judgment", response_format=response_format)


def read_response(item: WorkItem, response: Response, output: str) -> CallResult:
    """A judge model's answer -> a judgment parsed strictly by the rubric, or a failure with its kind."""
    result = CallResult(ok=False, model=response.model, prompt_tokens=int(response.prompt_tokens or 0),
                        completion_tokens=int(response.completion_tokens or 0),
                        output=(response.output_format or "text") if output != "text" else "text")
    if response.error:
        result.kind, result.error = response.error_kind or "model_error", _scrub(response.error)
        return result
    if response.refusal:
        result.kind, result.error = "refusal", f"judge refused: {_scrub(response.text or '')}"
        return result
    try:
        result.judgment = item.rubric.parse(response.text)
    except JudgmentError as exc:
        result.kind, result.error = "unparseable", f"unparseable judgment: {_scrub(str(exc))}"
        return result
    result.ok = True
    return result


def run_calls(items: list[WorkItem], settings: JudgeSettings, cache: Any, tally: Tally, judge: RoleModel,
              output: str, progress: Any = None) -> dict[str, CallResult]:
    """Judge ``items`` with the judge model; each answered batch is committed to ``cache`` as it arrives.
    Returns ``{item.key: CallResult}``."""
    if not items:
        return {}
    by_key = {item.key: item for item in items}
    results: dict[str, CallResult] = {}
    started = time.monotonic()
    last_report = [started]

    def on_batch(pairs: list[tuple[GenerateRequest, Response]]) -> None:
        fresh = []
        for request, response in pairs:
            item = by_key[request.sample_id]
            result = read_response(item, response, output)
            results[item.key] = result
            tally.add(result)
            if result.ok and result.judgment is not None:
                fresh.append((item.key, {**result.judgment, "model": result.model or judge.served_id,
                                         "output": result.output,
                                         "tokens": {"prompt": result.prompt_tokens,
                                                    "completion": result.completion_tokens}}))
        if fresh:
            cache.put_many(fresh)
        if progress is not None and time.monotonic() - last_report[0] >= 10:
            last_report[0] = time.monotonic()
            progress.write(f"  judged {len(results)}/{len(items)} ({time.monotonic() - started:.0f} s)\n")

    requests = [judge_request(item, output, settings) for item in items]
    # a batch is what is committed to the cache at once (what a kill can lose): four rounds of --concurrency
    # requests, so the model's own concurrency drains between batches only now and then
    batch = 4 * max(1, settings.concurrency)
    spent = 0.0  # what the asked judgments cost: from their token counts, else (a model that reports none) estimated
    for start in range(0, len(requests), batch):
        chunk = requests[start:start + batch]
        if settings.max_cost is not None:
            estimate = sum(estimated_cost(by_key[r.sample_id], settings) for r in chunk)
            if spent + estimate > settings.max_cost:
                reason = (f"not asked: --max-cost {settings.max_cost:g} USD would be exceeded (spent {spent:.4f}, "
                          f"the next {len(chunk)} judgments are estimated at {estimate:.4f})")
                for request in requests[start:]:
                    results[request.sample_id] = CallResult(ok=False, kind="budget", error=reason, attempts=0)
                if progress is not None:
                    progress.write(f"  stopped before the budget: spent {spent:.4f} USD, the next {len(chunk)} "
                                   f"judgments are estimated at {estimate:.4f}; {len(requests) - start} not asked\n")
                break
        ask(judge, chunk, on_batch=on_batch, batch_size=len(chunk))
        if settings.max_cost is not None:
            for request in chunk:
                result = results[request.sample_id]
                spent += (token_cost(result.prompt_tokens, result.completion_tokens, settings)
                          if result.prompt_tokens or result.completion_tokens
                          else estimated_cost(by_key[request.sample_id], settings))
    return results


#: characters per token of the estimate (English text and JSON with a BPE tokenizer: about 4)
CHARS_PER_TOKEN = 4


def estimated_cost(item: WorkItem, settings: JudgeSettings) -> float:
    """A judgment's cost before it is asked, in USD: the prompt's characters / 4 as prompt tokens (an image
    counts nothing: give a margin in --max-cost when images are sent) and the whole reply limit as completion
    tokens, at --price-in / --price-out per million tokens."""
    chars = sum(len(part.get("text", "")) for message in item.messages for part in message["content"])
    return token_cost(chars / CHARS_PER_TOKEN, settings.max_tokens or item.rubric.max_tokens, settings)
