"""JSON read with a depth limit: nesting deeper than :data:`MAX_JSON_DEPTH` is one clear line, never a
``RecursionError`` in whatever reads the value next."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dfabench.errors import InputError

#: JSON nested deeper than this (objects and arrays) is refused: no record of dfabench comes close,
#: and deeper structures only serve to exhaust the interpreter's stack in whatever reads them next
MAX_JSON_DEPTH = 64

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def nesting_problem(text: str, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``text`` is nested too deeply to be read (None when it is not).

    A bracket count (done in C) settles the common case; only text with more brackets than the
    limit is scanned token by token (strings skipped), and that scan stops at the first level
    past the limit.
    """
    if text.count("{") + text.count("[") <= max_depth:
        return None
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "{[":
            depth += 1
            if depth > max_depth:
                line = text.count("\n", 0, match.start()) + 1
                column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
                return (f"JSON nested deeper than {max_depth} levels (line {line}, column {column}); "
                        "refusing to read it")
        elif token in "}]":
            depth -= 1
    return None


def loads_json(text: str | bytes, path: Any, record: str | None = None, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text from ``path`` (``record``: e.g. ``"line 3"``); :class:`InputError` when it is
    malformed or nested deeper than ``max_depth``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(path, f"not UTF-8 text ({exc})", record) from None
    problem = nesting_problem(text, max_depth)
    if problem is not None:
        raise InputError(path, problem, record)
    try:
        return json.loads(text)
    except RecursionError:  # pragma: no cover - the scan above refuses such text first
        raise InputError(path, f"JSON nested deeper than {max_depth} levels; refusing to read it", record) from None
    except ValueError as exc:
        raise InputError(path, f"malformed JSON ({exc})", record) from None


def load_json(path: str | Path, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Read and parse a JSON file; :class:`InputError` naming the file when it cannot be read, is
    malformed, or is nested deeper than ``max_depth`` levels."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror or exc})") from None
    return loads_json(data, path, max_depth=max_depth)


def depth_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why an already decoded value is nested too deeply (None when it is not). Iterative: safe on
    any depth."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return None
