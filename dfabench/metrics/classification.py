"""The DF-D and DF-C classification metric providers: threshold, ranking and category metrics.

The array functions they are built on live in two modules and are re-exported here (each returns ``None``
when the metric is undefined):

- :mod:`dfabench.metrics.label_metrics`: :func:`accuracy`, :func:`balanced_accuracy`, :func:`macro_f1`,
  :func:`confusion_matrix` on label sequences, where a prediction of ``None`` (unparsed or failed) is wrong
  and belongs to no class;
- :mod:`dfabench.metrics.ranking`: :func:`roc_auc`, :func:`average_precision`, :func:`eer` on 0/1 labels and
  scores, defined as DeepfakeBench computes them (see that module).

Providers (registered by :mod:`dfabench.builtin`): :func:`detection_metrics` ("detection"),
:func:`ranking_metrics` ("ranking") and :func:`category_metrics` ("classification"). Threshold
metrics count failed and unparsed samples as wrong (their ``n`` is every sample with a reference);
ranking metrics use the samples that have a score (``n`` says how many). Confidence intervals come
from the cluster bootstrap over ``source_id`` (the sample id where it is missing), seeded with
``context.seed`` (:mod:`dfabench.metrics.statistics`). The ranking bootstrap computes AUC, AP and EER
from weighted score histograms (a few array passes per replicate, no sorting); so that scoring stays a
matter of seconds it uses at most :data:`RANKING_BOOTSTRAP_WORK` sample-replicates in total (at least
:data:`RANKING_MIN_REPLICATES` replicates): all 1,000 replicates up to 100,000 scored samples,
fewer beyond. The number used is reported in the ``ranking`` breakdown.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dfabench.errors import InputError
from dfabench.metrics import MetricContext, MetricOutput, MetricResult
from dfabench.metrics.label_metrics import accuracy, balanced_accuracy, confusion_matrix, macro_f1
from dfabench.metrics.ranking import ScoreLevels as _ScoreLevels
from dfabench.metrics.ranking import average_precision, eer, roc_auc
from dfabench.metrics.statistics import (
    bootstrap_mean,
    iter_sample_weights,
    percentile_interval,
    resampled_cluster_sums,
)
from dfabench.vocab import CATEGORIES, LABELS

__all__ = [
    "CATEGORIES",
    "DETECTION_LABELS",
    "RANKING_BOOTSTRAP_WORK",
    "RANKING_MIN_REPLICATES",
    "UNPARSED_COLUMN",
    "accuracy",
    "average_precision",
    "balanced_accuracy",
    "category_metrics",
    "confusion_matrix",
    "detection_metrics",
    "eer",
    "macro_f1",
    "ranking_metrics",
    "ranking_replicates",
    "roc_auc",
]

DETECTION_LABELS = LABELS
UNPARSED_COLUMN = "unparsed/failed"
#: the ranking bootstrap evaluates at most this many (sample x replicate) pairs
RANKING_BOOTSTRAP_WORK = 100_000_000
#: ... but never fewer replicates than this (or ``n_boot`` if smaller)
RANKING_MIN_REPLICATES = 200

NO_SCORES = "the model gave no scores"
ONE_CLASS = "only one class present"
NO_SAMPLES = "no samples"


def _labels_array(values: Sequence[Any]) -> np.ndarray:
    return np.array([None if v is None else v for v in values], dtype=object)


def _samples_file(context: MetricContext) -> str:
    name = f"samples-{context.task}.jsonl"
    return str(Path(context.run_dir) / name) if context.run_dir else name


def _detection_reference(record: dict[str, Any], context: MetricContext) -> str:
    """A DF-D record's reference label; a log whose reference is not real/fake is refused."""
    reference = record.get("reference")
    if reference not in DETECTION_LABELS:
        raise InputError(_samples_file(context), f"reference must be 'real' or 'fake', not {reference!r}",
                         record=f"sample {record.get('id')!r}")
    return reference


def _cluster(record: dict[str, Any]) -> Hashable | None:
    source = record.get("source_id")
    return source if source is not None else record.get("id")


def _prediction(record: dict[str, Any], vocabulary: Sequence[str]) -> str | None:
    """The parsed answer if the sample neither failed nor went unparsed, else ``None`` (wrong)."""
    if record.get("error") or record.get("unparsed"):
        return None
    parsed = record.get("parsed")
    return parsed if parsed in vocabulary else None


def _mean_result(correct: np.ndarray, clusters: list[Hashable | None], context: MetricContext) -> MetricResult:
    if correct.size == 0:
        return MetricResult.undefined(NO_SAMPLES)
    low, high = bootstrap_mean(correct.astype(float), clusters, n_boot=context.n_boot, seed=context.seed,
                               confidence=context.confidence)
    return MetricResult(float(correct.mean()), low, high, n=int(correct.size))


