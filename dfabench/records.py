"""The run record and the per-sample record, defined once: validation and the published JSON Schema.

A run folder's ``run.json`` (written by :mod:`dfabench.runner`, re-written by ``score`` and ``judge``)
and each line of its ``samples-<TASK>.jsonl`` are untrusted input when they are read back: a
leaderboard entry, a folder sent by someone else, a file edited by hand. Everything that reads them
goes through this module:

- :func:`load_json` / :func:`loads_json` parse JSON and refuse nesting deeper than
  :data:`MAX_JSON_DEPTH` levels with one clear line (never a ``RecursionError``);
- :func:`validate_run_record` checks a run record against :data:`RUN_RECORD` and raises
  :class:`~dfabench.errors.InputError` ``(path, "<json path>: <problem>")`` for the first problem;
- :func:`sample_record_problem` is the fast check of the per-sample fields scoring relies on (it
  runs for every sample);
- :func:`json_schema` turns the same definitions into JSON Schema (draft 2020-12); the files in
  ``dfabench/resources/schema/`` are generated from it (``python -m dfabench.records`` rewrites them)
  and a test keeps them equal.

The definitions are strict on the types of the fields that exist and permissive on additions: a
field this version does not know is accepted (newer dfabench versions and plugins add fields), a
known field of the wrong type is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dfabench.errors import InputError
from dfabench.files import SCHEMA_VERSION

#: JSON nested deeper than this (objects and arrays) is refused: no record of dfabench comes close,
#: and deeper structures only serve to exhaust the interpreter's stack in whatever reads them next
MAX_JSON_DEPTH = 64

SCHEMA_DIR = Path(__file__).resolve().parent / "resources" / "schema"
SCHEMA_FILES = {"run-record": "run-record.schema.json", "sample-record": "sample-record.schema.json"}


# --------------------------------------------------------------------------- JSON with a depth limit


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


# --------------------------------------------------------------------------- the schema language


def _path(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(key)):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(str(key))}]"


def _shown(value: Any) -> str:
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
            return f"{at}: expected {' or '.join(self._NAMES[k] for k in self.kinds)}, got {_shown(value)}"
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
            return f"{at}: expected a list, got {_shown(value)}"
        for index, item in enumerate(value):
            problem = self.item.problem(item, _path(at, index))
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
            return f"{at}: expected an object{' or null' if self.nullable else ''}, got {_shown(value)}"
        for key, item in value.items():
            problem = self.value.problem(item, _path(at, key))
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
            return f"{at}: expected an object{' or null' if self.nullable else ''}, got {_shown(value)}"
        for name in self.required:
            if name not in value:
                return f"{at}: missing field {name!r}"
        for name, kind in self.fields.items():
            if name in value:
                problem = kind.problem(value[name], _path(at, name))
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


# --------------------------------------------------------------------------- the run record

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

METRIC = Obj({
    "value": Scalar("number", "null", description="the number; null when it cannot be computed (see reason)"),
    "ci_low": NUMBER_OR_NULL,
    "ci_high": NUMBER_OR_NULL,
    "n": Scalar("integer", minimum=0, description="samples the number is computed over"),
    "reason": Scalar("string", "null", description="why value is null"),
    "unavailable": Scalar("boolean", description="true when a resource it needs is not installed here"),
}, required=("value", "ci_low", "ci_high", "n"))

COUNTS = Obj({
    "n": COUNT, "n_failed": COUNT, "n_unparsed": COUNT,
}, required=("n", "n_failed", "n_unparsed"))

MODEL = Obj({
    "name": STR,
    "plugin": STR_OR_NULL,
    "distribution": STR_OR_NULL,
    "version": STR_OR_NULL,
    "args": MapOf(AnyValue(), description="the --model-arg values"),
    "identity": MapOf(AnyValue(), description="what the model adds to its identity (weights hash, endpoint model id)"),
    "capabilities": ListOf(CAPABILITY),
    "operational_args": ListOf(STR, description="arguments that do not change answers (out of the fingerprint)"),
    "source": Obj({"install": Scalar("string", enum=("editable", "unpackaged")), "sha256": SHA256},
                  description="hash of the plugin's source files, for editable and unpackaged plugins"),
    "fingerprint": STR,
}, required=("name",), description="the model's identity: it keys the response cache")

BENCHMARK = Obj({
    "path": STR_OR_NULL,
    "name": STR_OR_NULL,
    "description": STR_OR_NULL,
    "fingerprint": STR,
    "split": STR_OR_NULL,
    "n_samples": COUNT_OR_NULL,
}, required=("fingerprint",))

GENERATION = Obj({
    "max_new_tokens": INT, "temperature": Scalar("number"), "top_p": Scalar("number"), "seed": INT,
})

SELECTION = Obj({
    "split": STR_OR_NULL, "limit": COUNT_OR_NULL, "n": COUNT, "n_available": COUNT, "n_pool": COUNT,
    "excluded": MapOf(COUNT), "ids_sha256": STR,
}, description="which samples of the split the task asked (dfabench.selection)")

TASK = Obj({
    "version": STR,
    "fingerprint": STR,
    "spec": MapOf(AnyValue(), description="the task spec the run used (TaskSpec.canonical)"),
    "capability": Scalar("string", "null", enum=("generate", "score", "localize")),
    "status": STR,
    "generation": GENERATION,
    "selection": SELECTION,
}, required=("version", "fingerprint", "spec"))

SAMPLES_FILE = Obj({
    "file": FILE_NAME,
    "sha256": SHA256,
    "masks": MapOf(SHA256, description="path of each predicted mask the log names -> its SHA-256 (schema 2)"),
}, required=("file", "sha256"))

JUDGE_TASK = Obj({
    "model": STR_OR_NULL, "rubric": STR_OR_NULL, "rubric_version": Scalar("string", "integer", "null"),
    "rubric_sha256": STR_OR_NULL, "with_image": BOOL, "n_judged": COUNT, "n_failed": COUNT,
})

JUDGE = Obj({
    "model": STR_OR_NULL, "rubric": STR_OR_NULL, "rubric_version": Scalar("string", "integer", "null"),
    "rubric_sha256": STR_OR_NULL, "with_image": BOOL, "endpoint": STR_OR_NULL,
    "tasks": MapOf(JUDGE_TASK), "last_run": MapOf(AnyValue()),
}, nullable=True, description="the judge identity (never a key); null when the run was not judged")

ENVIRONMENT = Obj({
    "python": STR, "platform": STR, "packages": MapOf(STR),
})

RUN_RECORD = Obj({
    "schema_version": Scalar("integer", minimum=1, maximum=SCHEMA_VERSION),
    "dfabench_version": STR,
    "created": STR,
    "updated": STR,
    "command": ListOf(STR),
    "model": MODEL,
    "benchmark": BENCHMARK,
    "tasks": MapOf(TASK, description="task id -> what was run"),
    "seed": INT,
    "limit": COUNT_OR_NULL,
    "n_boot": Scalar("integer", minimum=1),
    "environment": ENVIRONMENT,
    "judge": JUDGE,
    "metrics": MapOf(MapOf(METRIC), description="task id -> metric name -> number"),
    "counts": MapOf(MapOf(COUNT), description="task id -> n, n_failed, n_unparsed and further counts"),
    "breakdowns": MapOf(MapOf(AnyValue()), description="task id -> tables that are not one number"),
    "samples": MapOf(SAMPLES_FILE, description="task id -> its per-sample log"),
}, required=("schema_version", "dfabench_version", "model", "benchmark", "tasks", "metrics", "counts", "samples"),
    description="run.json: the record of one run folder (DESIGN.md, 'Stages and files')")


def run_record_problem(record: Any) -> str | None:
    """The first problem of a decoded run record, as ``"<json path>: <problem>"`` (None: valid)."""
    if not isinstance(record, dict) or "schema_version" not in record:
        return "not a dfabench run record (no schema_version)"
    version = record["schema_version"]
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return (f"schema version {version} is newer than this dfabench understands ({SCHEMA_VERSION}); "
                "upgrade dfabench")
    problem = RUN_RECORD.problem(record, "$")
    if problem:
        return problem
    # the counts of each task: n, n_failed, n_unparsed are required (further counts are integers)
    for task_id, counts in record["counts"].items():
        problem = COUNTS.problem(counts, _path(_path("$", "counts"), task_id))
        if problem:
            return problem
    return None


def validate_run_record(record: Any, path: Any) -> dict[str, Any]:
    """Return ``record`` when it is a valid run record; else raise :class:`InputError` ``(path, problem)``."""
    problem = run_record_problem(record)
    if problem is not None:
        raise InputError(path, problem)
    return record


# --------------------------------------------------------------------------- the per-sample record

SAMPLE_JUDGE = Obj({
    "score": NUMBER_OR_NULL,
    "criteria": MapOf(NUMBER_OR_NULL, nullable=True),
    "model": STR_OR_NULL,
    "rubric": STR_OR_NULL,
    "rubric_version": Scalar("string", "integer", "null"),
    "rubric_sha256": STR_OR_NULL,
    "with_image": BOOL,
    "error": STR_OR_NULL,
    "input_sha256": STR_OR_NULL,
}, nullable=True)

SAMPLE_RECORD = Obj({
    "id": STR,
    "task": STR_OR_NULL,
    "image": STR_OR_NULL,
    "label": STR_OR_NULL,
    "category": STR_OR_NULL,
    "technique": STR_OR_NULL,
    "source_id": Scalar("string", "integer", "null"),
    "prompt": STR_OR_NULL,
    "prompt_hash": STR_OR_NULL,
    "reference": AnyValue(description="DF-D: real/fake; DF-C: the category; AD/FC: text; FL: {text, mask}"),
    "response": STR_OR_NULL,
    "parsed": AnyValue(description="the parsed answer (FL: {text, mask})"),
    "score": Scalar("number", "null", description="probability of fake"),
    "category_scores": MapOf(NUMBER_OR_NULL, nullable=True),
    "unparsed": BOOL,
    "error": Scalar("string", "null", description="why the sample failed; null when it did not"),
    "cached": BOOL,
    "timings": MapOf(AnyValue(), nullable=True),
    "tokens": MapOf(AnyValue(), nullable=True),
    "metrics": MapOf(AnyValue(), nullable=True),
    "judge": SAMPLE_JUDGE,
    "model_fingerprint": Scalar("string", "null", description="the fingerprint of the model that answered"),
}, required=("id",), description="one line of samples-<TASK>.jsonl (see dfabench.store)")

_NUMBER = (int, float)
#: the fast check of the fields scoring relies on: field -> the Python types it may have (None always allowed)
_SAMPLE_TYPES: tuple[tuple[str, tuple[type, ...], str], ...] = (
    ("task", (str,), "a string"), ("label", (str,), "a string"), ("category", (str,), "a string"),
    ("technique", (str,), "a string"), ("source_id", (str, int), "a string"), ("prompt_hash", (str,), "a string"),
    ("response", (str,), "a string"), ("parsed", (str, dict), "a string or an object"),
    ("reference", (str, dict, list), "a string, a list or an object"), ("score", _NUMBER, "a number"),
    ("category_scores", (dict,), "an object"), ("unparsed", (bool,), "a boolean"), ("error", (str,), "a string"),
    ("cached", (bool,), "a boolean"), ("metrics", (dict,), "an object"), ("judge", (dict,), "an object"),
    ("timings", (dict,), "an object"), ("tokens", (dict,), "an object"),
)


def sample_record_problem(record: Any) -> str | None:
    """The first problem of a decoded per-sample record (None: valid), as ``"<json path>: <problem>"``.

    Fast (it runs for every sample): top-level types, then the nested numbers scoring reads."""
    if not isinstance(record, dict) or "id" not in record:
        return "not a sample record (no id)"
    if not isinstance(record["id"], str):
        return f"$.id: expected a string, got {_shown(record['id'])}"
    get = record.get
    for name, types, expected in _SAMPLE_TYPES:
        value = get(name)
        if value is not None and (not isinstance(value, types) or (types is _NUMBER and isinstance(value, bool))):
            return f"$.{name}: expected {expected} or null, got {_shown(value)}"
    if type(get("source_id")) is bool:
        return f"$.source_id: expected a string or null, got {_shown(get('source_id'))}"
    category_scores = get("category_scores")
    if category_scores:
        problem = SAMPLE_RECORD.fields["category_scores"].problem(category_scores, "$.category_scores")
        if problem:
            return problem
    judge = get("judge")
    if judge:
        problem = SAMPLE_JUDGE.problem(judge, "$.judge")
        if problem:
            return problem
    return None


# --------------------------------------------------------------------------- entry.json

ENTRY_META = Obj({"name": STR, "submitter": STR_OR_NULL, "notes": STR_OR_NULL, "url": STR_OR_NULL},
                 description="entry.json of a leaderboard entry (optional)")


def load_entry_meta(path: str | Path) -> dict[str, Any]:
    """A leaderboard entry's ``entry.json`` (``{}`` when there is none); :class:`InputError` when it
    is malformed, too deep or of the wrong types."""
    path = Path(path)
    if not path.exists():
        return {}
    data = load_json(path)
    problem = ENTRY_META.problem(data, "$")
    if problem:
        raise InputError(path, problem)
    return data


# --------------------------------------------------------------------------- JSON Schema

_TITLES = {"run-record": ("dfabench run record (run.json)", RUN_RECORD),
           "sample-record": ("dfabench per-sample record (one line of samples-<TASK>.jsonl)", SAMPLE_RECORD)}


def json_schema(kind: str = "run-record") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``run-record`` or ``sample-record``, generated from the
    same definitions :func:`validate_run_record` and :func:`sample_record_problem` check."""
    title, root = _TITLES[kind]
    schema = root.schema()
    if kind == "run-record":
        # the three counts every task has (the definition checks them in run_record_problem)
        schema["properties"]["counts"]["additionalProperties"] = {
            **COUNTS.schema(), "additionalProperties": COUNT.schema()}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:dfabench:schema:{kind}:{SCHEMA_VERSION}",
            "title": title, "x-dfabench-schema-version": SCHEMA_VERSION, "x-max-depth": MAX_JSON_DEPTH,
            **schema}


def schema_text(kind: str) -> str:
    """The JSON Schema as it is committed in ``dfabench/resources/schema/``."""
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """(Re)write the published JSON Schema files; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, name in SCHEMA_FILES.items():
        (directory / name).write_text(schema_text(kind), encoding="utf-8")
        written.append(directory / name)
    return written


if __name__ == "__main__":  # pragma: no cover
    for written_path in write_schemas():
        print(f"wrote {written_path}")
