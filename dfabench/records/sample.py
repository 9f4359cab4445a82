"""The per-sample record (one line of ``samples-<TASK>.jsonl``) and a leaderboard entry's ``entry.json``."""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterable, Iterator
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
    "mask_source": Scalar("string", "null", enum=("model", "coordinates", "regions:landmarks", "regions:face",
                                                  "regions:layout", "none"),
                          description="FL: how the predicted mask was obtained (dfabench.masks); absent in older "
                                      "records"),
    "mask_derivation": AnyValue(description="FL: how a mask was derived from the answer's text (dfabench.masks): "
                                            "method identity, regions, shapes, face frame, problem"),
}, required=("id",), description="one line of samples-<TASK>.jsonl (see dfabench.store)")

_NUMBER = (int, float)
#: the fast check of the fields scoring relies on: field -> the Python types it may have (None always allowed)
_SAMPLE_TYPES: tuple[tuple[str, tuple[type, ...], str], ...] = (
    ("task", (str,), "a string"), ("label", (str,), "a string"), ("category", (str,), "a string"),
    ("technique", (str,), "a string"), ("source_id", (str, int), "a string"), ("prompt_hash", (str,), "a string"),
    ("response", (str,), "a string"), ("parsed", (str, dict), "a string or an object"),
    ("reference", (str, dict, list), "a string, a list or an object"), ("score", _NUMBER, "a number"),
    ("category_scores", (dict,), "an object"), ("unparsed", (bool,), "a boolean"), ("error", (str,), "a string"),
    ("parsed_by", (str,), "a string"), ("mask_source", (str,), "a string"),
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


# --------------------------------------------------------------------------- compact columns of a per-sample log


def _value_key(value: Any) -> Any:
    """A dictionary key that tells values apart as JSON does (1, 1.0 and true are three values)."""
    kind = type(value)
    if value is None or kind is str:
        return value
    if kind is bool:
        return ("b", value)
    if kind is int:
        return ("i", value)
    if kind is float:
        return ("f", repr(value))
    if kind is dict or kind is list:
        try:
            return ("j", json.dumps(value, ensure_ascii=False, allow_nan=True))
        except (TypeError, ValueError):
            pass
    return ("o", id(value))  # anything else (an in-memory record's own object): itself (kept alive in values)


class CodedColumn:
    """One field of every sample as ``record.get(field)``, stored as a code per sample into the list of the
    distinct values (in order of first appearance): a few bytes per sample for the small vocabularies of
    labels, categories, techniques, parsed answers and error messages."""

    __slots__ = ("_codes", "_index", "values")

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[Any, int] = {}
        self._codes = array("b")  # one byte a sample while there are at most 128 distinct values, then 2, then 4

    def append(self, value: Any) -> None:
        key = value if value is None or type(value) is str else _value_key(value)
        code = self._index.get(key)
        if code is None:
            code = self._index[key] = len(self.values)
            self.values.append(value)
            if code in (1 << 7, 1 << 15):
                self._codes = array("h" if code == 1 << 7 else "i", self._codes)
        self._codes.append(code)

    def __len__(self) -> int:
        return len(self._codes)

    def __getitem__(self, row: int) -> Any:
        return self.values[self._codes[row]]

    @property
    def codes(self):
        """The codes, as a numpy integer array (a view: no copy)."""
        import numpy as np

        dtype = {"b": np.int8, "h": np.int16, "i": np.int32}[self._codes.typecode]
        return np.frombuffer(self._codes, dtype=dtype) if len(self._codes) else np.zeros(0, dtype=np.int32)

    def table(self, function) -> Any:
        """``function(value)`` for each distinct value, as a numpy array indexed by code."""
        import numpy as np

        return np.array([function(v) for v in self.values] or [function(None)])

    def decoded(self) -> list[Any]:
        """Every sample's value, in order."""
        values = self.values
        return [values[code] for code in self._codes]

    def rows_where(self, function) -> Any:
        """A boolean array: ``function(value)`` for each sample's value."""
        return self.table(function)[self.codes] if len(self) else self.table(function)[:0]

    def first_row(self, function) -> int | None:
        """The first sample whose value satisfies ``function``, or None."""
        import numpy as np

        hits = np.flatnonzero(self.rows_where(function))
        return int(hits[0]) if hits.size else None


class StringColumn:
    """Strings (the sample ids) packed as UTF-8 into one buffer: about their length in bytes each."""

    __slots__ = ("_blob", "_ends")

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends = array("q")

    def append(self, text: str) -> None:
        self._blob += text.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._blob))

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, row: int) -> str:
        if row < 0:
            row += len(self._ends)
        start = self._ends[row - 1] if row > 0 else 0
        return self._blob[start:self._ends[row]].decode("utf-8", "surrogatepass")

    def __iter__(self) -> Iterator[str]:
        blob, start = self._blob, 0
        for end in self._ends:
            yield blob[start:end].decode("utf-8", "surrogatepass")
            start = end