def _recall_sums_result(columns: np.ndarray, clusters: list[Hashable | None], context: MetricContext,
                        point: float) -> MetricResult:
    """Balanced accuracy with its interval; ``columns`` = per sample [correct & class k, class k] for each k."""
    sums = resampled_cluster_sums(columns, clusters, n_boot=context.n_boot, seed=context.seed)
    hits, totals = sums[:, 0::2], sums[:, 1::2]
    with np.errstate(invalid="ignore", divide="ignore"):
        replicates = np.mean(hits / totals, axis=1)  # NaN where a class is missing from the replicate
    low, high = percentile_interval(replicates, context.confidence)
    return MetricResult(point, low, high, n=int(columns.shape[0]))


def _per_technique(techniques: list[Any], correct: np.ndarray) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[int]] = {}
    for i, technique in enumerate(techniques):
        if technique is not None:
            groups.setdefault(str(technique), []).append(i)
    return {name: {"value": float(correct[idx].mean()), "n": len(idx)} for name, idx in sorted(groups.items())}


def _confusion_breakdown(refs: Sequence[str], preds: Sequence[str | None], rows: Sequence[str],
                         columns: Sequence[str]) -> dict[str, Any]:
    full = confusion_matrix(refs, preds, list(columns))
    keep = [list(columns).index(r) for r in rows]
    return {"labels": list(rows), "columns": [*columns, UNPARSED_COLUMN], "matrix": full[keep].tolist()}


