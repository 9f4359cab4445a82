"""The bodies :class:`dfabench.testing.chat_server.ChatServer` answers with, and the usage it reports.

Pure functions, standard library only: a chat completion built from a responder's reply
(:func:`reply_fields`, :func:`reply_usage`, :func:`completion_choice`, :func:`completion_body`), the same
completion as server-sent events (:func:`stream_body`), an OpenAI-style error (:func:`error_body`), the
word counts that stand in for tokens (:func:`count_words`, :func:`prompt_tokens`), and :func:`judge_reply`,
a responder that answers any of dfabench's shipped rubrics.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "completion_body",
    "completion_choice",
    "count_words",
    "error_body",
    "judge_reply",
    "prompt_tokens",
    "reply_fields",
    "reply_usage",
    "stream_body",
]


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


def prompt_tokens(body: Any) -> int:
    """Words over every text part of every message of a chat request body."""
    if not isinstance(body, dict):
        return 0
    return sum(count_words(m.get("content")) for m in body.get("messages") or [] if isinstance(m, dict))


def reply_fields(reply: Any) -> dict[str, Any]:
    """The completion fields of a responder's reply other than a whole body: a ``str`` is the content, a
    ``dict`` gives the fields (content ``"ok"`` unless it has one, or a refusal), ``None`` is ``"ok"``."""
    if isinstance(reply, str):
        return {"content": reply}
    if isinstance(reply, dict):
        return {"content": None, **reply} if "content" not in reply and "refusal" in reply else \
            {"content": "ok", **reply}
    return {"content": "ok"}


def reply_usage(fields: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The reply's ``usage``, completed with the word counts of the prompt and of the reply."""
    usage = dict(fields.get("usage") or {})
    usage.setdefault("prompt_tokens", prompt_tokens(body))
    usage.setdefault("completion_tokens", count_words(fields.get("content")) + count_words(fields.get("refusal")))
    usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
    return usage


def completion_choice(fields: dict[str, Any]) -> dict[str, Any]:
    """The one choice of a completion: the assistant message, its finish reason and log-probabilities."""
    message: dict[str, Any] = {"role": "assistant", "content": fields.get("content"),
                               "refusal": fields.get("refusal")}
    if fields.get("tool_calls"):
        message["tool_calls"] = fields["tool_calls"]
    return {"index": 0, "message": message, "finish_reason": fields.get("finish_reason", "stop"),
            "logprobs": fields.get("logprobs")}


def completion_body(completion_id: str, created: int, model: str, choice: dict[str, Any],
                    usage: dict[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` response body with one choice."""
    return {"id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [choice], "usage": usage, "system_fingerprint": "fp_dfabench_test"}


def stream_body(completion_id: str, created: int, model: str, message: dict[str, Any], finish_reason: str,
                usage: dict[str, Any], include_usage: bool) -> bytes:
    """The completion as server-sent events: a role chunk, one chunk per word of the content, the refusal,
    the finish reason, the usage (with ``include_usage``), then ``data: [DONE]``."""
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
    return b"".join(parts)


def error_body(status: int, message: str, code: str) -> dict[str, Any]:
    """An OpenAI-style error body; its ``type`` follows from the HTTP status."""
    kind = {429: "rate_limit_exceeded", 401: "authentication_error", 404: "not_found_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def judge_reply(request: dict[str, Any]) -> str:
    """A valid judgment for any rubric whose prompt lists its keys as ``"key"`` (every criterion 3)."""
    text = request["messages"][-1]["content"]
    if isinstance(text, list):
        text = " ".join(p.get("text", "") for p in text if isinstance(p, dict))
    listed = re.search(r"exactly these keys: (.*?), and \"rationale\"", str(text))
    keys = re.findall(r'"([^"]+)"', listed.group(1)) if listed else ["score"]
    return json.dumps({**{key: 3 for key in keys}, "rationale": "test server"})
