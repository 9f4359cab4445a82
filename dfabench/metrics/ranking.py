"""Ranking metrics for DF-D on 0/1 labels (1 = fake) and scores: ROC AUC, average precision, EER.

Defined as DeepfakeBench computes them: AUC is the trapezoidal area under the ROC curve (ties get half
credit, so it equals the Mann-Whitney statistic); AP is the non-interpolated average precision
(scikit-learn's ``average_precision_score``); EER is the false-positive rate at the ROC point
(scikit-learn's ``roc_curve`` with its default ``drop_intermediate=True``) that minimises ``|FNR - FPR|``,
without interpolation. Each function returns ``None`` when the metric is undefined (one class present).

:class:`ScoreLevels` computes all three from weighted score histograms for any sample weights, so that
the bootstrap of :func:`dfabench.metrics.classification.ranking_metrics` needs no sorting per replicate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ScoreLevels", "average_precision", "eer", "roc_auc"]


def _check_scores(y_true01: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true01)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D and of the same length ({y.shape} vs {s.shape})")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite numbers")
    return y.astype(bool), s


class ScoreLevels:
    """Samples grouped by distinct score, highest first: the basis of AUC/AP/EER for any sample weights."""

    def __init__(self, y: np.ndarray, scores: np.ndarray):
        distinct, inverse = np.unique(scores, return_inverse=True)
        self.n_levels = len(distinct)
        level = (self.n_levels - 1) - inverse.reshape(-1)  # 0 = the highest score
        #: sample positions sorted by level (weights given "in level order" follow this order)
        self.order = np.argsort(level, kind="stable")
        self.level = level[self.order]
        self.y = y[self.order].astype(float)
        self.all_distinct = self.n_levels == len(scores)

    def metrics(self, weights: np.ndarray | None = None, *,
                in_level_order: bool = False) -> tuple[float, float, float] | None:
        """``(auc, ap, eer)`` of the samples taken ``weights`` times each; ``None`` with one class."""
        if weights is None:
            taken = np.ones_like(self.y)
        else:
            taken = weights if in_level_order else weights[self.order]
        if self.all_distinct:  # one sample per level: drop the levels nobody was drawn at right away
            drawn = np.flatnonzero(taken > 0)
            if len(drawn) < len(taken):
                taken = taken.take(drawn)
                pos = taken * self.y.take(drawn)
            else:
                pos = taken * self.y
            return _curve_metrics(pos, taken - pos, all_drawn=True)
        pos = np.bincount(self.level, weights=taken * self.y, minlength=self.n_levels)
        neg = np.bincount(self.level, weights=taken, minlength=self.n_levels) - pos
        return _curve_metrics(pos, neg)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum, not np.dot: np.dot goes through a multi-threaded BLAS, slower on a busy machine and not
    # bit-for-bit the same everywhere
    return float(np.einsum("i,i->", a, b))


def _curve_metrics(pos: np.ndarray, neg: np.ndarray, *, all_drawn: bool = False) -> tuple[float, float, float] | None:
    """AUC, AP and EER from positive / negative (weighted) counts per score level, highest first
    (``all_drawn``: the caller already left out the levels with no weight)."""
    if not all_drawn:
        # a level nobody was drawn at is no threshold (flatnonzero of a boolean + take: far faster than a mask)
        present = np.flatnonzero((pos + neg) > 0)
        if len(present) < len(pos):
            pos, neg = pos.take(present), neg.take(present)
    tps = np.cumsum(pos)
    fps = np.cumsum(neg)
    n_pos, n_neg = float(tps[-1]), float(fps[-1])
    if n_pos <= 0 or n_neg <= 0:
        return None
    # AUC = P(score of a fake > score of a real) + 1/2 P(tie), the Mann-Whitney statistic:
    # sum over levels of pos * (negatives below + half the negatives at the level)
    auc = (n_pos * n_neg - _dot(pos, fps) + 0.5 * _dot(pos, neg)) / (n_pos * n_neg)
    # AP = sum over thresholds of (recall increase) x precision
    ap = _dot(pos, tps / (tps + fps)) / n_pos
    return auc, ap, _eer(tps, fps, n_pos, n_neg)


def _kept(tps: np.ndarray, fps: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Whether points ``lo..hi-1`` stay on scikit-learn's ``roc_curve(drop_intermediate=True)``: the two
    ends, and the points where the curve bends (a non-zero second difference of fps or tps)."""
    m = len(tps)
    a, b = max(lo - 1, 0), min(hi + 1, m)
    t, f = tps[a:b], fps[a:b]
    flags = np.zeros(b - a, dtype=bool)
    flags[1:-1] = ((f[2:] - 2 * f[1:-1] + f[:-2]) != 0) | ((t[2:] - 2 * t[1:-1] + t[:-2]) != 0)
    if a == 0:
        flags[0] = True
    if b == m:
        flags[-1] = True
    return flags[lo - a:hi - a]


