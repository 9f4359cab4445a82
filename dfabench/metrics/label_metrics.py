"""Label metrics for DF-D and DF-C on label sequences: accuracy, balanced accuracy, macro-F1, confusion matrix.

Pure array functions (numpy only), used by the providers of :mod:`dfabench.metrics.classification`. A
prediction of ``None`` (unparsed or failed) is wrong and belongs to no class; each function returns ``None``
when its metric is undefined.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

__all__ = ["accuracy", "balanced_accuracy", "confusion_matrix", "macro_f1"]


def accuracy(y_true: Sequence[Hashable], y_pred: Sequence[Hashable | None]) -> float | None:
    """Fraction of predictions equal to the reference (``None`` predictions are wrong); ``None`` if empty."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} references but {len(y_pred)} predictions")
    if len(y_true) == 0:
        return None
    return sum(1 for t, p in zip(y_true, y_pred, strict=True) if p is not None and p == t) / len(y_true)


def _per_class_counts(y_true: Sequence[Hashable], y_pred: Sequence[Hashable | None],
                      labels: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(tp, fp, support)`` per label; a ``None`` prediction is nobody's positive."""
    index = {label: i for i, label in enumerate(labels)}
    tp = np.zeros(len(labels))
    fp = np.zeros(len(labels))
    support = np.zeros(len(labels))
    for t, p in zip(y_true, y_pred, strict=True):
        ti = index.get(t)
        pi = index.get(p) if p is not None else None
        if ti is not None:
            support[ti] += 1
        if pi is not None:
            if p == t:
                tp[pi] += 1
            else:
                fp[pi] += 1
    return tp, fp, support


def balanced_accuracy(y_true: Sequence[Hashable], y_pred: Sequence[Hashable | None],
                      labels: Sequence[Hashable] | None = None) -> float | None:
    """Mean recall over the classes present in ``y_true`` (restricted to ``labels`` if given).

    ``None`` (undefined) when fewer than two classes are present: with one class it is just accuracy.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} references but {len(y_pred)} predictions")
    present = [label for label in (labels if labels is not None else sorted(set(y_true), key=str))
               if label in set(y_true)]
    if len(present) < 2:
        return None
    tp, _, support = _per_class_counts(y_true, y_pred, present)
    return float(np.mean(tp / support))


def macro_f1(y_true: Sequence[Hashable], y_pred: Sequence[Hashable | None],
             labels: Sequence[Hashable] | None = None) -> float | None:
    """Unweighted mean of the per-class F1 = 2tp / (2tp + fp + fn) over ``labels`` (default: the classes
    present in ``y_true``). A ``None`` prediction is a false negative of its true class and a false
    positive of none. A label with no reference and no prediction is left out; ``None`` if none is left.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} references but {len(y_pred)} predictions")
    if labels is None:
        labels = sorted(set(y_true), key=str)
    tp, fp, support = _per_class_counts(y_true, y_pred, list(labels))
    denominator = tp + fp + support  # 2tp + fp + fn, with fn = support - tp
    used = denominator > 0
    if not used.any():
        return None
    return float(np.mean(2 * tp[used] / denominator[used]))


def confusion_matrix(y_true: Sequence[Hashable], y_pred: Sequence[Hashable | None],
                     labels: Sequence[Hashable]) -> np.ndarray:
    """Counts of shape ``(len(labels), len(labels) + 1)``: row = reference, column = prediction, and a
    last column for predictions that are ``None`` or not among ``labels`` (unparsed / failed).
    Samples whose reference is not among ``labels`` are not counted."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} references but {len(y_pred)} predictions")
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels) + 1), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        row = index.get(t)
        if row is None:
            continue
        column = index.get(p, len(labels)) if p is not None else len(labels)
        matrix[row, column] += 1
    return matrix
