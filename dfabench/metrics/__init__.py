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
    #: sample id -> {metric name: value}, written into each sample's ``metrics``
    per_sample: dict[str, dict[str, Any]] = field(default_factory=dict)

    def merge(self, other: MetricOutput) -> None:
        self.metrics.update(other.metrics)
        self.breakdowns.update(other.breakdowns)
        for sample_id, values in other.per_sample.items():
            self.per_sample.setdefault(sample_id, {}).update(values)
