"""Inline SVG for the site: an interval bar per table cell, bar charts with intervals, a confusion matrix.

Pure string building (no plotting library): the page must open from ``file://`` with no network, and
the same data must give the same bytes. Every label is escaped with :func:`dfabench.escape.html_text`.
"""

from __future__ import annotations

from typing import Any

from dfabench.escape import html_text

__all__ = ["bar_chart", "confusion_matrix", "interval_bar", "scale_of"]


def _f(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def scale_of(metrics: list[dict[str, Any] | None]) -> tuple[float, float]:
    """The axis of a column: [0, 1] when every number lies in it, else the numbers' range."""
    numbers = [m[k] for m in metrics if m for k in ("value", "ci_low", "ci_high") if m.get(k) is not None]
    if not numbers:
        return 0.0, 1.0
    low, high = min(numbers), max(numbers)
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    low = min(low, 0.0)
    return low, high if high > low else low + 1.0


def interval_bar(metric: dict[str, Any], scale: tuple[float, float], width: int = 90) -> str:
    """A small axis with the 95% interval as a bar and the value as a tick (empty without a value)."""
    value = metric.get("value")
    if value is None:
        return ""
    low, high = scale

    def x(v: float) -> float:
        return 2 + (width - 4) * (min(max(v, low), high) - low) / (high - low)

    parts = [f'<svg class="ci" width="{width}" height="12" viewBox="0 0 {width} 12" role="img" '
             f'aria-label="95% interval">', f'<line class="axis" x1="2" y1="6" x2="{width - 2}" y2="6"/>']
    if metric.get("ci_low") is not None and metric.get("ci_high") is not None:
        left, right = x(metric["ci_low"]), x(metric["ci_high"])
        parts.append(f'<rect class="range" x="{_f(left)}" y="2" width="{_f(max(right - left, 1.0))}" height="8"/>')
    parts.append(f'<line class="point" x1="{_f(x(value))}" y1="0" x2="{_f(x(value))}" y2="12"/>')
    return "".join(parts) + "</svg>"


def bar_chart(title: str, items: list[tuple[str, dict[str, Any]]]) -> str:
    """Horizontal bars in [0, 1] (one per label, with its interval and n where known)."""
    if not items:
        return ""
    label_w, bar_w, row_h = 150, 220, 18
    height = row_h * len(items) + 6
    out = [f'<div class="plot"><h4>{html_text(title)}</h4>',
           f'<svg class="chart" width="{label_w + bar_w + 90}" height="{height}" role="img" '
           f'aria-label="{html_text(title)}">']
    for i, (label, metric) in enumerate(items):
        y = 3 + i * row_h
        value = metric.get("value")
        out.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{html_text(label[:28])}</text>')
        if value is None:
            out.append(f'<text x="{label_w}" y="{y + 12}">undefined</text>')
            continue
        v = min(max(float(value), 0.0), 1.0)
        out.append(f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{_f(bar_w * v)}" height="{row_h - 6}"/>')
        if metric.get("ci_low") is not None and metric.get("ci_high") is not None:
            a, b = (bar_w * min(max(float(metric[k]), 0.0), 1.0) + label_w for k in ("ci_low", "ci_high"))
            out.append(f'<line class="whisker" x1="{_f(a)}" y1="{y + row_h / 2}" x2="{_f(b)}" y2="{y + row_h / 2}"/>')
        n = f" (n={metric['n']})" if isinstance(metric.get("n"), int) else ""
        out.append(f'<text x="{label_w + bar_w + 6}" y="{y + 12}">{value:.3f}{html_text(n)}</text>')
    return "".join(out) + "</svg></div>"


def confusion_matrix(title: str, matrix: dict[str, Any]) -> str:
    """Rows: the reference; columns: the prediction (with ``unparsed/failed``); cells shaded by row share."""
    rows, columns, cells = matrix.get("labels") or [], matrix.get("columns") or [], matrix.get("matrix") or []
    if not rows or not columns or len(cells) != len(rows):
        return ""
    size, left, top = 44, 70, 70
    width, height = left + size * len(columns) + 10, top + size * len(rows) + 10
    out = [f'<div class="plot"><h4>{html_text(title)}</h4>',
           f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="{html_text(title)}">',
           f'<text x="{left}" y="12">predicted →</text>',
           f'<text x="4" y="{top - 8}">reference ↓</text>']
    for j, name in enumerate(columns):
        x = left + j * size + size / 2
        out.append(f'<text class="cell-text" x="{x}" y="{top - 22}">{html_text(str(name)[:9])}</text>')
    for i, name in enumerate(rows):
        row = cells[i] if isinstance(cells[i], list) else []
        total = sum(v for v in row if isinstance(v, (int, float))) or 1
        y = top + i * size
        out.append(f'<text x="{left - 6}" y="{y + size / 2 + 4}" text-anchor="end">{html_text(str(name)[:9])}</text>')
        for j, count in enumerate(row[:len(columns)]):
            share = float(count) / total if isinstance(count, (int, float)) else 0.0
            light = 96 - int(56 * share)
            out.append(f'<rect x="{left + j * size}" y="{y}" width="{size - 2}" height="{size - 2}" '
                       f'fill="hsl(220, 70%, {light}%)"/>')
            out.append(f'<text class="cell-text" x="{left + j * size + size / 2 - 1}" y="{y + size / 2 - 1}">'
                       f'{html_text(count)}</text>')
    return "".join(out) + "</svg></div>"