def _nearest_kept(tps: np.ndarray, fps: np.ndarray, start: int, step: int) -> int:
    """The first kept point at or after ``start`` (``step=1``) or at or before it (``step=-1``)."""
    width = 64
    while True:  # ends: point 0 and the last point are always kept
        lo, hi = (start, min(start + width, len(tps))) if step > 0 else (max(0, start - width + 1), start + 1)
        found = np.flatnonzero(_kept(tps, fps, lo, hi))
        if len(found):
            return lo + int(found[0] if step > 0 else found[-1])
        start = hi if step > 0 else lo - 1
        width *= 4


def _eer(tps: np.ndarray, fps: np.ndarray, n_pos: float, n_neg: float) -> float:
    """EER as DeepfakeBench computes it: ``fpr[argmin |fnr - fpr|]`` over the points of
    ``roc_curve(drop_intermediate=True)``, which starts with (0, 0).

    Along the curve FNR - FPR only decreases, so the minimum of ``|FNR - FPR|`` over the kept points is at
    the last kept point where FNR >= FPR or the first where FNR < FPR: only those two are examined
    (ties go to the earlier point, as ``argmin`` does). Computed the way scikit-learn computes it.
    """
    # FNR >= FPR  <=>  tps/n_pos + fps/n_neg <= 1  <=>  tps*n_neg + fps*n_pos <= n_pos*n_neg (exact in floats
    # for the integer counts used here)
    crossing = int(np.searchsorted(tps * n_neg + fps * n_pos, n_pos * n_neg, side="right"))
    candidates = []
    if crossing > 0:
        candidates.append(_nearest_kept(tps, fps, crossing - 1, -1))
    if crossing < len(tps):
        candidates.append(_nearest_kept(tps, fps, crossing, 1))
    best_gap, best_fpr = 1.0, 0.0  # the point (0, 0): |FNR - FPR| = 1
    for i in candidates:
        tpr, fpr = tps[i] / n_pos, fps[i] / n_neg
        gap = abs((1.0 - tpr) - fpr)
        if gap < best_gap:
            best_gap, best_fpr = gap, float(fpr)
    # a tie with (0, 0) goes to (0, 0), like numpy.argmin in DeepfakeBench: all-equal scores give EER 0
    return best_fpr


def _ranking(y_true01: Any, scores: Any) -> tuple[float, float, float] | None:
    y, s = _check_scores(y_true01, scores)
    if y.size == 0:
        return None
    return ScoreLevels(y, s).metrics()


def roc_auc(y_true01: Any, scores: Any) -> float | None:
    """Area under the ROC curve (trapezoidal; ties get half credit = Mann-Whitney); ``None`` with one class."""
    result = _ranking(y_true01, scores)
    return None if result is None else result[0]


def average_precision(y_true01: Any, scores: Any) -> float | None:
    """Non-interpolated average precision (scikit-learn's definition); ``None`` with one class."""
    result = _ranking(y_true01, scores)
    return None if result is None else result[1]


def eer(y_true01: Any, scores: Any) -> float | None:
    """Equal error rate as DeepfakeBench computes it: the FPR at the ROC point minimising |FNR - FPR|
    (no interpolation); ``None`` with one class."""
    result = _ranking(y_true01, scores)
    return None if result is None else result[2]