def detection_metrics(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """DF-D threshold metrics: ``accuracy``, ``balanced_accuracy`` and per-category accuracy
    (``accuracy_real``, ``accuracy_FS`` .. ``accuracy_EFS``, for the categories present), with the
    ``per_technique`` and ``confusion_matrix`` breakdowns. Failed and unparsed samples count as wrong.
    """
    output = MetricOutput()
    refs: list[str] = []
    preds: list[str | None] = []
    for record in records:
        reference = _detection_reference(record, context)
        refs.append(reference)
        preds.append(_prediction(record, DETECTION_LABELS))
    if not records:
        output.metrics["accuracy"] = MetricResult.undefined(NO_SAMPLES)
        output.metrics["balanced_accuracy"] = MetricResult.undefined(NO_SAMPLES)
        return output
    clusters = [_cluster(r) for r in records]
    correct = np.array([p == t for t, p in zip(refs, preds, strict=True)], dtype=bool)
    is_fake = np.array([t == "fake" for t in refs], dtype=bool)

    output.metrics["accuracy"] = _mean_result(correct, clusters, context)
    point = balanced_accuracy(refs, preds, DETECTION_LABELS)
    if point is None:
        output.metrics["balanced_accuracy"] = MetricResult.undefined(ONE_CLASS, n=len(refs))
    else:
        columns = np.stack([correct & ~is_fake, ~is_fake, correct & is_fake, is_fake], axis=1).astype(float)
        output.metrics["balanced_accuracy"] = _recall_sums_result(columns, clusters, context, point)

    groups = {"real": ~is_fake}
    categories = np.array([r.get("category") for r in records], dtype=object)
    for category in CATEGORIES:
        groups[category] = is_fake & (categories == category)
    for name, mask in groups.items():
        if mask.any():
            subset = [c for c, m in zip(clusters, mask, strict=True) if m]
            output.metrics[f"accuracy_{name}"] = _mean_result(correct[mask], subset, context)

    output.breakdowns["per_technique"] = _per_technique([r.get("technique") for r in records], correct)
    rows = [label for label in DETECTION_LABELS if label in set(refs)]
    output.breakdowns["confusion_matrix"] = _confusion_breakdown(refs, preds, rows, DETECTION_LABELS)
    output.per_sample = {str(r["id"]): {"correct": bool(c)} for r, c in zip(records, correct, strict=True)}
    return output


def _finite_score(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def ranking_replicates(n_scored: int, n_boot: int) -> int:
    """How many bootstrap replicates the ranking metrics use for ``n_scored`` samples (see module doc)."""
    if n_scored <= 0:
        return 0
    budget = max(RANKING_MIN_REPLICATES, RANKING_BOOTSTRAP_WORK // n_scored)
    return int(min(n_boot, budget))


def ranking_metrics(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """DF-D ranking metrics from the probability of fake (``score``): ``auc``, ``ap``, ``eer``.

    Computed on the samples that have a finite score and no error (``n``); a sample without a score is
    left out, never given one. EER is undefined when every score is the same. Undefined with
    "the model gave no scores" when none has a score, with
    "only one class present" when the scored samples are all real or all fake.
    """
    output = MetricOutput()
    y: list[bool] = []
    scores: list[float] = []
    clusters: list[Hashable | None] = []
    for record in records:
        reference = _detection_reference(record, context)
        score = None if record.get("error") else _finite_score(record.get("score"))
        if score is None:
            continue
        y.append(reference == "fake")
        scores.append(score)
        clusters.append(_cluster(record))
    n = len(scores)
    names = ("auc", "ap", "eer")
    info: dict[str, Any] = {"n_scored": n, "n_without_score": len(records) - n, "replicates": 0}
    output.breakdowns["ranking"] = info
    if n == 0:
        for name in names:
            output.metrics[name] = MetricResult.undefined(NO_SCORES)
        return output
    levels = _ScoreLevels(np.array(y, dtype=bool), np.array(scores, dtype=float))
    point = levels.metrics()
    if point is None:
        for name in names:
            output.metrics[name] = MetricResult.undefined(ONE_CLASS, n=n)
        return output
    replicates = ranking_replicates(n, context.n_boot)
    info["replicates"] = replicates
    values = np.full((replicates, 3), np.nan)
    in_level_order = [clusters[i] for i in levels.order]
    for b, weights in enumerate(iter_sample_weights(in_level_order, n_boot=replicates, seed=context.seed)):
        result = levels.metrics(weights, in_level_order=True)
        if result is not None:
            values[b] = result
    for j, name in enumerate(names):
        low, high = percentile_interval(values[:, j], context.confidence)
        output.metrics[name] = MetricResult(point[j], low, high, n=n)
    if min(scores) == max(scores):
        # One score for every sample: the ROC curve is the diagonal's two ends, and the rule "FPR at
        # the point minimising |FNR - FPR|" would report a perfect 0.
        output.metrics["eer"] = MetricResult.undefined("every sample has the same score", n=n)
    return output


def category_metrics(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """DF-C metrics on fake samples: ``accuracy``, ``macro_f1`` (over the categories present in the
    references), per-category accuracy ``accuracy_FS`` .. ``accuracy_EFS`` (the recall of each category
    present), with the ``confusion_matrix`` and ``per_technique`` breakdowns. Failed and unparsed samples
    count as wrong. Samples without a category reference (a fake of unknown kind, a real face) are
    left out and counted in the ``classification`` breakdown.
    """
    output = MetricOutput()
    used: list[dict[str, Any]] = []
    for record in records:
        reference = record.get("reference")
        if reference is None or reference == "real":
            continue
        if reference not in CATEGORIES:
            raise InputError(_samples_file(context),
                             f"reference must be one of {', '.join(CATEGORIES)}, not {reference!r}",
                             record=f"sample {record.get('id')!r}")
        used.append(record)
    output.breakdowns["classification"] = {"n_without_reference": len(records) - len(used)}
    if not used:
        output.metrics["accuracy"] = MetricResult.undefined(NO_SAMPLES)
        output.metrics["macro_f1"] = MetricResult.undefined(NO_SAMPLES)
        return output
    refs = [r["reference"] for r in used]
    preds = [_prediction(r, CATEGORIES) for r in used]
    clusters = [_cluster(r) for r in used]
    correct = np.array([p == t for t, p in zip(refs, preds, strict=True)], dtype=bool)
    output.metrics["accuracy"] = _mean_result(correct, clusters, context)

    present = [c for c in CATEGORIES if c in set(refs)]
    point = macro_f1(refs, preds, present)
    # per sample and class: tp, fp and reference-support indicators; F1 = 2tp / (tp + fp + support)
    ref_arr, pred_arr = _labels_array(refs), _labels_array(preds)
    columns = []
    for category in present:
        is_ref, is_pred = ref_arr == category, pred_arr == category
        columns += [is_ref & is_pred, is_pred & ~is_ref, is_ref]
    sums = resampled_cluster_sums(np.stack(columns, axis=1).astype(float), clusters,
                                  n_boot=context.n_boot, seed=context.seed)
    tp, fp, support = sums[:, 0::3], sums[:, 1::3], sums[:, 2::3]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * tp / (tp + fp + support)
    # as for the point value, the mean runs over the classes present in the replicate's references
    present_in_replicate = support > 0
    replicates = np.where(present_in_replicate, f1, 0.0).sum(axis=1) / present_in_replicate.sum(axis=1)
    low, high = percentile_interval(replicates, context.confidence)
    output.metrics["macro_f1"] = MetricResult(point, low, high, n=len(refs))

    for category in present:
        mask = ref_arr == category
        subset = [c for c, m in zip(clusters, mask, strict=True) if m]
        output.metrics[f"accuracy_{category}"] = _mean_result(correct[mask], subset, context)

    output.breakdowns["confusion_matrix"] = _confusion_breakdown(refs, preds, present, CATEGORIES)
    output.breakdowns["per_technique"] = _per_technique([r.get("technique") for r in used], correct)
    output.per_sample = {str(r["id"]): {"correct": bool(c)} for r, c in zip(used, correct, strict=True)}
    return output
