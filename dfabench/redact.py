"""One redaction mechanism for every text dfabench writes, prints or stores.

Secrets never reach a file, a log or an error message (DESIGN.md): whatever may carry one goes
through :func:`redact` (a string), :func:`redact_clip` (a string that is also shortened: redacted
*first*, cut after, so a key that straddles the cut never leaves a prefix behind) or
:func:`scrub_value` (strings nested in dicts and lists: model arguments, the command line).

What is removed (replaced by ``***``):

- the values of secrets in play: those registered with :func:`register_secret` (the API keys the
  openai plugin and the judge read from the variables they are told to use), those passed as
  ``secrets=``, and the value (8 characters or more) of every environment variable whose name looks
  secret: ``KEY``, ``TOKEN``, ``SECRET``, ``PASSWORD``, ``PASSWD`` or ``CREDENTIAL`` is a part of it or
  its end (``OPENAI_API_KEY``, ``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``; not ``PIP_KEYRING_PROVIDER``),
  and it does not end in ``_ENV``, ``_VAR``, ``_NAME``, ``_FILE``, ``_PATH``, ``_DIR``, ``_URL`` or
  ``_ID`` (those name or locate a secret rather than hold one). A secret is also removed where an
  earlier cut left a prefix of it (4 characters or more) before ``...`` or at the very end;
- credentials inside URLs: the user information (``https://user:pass@host`` -> ``https://***@host``) and
  the values of query parameters whose name marks a credential (``?api-key=``, ``&token=``, ``sig=``, ...);
- ``Authorization: <scheme> <value>`` and ``Bearer <token>``;
- strings shaped like common keys: ``sk-...`` (OpenAI, Anthropic, OpenRouter), ``hf_...`` (Hugging Face),
  GitHub, AWS access key ids, Google API keys, Slack tokens and JSON web tokens;
- ``NAME=value`` and ``"NAME": "value"`` where NAME marks a credential (:func:`is_secret_name`) and the
  value has 6 characters or more.

:func:`scrub_value` also replaces, whole, the string value of every mapping key that marks a credential,
the value of a whole ``NAME=VALUE`` string (``--model-arg token=abc``), and the argument after a
command-line option that marks one (``--token VALUE``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "***"
#: words that, as the last part of a name (``api_key``, ``HF_TOKEN``, ``clientSecret``), mark a credential
SECRET_WORDS = frozenset({
    "key", "apikey", "token", "secret", "password", "passwd", "pwd", "passphrase", "credential", "credentials",
    "auth", "authorization", "sig", "signature", "cookie", "accesstoken", "secretkey", "privatekey",
})
#: explicit secrets shorter than this are ignored (they would match ordinary text)
MIN_SECRET = 4
#: environment variables whose name looks secret count only with a value at least this long
MIN_ENV_SECRET = 8
#: a truncated secret is recognised from this many characters on
MIN_PREFIX = 4
#: ``NAME=value`` in free text is redacted only for values at least this long (``token='Yes'`` is no secret)
MIN_ASSIGNED = 6

_ENV_SECRET_NAME = re.compile(r"(?:^|_)(?:API)?(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)(?:_|$)"
                              r"|(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)
_ENV_NOT_SECRET = re.compile(r"_(ENV|VAR|NAME|FILE|PATH|DIR|URL|ID)$", re.IGNORECASE)
_PLACEHOLDERS = frozenset({"EMPTY", "sk-no-key-required", "none", "None", "null", "dummy"})

_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret for the rest of the process: every later :func:`redact` removes it (plugins call
    this with the key they read, whatever the name of the variable it came from)."""
    if isinstance(value, str) and len(value) >= MIN_SECRET and value not in _PLACEHOLDERS:
        _registered.add(value)


# ----------------------------------------------------------------------------- names


