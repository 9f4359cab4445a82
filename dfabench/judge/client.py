"""The judge's HTTP client: one chat-completions request per work item, concurrent, with retries and backoff; each
success is committed to the judge cache as it arrives. Failures are results (never scores); a judge that cannot work
at all (wrong key, unknown model) raises :class:`JudgeAbort`."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.judge.plan import WorkItem
from dfabench.judge.rubric import JudgmentError
from dfabench.judge.settings import PLACEHOLDER_KEY, JudgeAbort, JudgeSettings
from dfabench.redact import redact_clip
from dfabench.retry import retry_after_seconds

MAX_BACKOFF_S = 60.0


@dataclass
class CallResult:
    ok: bool
    judgment: dict[str, Any] | None = None
    error: str | None = None
    kind: str | None = None  # failure kind: refusal, unparseable, http_4xx, timeout, ...
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0


@dataclass
class Tally:
    """HTTP attempts and tokens over a judge run."""

    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: Counter = field(default_factory=Counter)

    def cost(self, settings: JudgeSettings) -> float | None:
        if settings.price_input is None and settings.price_output is None:
            return None
        return (self.prompt_tokens * (settings.price_input or 0.0)
                + self.completion_tokens * (settings.price_output or 0.0)) / 1e6


class _Scrubber:
    """Error text from the endpoint, made safe to record: the key and every credential redacted
    (:func:`dfabench.redact.redact_clip`), one line, at most 300 characters."""

    def __init__(self, secret: str | None):
        self.secrets = (secret,) if secret and secret != PLACEHOLDER_KEY else ()

    def __call__(self, text: str) -> str:
        return redact_clip(text, 300, self.secrets, one_line=True)


async def _call_once(client: Any, item: WorkItem, settings: JudgeSettings) -> Any:
    kwargs: dict[str, Any] = {"model": settings.model, "messages": item.messages, "temperature": 0,
                              "max_tokens": settings.max_tokens or item.rubric.max_tokens}
    if settings.json_mode:
        kwargs["response_format"] = {"type": "json_object"}
    # the client's own timeout covers each read; wait_for bounds the whole request
    return await asyncio.wait_for(client.chat.completions.create(**kwargs), timeout=settings.timeout + 1.0)


async def judge_one(client: Any, item: WorkItem, settings: JudgeSettings, tally: Tally, scrub: _Scrubber,
                    rng: random.Random) -> CallResult:
    """One judgment with retries; raises :class:`JudgeAbort` when the judge cannot work at all."""
    import openai

    result = CallResult(ok=False)
    for attempt in range(settings.max_retries + 1):
        result.attempts = attempt + 1
        tally.attempts += 1
        wait: float | None = None
        try:
            response = await _call_once(client, item, settings)
        except openai.AuthenticationError as exc:
            raise JudgeAbort(f"the judge endpoint refused the key from {settings.api_key_env}: "
                             f"{scrub(_api_message(exc))}") from None
        except openai.NotFoundError as exc:
            raise JudgeAbort(f"judge model {settings.model!r} not found at {settings.endpoint()}: "
                             f"{scrub(_api_message(exc))}") from None
        except openai.RateLimitError as exc:
            result.kind, result.error = "rate_limited", f"rate limited (429): {scrub(_api_message(exc))}"
            wait = retry_after_seconds(getattr(exc.response, "headers", None))
        except openai.InternalServerError as exc:
            result.kind = f"http_{exc.status_code}"
            result.error = f"server error ({exc.status_code}): {scrub(_api_message(exc))}"
        except openai.APIStatusError as exc:  # other 4xx: the request itself is refused, do not retry
            result.kind = f"http_{exc.status_code}"
            if exc.status_code in (408, 409):  # request timeout, conflict: transient
                result.error = f"transient error ({exc.status_code}): {scrub(_api_message(exc))}"
                tally.retries[result.kind] += 1
                if attempt < settings.max_retries:
                    await asyncio.sleep(min(settings.backoff_base * (2 ** attempt) * (0.5 + rng.random()),
                                            MAX_BACKOFF_S))
                    continue
                break
            result.error = f"request refused ({exc.status_code}): {scrub(_api_message(exc))}"
            return result
        except (openai.APITimeoutError, asyncio.TimeoutError):
            result.kind, result.error = "timeout", f"no reply within {settings.timeout:g} s"
        except openai.APIConnectionError as exc:
            result.kind, result.error = "connection", f"connection failed: {scrub(str(exc))}"
        except (ValueError, openai.APIResponseValidationError) as exc:
            result.kind, result.error = "malformed_response", f"malformed response body: {scrub(str(exc))}"
        else:
            return _read_response(response, item, result, tally, scrub)
        tally.retries[result.kind or "?"] += 1
        if attempt == settings.max_retries:
            break
        if wait is None:
            wait = settings.backoff_base * (2 ** attempt) * (0.5 + rng.random())
        await asyncio.sleep(min(wait, MAX_BACKOFF_S))
    result.error = f"{result.error} (after {result.attempts} attempts)"
    return result


def _api_message(exc: Any) -> str:
    return str(getattr(exc, "message", None) or exc)


def _read_response(response: Any, item: WorkItem, result: CallResult, tally: Tally, scrub: _Scrubber) -> CallResult:
    usage = getattr(response, "usage", None)
    if usage is not None:
        result.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        result.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        tally.prompt_tokens += result.prompt_tokens
        tally.completion_tokens += result.completion_tokens
    result.model = getattr(response, "model", None) or None
    choices = getattr(response, "choices", None) or []
    if not choices:
        result.kind, result.error = "empty_reply", "the judge reply has no choices"
        return result
    message = choices[0].message
    refusal = getattr(message, "refusal", None)
    if refusal:
        result.kind, result.error = "refusal", f"judge refused: {scrub(refusal)}"
        return result
    try:
        result.judgment = item.rubric.parse(message.content)
    except JudgmentError as exc:
        truncated = " (the reply was cut at max_tokens)" if choices[0].finish_reason == "length" else ""
        result.kind, result.error = "unparseable", f"unparseable judgment: {scrub(str(exc))}{truncated}"
        return result
    result.ok = True
    return result


async def run_calls(items: list[WorkItem], settings: JudgeSettings, cache: Any, tally: Tally,
                    client: Any = None, progress: Any = None) -> dict[str, CallResult]:
    """Judge ``items`` concurrently; each success is committed to ``cache`` as soon as it arrives.

    Returns ``{item.key: CallResult}``; raises :class:`JudgeAbort` (after cancelling the rest) when the
    judge cannot work at all.
    """
    if not items:
        return {}
    if client is None:
        client = make_client(settings)
    scrub = _Scrubber(os.environ.get(settings.api_key_env))
    semaphore = asyncio.Semaphore(max(1, settings.concurrency))
    rng = random.Random(0)
    results: dict[str, CallResult] = {}
    started = time.monotonic()
    last_report = [started]

    async def one(item: WorkItem) -> None:
        async with semaphore:
            result = await judge_one(client, item, settings, tally, scrub, rng)
        results[item.key] = result
        if result.ok and result.judgment is not None:
            cache.put_many([(item.key, {**result.judgment, "model": result.model or settings.model,
                                        "tokens": {"prompt": result.prompt_tokens,
                                                   "completion": result.completion_tokens}})])
        if progress is not None and time.monotonic() - last_report[0] >= 10:
            last_report[0] = time.monotonic()
            progress.write(f"  judged {len(results)}/{len(items)} ({time.monotonic() - started:.0f} s)\n")

    tasks = [asyncio.ensure_future(one(item)) for item in items]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            try:
                await close()
            except Exception:  # noqa: BLE001 - closing a client never hides the run's outcome
                pass
    return results


def make_client(settings: JudgeSettings) -> Any:
    try:
        import openai
    except ImportError:
        raise DfabenchError("the judge needs the openai package: pip install 'dfabench[judge]'") from None
    return openai.AsyncOpenAI(api_key=settings.api_key(), base_url=settings.base_url, max_retries=0,
                              timeout=settings.timeout)
