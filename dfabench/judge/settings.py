"""How to reach the judge and how to ask it: :class:`JudgeSettings` (never a key: it is read from the environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dfabench.errors import DfabenchError
from dfabench.redact import register_secret

DEFAULT_CONCURRENCY = 32
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
CACHE_FILE = "judge-cache.sqlite"
PLACEHOLDER_KEY = "sk-no-key-required"


class JudgeAbort(DfabenchError):
    """The judge cannot work at all (wrong key, unknown model, endpoint unreachable): nothing is written."""



@dataclass
class JudgeSettings:
    """How to reach the judge and how to ask it."""

    model: str
    base_url: str | None = field(default=None, repr=False)  # may hold credentials: never shown
    api_key_env: str = DEFAULT_API_KEY_ENV
    with_image: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    rubric: str | None = None
    json_mode: bool = True
    max_tokens: int | None = None
    price_input: float | None = None
    price_output: float | None = None
    cache_path: str | None = None
    refresh: bool = False
    backoff_base: float = 0.5

    def endpoint(self) -> str:
        """The base URL without credentials, query or fragment (what may be recorded)."""
        return public_endpoint(self.base_url)

    def api_key(self) -> str:
        key = os.environ.get(self.api_key_env)
        if key:
            register_secret(key)  # whatever prints a message later scrubs it, whatever the variable's name
            return key
        if self.base_url:
            return PLACEHOLDER_KEY
        raise DfabenchError(f"no API key: set the environment variable {self.api_key_env} (or give --base-url "
                            "for a local server that needs none)")


def public_endpoint(base_url: str | None) -> str:
    if not base_url:
        return "https://api.openai.com/v1"
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
