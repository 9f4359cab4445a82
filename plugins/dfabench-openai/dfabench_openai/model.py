"""The ``openai`` model: any OpenAI-compatible chat-completions endpoint with image input.

Hosted APIs (OpenAI, Azure-style proxies), vLLM, llama.cpp's server, SGLang, LM Studio...
anything that answers ``POST {base_url}/chat/completions`` with image parts as data URLs.

Arguments (``--model-arg k=v``):

``model`` (required)
    the model id to ask for (``gpt-4o``, the ``--served-model-name`` of a vLLM server, ...).
``base_url``
    the API root, e.g. ``http://localhost:8000/v1``; default ``$OPENAI_BASE_URL`` or
    ``https://api.openai.com/v1``. Credentials inside it (``https://user:pass@host/v1``,
    ``?api-key=...``) are sent, but stored and shown as ``***`` (:mod:`dfabench.redact`); they are not
    part of the model fingerprint, so changing only them keeps the cached answers. Several servers of
    one model (vLLM / SGLang replicas): comma-separated (``http://a:8000/v1,http://b:8000/v1``) or a list
    (Python, YAML, JSON); they are load-balanced, health-checked and failed over (:mod:`dfabench_openai.pool`).
``api_key_env``
    the name of the environment variable holding the key (default ``OPENAI_API_KEY``). The key
    is read from there only; it is never stored, logged or put into an error message. A key
    given as a model argument is refused. Local servers need no key: when the variable is
    unset and ``base_url`` is not OpenAI's, the placeholder ``EMPTY`` is sent.
``concurrency`` (default 64)
    requests in flight at once, per endpoint. ``generate`` sends a whole batch concurrently; the default
    batch size is 64 (with several endpoints, ``max(64, concurrency)`` times their number).
``timeout`` (default 60)
    seconds per request attempt.
``max_retries`` (default 5)
    retries after the first attempt, with exponential backoff (``backoff`` seconds, doubled
    each time, with jitter, at most ``max_backoff``). A 429 waits as long as its
    ``Retry-After`` / ``retry-after-ms`` header says. Retried: 408, 409, 429, 5xx, timeouts,
    connection errors and malformed replies; never other 4xx. A request that still fails
    becomes a failed sample (``Response.error``), never an answer.
``detail``
    ``low`` / ``high`` / ``auto``: the image detail level (sent only when given).
``logprobs`` (default false)
    when true and the task has answer choices (DF-D: yes/no), ask for ``top_logprobs`` of the
    first generated token and report the log-probability of each choice (case-insensitive,
    variants such as ``Yes``/`` yes`` summed), so DF-D gets AUC/AP/EER. Only when every choice is
    among the top tokens; otherwise no score for that sample (never a made-up one). An
    endpoint that refuses ``logprobs`` (HTTP 400 naming it) is asked again without it.
``max_tokens_param`` (default ``max_tokens``)
    ``max_completion_tokens`` for endpoints/models that want that name (OpenAI reasoning models).
``probe`` (default true)
    learn the served model id from a one-token request when the run starts (see
    :meth:`OpenAIModel.identity`); ``false`` asks ``GET /models`` only.
``cooloff`` (default 10)
    with several endpoints: seconds a failing one is left alone before it is re-probed (doubled after
    each failed re-probe, at most 300).

Identity: the model id as the endpoint reports it (``response.model`` of a one-token probe,
e.g. ``gpt-4o-2024-08-06``, or the ``id`` that ``GET /models`` lists, with vLLM's ``root``) and, with one
base URL, its host and port (as it always was). With several (a pool) neither the hosts nor their number:
adding, removing or replacing replicas keeps the cached answers; all must serve ``model`` from the same
weights. ``base_url`` is an operational argument, so a run may be resumed on other servers. Never the key.
Determinism: greedy settings (temperature 0) make the response cacheable, but hosted
APIs are not bit-deterministic even then: a re-run can differ slightly; the response cache keys on
the prompt, so a cached run never asks again.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import os
import random
import string
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dfabench.api import (
    DfabenchError,
    GenerateRequest,
    Model,
    Response,
    redact_clip,
    register_secret,
    retry_after_seconds,
)

from dfabench_openai.pool import PROBE_TIMEOUT, Endpoint, EndpointPool, connect_failure, public_url, split_base_urls

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 600.0
_PUNCTUATION = string.punctuation + string.whitespace


def _import_openai():
    try:
        import openai
    except ImportError:
        raise DfabenchError("the 'openai' model needs the openai package: pip install dfabench-openai "
                            "(or: pip install openai)") from None
    return openai


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return value.strip().lower() in ("true", "1", "yes", "on")
    raise DfabenchError(f"openai: model argument {name} must be true or false, not {value!r}")


def _as_number(name: str, value: Any, kind: type, minimum: float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise DfabenchError(f"openai: model argument {name} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not (number >= minimum) or (isinstance(number, float) and not math.isfinite(number)):
        raise DfabenchError(f"openai: model argument {name} must be >= {minimum}, not {value!r}")
    return number


def endpoint_host(base_url: str) -> str:
    """``scheme://host[:port]/path`` without user info or query: what identifies the endpoint."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return host


