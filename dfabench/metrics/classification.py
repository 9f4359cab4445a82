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

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dfabench.errors import InputError
from dfabench.metrics import MetricContext, MetricOutput, MetricResult, RowValues
from dfabench.metrics.label_metrics import accuracy, balanced_accuracy, confusion_matrix, macro_f1
from dfabench.metrics.ranking import ScoreLevels as _ScoreLevels
from dfabench.metrics.ranking import average_precision, eer, roc_auc
from dfabench.metrics.statistics import (
    bootstrap_mean,
    iter_sample_weights,
    percentile_interval,
    resampled_cluster_sums,
)
from dfabench.records.sample import SampleColumns
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


def _columns(records: Sequence[dict[str, Any]]) -> tuple[SampleColumns, bool]:
    """The compact columns of ``records``: those of a log read as columns (:class:`dfabench.store.SampleLog`),
    else built from the records; and whether they came with the log (per-sample values are then given as
    :class:`RowValues`, not a dict of every id)."""
    columns = getattr(records, "columns", None)
    if isinstance(columns, SampleColumns):
        return columns, True
    return SampleColumns.from_records(records), False


def _refuse_references(columns: SampleColumns, context: MetricContext, allowed: Sequence[str],
                       skip=lambda reference: False) -> None:
    """The first sample (in log order) whose reference is neither skipped nor ``allowed`` is refused."""
    row = _first_bad_reference(columns, allowed, skip)
    if row is not None:
        _raise_reference(columns, context, allowed, row)


def _first_bad_reference(columns: SampleColumns, allowed: Sequence[str], skip=lambda reference: False) -> int | None:
    return columns["reference"].first_row(lambda v: not skip(v) and v not in allowed)


def _raise_reference(columns: SampleColumns, context: MetricContext, allowed: Sequence[str], row: int) -> None:
    reference = columns["reference"][row]
    expected = "'real' or 'fake'" if tuple(allowed) == tuple(DETECTION_LABELS) else f"one of {', '.join(allowed)}"
    raise InputError(_samples_file(context), f"reference must be {expected}, not {reference!r}",
                     record=f"sample {columns.ids[row]!r}")


