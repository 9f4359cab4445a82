"""The small schema language the records are defined in: each type checks a decoded JSON value (the first
problem, as ``"<json path>: <problem>"``) and writes its JSON Schema, so validation and the published schema
can never disagree."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any


def path_of(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(key)):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(str(key))}]"


def shown(value: Any) -> str:
    kind = {bool: "a boolean", str: "a string", int: "an integer", float: "a number", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)
    if isinstance(value, (dict, list)):
        return kind
    text = repr(value)
    return f"{kind} ({text[:60]}{'...' if len(text) > 60 else ''})"


class Type:
    """One node of a schema: checks a decoded JSON value and describes itself as JSON Schema."""

    description = ""

    def problem(self, value: Any, at: str) -> str | None:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def _described(self, out: dict[str, Any]) -> dict[str, Any]:
        if self.description:
            out["description"] = self.description
        return out


class Scalar(Type):
    """A string, an integer, a number, a boolean or null (``kinds`` may list several)."""

    _CHECKS = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    _NAMES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
              "null": "null"}

    def __init__(self, *kinds: str, pattern: str | None = None, minimum: float | None = None,
                 maximum: float | None = None, enum: tuple[Any, ...] | None = None, description: str = ""):
        self.kinds, self.pattern, self.minimum, self.maximum = kinds, pattern, minimum, maximum
        self.enum, self.description = enum, description
        self._regex = re.compile(pattern) if pattern else None

    def problem(self, value: Any, at: str) -> str | None:
        if not any(self._CHECKS[k](value) for k in self.kinds):
            return f"{at}: expected {' or '.join(self._NAMES[k] for k in self.kinds)}, got {shown(value)}"
        if value is None:
            return None
        if self.enum is not None and value not in self.enum:
            return f"{at}: {value!r} is not one of {', '.join(map(repr, self.enum))}"
        if self._regex is not None and isinstance(value, str) and not self._regex.search(value):
            return f"{at}: {value[:80]!r} does not match {self.pattern}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"{at}: {value!r} is below the minimum {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return f"{at}: {value!r} is above the maximum {self.maximum}"
        return None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": list(self.kinds) if len(self.kinds) > 1 else self.kinds[0]}
        if self.enum is not None:
            out["enum"] = list(self.enum) + ([None] if "null" in self.kinds else [])
        if self.pattern:
            out["pattern"] = self.pattern
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return self._described(out)


class AnyValue(Type):
    """Any JSON value (its depth is bounded by :data:`MAX_JSON_DEPTH` when the file is read)."""

    def __init__(self, description: str = ""):
        self.description = description

    def problem(self, value: Any, at: str) -> str | None:
        return None

    def schema(self) -> dict[str, Any]:
        return self._described({})


class ListOf(Type):
    def __init__(self, item: Type, description: str = ""):
        self.item, self.description = item, description

    def problem(self, value: Any, at: str) -> str | None:
        if not isinstance(value, list):
            return f"{at}: expected a list, got {shown(value)}"
        for index, item in enumerate(value):
            problem = self.item.problem(item, path_of(at, index))
            if problem:
                return problem
        return None

    def schema(self) -> dict[str, Any]:
        return self._described({"type": "array", "items": self.item.schema()})


class MapOf(Type):
    """An object with free keys whose values all have one type."""

    def __init__(self, value: Type, nullable: bool = False, description: str = ""):
        self.value, self.nullable, self.description = value, nullable, description

    def problem(self, value: Any, at: str) -> str | None:
        if value is None and self.nullable:
            return None
        if not isinstance(value, dict):
            return f"{at}: expected an object{' or null' if self.nullable else ''}, got {shown(value)}"
        for key, item in value.items():
            problem = self.value.problem(item, path_of(at, key))
            if problem:
                return problem
        return None

    def schema(self) -> dict[str, Any]:
        out = {"type": ["object", "null"] if self.nullable else "object", "additionalProperties": self.value.schema()}
        return self._described(out)


class Obj(Type):
    """An object with known fields (``required`` must be there); unknown fields are accepted."""

    def __init__(self, fields: Mapping[str, Type], required: tuple[str, ...] = (), nullable: bool = False,
                 description: str = ""):
        self.fields, self.required, self.nullable, self.description = dict(fields), required, nullable, description

    def problem(self, value: Any, at: str) -> str | None:
        if value is None and self.nullable:
            return None
        if not isinstance(value, dict):
            return f"{at}: expected an object{' or null' if self.nullable else ''}, got {shown(value)}"
        for name in self.required:
            if name not in value:
                return f"{at}: missing field {name!r}"
        for name, kind in self.fields.items():
            if name in value:
                problem = kind.problem(value[name], path_of(at, name))
                if problem:
                    return problem
        return None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": ["object", "null"] if self.nullable else "object",
                               "properties": {name: kind.schema() for name, kind in self.fields.items()}}
        if self.required:
            out["required"] = list(self.required)
        out["additionalProperties"] = True
        return self._described(out)


# the scalar types the records use

STR = Scalar("string")
STR_OR_NULL = Scalar("string", "null")
INT = Scalar("integer")
COUNT = Scalar("integer", minimum=0)
COUNT_OR_NULL = Scalar("integer", "null", minimum=0)
NUMBER_OR_NULL = Scalar("number", "null")
BOOL = Scalar("boolean")
SHA256 = Scalar("string", pattern=r"^[0-9a-f]{64}$", description="lower-case hex SHA-256")
#: a file name inside the run folder: no directory part, so nothing outside the folder is named
FILE_NAME = Scalar("string", pattern=r"^(?!\.\.?$)[^/\\\x00]+$", description="a file name in the run folder")
CAPABILITY = Scalar("string", enum=("generate", "score", "localize"))
