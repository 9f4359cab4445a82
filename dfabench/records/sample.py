"""The per-sample record (one line of ``samples-<TASK>.jsonl``) and a leaderboard entry's ``entry.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dfabench.errors import InputError
from dfabench.records.jsontext import load_json
from dfabench.records.types import BOOL, NUMBER_OR_NULL, STR, STR_OR_NULL, AnyValue, MapOf, Obj, Scalar, shown

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
    "parsed_by": Scalar("string", "null", enum=("rule", "extractor", "score", "none"),
                        description="how the answer was read (dfabench.extract); absent in older records"),
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
    ("parsed_by", (str,), "a string"),
    ("cached", (bool,), "a boolean"), ("metrics", (dict,), "an object"), ("judge", (dict,), "an object"),
    ("timings", (dict,), "an object"), ("tokens", (dict,), "an object"),
)


def sample_record_problem(record: Any) -> str | None:
    """The first problem of a decoded per-sample record (None: valid), as ``"<json path>: <problem>"``.

    Fast (it runs for every sample): top-level types, then the nested numbers scoring reads."""
    if not isinstance(record, dict) or "id" not in record:
        return "not a sample record (no id)"
    if not isinstance(record["id"], str):
        return f"$.id: expected a string, got {shown(record['id'])}"
    get = record.get
    for name, types, expected in _SAMPLE_TYPES:
        value = get(name)
        if value is not None and (not isinstance(value, types) or (types is _NUMBER and isinstance(value, bool))):
            return f"$.{name}: expected {expected} or null, got {shown(value)}"
    if type(get("source_id")) is bool:
        return f"$.source_id: expected a string or null, got {shown(get('source_id'))}"
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
