"""Agreement between two graders of the same samples: Spearman's rho, Kendall's tau-b and weighted Cohen's kappa.

Used by ``dfabench judge agree`` (two LLM judges, or a judge and human ratings) per rubric criterion and for the
overall judge score. Pure Python (the core does not depend on scipy); ties are handled as scipy does: Spearman on
average ranks, Kendall's tau-b with the tie correction, and kappa with quadratic weights over the rubric's integer
scale (ratings are rounded to the scale's integers first; the overall score, a mean, gets no kappa).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks (1-based), ties sharing the mean of their positions."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    n = len(x)
    mean_x, mean_y = sum(x) / n, sum(y) / n
    sxx = sum((a - mean_x) ** 2 for a in x)
    syy = sum((b - mean_y) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None  # a constant grader: correlation undefined
    return sum((a - mean_x) * (b - mean_y) for a, b in zip(x, y, strict=True)) / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (None with fewer than 2 pairs or a constant grader)."""
    if len(x) != len(y):
        raise ValueError("spearman: the two graders rated different numbers of samples")
    return _pearson(_ranks(x), _ranks(y)) if len(x) >= 2 else None


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties corrected; None with fewer than 2 pairs or a constant grader). O(n^2): the samples
    of one run, not millions."""
    if len(x) != len(y):
        raise ValueError("kendall: the two graders rated different numbers of samples")
    n = len(x)
    if n < 2:
        return None
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else None


def weighted_kappa(x: Sequence[float], y: Sequence[float], low: int, high: int) -> float | None:
    """Cohen's kappa with quadratic weights over the integer scale ``low..high`` (ratings rounded to it). None
    with no pair, or when chance agreement is perfect (both graders constant on one value)."""
    if len(x) != len(y):
        raise ValueError("kappa: the two graders rated different numbers of samples")
    if not x:
        return None
    k = high - low + 1
    observed = [[0.0] * k for _ in range(k)]
    for a, b in zip(x, y, strict=True):
        i = min(max(int(round(a)) - low, 0), k - 1)
        j = min(max(int(round(b)) - low, 0), k - 1)
        observed[i][j] += 1
    n = len(x)
    rows = [sum(observed[i]) for i in range(k)]
    cols = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    weight = [[((i - j) ** 2) / ((k - 1) ** 2) if k > 1 else 0.0 for j in range(k)] for i in range(k)]
    disagreement = sum(weight[i][j] * observed[i][j] for i in range(k) for j in range(k)) / n
    expected = sum(weight[i][j] * rows[i] * cols[j] for i in range(k) for j in range(k)) / (n * n)
    return 1.0 - disagreement / expected if expected else None


def agreement(x: Sequence[float], y: Sequence[float], scale: tuple[int, int] | None) -> dict[str, float | int | None]:
    """``{"n", "spearman", "kendall_tau_b", "weighted_kappa"}`` of two graders' paired ratings; ``scale``: the
    integer scale of a criterion (None: no kappa, e.g. the overall score)."""
    out: dict[str, float | int | None] = {"n": len(x), "spearman": spearman(x, y), "kendall_tau_b": kendall_tau_b(x, y)}
    if scale is not None:
        out["weighted_kappa"] = weighted_kappa(x, y, scale[0], scale[1])
    return out