_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a variable, argument, header or query-parameter name marks a credential: its last part
    (or its last two parts run together) is one of :data:`SECRET_WORDS`. ``api_key``, ``OPENAI_API_KEY``,
    ``x-api-key``, ``access_token``, ``clientSecret`` and ``X-Amz-Signature`` do; ``api_key_env``,
    ``max_tokens`` and ``tokenizer`` do not."""
    parts = [p for p in _SEPARATORS.split(_CAMEL.sub(r"\1_\2", str(name)).lower()) if p]
    if not parts:
        return False
    return parts[-1] in SECRET_WORDS or "".join(parts[-2:]) in SECRET_WORDS


def _env_secret_name(name: str) -> bool:
    return bool(_ENV_SECRET_NAME.search(name)) and not _ENV_NOT_SECRET.search(name)


@functools.lru_cache(maxsize=16)
def _env_secrets(environment: tuple) -> frozenset[str]:
    found = set()
    for name, value in environment:
        name = os.fsdecode(name) if isinstance(name, bytes) else name
        if _env_secret_name(name):
            value = os.fsdecode(value) if isinstance(value, bytes) else value
            if len(value) >= MIN_ENV_SECRET and value not in _PLACEHOLDERS:
                found.add(value)
    return frozenset(found)


@functools.lru_cache(maxsize=64)
def _sorted_secrets(*groups: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(set().union(*groups), key=lambda s: (-len(s), s)))


def secret_values(secrets: Iterable[str | None] = ()) -> tuple[str, ...]:
    """The secret values :func:`redact` removes now (longest first)."""
    data = getattr(os.environ, "_data", None)  # CPython: the raw mapping, a snapshot without decoding
    environment = tuple(data.items()) if isinstance(data, dict) else tuple(os.environ.items())
    given = frozenset(v for v in secrets if isinstance(v, str) and len(v) >= MIN_SECRET and v not in _PLACEHOLDERS)
    return _sorted_secrets(_env_secrets(environment), frozenset(_registered), given)


# ----------------------------------------------------------------------------- patterns

_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#'\"<>@]*(?:@[^\s/?#'\"<>@]*)*@")
_QUERY = re.compile(r"([?&;])([^=&#\s?;'\"<>]+)=([^&#\s;'\"<>]*)")
_AUTHORIZATION = re.compile(
    r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token|digest)\s+)?[^\s\"',;}\]]+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)(?=[A-Za-z0-9._~+/=-]*\d|[A-Za-z0-9._~+/=-]{20})[A-Za-z0-9._~+/=-]{8,}")
_KEY_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"sk-[A-Za-z0-9_-]{8,}"                      # OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), OpenRouter
    r"|hf_[A-Za-z0-9]{16,}"                      # Hugging Face
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"                # AWS access key ids
    r"|AIza[0-9A-Za-z_-]{30,}"                   # Google API keys
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"             # Slack
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JSON web tokens
    r")")
_ASSIGNMENT = re.compile(r"(?<![\w.])([A-Za-z_][\w.-]*)([\"']?[ \t]*[:=][ \t]*[\"']?)([^\s\"',;&}\]()]+)")


def _query_value(match: re.Match) -> str:
    if match.group(3) and match.group(3) != REDACTED and is_secret_name(match.group(2)):
        return f"{match.group(1)}{match.group(2)}={REDACTED}"
    return match.group(0)


def _assigned_value(match: re.Match) -> str:
    name, value = match.group(1), match.group(3)
    if (len(value) < MIN_ASSIGNED or REDACTED in value or not is_secret_name(name)
            or name.lower().endswith("authorization")):
        return match.group(0)
    return f"{name}{match.group(2)}{REDACTED}"


@functools.lru_cache(maxsize=64)
def _values_pattern(values: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(re.escape(v) for v in values))


def _redact_values(text: str, values: tuple[str, ...]) -> str:
    text = _values_pattern(values).sub(REDACTED, text)
    for value in values:  # what an earlier cut left of a secret: a prefix before "..." or at the end
        head = value[:MIN_PREFIX]
        start = text.find(head)
        while start >= 0:
            length = MIN_PREFIX
            while length < len(value) and start + length < len(text) and text[start + length] == value[length]:
                length += 1
            end = start + length
            if end == len(text) or text.startswith(("...", "\u2026"), end):
                text = text[:start] + REDACTED + text[end:]
                end = start + len(REDACTED)
            start = text.find(head, end)
    return text


_SHAPE_HINTS = ("sk-", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "AKIA", "ASIA", "AIza", "xox",
                "eyJ")
_NAME_HINTS = ("key", "token", "secret", "passw", "pwd", "passphrase", "credential", "auth", "sig", "cookie")


def redact(text: Any, secrets: Iterable[str | None] = ()) -> str:
    """``text`` (made a string) with every secret and credential replaced by ``***`` (see the module)."""
    text = text if isinstance(text, str) else str(text)
    if not text:
        return text
    values = secret_values(secrets)
    if values:
        text = _redact_values(text, values)
    # each pattern runs only where a cheap test says it could match (most error texts have none of them)
    if "://" in text and "@" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    lower = text.lower()
    named = any(hint in lower for hint in _NAME_HINTS)
    if named and "=" in text:
        text = _QUERY.sub(_query_value, text)
    if "authorization" in lower:
        text = _AUTHORIZATION.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{REDACTED}", text)
    if "bearer" in lower:
        text = _BEARER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    if any(hint in text for hint in _SHAPE_HINTS):
        text = _KEY_SHAPES.sub(REDACTED, text)
    if named and ("=" in text or ":" in text):
        text = _ASSIGNMENT.sub(_assigned_value, text)
    return text


def redact_clip(text: Any, limit: int, secrets: Iterable[str | None] = (), *, one_line: bool = False) -> str:
    """:func:`redact`, then (``one_line``: whitespace runs made single spaces) cut to ``limit`` characters
    plus ``...``. Redacting first is what keeps a secret that straddles the cut from leaving a prefix."""
    text = redact(text, secrets)
    if one_line:
        text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


_PAIR = re.compile(r"(-{0,2}[A-Za-z_][\w.-]*)=(.+)", re.DOTALL)


def _has_secret_value(value: Any) -> bool:
    if isinstance(value, (str, bytes)):
        return bool(value) and value != REDACTED
    return isinstance(value, (dict, list, tuple)) and bool(value)


def scrub_value(value: Any, secrets: Iterable[str | None] = ()) -> Any:
    """A copy of ``value`` with every string redacted (:func:`redact`), every mapping value under a name
    that marks a credential (:func:`is_secret_name`) replaced whole, and, in a list, the item after an
    option that names one (``["--token", "VALUE"]``). Numbers, booleans and ``None`` stay as they are."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        pair = _PAIR.match(value)
        if pair and is_secret_name(pair.group(1)) and pair.group(2) != REDACTED:
            return f"{pair.group(1)}={REDACTED}"
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: REDACTED if isinstance(key, str) and is_secret_name(key) and _has_secret_value(item)
                else scrub_value(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        out = []
        hide_next = False
        for item in value:
            if hide_next and isinstance(item, str) and item and not item.startswith("-"):
                out.append(REDACTED)
            else:
                out.append(scrub_value(item, secrets))
            hide_next = isinstance(item, str) and item.startswith("-") and "=" not in item and is_secret_name(item)
        return type(value)(out) if isinstance(value, tuple) else out
    return value


def credential_paths(value: Any, secrets: Iterable[str | None] = (), where: str = "") -> list[str]:
    """Where ``value`` still holds something :func:`scrub_value` would remove (``model.args.base_url``,
    ``command[5]``); empty when it holds none."""
    secrets = tuple(secrets)
    scrubbed = scrub_value(value, secrets)
    if scrubbed == value:
        return []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and is_secret_name(key) and _has_secret_value(item):
                found.append(path)
            else:
                found.extend(credential_paths(item, secrets, path))
        return found
    if isinstance(value, (list, tuple)):
        return [f"{where}[{index}]" for index, (old, new) in enumerate(zip(value, scrubbed, strict=True))
                if old != new]
    return [where or "(value)"]