def image_data_url(request: GenerateRequest) -> str:
    """The request's image as a ``data:`` URL: the file's own bytes when it is a PNG or JPEG file,
    else the decoded image re-encoded as PNG."""
    path = request.image_path
    if path and os.path.isfile(path):
        with open(path, "rb") as handle:
            data = handle.read()
        mime = None
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            mime = "image/png"
        elif data.startswith(b"\xff\xd8\xff"):
            mime = "image/jpeg"
        if mime is not None:
            return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    image = request.image
    if image is None:
        raise ValueError(f"no image for sample {request.sample_id!r} (image_path {path!r} is not readable)")
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def to_openai_messages(messages: list[dict[str, Any]], image_url: str | None,
                       detail: str | None = None) -> list[dict[str, Any]]:
    """transformers-style chat messages -> chat-completions messages.

    Each ``{"type": "image"}`` part becomes an ``image_url`` part (at the same position);
    system and assistant turns with text only become plain strings (what every server accepts).
    """
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
            continue
        parts: list[dict[str, Any]] = []
        for part in content or ():
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part.get("text", "")})
            elif kind == "image":
                if image_url is None:
                    raise ValueError("the messages have an image part but the request has no image")
                url: dict[str, Any] = {"url": image_url}
                if detail:
                    url["detail"] = detail
                parts.append({"type": "image_url", "image_url": url})
            else:
                raise ValueError(f"unsupported message part type {kind!r}")
        if message["role"] != "user" and all(p["type"] == "text" for p in parts):
            out.append({"role": message["role"], "content": "".join(p["text"] for p in parts)})
        else:
            out.append({"role": message["role"], "content": parts})
    return out


def _normalise_token(token: str) -> str:
    return token.strip(_PUNCTUATION).lower()


def choice_logprobs_from(top_logprobs: list[tuple[str, float]], choices: tuple[str, ...]) -> dict[str, float] | None:
    """Log-probability of each answer choice from the first token's top log-probabilities.

    Token variants of a choice (``Yes``, `` yes``, ``YES``) are summed (log-sum-exp). ``None``
    when some choice is not among the top tokens: its probability is unknown, not zero.
    """
    out: dict[str, float] = {}
    for choice in choices:
        key = _normalise_token(choice)
        found = [lp for token, lp in top_logprobs if key and _normalise_token(token) == key and lp is not None]
        if not found:
            return None
        peak = max(found)
        out[choice] = peak + math.log(sum(math.exp(lp - peak) for lp in found))
    return out


@dataclass
class _Attempt:
    """The outcome of one failed attempt: whether to retry, after how long, and why it failed."""

    retry: bool
    reason: str
    wait: float | None = None
    logprobs_refused: bool = False
    format_refused: bool = False
    kind: str | None = None
    #: the endpoint's fault (connection, timeout, 5xx, malformed reply): the next attempt goes elsewhere
    endpoint_fault: bool = False