def _label_index(column: Any, labels: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
    """Per sample, the position of its value in ``labels`` (-1: none of them)."""
    table = column.table(lambda v: labels.index(v) if isinstance(v, str) and v in labels else -1).astype(np.int64)
    codes = column.codes if rows is None else column.codes[rows]
    return table[codes]


def _prediction_index(columns: SampleColumns, labels: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
    """:func:`_prediction` of every sample as a position in ``labels`` (-1: wrong, it failed or went unparsed)."""
    parsed = _label_index(columns["parsed"], labels, rows)
    failed = columns.truthy("error") | columns.truthy("unparsed")
    if rows is not None:
        failed = failed[rows]
    return np.where(failed, -1, parsed)


def _class_counts(ref: np.ndarray, pred: np.ndarray, classes: Sequence[int]) -> tuple[np.ndarray, ...]:
    """``(tp, fp, support)`` per class position (floats), as :mod:`dfabench.metrics.label_metrics` counts them."""
    tp = np.array([np.count_nonzero((ref == k) & (pred == k)) for k in classes], dtype=float)
    fp = np.array([np.count_nonzero((ref != k) & (pred == k)) for k in classes], dtype=float)
    support = np.array([np.count_nonzero(ref == k) for k in classes], dtype=float)
    return tp, fp, support


def _technique_table(column: Any, correct: np.ndarray, rows: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """:func:`_per_technique` from the technique column (of the samples at ``rows``)."""
    codes = column.codes if rows is None else column.codes[rows]
    names: dict[str, list[int]] = {}
    for code, value in enumerate(column.values):
        if value is not None:
            names.setdefault(str(value), []).append(code)
    out = {}
    for name in sorted(names):
        mask = np.isin(codes, names[name])
        count = int(np.count_nonzero(mask))
        if count:
            out[name] = {"value": float(correct[mask].mean()), "n": count}
    return out


def _confusion_table(ref: np.ndarray, pred: np.ndarray, rows: Sequence[str], columns: Sequence[str]) -> dict[str, Any]:
    """:func:`_confusion_breakdown` from label positions (-1: unparsed/failed)."""
    width = len(columns) + 1
    cells = ref * width + np.where(pred >= 0, pred, len(columns))
    full = np.bincount(cells[ref >= 0], minlength=len(columns) * width).reshape(len(columns), width)
    keep = [list(columns).index(r) for r in rows]
    return {"labels": list(rows), "columns": [*columns, UNPARSED_COLUMN], "matrix": full[keep].tolist()}


def _per_sample_correct(columns: SampleColumns, from_log: bool, correct: np.ndarray,
                        rows: np.ndarray | None = None) -> Any:
    """``{"correct": bool}`` for each scored sample: a dict by id, or :class:`RowValues` for a log."""
    if from_log:
        return RowValues(columns.ids, {"correct": correct}, rows=rows, n_rows=columns.n, convert=bool)
    ids = columns.ids if rows is None else [columns.ids[int(i)] for i in rows]
    return {str(i): {"correct": bool(c)} for i, c in zip(ids, correct, strict=True)}


def detection_metrics(records: Sequence[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """DF-D threshold metrics: ``accuracy``, ``balanced_accuracy`` and per-category accuracy
    (``accuracy_real``, ``accuracy_FS`` .. ``accuracy_EFS``, for the categories present), with the
    ``per_technique`` and ``confusion_matrix`` breakdowns. Failed and unparsed samples count as wrong.

    ``records``: a list of per-sample records, or a log read as columns (:class:`dfabench.store.SampleLog`:
    the same numbers, from a few bytes a sample).
    """
    output = MetricOutput()
    columns, from_log = _columns(records)
    _refuse_references(columns, context, DETECTION_LABELS)
    if not columns.n:
        output.metrics["accuracy"] = MetricResult.undefined(NO_SAMPLES)
        output.metrics["balanced_accuracy"] = MetricResult.undefined(NO_SAMPLES)
        return output
    clusters = columns.clusters
    ref = _label_index(columns["reference"], DETECTION_LABELS)
    pred = _prediction_index(columns, DETECTION_LABELS)
    correct = (pred == ref) & (pred >= 0)
    is_fake = ref == DETECTION_LABELS.index("fake")

    output.metrics["accuracy"] = _mean_result(correct, clusters, context)
    present = [k for k in range(len(DETECTION_LABELS)) if np.any(ref == k)]
    if len(present) < 2:
        output.metrics["balanced_accuracy"] = MetricResult.undefined(ONE_CLASS, n=columns.n)
    else:
        tp, _, support = _class_counts(ref, pred, present)
        point = float(np.mean(tp / support))
        columns_ = np.stack([correct & ~is_fake, ~is_fake, correct & is_fake, is_fake], axis=1).astype(float)
        output.metrics["balanced_accuracy"] = _recall_sums_result(columns_, clusters, context, point)

    groups = {"real": ~is_fake}
    category = columns["category"]
    for name in CATEGORIES:
        groups[name] = is_fake & category.rows_where(lambda v, name=name: v == name)
    for name, mask in groups.items():
        if mask.any():
            output.metrics[f"accuracy_{name}"] = _mean_result(correct[mask], clusters.take(mask), context)

    output.breakdowns["per_technique"] = _technique_table(columns["technique"], correct)
    rows = [DETECTION_LABELS[k] for k in present]
    output.breakdowns["confusion_matrix"] = _confusion_table(ref, pred, rows, DETECTION_LABELS)
    output.per_sample = _per_sample_correct(columns, from_log, correct)
    return output


def ranking_replicates(n_scored: int, n_boot: int) -> int:
    """How many bootstrap replicates the ranking metrics use for ``n_scored`` samples (see module doc)."""
    if n_scored <= 0:
        return 0
    budget = max(RANKING_MIN_REPLICATES, RANKING_BOOTSTRAP_WORK // n_scored)
    return int(min(n_boot, budget))


def scored_columns(records: Sequence[dict[str, Any]], context: MetricContext) -> tuple[SampleColumns, np.ndarray]:
    """``(columns, failed)`` of a DF-D log read for its scores: a reference that is not real/fake is refused, and
    a score too large for a float on a sample that did not fail raises as ``float(score)`` would, whichever of
    the two comes first in the log."""
    columns, _ = _columns(records)
    failed = columns.truthy("error")
    bad = _first_bad_reference(columns, DETECTION_LABELS)
    overflow = next((row for row in columns.score_overflows if not failed[row]), None)
    if overflow is not None and (bad is None or overflow < bad):
        raise OverflowError("int too large to convert to float")  # as float(score) raises on that sample
    if bad is not None:
        _raise_reference(columns, context, DETECTION_LABELS, bad)
    return columns, failed


def ranking_metrics(records: Sequence[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """DF-D ranking metrics from the probability of fake (``score``): ``auc``, ``ap``, ``eer``.

    Computed on the samples that have a finite score and no error (``n``); a sample without a score is
    left out, never given one. EER is undefined when every score is the same. Undefined with
    "the model gave no scores" when none has a score, with
    "only one class present" when the scored samples are all real or all fake.
    """
    output = MetricOutput()
    columns, failed = scored_columns(records, context)
    all_scores = columns.scores
    scored = np.flatnonzero(~failed & np.isfinite(all_scores))
    n = int(scored.size)
    names = ("auc", "ap", "eer")
    info: dict[str, Any] = {"n_scored": n, "n_without_score": columns.n - n, "replicates": 0}
    output.breakdowns["ranking"] = info
    if n == 0:
        for name in names:
            output.metrics[name] = MetricResult.undefined(NO_SCORES)
        return output
    y = _label_index(columns["reference"], DETECTION_LABELS, scored) == DETECTION_LABELS.index("fake")
    scores = all_scores[scored]
    levels = _ScoreLevels(y, scores)
    point = levels.metrics()
    if point is None:
        for name in names:
            output.metrics[name] = MetricResult.undefined(ONE_CLASS, n=n)
        return output
    replicates = ranking_replicates(n, context.n_boot)
    info["replicates"] = replicates
    values = np.full((replicates, 3), np.nan)
    in_level_order = columns.clusters.take(scored).take(levels.order)
    for b, weights in enumerate(iter_sample_weights(in_level_order, n_boot=replicates, seed=context.seed)):
        result = levels.metrics(weights, in_level_order=True)
        if result is not None:
            values[b] = result
    for j, name in enumerate(names):
        low, high = percentile_interval(values[:, j], context.confidence)
        output.metrics[name] = MetricResult(point[j], low, high, n=n)
    if scores.min() == scores.max():
        # One score for every sample: the ROC curve is the diagonal's two ends, and the rule "FPR at
        # the point minimising |FNR - FPR|" would report a perfect 0.
        output.metrics["eer"] = MetricResult.undefined("every sample has the same score", n=n)
    return output


def category_metrics(records: Sequence[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """DF-C metrics on fake samples: ``accuracy``, ``macro_f1`` (over the categories present in the
    references), per-category accuracy ``accuracy_FS`` .. ``accuracy_EFS`` (the recall of each category
    present), with the ``confusion_matrix`` and ``per_technique`` breakdowns. Failed and unparsed samples
    count as wrong. Samples without a category reference (a fake of unknown kind, a real face) are
    left out and counted in the ``classification`` breakdown.
    """
    output = MetricOutput()
    columns, from_log = _columns(records)

    def skip(reference: Any) -> bool:
        return reference is None or reference == "real"

    _refuse_references(columns, context, CATEGORIES, skip)
    used = np.flatnonzero(~columns["reference"].rows_where(skip))
    output.breakdowns["classification"] = {"n_without_reference": columns.n - int(used.size)}
    if not used.size:
        output.metrics["accuracy"] = MetricResult.undefined(NO_SAMPLES)
        output.metrics["macro_f1"] = MetricResult.undefined(NO_SAMPLES)
        return output
    ref = _label_index(columns["reference"], CATEGORIES, used)
    pred = _prediction_index(columns, CATEGORIES, used)
    clusters = columns.clusters.take(used)
    correct = (pred == ref) & (pred >= 0)
    output.metrics["accuracy"] = _mean_result(correct, clusters, context)

    present = [k for k in range(len(CATEGORIES)) if np.any(ref == k)]
    # macro_f1 over the classes present, as dfabench.metrics.label_metrics computes it
    tp, fp, support = _class_counts(ref, pred, present)
    denominator = tp + fp + support
    kept = denominator > 0
    point = float(np.mean(2 * tp[kept] / denominator[kept])) if kept.any() else None
    # per sample and class: tp, fp and reference-support indicators; F1 = 2tp / (tp + fp + support)
    stacked = []
    for k in present:
        is_ref, is_pred = ref == k, pred == k
        stacked += [is_ref & is_pred, is_pred & ~is_ref, is_ref]
    sums = resampled_cluster_sums(np.stack(stacked, axis=1).astype(float), clusters,
                                  n_boot=context.n_boot, seed=context.seed)
    tp, fp, support = sums[:, 0::3], sums[:, 1::3], sums[:, 2::3]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * tp / (tp + fp + support)
    # as for the point value, the mean runs over the classes present in the replicate's references
    present_in_replicate = support > 0
    replicates = np.where(present_in_replicate, f1, 0.0).sum(axis=1) / present_in_replicate.sum(axis=1)
    low, high = percentile_interval(replicates, context.confidence)
    output.metrics["macro_f1"] = MetricResult(point, low, high, n=int(used.size))

    for k in present:
        mask = ref == k
        output.metrics[f"accuracy_{CATEGORIES[k]}"] = _mean_result(correct[mask], clusters.take(mask), context)

    present_names = [CATEGORIES[k] for k in present]
    output.breakdowns["confusion_matrix"] = _confusion_table(ref, pred, present_names, CATEGORIES)
    output.breakdowns["per_technique"] = _technique_table(columns["technique"], correct, used)
    output.per_sample = _per_sample_correct(columns, from_log, correct, used)
    return output
