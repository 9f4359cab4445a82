"""Statistical ties: ranks from a paired cluster bootstrap over the samples every ranked entry answered.

Entries ranked together in a task answered exactly the same samples (the leaderboard checks it: the same
selection hash), so their numbers can be compared **paired**: each bootstrap replicate draws the
benchmark's clusters (``source_id``; the sample id where it is missing) with replacement, once, and every
entry's ranking metric is computed on that same resample. Entry A is *significantly better* than B when
the 95% percentile interval of the replicated difference A - B lies entirely on A's side of zero (replicates
where the difference is undefined are dropped; when more than half are, nothing is significant). As on
LMArena, **rank = 1 + the number of entries significantly better**: entries whose difference is not
significant share a rank.

A ranking metric takes part when it is a function of per-sample sums (:data:`_STATISTICS`): accuracy and
the mean of any per-sample metric (CIDEr-D, ROUGE-L, METEOR, IoU, judge score, ...) as [value, 1]; balanced
accuracy from per-class hits and counts; macro-F1 from per-category tp, fp and support. The statistic on
the unresampled samples must give the entry's recorded value; where it does not (a corpus statistic
such as BLEU, which is not a mean of the per-sample values, or AUC, which has none), the task is ranked by
its point values alone and the task's ``ranking`` record says so and why.

Determinism: the draws are seeded; per-sample values are rounded to a multiple of ``2**-k`` chosen so that
every sum over a resample is an exact binary number, so the matrix products (BLAS) give the same bits in
any order, on any machine.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dfabench.vocab import CATEGORIES

METHOD = "paired cluster bootstrap"
POINT = "point estimate"
#: replicates drawn at once (bounds the memory of the count matrix: chunk x clusters floats)
_CHUNK = 100
#: how close the statistic on all samples must come to the recorded value for the bootstrap to be used
_AGREEMENT = 1e-6


@dataclass(frozen=True)
class TieSettings:
    replicates: int = 1000
    confidence: float = 0.95
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        return {"method": METHOD, "cluster": "source_id (the sample id where missing)",
                "replicates": self.replicates, "confidence": self.confidence, "seed": self.seed,
                "rule": "rank = 1 + the number of entries significantly better (the confidence interval of the "
                        "paired difference excludes 0); entries not significantly different share a rank"}


@dataclass(frozen=True)
class _Statistic:
    """A metric as a function of per-sample sums: ``columns(sample)`` -> the sample's row,
    ``value(sums)`` -> the metric for each row of summed columns (numpy arrays)."""

    width: int
    columns: Callable[[dict[str, Any]], list[float]]
    value: Callable[[Any], Any]


def _per_sample(name: str) -> Callable[[dict[str, Any]], list[float]]:
    def columns(sample: dict[str, Any]) -> list[float]:
        value = (sample.get("metrics") or {}).get(name)
        if isinstance(value, bool):
            return [float(value), 1.0]
        if isinstance(value, (int, float)) and math.isfinite(value):
            return [float(value), 1.0]
        return [0.0, 0.0]

    return columns


def _ratio(sums: Any) -> Any:
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):  # a replicate without any sample: undefined
        return sums[:, 0] / sums[:, 1]


def _prediction(sample: dict[str, Any], vocabulary: tuple[str, ...]) -> str | None:
    """As the classification metrics read it: a failed or unparsed answer is wrong (no prediction)."""
    if sample.get("error") or sample.get("unparsed"):
        return None
    parsed = sample.get("parsed")
    return parsed if parsed in vocabulary else None


def _detection_columns(sample: dict[str, Any]) -> list[float]:
    correct = bool((sample.get("metrics") or {}).get("correct"))
    fake = sample.get("reference") == "fake"
    return [float(correct and not fake), float(not fake), float(correct and fake), float(fake)]


def _balanced_accuracy(sums: Any) -> Any:
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):  # a replicate without one of the classes: undefined
        return 0.5 * (sums[:, 0] / sums[:, 1] + sums[:, 2] / sums[:, 3])


def _category_columns(sample: dict[str, Any]) -> list[float]:
    reference = sample.get("reference")
    if reference not in CATEGORIES:
        return [0.0] * (3 * len(CATEGORIES))
    predicted = _prediction(sample, CATEGORIES)
    row = []
    for category in CATEGORIES:
        is_ref, is_pred = reference == category, predicted == category
        row += [float(is_ref and is_pred), float(is_pred and not is_ref), float(is_ref)]
    return row


def _macro_f1(sums: Any) -> Any:
    import numpy as np

    tp, fp, support = sums[:, 0::3], sums[:, 1::3], sums[:, 2::3]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * tp / (tp + fp + support)
        present = support > 0
        return np.where(present, f1, 0.0).sum(axis=1) / present.sum(axis=1)


_STATISTICS: dict[str, _Statistic] = {
    "accuracy": _Statistic(2, _per_sample("correct"), _ratio),
    "balanced_accuracy": _Statistic(4, _detection_columns, _balanced_accuracy),
    "macro_f1": _Statistic(3 * len(CATEGORIES), _category_columns, _macro_f1),
}


def statistic_for(metric: str) -> _Statistic:
    """The sum form of ``metric``: a known one, else the mean of the per-sample value of that name."""
    return _STATISTICS.get(metric) or _Statistic(2, _per_sample(metric), _ratio)


@dataclass
class Contender:
    """One entry of a ranked task: its name, recorded value, and its per-sample log (an iterable of records).
    ``rows``: :func:`sample_rows` of that log for some metrics, made beforehand (by the build's worker that
    verified the entry); a metric it lacks is read from ``samples``."""

    name: str
    value: float
    samples: Callable[[], Any]
    rows: dict[str, SampleRows] | None = None


@dataclass(frozen=True)
class SampleRows:
    """A log's samples as one statistic reads them: their number, the SHA-256 of their sorted ids, the cluster
    of each (in id order) and the statistic's columns (one row per sample, in id order)."""

    n: int
    ids_sha256: str
    clusters: tuple[Any, ...]
    matrix: Any