#: the fields kept as :class:`CodedColumn` (``record.get(field)`` of every sample)
CODED_FIELDS = ("task", "label", "category", "technique", "reference", "parsed", "unparsed", "error",
                "model_fingerprint", "judge", "source_id")


def finite_score(value: Any) -> float | None:
    """A sample's ``score`` as a finite float, or None (no score, not a number, NaN or infinite).
    Raises OverflowError for an integer too large for a float."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class SampleColumns:
    """What scoring and verifying read of a per-sample log, one compact column per field, built in one pass
    (:meth:`add` per record): the sample ids (:class:`StringColumn`), the fields of :data:`CODED_FIELDS`
    (:class:`CodedColumn`), ``score`` as finite floats (NaN: none), and the bootstrap cluster of each sample
    (``source_id``, the sample id where it is missing) as codes in order of first appearance — what
    :func:`dfabench.metrics.statistics.factorize_clusters` gives. About 60 bytes a sample, plus the distinct
    values (the distinct ``source_id`` among them).

    Built from a log (:meth:`dfabench.store.RunFolder.sample_log`) or from in-memory records
    (:meth:`from_records`, ``packed_ids=False``: the ids are kept as they are)."""

    def __init__(self, *, packed_ids: bool = True) -> None:
        self.n = 0
        self.ids: Any = StringColumn() if packed_ids else []
        self.fields: dict[str, CodedColumn] = {name: CodedColumn() for name in CODED_FIELDS}
        self._score = array("d")
        #: the samples whose score is an integer too large for a float (float() raises)
        self.score_overflows: list[int] = []
        self._clusters = array("q")
        self._cluster_index: dict[Any, int] = {}
        self._n_clusters = 0
        self._id_hashes = array("q")

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> SampleColumns:
        columns = cls(packed_ids=False)
        for record in records:
            columns.add(record)
        return columns

    def add(self, record: dict[str, Any]) -> None:
        get = record.get
        sample_id = get("id")
        self.ids.append(sample_id)
        for name, column in self.fields.items():
            column.append(get(name))
        try:
            score = finite_score(get("score"))
        except OverflowError:
            score = None
            self.score_overflows.append(self.n)
        self._score.append(math.nan if score is None else score)
        source = get("source_id")
        key = source if source is not None else sample_id
        code = self._cluster_index.get(key) if key is not None else None
        if code is None:
            code = self._n_clusters
            self._n_clusters += 1
            if key is not None:  # no id at all (an in-memory record): a cluster of its own, as factorize_clusters
                self._cluster_index[key] = code
        self._clusters.append(code)
        self._id_hashes.append(hash(sample_id) if isinstance(sample_id, str) else 0)
        self.n += 1

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, name: str) -> CodedColumn:
        return self.fields[name]

    @property
    def scores(self):
        """``score`` of each sample as a float64 array; NaN where there is no finite score."""
        import numpy as np

        return np.frombuffer(self._score, dtype=np.float64) if self.n else np.zeros(0)

    @property
    def clusters(self):
        """The bootstrap clusters, a :class:`dfabench.metrics.statistics.Clusters`."""
        import numpy as np

        from dfabench.metrics.statistics import Clusters

        codes = np.frombuffer(self._clusters, dtype=np.int64) if self.n else np.zeros(0, dtype=np.int64)
        return Clusters(codes, self._n_clusters)

    def truthy(self, name: str):
        """Whether ``record.get(name)`` is true, per sample (a boolean array)."""
        return self.fields[name].rows_where(bool)

    def duplicate_ids(self) -> list[str]:
        """The ids logged more than once, sorted (exact: equal hashes are compared)."""
        import numpy as np

        if self.n < 2:
            return []
        hashes = np.frombuffer(self._id_hashes, dtype=np.int64)
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        same = np.flatnonzero(ordered[1:] == ordered[:-1])
        if not same.size:
            return []
        candidates = np.unique(np.concatenate([order[same], order[same + 1]]))
        counts: dict[Any, int] = {}
        for row in candidates.tolist():
            key = self.ids[row]
            counts[key] = counts.get(key, 0) + 1
        return sorted(str(key) for key, n in counts.items() if n > 1)
