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

import collections
import queue
import threading
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
    #: what the answered judgments cost (USD, with --max-cost): from their token counts, else estimated
    spent: float = 0.0

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


class _Batch:
    """One batch of requests, asked on a lane of :class:`_Lanes`; ``pairs`` once answered."""

    def __init__(self, requests: list[GenerateRequest]):
        self.requests = requests
        self.pairs: list[tuple[GenerateRequest, Response]] | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class _Lanes:
    """Daemon threads that ask the judge model batch after batch (``width`` batches at once), so the next batch is
    being answered while the caller parses and commits the last one. Daemon threads: an interrupted judge run
    exits at once (what was committed to the cache stays)."""

    def __init__(self, judge: RoleModel, width: int):
        self.judge = judge
        self.queue: queue.Queue[_Batch | None] = queue.Queue()
        self.threads = [threading.Thread(target=self._work, name=f"dfabench-judge-{i}", daemon=True)
                        for i in range(width)]
        for thread in self.threads:
            thread.start()

    def _work(self) -> None:
        while True:
            batch = self.queue.get()
            if batch is None:
                return
            try:
                answers = ask(self.judge, batch.requests, batch_size=len(batch.requests))
                batch.pairs = list(zip(batch.requests, answers, strict=True))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
                batch.error = exc
            batch.done.set()

    def submit(self, requests: list[GenerateRequest]) -> _Batch:
        batch = _Batch(requests)
        self.queue.put(batch)
        return batch

    def close(self) -> None:
        for _ in self.threads:
            self.queue.put(None)


def pipeline_width(judge: RoleModel) -> int:
    """Batches the judge model answers at once: 2 for a model whose ``generate`` may be called from several
    threads and shares one concurrency limit between the calls (``concurrent_generate``: the openai plugin), so
    its requests in flight never drain between batches; else 1 (the next batch still starts while the last one is
    committed)."""
    return 2 if getattr(judge.model, "concurrent_generate", False) else 1


def run_calls(items: list[WorkItem], settings: JudgeSettings, cache: Any, tally: Tally, judge: RoleModel,
              output: str, progress: Any = None) -> dict[str, CallResult]:
    """Judge ``items`` with the judge model; each answered batch is committed to ``cache`` as it arrives.
    Returns ``{item.key: CallResult}``.

    Pipelined: a batch (what is committed to the cache at once, so what a kill can lose: four rounds of
    ``--concurrency`` requests) is handed to the judge model while earlier ones are still being answered
    (:func:`pipeline_width`) or committed, so the model's concurrency stays full. ``--max-cost`` counts the
    batches in flight at their estimate until their token counts come back."""
    if not items:
        return {}
    by_key = {item.key: item for item in items}
    results: dict[str, CallResult] = {}
    started = time.monotonic()
    last_report = started

    def commit(pairs: list[tuple[GenerateRequest, Response]]) -> None:
        nonlocal last_report
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
        if progress is not None and time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            progress.write(f"  judged {len(results)}/{len(items)} ({time.monotonic() - started:.0f} s)\n")

    requests = [judge_request(item, output, settings) for item in items]
    size = 4 * max(1, settings.concurrency)
    chunks = [requests[start:start + size] for start in range(0, len(requests), size)]
    width = pipeline_width(judge)
    lanes = _Lanes(judge, width)
    pending: collections.deque[tuple[_Batch, float]] = collections.deque()  # in order, with their estimates
    spent = 0.0  # what the answered judgments cost: from their token counts, else (none reported) estimated
    stopped = False
    try:
        index = 0
        while index < len(chunks) or pending:
            # keep `width` batches being answered and one more queued, unless the budget says stop
            while not stopped and index < len(chunks) and len(pending) < width + 1:
                chunk = chunks[index]
                estimate = 0.0
                if settings.max_cost is not None:
                    estimate = sum(estimated_cost(by_key[r.sample_id], settings) for r in chunk)
                    in_flight = sum(e for _, e in pending)
                    if spent + in_flight + estimate > settings.max_cost:
                        stopped = True
                        _refuse_budget(chunks[index:], results, settings, spent, in_flight, estimate, progress)
                        break
                pending.append((lanes.submit(chunk), estimate))
                index += 1
            if stopped and index < len(chunks):
                index = len(chunks)
            if not pending:
                break
            batch, _ = pending.popleft()
            batch.done.wait()
            if batch.error is not None:
                raise batch.error
            commit(batch.pairs)
            if settings.max_cost is not None:
                for request, _ in batch.pairs:
                    result = results[request.sample_id]
                    cost = (token_cost(result.prompt_tokens, result.completion_tokens, settings)
                            if result.prompt_tokens or result.completion_tokens
                            else estimated_cost(by_key[request.sample_id], settings))
                    spent += cost
                    tally.spent += cost
    finally:
        lanes.close()
    return results


def _refuse_budget(chunks: list[list[GenerateRequest]], results: dict[str, CallResult], settings: JudgeSettings,
                   spent: float, in_flight: float, estimate: float, progress: Any) -> None:
    """The judgments not asked because ``--max-cost`` would be exceeded: recorded as ``budget`` failures."""
    n_next = len(chunks[0])
    reason = (f"not asked: --max-cost {settings.max_cost:g} USD would be exceeded (spent {spent:.4f}"
              + (f", {in_flight:.4f} being asked" if in_flight else "")
              + f", the next {n_next} judgments are estimated at {estimate:.4f})")
    n = 0
    for chunk in chunks:
        for request in chunk:
            results[request.sample_id] = CallResult(ok=False, kind="budget", error=reason, attempts=0)
            n += 1
    if progress is not None:
        progress.write(f"  stopped before the budget: spent {spent:.4f} USD, the next {n_next} judgments are "
                       f"estimated at {estimate:.4f}; {n} not asked\n")


#: characters per token of the estimate (English text and JSON with a BPE tokenizer: about 4)
CHARS_PER_TOKEN = 4


def estimated_cost(item: WorkItem, settings: JudgeSettings) -> float:
    """A judgment's cost before it is asked, in USD: the prompt's characters / 4 as prompt tokens (an image
    counts nothing: give a margin in --max-cost when images are sent) and the whole reply limit as completion
    tokens, at --price-in / --price-out per million tokens."""
    chars = sum(len(part.get("text", "")) for message in item.messages for part in message["content"])
    return token_cost(chars / CHARS_PER_TOKEN, settings.max_tokens or item.rubric.max_tokens, settings)