def sample_rows(metric: str, samples: Any) -> SampleRows:
    """The rows of ``metric``'s statistic over the records ``samples`` (a later record of an id replaces an
    earlier one)."""
    import hashlib

    import numpy as np

    statistic = statistic_for(metric)
    by_id: dict[str, tuple[Any, list[float]]] = {}
    interned: dict[Any, Any] = {}  # one object per cluster: the rows travel between processes small
    for sample in samples:
        source = sample.get("source_id")
        cluster = source if source is not None else f"id:{sample['id']}"
        by_id[str(sample["id"])] = (interned.setdefault(cluster, cluster), statistic.columns(sample))
    ids = sorted(by_id)
    matrix = np.array([by_id[i][1] for i in ids], dtype=float).reshape(len(ids), statistic.width)
    return SampleRows(len(ids), hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest(),
                      tuple(by_id[i][0] for i in ids), matrix)


def rank_task(metric: str, contenders: list[Contender], lower_is_better: bool,
              settings: TieSettings) -> tuple[dict[str, int], dict[str, Any]]:
    """``({name: rank}, ranking record)`` for the entries of one task, ranked by ``metric``."""
    if not contenders:
        return {}, {"metric": metric, "method": POINT}
    try:
        return _bootstrap_ranks(metric, contenders, lower_is_better, settings)
    except _NoPairedTest as exc:
        return _point_ranks(contenders, lower_is_better), {"metric": metric, "method": POINT, "reason": str(exc)}


class _NoPairedTest(Exception):
    """The metric cannot be bootstrapped from the logs; the message says why."""


def _point_ranks(contenders: list[Contender], lower_is_better: bool) -> dict[str, int]:
    sign = -1.0 if lower_is_better else 1.0
    return {c.name: 1 + sum(sign * (o.value - c.value) > 0 for o in contenders) for c in contenders}


