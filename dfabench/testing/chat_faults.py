"""What a test scripts and observes on :class:`dfabench.testing.chat_server.ChatServer`.

:class:`Fault` is a scripted failure for one chat request (queued with ``ChatServer.inject`` or returned
by a responder); :class:`RecordedRequest` is one request as the server logged it. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "RecordedRequest"]


@dataclass(frozen=True)
class Fault:
    """A scripted failure for one request (the constructors are listed in :mod:`dfabench.testing.chat_server`)."""

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
