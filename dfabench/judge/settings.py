"""Which model judges and how it is asked: :class:`JudgeSettings` (never a key: it is read from the environment).

The judge is a registered generate-capable model in the ``judge`` role (:mod:`dfabench.roles`): ``judge`` names
it and ``judge_args`` are its ``--model-arg`` values. ``model`` / ``base_url`` / ``api_key_env`` / ``concurrency``
/ ``timeout`` / ``max_retries`` are the shorthand for the ``openai`` plugin (``--judge-model``, ``--base-url``):
:meth:`JudgeSettings.role` turns them into its arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from dfabench.errors import DfabenchError
from dfabench.redact import register_secret

DEFAULT_CONCURRENCY = 32
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
CACHE_FILE = "judge-cache.sqlite"
PLACEHOLDER_KEY = "sk-no-key-required"
DEFAULT_JUDGE = "openai"
#: how a judgment is asked for: ``auto`` (the strongest the model enforces: json_schema, json_object, else text),
#: or one of these, fixed
OUTPUT_MODES = ("auto", "json_schema", "json_object", "text")


class JudgeAbort(DfabenchError):
    """The judge cannot work at all (wrong key, unknown model, endpoint unreachable): nothing is written."""



@dataclass
class JudgeSettings:
    """How to reach the judge and how to ask it."""

    model: str | None = None
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
    judge: str = DEFAULT_JUDGE
    judge_args: dict = field(default_factory=dict, repr=False)  # may hold credentials in a URL: never shown
    output: str = "auto"
    #: judge a fixed, seeded subset of this many samples per task (None: all)
    sample: int | None = None
    seed: int = 0
    #: judge each rubric's calibration set too (dfabench.judge.calibration)
    calibrate: bool = True
    #: stop before the estimated cost (USD, at price_input/price_output) would exceed this
    max_cost: float | None = None
    #: an ensemble: the members' registered names and arguments (``--judge NAME --judge-arg k=v`` given more than
    #: once); empty or one: a single judge (``judge`` / ``judge_args``)
    members: list = field(default_factory=list, repr=False)  # arguments may hold credentials in a URL

    def member_settings(self) -> list[JudgeSettings]:
        """One :class:`JudgeSettings` per judge: ``[self]`` for a single judge, else one per ensemble member (each
        a single judge, with this run's other settings). Refused with one line: the openai shorthand in an
        ensemble, a member named twice."""
        if len(self.members) <= 1:
            if self.members:
                self.judge, self.judge_args = self.members[0][0], dict(self.members[0][1])
                self.members = []
            return [self]
        if self.model or self.base_url:
            raise DfabenchError("--judge-model and --base-url are the shorthand for one openai judge; in an ensemble "
                                "give each member's arguments after its --judge with --judge-arg (e.g. --judge openai "
                                "--judge-arg model=A --judge openai --judge-arg model=B)")
        out: list[JudgeSettings] = []
        seen: list[tuple[str, dict]] = []
        for name, args in self.members:
            if (name, dict(args)) in seen:
                raise DfabenchError(f"the ensemble names the judge {name} with the same arguments twice (each member "
                                    "must be another judge)")
            seen.append((name, dict(args)))
            out.append(replace(self, judge=name, judge_args=dict(args), members=[]))
        return out

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1

    def role(self) -> tuple[str, dict]:
        """The judge model's registered name and arguments (the openai shorthand filled in)."""
        if self.max_cost is not None and (self.max_cost < 0 or self.price_input is None or self.price_output is None):
            raise DfabenchError("--max-cost needs a budget >= 0 and the prices it is computed with (--price-in and "
                                "--price-out, USD per million tokens)")
        if self.output not in OUTPUT_MODES:
            raise DfabenchError(f"--judge-output must be one of {', '.join(OUTPUT_MODES)}, not {self.output!r}")
        if not self.json_mode and self.output == "auto":
            self.output = "text"
        args = dict(self.judge_args or {})
        if self.judge == DEFAULT_JUDGE:
            if "model" not in args:
                if not self.model:
                    raise DfabenchError("no judge model: give --judge-model ID (the openai plugin) or --judge NAME "
                                        "--judge-arg ... (any generate-capable model, see `dfabench models`)")
                args["model"] = self.model
            if self.base_url and "base_url" not in args:
                args["base_url"] = self.base_url
            if self.api_key_env != DEFAULT_API_KEY_ENV and "api_key_env" not in args:
                args["api_key_env"] = self.api_key_env
            # how requests are sent (operational: outside the judge's fingerprint)
            args.setdefault("concurrency", self.concurrency)
            args.setdefault("timeout", self.timeout)
            args.setdefault("max_retries", self.max_retries)
            args.setdefault("backoff", self.backoff_base)
            args.setdefault("probe", False)  # the identity comes from GET /models; each reply names its model
        elif self.model or self.base_url:
            raise DfabenchError("--judge-model and --base-url are the shorthand for --judge openai; with --judge "
                                f"{self.judge} give its arguments with --judge-arg")
        return self.judge, args

    def label(self) -> str:
        """The judge as shown in messages: the model id (openai shorthand) or the registered name (an ensemble:
        its members', joined by ``+``)."""
        if len(self.members) > 1:
            return " + ".join(member.label() for member in self.member_settings())
        return self.model or str((self.judge_args or {}).get("model") or (self.judge_args or {}).get("path")
                                 or self.judge)

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
