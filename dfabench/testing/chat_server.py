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
``GET /_stats`` returns ``{"chat_requests": n, "prompt_tokens": .., "completion_tokens": ..}``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ChatServer", "Fault", "RecordedRequest", "count_words", "judge_reply"]


@dataclass(frozen=True)
class Fault:
    """A scripted failure for one request (see the module docstring for the constructors)."""

    kind: str
    http_status: int = 200
    retry_after: float | None = None
    seconds: float = 0.0
    body: str = ""
    text: str = ""

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1.0) -> Fault:
        return cls("rate_limit", http_status=429, retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("server_error", http_status=status)

    @classmethod
    def status(cls, code: int, message: str = "error") -> Fault:
        return cls("status", http_status=code, text=message)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Fault:
        return cls("hang", seconds=seconds)

    @classmethod
    def malformed(cls, body: str = '{"id": "chatcmpl-broken", "choices": [{"message": ') -> Fault:
        return cls("malformed", body=body)

    @classmethod
    def refusal(cls, text: str = "I'm sorry, but I can't help with that.") -> Fault:
        return cls("refusal", text=text)

    @classmethod
    def disconnect(cls) -> Fault:
        return cls("disconnect")


@dataclass
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    received: float
    fault: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def authorization(self) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == "authorization":
                return value
        return None


def count_words(value: Any) -> int:
    """Whitespace-separated words in a message content (string or list of parts)."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        total = 0
        for part in value:
            if isinstance(part, dict) and part.get("type") == "text":
                total += count_words(part.get("text"))
            elif isinstance(part, str):
                total += count_words(part)
        return total
    return 0


def _prompt_tokens(body: Any) -> int:
    if not isinstance(body, dict):
        return 0
    return sum(count_words(m.get("content")) for m in body.get("messages") or [] if isinstance(m, dict))


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # the listen backlog: many clients connect at once (the default is 5)
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class ChatServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 in a background thread."""

    def __init__(self, responder: Callable[[dict[str, Any]], Any] | None = None, *, delay: float = 0.0,
                 model: str | None = None, models: list[str] | None = None, api_key: str | None = None,
                 host: str = "127.0.0.1", port: int = 0):
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
                    self._send_json(200, {"chat_requests": server.count, **server.usage_total})
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
                if isinstance(reply, dict) and "choices" in reply:
                    payload = reply
                    usage = reply.get("usage") or {}
                    server._add_usage(usage)
                    self._send_json(200, payload)
                    return
                fields: dict[str, Any] = {"content": "ok"}
                if isinstance(reply, str):
                    fields = {"content": reply}
                elif isinstance(reply, dict):
                    fields = {"content": None, **reply} if "content" not in reply and "refusal" in reply else \
                        {"content": "ok", **reply}
                content = fields.get("content")
                usage = dict(fields.get("usage") or {})
                usage.setdefault("prompt_tokens", _prompt_tokens(body))
                usage.setdefault("completion_tokens", count_words(content) + count_words(fields.get("refusal")))
                usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
                server._add_usage(usage)
                message: dict[str, Any] = {"role": "assistant", "content": content,
                                           "refusal": fields.get("refusal")}
                if fields.get("tool_calls"):
                    message["tool_calls"] = fields["tool_calls"]
                choice: dict[str, Any] = {"index": 0, "message": message,
                                          "finish_reason": fields.get("finish_reason", "stop"),
                                          "logprobs": fields.get("logprobs")}
                model = fields.get("model") or reported
                created = int(time.time())
                completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
                if body.get("stream"):
                    self._send_stream(completion_id, created, model, message, choice["finish_reason"], usage,
                                      bool((body.get("stream_options") or {}).get("include_usage")))
                    return
                self._send_json(200, {"id": completion_id, "object": "chat.completion", "created": created,
                                      "model": model, "choices": [choice], "usage": usage,
                                      "system_fingerprint": "fp_dfabench_test"})

            def _send_stream(self, completion_id: str, created: int, model: str, message: dict[str, Any],
                             finish_reason: str, usage: dict[str, Any], include_usage: bool) -> None:
                def chunk(delta: dict[str, Any], finish: str | None, with_usage: bool = False) -> bytes:
                    data: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk",
                                            "created": created, "model": model,
                                            "choices": [] if with_usage else
                                            [{"index": 0, "delta": delta, "finish_reason": finish}]}
                    if with_usage:
                        data["usage"] = usage
                    return b"data: " + json.dumps(data).encode("utf-8") + b"\n\n"

                parts = [chunk({"role": "assistant", "content": ""}, None)]
                content = message.get("content")
                if content:
                    words = content.split(" ")
                    for i, word in enumerate(words):
                        parts.append(chunk({"content": word if i == 0 else " " + word}, None))
                if message.get("refusal"):
                    parts.append(chunk({"refusal": message["refusal"]}, None))
                parts.append(chunk({}, finish_reason))
                if include_usage:
                    parts.append(chunk({}, None, with_usage=True))
                parts.append(b"data: [DONE]\n\n")
                self._send_raw(200, b"".join(parts), "text/event-stream")

            def _send_error(self, status: int, message: str, code: str,
                            headers: dict[str, str] | None = None) -> None:
                kind = {429: "rate_limit_exceeded", 401: "authentication_error", 404: "not_found_error"}.get(
                    status, "server_error" if status >= 500 else "invalid_request_error")
                payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
                self._send_json(status, payload, headers)

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


def judge_reply(request: dict[str, Any]) -> str:
    """A valid judgment for any rubric whose prompt lists its keys as ``"key"`` (every criterion 3)."""
    text = request["messages"][-1]["content"]
    if isinstance(text, list):
        text = " ".join(p.get("text", "") for p in text if isinstance(p, dict))
    listed = re.search(r"exactly these keys: (.*?), and \"rationale\"", str(text))
    keys = re.findall(r'"([^"]+)"', listed.group(1)) if listed else ["score"]
    return json.dumps({**{key: 3 for key in keys}, "rationale": "test server"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dfabench.testing.chat_server",
                                     description="a local OpenAI-compatible chat-completions server for tests")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--model", default=None, help="the model id to report (default: echo the request's)")
    parser.add_argument("--reply", default="judge", help="'judge', 'echo' or a fixed text")
    args = parser.parse_args(argv)
    if args.reply == "judge":
        responder: Callable[[dict[str, Any]], Any] = judge_reply
    elif args.reply == "echo":
        def responder(request: dict[str, Any]) -> Any:
            return str(request["messages"][-1]["content"])
    else:
        def responder(request: dict[str, Any]) -> Any:
            return args.reply
    server = ChatServer(responder=responder, delay=args.delay, model=args.model, port=args.port).start()
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