def _rows(metric: str, contenders: list[Contender]) -> tuple[int, list[Any], Any]:
    """``(number of samples, cluster ids, matrix)``: one row per sample (sorted by id), the contenders' columns
    side by side."""
    import numpy as np

    first: SampleRows | None = None
    blocks = []
    for contender in contenders:
        rows = (contender.rows or {}).get(metric) or sample_rows(metric, contender.samples())
        if first is None:
            first = rows
        elif rows.ids_sha256 != first.ids_sha256:
            raise _NoPairedTest(f"{contender.name} answered other samples than {contenders[0].name}")
        blocks.append(rows.matrix)
    if first is None:
        return 0, [], np.zeros((0, 0))
    return first.n, list(first.clusters), np.concatenate(blocks, axis=1)


def _exact_scale(per_cluster: Any) -> Any:
    """Round the per-cluster sums to a multiple of 2**-k such that any resampled sum is exact."""
    import numpy as np

    n_clusters = per_cluster.shape[0]
    bound = n_clusters * float(np.abs(per_cluster).max(initial=0.0)) + 1.0
    k = min(40, 51 - math.ceil(math.log2(bound)))
    return np.round(per_cluster * 2.0**k) / 2.0**k


def _bootstrap_ranks(metric: str, contenders: list[Contender], lower_is_better: bool,
                     settings: TieSettings) -> tuple[dict[str, int], dict[str, Any]]:
    import numpy as np

    from dfabench.metrics.statistics import factorize_clusters

    statistic = statistic_for(metric)
    n_samples, clusters, matrix = _rows(metric, contenders)
    if not n_samples:
        raise _NoPairedTest("no samples")
    codes, n_clusters = factorize_clusters(clusters)
    per_cluster = np.stack([np.bincount(codes, weights=matrix[:, j], minlength=n_clusters)
                            for j in range(matrix.shape[1])], axis=1)
    per_cluster = _exact_scale(per_cluster)
    width = statistic.width
    point = [statistic.value(per_cluster[:, i * width:(i + 1) * width].sum(axis=0, keepdims=True))[0]
             for i in range(len(contenders))]
    for contender, value in zip(contenders, point, strict=True):
        if not (math.isfinite(value) and abs(value - contender.value) <= _AGREEMENT):
            raise _NoPairedTest(f"{metric} is not a function of per-sample sums in the logs (on all samples it gives "
                                f"{value:.6g}, the entry {contender.name} records {contender.value:.6g})")
    rng = np.random.default_rng(settings.seed)
    replicated = []
    for start in range(0, settings.replicates, _CHUNK):
        size = min(_CHUNK, settings.replicates - start)
        draws = rng.integers(0, n_clusters, size=(size, n_clusters))
        counts = np.stack([np.bincount(row, minlength=n_clusters) for row in draws]).astype(float)
        sums = counts @ per_cluster
        replicated.append(np.stack([statistic.value(sums[:, i * width:(i + 1) * width])
                                    for i in range(len(contenders))], axis=1))
    values = np.concatenate(replicated)  # (replicates, contenders)
    if lower_is_better:
        values = -values
    better = _significantly_better(values, settings.confidence)
    ranks = {c.name: 1 + int(better[:, j].sum()) for j, c in enumerate(contenders)}
    return ranks, {"metric": metric, "method": METHOD, "n_samples": n_samples, "n_clusters": n_clusters}


def _significantly_better(values: Any, confidence: float) -> Any:
    """``better[i, j]``: contender i is significantly better than j (``values``: higher is better)."""
    import numpy as np

    m = values.shape[1]
    better = np.zeros((m, m), dtype=bool)
    low_q = 100.0 * (1.0 - confidence) / 2.0
    for j in range(m):
        diff = values - values[:, [j]]
        finite = np.isfinite(diff)
        enough = finite.sum(axis=0) * 2 >= diff.shape[0]
        with warnings.catch_warnings():  # an all-undefined column is "not enough" below
            warnings.simplefilter("ignore", RuntimeWarning)
            low = np.nanpercentile(np.where(finite, diff, np.nan), low_q, axis=0)
        better[:, j] = enough & (low > 0)
        better[j, j] = False
    return better
