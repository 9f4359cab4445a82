"""A real local HTTP server that speaks the OpenAI chat-completions API, for tests.

Standard library only. It listens on 127.0.0.1 (port 0 = a free port) in a background
thread, answers ``POST /v1/chat/completions`` and ``GET /v1/models`` (also without the
``/v1`` prefix), and lets a test script what it answers, how slowly, and which faults it
injects. Every request is logged (thread-safe) with its body and headers.

Usage::

    from dfabench.testing.chat_server import ChatServer, Fault

    with ChatServer(responder=lambda req: "Yes.", delay=0.2, model="judge-2026-01-01") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused")
        server.inject(Fault.rate_limit(retry_after=0.5))      # the next request gets a 429
        ...
        assert server.count == 2                              # chat requests received
        assert server.authorization_headers == ["Bearer unused", "Bearer unused"]

``ChatServer(responder=None, *, delay=0.0, model=None, models=None, api_key=None, host="127.0.0.1", port=0)``
    ``responder(request_json) -> reply`` is called for each chat request (from the server's
    handler threads: make it thread-safe). ``reply`` may be

    - a ``str``: the assistant message content;
    - a ``dict`` with ``"choices"``: sent as the whole response body, as it is;
    - a ``dict`` with any of ``content``, ``refusal``, ``finish_reason``, ``usage``, ``logprobs``,
      ``model``, ``tool_calls``: a completion built from those fields;
    - a :class:`Fault`: that fault for this request (lets a test fail chosen samples);
    - ``None``: the default reply.

    The default responder answers ``"ok"``. ``delay`` (seconds) is slept before every chat
    reply. ``model`` is the model id the server *reports* in replies and in ``/v1/models``;
    ``None`` echoes the requested model (``models`` lists ids for ``/v1/models``). With
    ``api_key`` set, a request whose ``Authorization`` is not ``Bearer <api_key>`` gets a 401.

Attributes and methods:
    ``base_url``  ``"http://127.0.0.1:PORT/v1"`` (what an OpenAI client takes); ``url`` without ``/v1``.
    ``port``      the port it listens on.
    ``inject(*faults, times=1)``  queue faults for the next chat requests, in arrival order
                  (each fault is used ``times`` times).
    ``requests``  list of :class:`RecordedRequest` (all requests, in arrival order; a copy).
    ``chat_requests``  only the chat-completion requests; ``count`` is their number.
    ``bodies``    the JSON bodies of the chat requests; ``authorization_headers`` their
                  ``Authorization`` headers (``None`` where absent).
    ``usage_total``  ``{"prompt_tokens", "completion_tokens"}`` summed over the successful replies.
    ``reset_log()``  forget the logged requests.
    ``start()`` / ``stop()``  what the context manager does.

Faults (:class:`Fault` constructors):
    ``Fault.rate_limit(retry_after=1.0)``  429 with a ``Retry-After`` header (seconds; ``None`` omits it);
    ``Fault.server_error(status=500)``     a 5xx with an OpenAI-style error body;
    ``Fault.status(code, message)``         any status with an error body (e.g. 400, 401);
    ``Fault.hang(seconds=30.0)``            waits ``seconds`` before answering (longer than the client timeout);
    ``Fault.malformed(body=...)``          200 with a body that is not valid JSON;
    ``Fault.refusal(text=...)``            200 with ``message.content = null`` and ``message.refusal = text``;
    ``Fault.disconnect()``                 closes the connection without any response.

Usage counts are whitespace-separated words: ``prompt_tokens`` over every text part of every
message, ``completion_tokens`` over the reply (``usage`` in a dict reply overrides them).
Streaming (``"stream": true``) is answered with server-sent events, one chunk per word, then
``data: [DONE]``; with ``stream_options.include_usage`` a final chunk carries the usage.

Run on its own (a separate process, e.g. for a benchmark or to try ``dfabench judge --base-url``)::

    python -m dfabench.testing.chat_server [--port 0] [--delay 0.2] [--model ID] [--reply judge|echo|TEXT]

prints ``base_url=http://127.0.0.1:PORT/v1`` on its first line, then serves until it is stopped; ``--reply
judge`` answers every request with a valid judgment for dfabench's shipped rubrics (every criterion 3).
``GET /_stats`` returns ``{"chat_requests": n, "prompt_tokens": .., "completion_tokens": ..}`` (and, with
malformed replies, ``"malformed": {"injected": n, "sent": n}``).

**Malformed replies** (``ChatServer(malformed_rate=0.1, malformed_seed=0)``, ``--malformed-rate R --malformed-seed
S``): a reply whose content is a JSON object (a judgment) is made malformed with probability ``R``, drawn from a
generator seeded with ``S`` and the request's messages (the same request gets the same defect whatever the arrival
order or the output mode asked), with one of :data:`MALFORMED_KINDS`. What the request's ``response_format`` enforces
is then simulated, as a server with constrained decoding does: ``json_schema`` removes every defect but a reply cut
by the length limit (``truncated``); ``json_object`` (JSON mode) removes the defects that break the JSON syntax but
not those that break the schema (a missing key, a value out of range, a number as a string, an unknown key); no
``response_format`` (text) removes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dfabench.testing.chat_faults import Fault, RecordedRequest
from dfabench.testing.chat_replies import (
    completion_body,
    completion_choice,
    count_words,
    error_body,
    judge_reply,
    reply_fields,
    reply_usage,
    stream_body,
)

__all__ = ["MALFORMED_KINDS", "ChatServer", "Fault", "RecordedRequest", "count_words", "judge_reply", "malformed"]

#: the defects of a malformed reply -> what breaks: ``syntax`` (JSON mode and a JSON Schema prevent it), ``schema``
#: (only a JSON Schema prevents it), ``length`` (nothing does: the reply limit cuts constrained output too)
MALFORMED_KINDS = {
    "prose_before": "syntax", "text_after": "syntax", "two_objects": "syntax", "single_quotes": "syntax",
    "fenced": "syntax", "missing_key": "schema", "out_of_range": "schema", "string_number": "schema",
    "extra_key": "schema", "truncated": "length",
}


def malformed(text: str, kind: str) -> str:
    """``text`` (a JSON object) with the defect ``kind`` of :data:`MALFORMED_KINDS`."""
    data = json.loads(text)
    first = next((k for k in data if k != "rationale"), None)
    if kind == "prose_before":
        return "Here is my judgment:\n" + text
    if kind == "text_after":
        return text + "\nLet me know if you need more detail."
    if kind == "two_objects":
        return text + "\n" + text
    if kind == "single_quotes":
        return text.replace('"', "'")
    if kind == "fenced":
        return "```json\n" + text + "\n```"
    if kind == "truncated":
        return text[: len(text) // 2]
    if first is None:
        return text[: len(text) // 2]
    if kind == "missing_key":
        data.pop(first)
    elif kind == "out_of_range":
        data[first] = 9
    elif kind == "string_number":
        data[first] = str(data[first])
    elif kind == "extra_key":
        data["confidence"] = 0.9
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return json.dumps(data)


def _enforced(kind: str, body: dict[str, Any]) -> bool:
    """Whether the request's response_format would have prevented the defect ``kind``."""
    asked = (body.get("response_format") or {}).get("type") if isinstance(body.get("response_format"), dict) else None
    level = MALFORMED_KINDS[kind]
    return (asked == "json_schema" and level in ("syntax", "schema")) or (asked == "json_object" and level == "syntax")


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # the listen backlog: many clients connect at once (the default is 5)
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class ChatServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 in a background thread."""

    def __init__(self, responder: Callable[[dict[str, Any]], Any] | None = None, *, delay: float = 0.0,
                 model: str | None = None, models: list[str] | None = None, api_key: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, malformed_rate: float = 0.0, malformed_seed: int = 0):
        if not 0.0 <= float(malformed_rate) <= 1.0:
            raise ValueError(f"malformed_rate must be in 0..1, not {malformed_rate!r}")
        self.malformed_rate = float(malformed_rate)
        self.malformed_seed = int(malformed_seed)
        self._malformed = {"injected": 0, "sent": 0}
        self.responder = responder
        self.delay = float(delay)
        self.model = model
        self.models = list(models) if models else [model or "test-model"]
        self.api_key = api_key
        self._host, self._port_wanted = host, port
        self._lock = threading.Lock()
        self._log: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> ChatServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server((self._host, self._port_wanted), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"chat-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # releases hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the chat server is not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    # -- scripting and the log --------------------------------------------------------------

    def inject(self, *faults: Fault, times: int = 1) -> None:
        """Queue faults for the next chat requests (in arrival order)."""
        with self._lock:
            for fault in faults:
                self._faults.extend([fault] * times)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path.rstrip("/").endswith("/chat/completions")]

    @property
    def count(self) -> int:
        return len(self.chat_requests)

    @property
    def bodies(self) -> list[Any]:
        return [r.body for r in self.chat_requests]

    @property
    def authorization_headers(self) -> list[str | None]:
        return [r.authorization for r in self.chat_requests]

    @property
    def usage_total(self) -> dict[str, int]:
        with self._lock:
            return dict(self._usage)

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()
            self._usage = {"prompt_tokens": 0, "completion_tokens": 0}

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._log.append(request)

    @property
    def malformed_counts(self) -> dict[str, int]:
        """``{"injected": n, "sent": n}``: replies made malformed, and those the output mode did not prevent."""
        with self._lock:
            return dict(self._malformed)

    def _malform(self, body: dict[str, Any], reply: Any, record: RecordedRequest) -> Any:
        """The reply, made malformed at the seeded rate (see the module docstring)."""
        if self.malformed_rate <= 0 or not isinstance(reply, str):
            return reply
        try:
            if not isinstance(json.loads(reply), dict):
                return reply
        except ValueError:
            return reply
        digest = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode("utf-8")).hexdigest()
        rng = random.Random(f"{self.malformed_seed}\0{digest}")
        if rng.random() >= self.malformed_rate:
            return reply
        kind = rng.choice(sorted(MALFORMED_KINDS))
        prevented = _enforced(kind, body)
        record.extra["malformed"] = {"kind": kind, "prevented": prevented}
        with self._lock:
            self._malformed["injected"] += 1
            self._malformed["sent"] += 0 if prevented else 1
        return reply if prevented else malformed(reply, kind)

    def _add_usage(self, usage: dict[str, Any]) -> None:
        with self._lock:
            for key in ("prompt_tokens", "completion_tokens"):
                self._usage[key] += int(usage.get(key) or 0)

    # -- the HTTP handler --------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # reply at once (no delayed-ACK stall per response)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
                return

            def do_GET(self) -> None:  # noqa: N802
                server._record(RecordedRequest("GET", self.path, dict(self.headers), None, b"", time.time()))
                if not self._authorized():
                    return
                path = self.path.split("?")[0].rstrip("/")
                if path == "/_stats":  # for a test or benchmark driving the server in another process
                    stats = {"chat_requests": server.count, **server.usage_total}
                    if server.malformed_rate > 0:
                        stats["malformed"] = server.malformed_counts
                    self._send_json(200, stats)
                elif path in ("/v1/models", "/models"):
                    data = [{"id": m, "object": "model", "created": 0, "owned_by": "dfabench-test"}
                            for m in server.models]
                    self._send_json(200, {"object": "list", "data": data})
                else:
                    self._send_error(404, f"no route for GET {path}", "not_found")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                record = RecordedRequest("POST", self.path, dict(self.headers), body, raw, time.time())
                path = self.path.split("?")[0].rstrip("/")
                if path not in ("/v1/chat/completions", "/chat/completions"):
                    server._record(record)
                    self._send_error(404, f"no route for POST {path}", "not_found")
                    return
                fault = server._next_fault()
                reply: Any = None
                if fault is None:
                    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                        server._record(record)
                        self._send_error(400, "the body must be a JSON object with 'messages'", "invalid_request_error")
                        return
                    try:
                        reply = server.responder(body) if server.responder is not None else None
                    except Exception as exc:  # a broken responder is a 500, visible to the test
                        record.extra["responder_error"] = repr(exc)
                        fault = Fault.server_error(500)
                    if isinstance(reply, Fault):
                        fault, reply = reply, None
                    reply = server._malform(body, reply, record)
                record.fault = fault.kind if fault is not None else None
                server._record(record)
                if not self._authorized():
                    return
                if server.delay > 0 and server._stopping.wait(server.delay):
                    return
                if fault is not None and self._apply_fault(fault, body):
                    return
                self._send_completion(body if isinstance(body, dict) else {}, reply)

            # -- helpers --

            def _authorized(self) -> bool:
                if server.api_key is None:
                    return True
                if self.headers.get("Authorization") == f"Bearer {server.api_key}":
                    return True
                self._send_error(401, "Incorrect API key provided.", "invalid_api_key")
                return False

            def _apply_fault(self, fault: Fault, body: Any) -> bool:
                """Send the fault's reply; False when the request should then be answered normally."""
                if fault.kind == "rate_limit":
                    headers = {} if fault.retry_after is None else {"Retry-After": _fmt_seconds(fault.retry_after)}
                    self._send_error(429, "Rate limit reached. Please try again later.", "rate_limit_exceeded",
                                     headers)
                elif fault.kind in ("server_error", "status"):
                    self._send_error(fault.http_status, fault.text or "The server had an error.", "server_error")
                elif fault.kind == "hang":
                    if server._stopping.wait(fault.seconds):
                        return True
                    return False
                elif fault.kind == "malformed":
                    self._send_raw(200, fault.body.encode("utf-8"), "application/json")
                elif fault.kind == "refusal":
                    self._send_completion(body if isinstance(body, dict) else {},
                                          {"content": None, "refusal": fault.text})
                elif fault.kind == "disconnect":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                else:
                    raise ValueError(f"unknown fault {fault.kind!r}")
                return True

            def _send_completion(self, body: dict[str, Any], reply: Any) -> None:
                requested = body.get("model") or server.models[0]
                reported = server.model or requested
                if isinstance(reply, dict) and "choices" in reply:  # a whole body, sent as it is
                    server._add_usage(reply.get("usage") or {})
                    self._send_json(200, reply)
                    return
                fields = reply_fields(reply)
                usage = reply_usage(fields, body)
                server._add_usage(usage)
                choice = completion_choice(fields)
                model = fields.get("model") or reported
                created = int(time.time())
                completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
                if body.get("stream"):
                    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                    events = stream_body(completion_id, created, model, choice["message"], choice["finish_reason"],
                                         usage, include_usage)
                    self._send_raw(200, events, "text/event-stream")
                    return
                self._send_json(200, completion_body(completion_id, created, model, choice, usage))

            def _send_error(self, status: int, message: str, code: str,
                            headers: dict[str, str] | None = None) -> None:
                self._send_json(status, error_body(status, message, code), headers)

            def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

            def _send_raw(self, status: int, data: bytes, content_type: str,
                          headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (timeout): nothing to do

        return Handler


def _fmt_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dfabench.testing.chat_server",
                                     description="a local OpenAI-compatible chat-completions server for tests")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--model", default=None, help="the model id to report (default: echo the request's)")
    parser.add_argument("--reply", default="judge", help="'judge', 'echo' or a fixed text")
    parser.add_argument("--malformed-rate", type=float, default=0.0,
                        help="make this share of the JSON replies malformed (seeded; see the module docstring)")
    parser.add_argument("--malformed-seed", type=int, default=0, help="the seed of --malformed-rate (default 0)")
    args = parser.parse_args(argv)
    if args.reply == "judge":
        responder: Callable[[dict[str, Any]], Any] = judge_reply
    elif args.reply == "echo":
        def responder(request: dict[str, Any]) -> Any:
            return str(request["messages"][-1]["content"])
    else:
        def responder(request: dict[str, Any]) -> Any:
            return args.reply
    server = ChatServer(responder=responder, delay=args.delay, model=args.model, port=args.port,
                        malformed_rate=args.malformed_rate, malformed_seed=args.malformed_seed).start()
    print(f"base_url={server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
