"""Metrics: the interface every metric provider keeps.

A *metric provider* is registered under a name (``register(name, compute, ...)`` in the
``dfabench_register_metrics`` hook) and listed by name in a task spec's ``metrics:``.
It is called as ``compute(records, context) -> MetricOutput`` where ``records`` are the
per-sample log records of one task (the lines of ``samples-<task>.jsonl``, see
:mod:`dfabench.store`) and ``context`` a :class:`MetricContext`. One provider may give
several metrics (``text`` gives ``bleu_1`` .. ``bleu_4``, ``rouge_l``, ``cider``).

Rules:
- a metric that cannot be computed (one class only, a missing resource) has ``value=None``
  and a ``reason``; it is never reported as 0;
- failed samples (``record["error"]``) and unparsed answers are counted by the caller; a
  provider documents how it treats them (threshold metrics count them as wrong, ranking
  metrics use the samples that have a score and say so through ``n``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MetricResult:
    """One number with its confidence interval, or ``value=None`` with the ``reason``."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    reason: str | None = None
    #: the metric could not be computed *here* because a resource is missing (the reason says what
    #: to install): ``dfabench verify`` then reports "cannot check here", not "does not hold"
    unavailable: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.unavailable:
            out["unavailable"] = True
        return out

    @classmethod
    def undefined(cls, reason: str, n: int = 0, *, unavailable: bool = False) -> MetricResult:
        return cls(value=None, n=n, reason=reason, unavailable=unavailable)


@dataclass
class MetricContext:
    """What a provider may use besides the records."""

    task: str
    seed: int = 0
    n_boot: int = 1000
    confidence: float = 0.95
    options: dict[str, Any] = field(default_factory=dict)
    #: the benchmark folder when it is at hand (for masks); ``None`` when re-scoring without it
    bench_root: str | None = None
    #: the run folder (for files the run wrote, e.g. predicted masks)
    run_dir: str | None = None


@dataclass
class MetricOutput:
    metrics: dict[str, MetricResult] = field(default_factory=dict)
    #: tables that are not one number: per-technique accuracy, confusion matrix, ...
    breakdowns: dict[str, Any] = field(default_factory=dict)
    #: sample id -> {metric name: value}, written into each sample's ``metrics`` (a dict, or a
    #: :class:`RowValues` from a provider that scored a whole log as columns)
    per_sample: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    def merge(self, other: MetricOutput) -> None:
        self.metrics.update(other.metrics)
        self.breakdowns.update(other.breakdowns)
        if not isinstance(self.per_sample, dict):
            self.per_sample = dict(self.per_sample.items())
        for sample_id, values in other.per_sample.items():
            self.per_sample.setdefault(sample_id, {}).update(values)


class RowValues(Mapping):
    """Per-sample values given as columns: the sample at position ``rows[k]`` of the scored records (all of
    them, in order, when ``rows`` is None) gets ``{name: convert(values[k]) for each column}``.

    A mapping sample id -> values like a ``per_sample`` dict (built on first use by id), and
    :meth:`at_row` for the scorer, which writes a log line by line without a dict of a million ids."""

    def __init__(self, ids: Sequence[Any], columns: dict[str, Sequence[Any]], *, rows: Sequence[int] | None = None,
                 n_rows: int | None = None, convert=None):
        self.ids = ids
        self.columns = columns
        self.rows = rows
        self.convert = convert
        self._slot: Any = None
        if rows is not None:
            import numpy as np

            slot = np.full(len(ids) if n_rows is None else n_rows, -1, dtype=np.int64)
            slot[np.asarray(rows, dtype=np.int64)] = np.arange(len(rows))
            self._slot = slot
        self._by_id: dict[str, int] | None = None

    def _values(self, k: int) -> dict[str, Any]:
        convert = self.convert
        return {name: (convert(values[k]) if convert else values[k]) for name, values in self.columns.items()}

    def at_row(self, row: int) -> dict[str, Any] | None:
        """The values of the sample at position ``row`` of the scored records (None: it has none)."""
        if self._slot is None:
            return self._values(row)
        k = int(self._slot[row])
        return None if k < 0 else self._values(k)

    def _row_ids(self) -> Iterator[tuple[int, str]]:
        for k, row in enumerate(range(len(self.ids)) if self.rows is None else self.rows):
            yield k, str(self.ids[int(row)])

    def __getitem__(self, sample_id: str) -> dict[str, Any]:
        if self._by_id is None:
            self._by_id = {sample: k for k, sample in self._row_ids()}
        return self._values(self._by_id[sample_id])

    def __iter__(self) -> Iterator[str]:
        for _, sample in self._row_ids():
            yield sample

    def __len__(self) -> int:
        return len(self.ids) if self.rows is None else len(self.rows)

    def items(self):  # in row order, each id with its own row's values (a later duplicate id: once more)
        return ((sample, self._values(k)) for k, sample in self._row_ids())