class OpenAIModel(Model):
    """A model behind an OpenAI-compatible chat-completions endpoint (see the module docstring)."""

    capabilities = frozenset({"generate"})
    default_batch_size = 64
    #: response_format types sent when a request asks for one; an endpoint that refuses json_schema (HTTP 400
    #: naming it) is asked with json_object, and one that refuses that too, without (Response.output_format)
    structured_output = frozenset({"json_schema", "json_object"})
    #: arguments that change how requests are sent, never what is answered (see Model.operational_args). On the
    #: class, ``base_url`` is one of them, so a resumed run may use other servers; an instance with one URL
    #: leaves it out (its identity keeps naming the endpoint, as it always has: see :meth:`identity`)
    operational_args = ("concurrency", "timeout", "max_retries", "backoff", "max_backoff", "probe", "cooloff",
                        "base_url")
    #: caching also needs greedy settings (temperature 0), which the runner checks per task
    deterministic = True
    #: ``generate`` may be called from several threads at once: the calls share the event loop and the pool's
    #: per-endpoint limit of ``concurrency`` requests in flight (the judge pipelines its batches on this)
    concurrent_generate = True

    def __init__(self, model: str | None = None, base_url: Any = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 64, timeout: float = 60.0, max_retries: int = 5, detail: str | None = None,
                 logprobs: bool = False, top_logprobs: int = 20, backoff: float = 1.0, max_backoff: float = 60.0,
                 max_tokens_param: str = "max_tokens", probe: bool = True, cooloff: float = 10.0,
                 api_key: Any = None):
        if api_key is not None:
            raise DfabenchError("openai: never pass an API key as a model argument (it would end up in run "
                                "records and shell history); put it in an environment variable and name it "
                                "with --model-arg api_key_env=VAR (default OPENAI_API_KEY)")
        if not model or not isinstance(model, str):
            raise DfabenchError("openai: give the model id, e.g. --model-arg model=gpt-4o")
        openai = _import_openai()
        self.model = model
        self.base_urls, self.pooled = split_base_urls(base_url, os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
        #: the first (with one URL: the) base URL
        self.base_url = self.base_urls[0]
        #: with one URL, its host and port (part of the identity); with a pool, None
        self.host = None if self.pooled else endpoint_host(self.base_url)
        if not self.pooled:
            self.operational_args = tuple(a for a in type(self).operational_args if a != "base_url")
        self.api_key_env = str(api_key_env)
        self.concurrency = _as_number("concurrency", concurrency, int, 1)
        self.timeout = _as_number("timeout", timeout, float, 0.001)
        self.max_retries = _as_number("max_retries", max_retries, int, 0)
        self.backoff = _as_number("backoff", backoff, float, 0)
        self.max_backoff = _as_number("max_backoff", max_backoff, float, 0)
        self.cooloff = _as_number("cooloff", cooloff, float, 0)
        self.top_logprobs = _as_number("top_logprobs", top_logprobs, int, 1)
        self.logprobs = _as_bool("logprobs", logprobs)
        self.probe = _as_bool("probe", probe)
        if detail is not None and detail not in ("low", "high", "auto"):
            raise DfabenchError(f"openai: detail must be low, high or auto, not {detail!r}")
        self.detail = detail
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise DfabenchError("openai: max_tokens_param must be max_tokens or max_completion_tokens")
        self.max_tokens_param = max_tokens_param
        if self.pooled:  # every endpoint gets `concurrency` requests in flight: a batch keeps them all busy
            self.default_batch_size = max(type(self).default_batch_size, self.concurrency) * len(self.base_urls)
        key = os.environ.get(self.api_key_env) or None
        if key is None and any(endpoint_host(u) == endpoint_host(DEFAULT_BASE_URL) for u in self.base_urls):
            raise DfabenchError(f"openai: the environment variable {self.api_key_env} is not set "
                                "(the API key is read from the variable named by --model-arg api_key_env)")
        self._secret = key
        register_secret(key)  # every later message of the process is scrubbed of it, whoever prints it
        self._logprobs_refused = False
        #: response_format types the endpoint refused (HTTP 400 naming them): not sent again
        self._formats_refused: set[str] = set()
        self._reported_models: list[str] = []
        self._listed: dict[str, Any] | None = None
        self._identity: dict[str, Any] | None = None
        self._errors = openai
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dfabench-openai", daemon=True)
        self._thread.start()
        endpoints = [Endpoint(url=url, label=public_url(url)) for url in self.base_urls]
        for endpoint in endpoints:
            endpoint.client = self._call(self._make_client(openai, key or "EMPTY", endpoint.url))
        #: the endpoints: failing ones are taken down only when there is another to go to
        self.pool: EndpointPool = self._call(self._make_pool(endpoints, len(endpoints) > 1))
        self._client = endpoints[0].client

    # ------------------------------------------------------------------ event loop plumbing

    async def _make_client(self, openai, key: str, base_url: str):
        return openai.AsyncOpenAI(api_key=key, base_url=base_url, timeout=self.timeout, max_retries=0)

    async def _make_pool(self, endpoints: list[Endpoint], takes_down: bool) -> EndpointPool:
        return EndpointPool(endpoints, self.concurrency, self.cooloff, self._health, takes_down)

    def _call(self, coroutine):
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def _clean(self, text: Any, limit: int = 300) -> str:
        """Text for an error message: the key and any credential redacted (dfabench.redact), then made
        one line and cut to ``limit`` characters: redacted first, so a key across the cut leaves nothing."""
        return redact_clip(text, limit, (self._secret,), one_line=True)

    # ------------------------------------------------------------------ identity

    def identity(self) -> dict[str, Any]:
        """``{"model", "endpoint", "api", "served_model", ...}``: what the endpoint says it serves.

        ``served_model`` is the model id the endpoint reports: with ``probe`` (the default) the
        ``model`` field of the reply to a one-token text request (OpenAI answers with the dated
        snapshot, e.g. ``gpt-4o-2024-08-06``, so answers cached for one snapshot are never served
        for another); otherwise, or when the probe fails for a transient reason, the id under which
        ``GET /models`` lists the model (with vLLM's ``root``, the weights it was started from);
        ``None`` when neither tells. A probe refused for the key (401/403) or the model (404) stops
        here with one clear error, before any sample is sent; so does an endpoint that cannot be reached.
        Computed once, then kept.

        With several base URLs (a pool) there is no ``endpoint``: the identity is what the servers serve,
        not where, so adding, removing or replacing a replica keeps the cached answers. Every endpoint is
        health-checked here (``GET /models`` must list ``model``, all from the same ``root``); those that
        cannot be reached are down (re-probed later), those serving another model are refused, and when
        none is left this stops with one line naming each.
        """
        if self._identity is None:
            self._identity = self._pool_identity() if self.pooled else self._single_identity()
        return dict(self._identity)

    def _single_identity(self) -> dict[str, Any]:
        endpoint = self.pool.endpoints[0]
        identity: dict[str, Any] = {"model": self.model, "endpoint": self.host, "api": "chat.completions",
                                    "served_model": self._probe(endpoint) if self.probe else None}
        listed = self._list_model(endpoint)
        if identity["served_model"] is None:
            identity["served_model"] = listed.get("id")
        if listed.get("root") and listed.get("root") != listed.get("id"):
            identity["served_root"] = listed["root"]
        if self.detail:
            identity["detail"] = self.detail
        return identity

    def _pool_identity(self) -> dict[str, Any]:
        pool = self.pool
        for attempt in range(self.max_retries + 1):
            self._call(pool.check())
            if pool.up() or all(e.state == "refused" for e in pool.endpoints) or attempt == self.max_retries:
                break
            time.sleep(min(self.max_backoff, self.backoff * 2 ** attempt))
        up = pool.up()
        if not up:
            raise DfabenchError(f"openai: none of the {len(pool.endpoints)} endpoints can serve {self.model!r} "
                                f"({pool.describe()})")
        roots = {e.listed["root"]: e for e in up if (e.listed or {}).get("root")}
        if len(roots) > 1:
            raise DfabenchError(f"openai: the endpoints serve {self.model!r} from different weights "
                                f"({'; '.join(f'{e.label}: {root!r}' for root, e in roots.items())}); "
                                "give base_url servers started from the same weights")
        listed = next((e.listed for e in up if e.listed), {})
        pool.reference = dict(listed)
        served = None
        if self.probe:
            served = self._probe(up[0])
        identity: dict[str, Any] = {"model": self.model, "api": "chat.completions",
                                    "served_model": served or listed.get("id")}
        if listed.get("root") and listed.get("root") != listed.get("id"):
            identity["served_root"] = listed["root"]
        if self.detail:
            identity["detail"] = self.detail
        states = ", ".join(f"{e.label} {e.state}" + (f" ({e.reason})" if e.reason else "") for e in pool.endpoints)
        pool.say(f"{len(up)} of {len(pool.endpoints)} endpoints up for {self.model!r}: {states}")
        return identity

    @property
    def reported_models(self) -> list[str]:
        """The distinct model ids the replies reported, in order of first appearance."""
        return list(self._reported_models)

    def _probe(self, endpoint: Endpoint) -> str | None:
        where = self.host if not self.pooled else endpoint.label
        payload = {"model": self.model, "messages": [{"role": "user", "content": "Reply with OK."}],
                   self.max_tokens_param: 1, "temperature": 0}
        for attempt in range(self.max_retries + 1):
            try:
                completion = self._call(asyncio.wait_for(endpoint.client.chat.completions.create(**payload),
                                                         self.timeout + 5.0))
            except Exception as exc:  # noqa: BLE001 - classified below
                status = getattr(exc, "status_code", None)
                if status in (401, 403):
                    raise DfabenchError(f"openai: {where} refused the API key from ${self.api_key_env} "
                                        f"(HTTP {status})") from None
                if status == 404:
                    message = self._clean(getattr(exc, "message", "") or str(exc))
                    raise DfabenchError(f"openai: {where} does not serve model {self.model!r} "
                                        f"(HTTP 404: {message})") from None
                if attempt == self.max_retries:
                    if status is None:  # never reached the server: a wrong URL, a server that is down
                        raise DfabenchError(f"openai: cannot reach {where or endpoint.label} "
                                            f"({self._clean(self._connection_reason(exc))})") from None
                    return None  # a transient HTTP error: the identity falls back to GET /models
                wait = retry_after_seconds(getattr(getattr(exc, "response", None), "headers", None))
                time.sleep(min(self.max_backoff, wait if wait is not None else self.backoff * 2 ** attempt))
                continue
            reported = getattr(completion, "model", None)
            return reported if isinstance(reported, str) and reported else None
        return None

    def _list_model(self, endpoint: Endpoint) -> dict[str, Any]:
        """What ``GET /models`` of the single endpoint says of the model ({} when it says nothing, or fails:
        an endpoint without /models still works; one that cannot be reached fails at the probe, or each call)."""
        if self._listed is None:
            state, listed, _ = self._call(self._health(endpoint))
            self._listed = listed if state == "up" else {}
        return self._listed

    def _connection_reason(self, exc: BaseException) -> str:
        failure = connect_failure(exc)
        text = str(exc)
        return f"{text}: {failure}" if failure and failure not in text.lower() else text

    async def _health(self, endpoint: Endpoint) -> tuple[str, dict[str, Any], str | None]:
        """``GET {base_url}/models`` of one endpoint -> ``(state, listed, reason)``: ``up`` (with what it lists
        of the model: {"id", "root"}, or {} when it lists nothing or has no /models), ``down`` (unreachable,
        timing out, 5xx; the reason starts with ``cannot reach`` when no connection was made) or ``refused``
        (it serves other models, or refuses the key)."""
        errors = self._errors
        try:
            page = await asyncio.wait_for(endpoint.client.models.list(), min(self.timeout, PROBE_TIMEOUT) + 5.0)
        except asyncio.CancelledError:
            raise
        except errors.APIStatusError as exc:
            status = exc.status_code
            if status in (401, 403):
                return "refused", {}, f"refused the API key from ${self.api_key_env} (HTTP {status})"
            if status >= 500:
                return "down", {}, f"GET /models: HTTP {status}"
            return "up", {}, None  # no /models (404...): nothing to check, as with one endpoint
        except (errors.APITimeoutError, asyncio.TimeoutError, TimeoutError):
            return "down", {}, "GET /models timed out"
        except Exception as exc:  # noqa: BLE001 - a connection error, or a broken reply
            if isinstance(exc, errors.APIConnectionError) and connect_failure(exc):
                return "down", {}, f"cannot reach ({self._clean(connect_failure(exc), 120)})"
            return "down", {}, f"GET /models failed: {self._clean(self._connection_reason(exc), 160)}"
        ids = []
        for entry in getattr(page, "data", None) or []:
            ids.append(str(getattr(entry, "id", None)))
            if getattr(entry, "id", None) == self.model:
                found = {"id": entry.id}
                root = getattr(entry, "root", None) or (getattr(entry, "model_extra", None) or {}).get("root")
                if isinstance(root, str):
                    found["root"] = root
                return "up", found, None
        if ids and self.pooled:
            shown = ", ".join(repr(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
            return "refused", {}, self._clean(f"serves {shown}, not {self.model!r}", 200)
        return "up", {}, None

    # ------------------------------------------------------------------ generation

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        """Send the batch concurrently (at most ``concurrency`` in flight per endpoint); one response per request."""
        if not requests:
            return []
        payloads: list[dict[str, Any] | Response] = []
        for request in requests:
            try:
                payloads.append(self._payload(request))
            except Exception as exc:  # noqa: BLE001 - a bad item fails alone
                payloads.append(Response(error=self._clean(f"cannot build the request: {exc}", 1000)))
        return self._call(self._generate_all(payloads, requests))

    def _payload(self, request: GenerateRequest) -> dict[str, Any]:
        needs_image = any(p.get("type") == "image" for m in request.messages
                          for p in (m.get("content") if isinstance(m.get("content"), list) else ()))
        url = image_data_url(request) if needs_image else None
        settings = request.settings
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(request.messages, url, self.detail),
            self.max_tokens_param: settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
        }
        if self.logprobs and request.choices and not self._logprobs_refused:
            payload["logprobs"] = True
            payload["top_logprobs"] = min(self.top_logprobs, 20)
        wanted = self._response_format(request.response_format)
        if wanted is not None:
            payload["response_format"] = wanted
        return payload

    def _response_format(self, asked: dict[str, Any] | None) -> dict[str, Any] | None:
        """The response_format to send for what the request ``asked``: json_schema, else json_object (when the
        endpoint refused json_schema, or was asked for JSON only), else none."""
        if not asked:
            return None
        if asked.get("type") == "json_schema" and "json_schema" not in self._formats_refused:
            return {"type": "json_schema", "json_schema": {"name": str(asked.get("name") or "answer"),
                                                           "schema": asked.get("schema") or {}, "strict": True}}
        if asked.get("type") in ("json_schema", "json_object") and "json_object" not in self._formats_refused:
            return {"type": "json_object"}
        return None

    async def _generate_all(self, payloads: list, requests: list[GenerateRequest]) -> list[Response]:
        async def one(payload, request):
            if isinstance(payload, Response):
                return payload
            return await self._complete(payload, request)

        return list(await asyncio.gather(*(one(p, r) for p, r in zip(payloads, requests, strict=True))))

    async def _complete(self, payload: dict[str, Any], request: GenerateRequest) -> Response:
        """One request, with its retries: each attempt on the up endpoint with the fewest requests in flight;
        after a failure of the endpoint's (connection, timeout, 5xx, malformed reply) the next attempt goes to
        another up endpoint at once. Only the reply that answers counts (its usage, its model)."""
        pool = self.pool
        attempts = 0
        failed_on: set[Endpoint] = set()
        # every endpoint gets its chance on top of the retries
        limit = self.max_retries + len(pool.endpoints) - 1
        while True:
            endpoint = await pool.acquire(failed_on)
            switch = False
            # what another request learnt while this one waited for a slot: not asked again
            asked = (payload.get("response_format") or {}).get("type")
            if asked in self._formats_refused:  # refused for another request since this payload was built
                payload = {k: v for k, v in payload.items() if k != "response_format"}
                weaker = self._response_format(request.response_format)
                if weaker is not None:
                    payload["response_format"] = weaker
            if self._logprobs_refused and "logprobs" in payload:
                payload = {k: v for k, v in payload.items() if k not in ("logprobs", "top_logprobs")}
            if endpoint is None:  # every endpoint is down (or refused)
                dead = pool.dead
                failure = _Attempt(True, pool.all_down_reason(), kind="no_endpoint")
                attempts += 1
                if dead or attempts > limit:
                    await pool.wait_for_endpoint(0.0)  # what a cool-off that is over may bring back, at once
                    if not pool.up():
                        pool.dead = True
                        failure = _Attempt(False, pool.all_down_reason(), kind="no_endpoint")
                        break
                    continue
                await pool.wait_for_endpoint(self._backoff(attempts))
                continue
            try:
                completion = await asyncio.wait_for(
                    endpoint.client.chat.completions.create(**payload), self.timeout + 5.0)
                response = self._to_response(completion, request, payload)
                pool.succeeded(endpoint)
                return response
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is classified below
                failure = self._classify(exc)
                if failure.logprobs_refused and "logprobs" in payload:
                    # the endpoint cannot give log-probabilities: ask again without (an answer, no score)
                    self._logprobs_refused = True
                    payload = {k: v for k, v in payload.items() if k not in ("logprobs", "top_logprobs")}
                    continue
                if failure.format_refused and "response_format" in payload:
                    # the endpoint cannot enforce this format: the next weaker one (json_object, then none)
                    self._formats_refused.add(payload["response_format"]["type"])
                    payload = {k: v for k, v in payload.items() if k != "response_format"}
                    weaker = self._response_format(request.response_format)
                    if weaker is not None:
                        payload["response_format"] = weaker
                    continue
                if failure.endpoint_fault:
                    pool.failed(endpoint, failure.reason, connect_failure(exc) is not None)
                    failed_on.add(endpoint)
                    switch = pool.another_up(failed_on)
                    if len(pool.endpoints) > 1:
                        failure.reason = f"{endpoint.label}: {failure.reason}"
            finally:
                await pool.release(endpoint)
            attempts += 1
            if not failure.retry or attempts > limit:
                break
            wait = failure.wait
            if wait is None:
                wait = 0.0 if switch else self._backoff(attempts)
            await asyncio.sleep(min(wait, MAX_RETRY_AFTER))
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        return Response(error=self._clean(f"{failure.reason}{tries}", 1000), error_kind=failure.kind)

    def _backoff(self, attempts: int) -> float:
        return min(self.max_backoff, self.backoff * (2 ** (attempts - 1)) * (0.5 + random.random()))

    def _classify(self, exc: Exception) -> _Attempt:
        errors = self._errors
        if isinstance(exc, errors.APIStatusError):
            status = exc.status_code
            message = self._clean(getattr(exc, "message", "") or str(exc))
            if status == 400 and "logprob" in message.lower():
                return _Attempt(False, f"HTTP {status}: {message}", logprobs_refused=True, kind="http_400")
            if status == 400 and any(word in message.lower() for word in ("response_format", "json_schema",
                                                                           "json_object")):
                return _Attempt(False, f"HTTP {status}: {message}", format_refused=True, kind="http_400")
            retry = status in RETRY_STATUS or status >= 500
            wait = retry_after_seconds(getattr(exc.response, "headers", None)) if retry else None
            return _Attempt(retry, f"HTTP {status}: {message}", wait, kind="rate_limited" if status == 429
                            else f"http_{status}", endpoint_fault=status >= 500)
        if isinstance(exc, (errors.APITimeoutError, asyncio.TimeoutError, TimeoutError)):
            return _Attempt(True, f"timed out after {self.timeout:g} s", kind="timeout", endpoint_fault=True)
        if isinstance(exc, errors.APIConnectionError):
            return _Attempt(True, f"connection error: {self._clean(self._connection_reason(exc))}",
                            kind="connection", endpoint_fault=True)
        return _Attempt(True, f"malformed reply: {type(exc).__name__}: {self._clean(str(exc))}",
                        kind="malformed_response", endpoint_fault=True)

    def _to_response(self, completion: Any, request: GenerateRequest, payload: dict[str, Any]) -> Response:
        if isinstance(completion, (str, bytes)) or not getattr(completion, "choices", None):
            raise ValueError(f"no choices in the reply ({self._clean(repr(completion))})")
        reported = getattr(completion, "model", None)
        if isinstance(reported, str) and reported and reported not in self._reported_models:
            self._reported_models.append(reported)
        choice = completion.choices[0]
        message = choice.message
        text = getattr(message, "content", None)
        usage = getattr(completion, "usage", None)
        response = Response(
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            model=reported if isinstance(reported, str) and reported else None,
        )
        if request.response_format:
            response.output_format = (payload.get("response_format") or {}).get("type")
        if text is None:
            refusal = getattr(message, "refusal", None)
            if refusal:
                response.text = refusal
                response.refusal = True
            else:
                response.error = f"the endpoint returned no message content (finish_reason={choice.finish_reason})"
                return response
        else:
            response.text = text
        if request.choices and getattr(choice, "logprobs", None) is not None:
            content = getattr(choice.logprobs, "content", None) or []
            if content:
                top = [(t.token, t.logprob) for t in (content[0].top_logprobs or [])]
                top.append((content[0].token, content[0].logprob))
                response.choice_logprobs = choice_logprobs_from(_dedupe(top), request.choices)
        return response

    def close(self) -> None:
        if not self._loop.is_running():
            return
        try:
            if self.pooled and any(e.sent for e in self.pool.endpoints):
                self.pool.say(self.pool.summary())  # which servers answered, which were down: once, at the end
            for endpoint in self.pool.endpoints:
                self._call(endpoint.client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()


def _dedupe(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    seen: dict[str, float] = {}
    for token, logprob in pairs:
        seen.setdefault(token, logprob)
    return list(seen.items())
