"""``leaderboard/index.html``: the leaderboard as one self-contained static page.

One tab per benchmark and task, then one for the reported entries and one for what is not ranked. Each
table is sortable (click a header), every number carries its 95% interval drawn as a bar on the column's
axis, n / failed / unparsed are shown as numbers and rates, a task an entry cannot do reads "n/a", each
entry links to its checker report (``reports/ENTRY.md``, beside the page), and each task has its
per-category and per-technique breakdowns and confusion matrices as inline SVG
(:mod:`dfabench.leaderboard.svg`).

The page works from ``file://`` with no network: the stylesheet and the script are inline
(:mod:`dfabench.leaderboard.assets`), and its Content-Security-Policy allows only those two blocks (by
hash) — so even a payload that got past the escaping could not run or load anything. Every text from an
entry goes through :func:`dfabench.escape.html_text`. The page embeds no per-sample data.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from dfabench.escape import html_text
from dfabench.leaderboard.assets import SCRIPT, STYLE
from dfabench.leaderboard.markdown import count_cell
from dfabench.leaderboard.svg import bar_chart, confusion_matrix, interval_bar, scale_of

__all__ = ["render_site"]


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _policy() -> str:
    return (f"default-src 'none'; style-src {_digest(STYLE)}; script-src {_digest(SCRIPT)}; img-src data:; "
            "base-uri 'none'; form-action 'none'")


def _num(value: Any) -> str:
    return "" if value is None else repr(float(value))


def _metric_cell(metric: dict[str, Any] | None, scale: tuple[float, float]) -> str:
    if metric is None:
        return '<td class="metric na" data-value="">—</td>'
    value = metric.get("value")
    if value is None:
        reason = html_text(metric.get("reason") or "undefined")
        return f'<td class="metric na" data-value="" title="{reason}">undefined</td>'
    interval = ""
    if metric.get("ci_low") is not None and metric.get("ci_high") is not None:
        interval = f'<span class="interval">[{metric["ci_low"]:.3f}, {metric["ci_high"]:.3f}]</span>'
    return (f'<td class="metric num" data-value="{_num(value)}"><span class="value">{value:.4f}</span>'
            f'{interval_bar(metric, scale)}{interval}</td>')


def _count(counts: dict[str, Any], key: str) -> str:
    value = counts.get(key)
    return f'<td class="num" data-value="{_num(value) if isinstance(value, int) else ""}">' \
           f'{html_text(count_cell(counts, key))}</td>'


def _ranked_table(task: dict[str, Any]) -> str:
    columns = task["columns"]
    scales = {c: scale_of([r["values"].get(c) for r in task["rows"] if not r["na"]]) for c in columns}
    head = ['<th data-sort="number">rank</th>', '<th data-sort="text">entry</th>', '<th data-sort="text">model</th>']
    head += [f'<th data-sort="number">{html_text(c)}</th>' for c in columns]
    head += [f'<th data-sort="number">{name}</th>' for name in ("n", "failed", "unparsed")]
    body = []
    for row in task["rows"]:
        args = json.dumps(row["args"], sort_keys=True) if row["args"] else ""
        rank = "" if row["rank"] is None else str(row["rank"])
        cells = [f'<td class="rank num" data-value="{rank}">{rank}</td>',
                 f'<td data-value="{html_text(row["entry"])}"><a href="{html_text(row["report"])}">'
                 f'{html_text(row["entry"])}</a></td>',
                 f'<td data-value="{html_text(row["model"])}">{html_text(row["model"])}'
                 + (f' <code>{html_text(args)}</code>' if args else "") + "</td>"]
        if row["na"]:
            title = html_text(row.get("status") or "n/a")
            cells += [f'<td class="na" data-value="" title="{title}">n/a</td>' for _ in columns]
            cells += ['<td class="na" data-value="">n/a</td>'] * 3
        else:
            cells += [_metric_cell(row["values"].get(c), scales[c]) for c in columns]
            counts = row["counts"] or {}
            cells += [_count(counts, "n"), _count(counts, "n_failed"), _count(counts, "n_unparsed")]
        body.append(f'<tr data-entry="{html_text(row["entry"])}">' + "".join(cells) + "</tr>")
    return ('<table class="sortable board"><thead><tr>' + "".join(head) + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table>")


def _breakdowns(task_id: str, task: dict[str, Any]) -> str:
    parts = []
    for row in task["rows"]:
        if row["na"]:
            continue
        found = row.get("breakdowns") or {}
        plots = [bar_chart("per category (accuracy)", sorted(found.get("per_category", {}).items())),
                 bar_chart("per technique (accuracy)", sorted(found.get("per_technique", {}).items()))]
        if found.get("confusion_matrix"):
            plots.append(confusion_matrix(f"{task_id} confusion matrix", found["confusion_matrix"]))
        plots = [p for p in plots if p]
        if plots:
            parts.append(f'<h3>{html_text(row["entry"])}</h3><div class="plots">' + "".join(plots) + "</div>")
    if not parts:
        return ""
    return "<details><summary>Breakdowns per category and technique, confusion matrices</summary>" + \
        "".join(parts) + "</details>"


def _reasons(items: list[dict[str, Any]]) -> str:
    if not items:
        return ""
    lines = "".join(f"<li><strong>{html_text(x['entry'])}</strong>: {html_text(x['reason'])}</li>" for x in items)
    return f'<h3>Not ranked</h3><ul class="reasons">{lines}</ul>'


def _task_panel(board: dict[str, Any], task_id: str, task: dict[str, Any], not_ranked: list) -> str:
    ranking = task["ranking"]
    how = html_text(ranking["method"]) + (f": {html_text(ranking['reason'])}" if ranking.get("reason") else "")
    direction = "lower is better" if ranking.get("lower_is_better") else "higher is better"
    reasons = [x for x in not_ranked if x["task"] == task_id and x.get("benchmark") == board["benchmark"]]
    return (f'<h2>{html_text(board["benchmark"])} — {html_text(task_id)} '
            f'<span class="provenance">verified</span></h2>'
            f'<p class="note">Split {html_text(board["split"])}, benchmark fingerprint '
            f'<code>{html_text(str(board["fingerprint"])[:12])}</code>. Ranked by <code>'
            f'{html_text(ranking["metric"])}</code> ({direction}; {how}).</p>'
            + _ranked_table(task) + _origins(task) + _breakdowns(task_id, task) + _reasons(reasons))


def _origins(task: dict[str, Any]) -> str:
    """What besides the task spec made a column's numbers: the judge identity, the embedding model, ..."""
    origins = task.get("origins") or {}
    if not origins:
        return ""
    return ('<p class="note">Column origins: ' + "; ".join(
        f"<code>{html_text(c)}</code> by {html_text(o)}" for c, o in origins.items()) + ".</p>")


def _reported_panel(rows: list[dict[str, Any]]) -> str:
    out = ['<h2>Reported entries <span class="provenance reported">reported</span></h2>',
           '<p class="note">Numbers copied from a paper or a repository: no per-sample logs, not verified here, never '
           'ranked with the verified entries. Shown on dfabench\'s scale (the source\'s number divided by its '
           'scale); the source\'s own numbers are in leaderboard.json.</p>']
    for row in rows:
        citation = row["citation"]
        where = f" ({html_text(citation['where'])})" if citation.get("where") else ""
        names = list(row["values"])
        out.append(f'<h3>{html_text(row["entry"])}: {html_text(row["benchmark"])} {html_text(row["task"])}, split '
                   f'{html_text(row["split"])}</h3><p class="note">Model: {html_text(row["model"])}; n: '
                   f'{html_text(row["n"] if row["n"] is not None else "not stated")}. Source: '
                   f'{html_text(citation["text"])}{where} — <a href="{html_text(citation["url"])}" rel="noreferrer">'
                   f'{html_text(citation["url"])}</a>. Protocol: {html_text(row["protocol"])}'
                   + (f' Notes: {html_text(row["notes"])}' if row.get("notes") else "") + "</p>")
        out.append('<table class="sortable reported"><thead><tr>'
                   + "".join(f'<th data-sort="number">{html_text(n)}</th>' for n in names) + "</tr></thead><tbody><tr>"
                   + "".join(f'<td class="num" data-value="{_num(row["values"][n])}">{row["values"][n]:.4f}</td>'
                             for n in names) + "</tr></tbody></table>")
    return "".join(out)


def _other_panel(data: dict[str, Any]) -> str:
    out = ["<h2>Not ranked and excluded</h2>"]
    if data["not_ranked"]:
        out.append('<h3>Not ranked</h3><ul class="reasons">' + "".join(
            f"<li><strong>{html_text(x['entry'])}</strong> / {html_text(x['task'])}: {html_text(x['reason'])}</li>"
            for x in data["not_ranked"]) + "</ul>")
    if data["excluded"]:
        out.append('<h3>Excluded (do not verify or cannot be read)</h3><ul class="reasons">'
                   + "".join(f"<li>{html_text(x)}</li>" for x in data["excluded"]) + "</ul>")
    if len(out) == 1:
        out.append('<p class="note">Every entry is ranked.</p>')
    return "".join(out)


def render_site(data: dict[str, Any]) -> str:
    panels: list[tuple[str, str, str]] = []  # (id, tab label, html)
    for b, board in enumerate(data["boards"]):
        for task_id, task in board["tasks"].items():
            panels.append((f"board{b}-{task_id}", f"{board['benchmark']} · {task_id}",
                           _task_panel(board, task_id, task, data["not_ranked"])))
    if data["reported"]:
        panels.append(("reported", "Reported", _reported_panel(data["reported"])))
    panels.append(("other", f"Not ranked ({len(data['not_ranked']) + len(data['excluded'])})", _other_panel(data)))
    ranking = data["ranking"]
    tabs = "".join(f'<button type="button" role="tab" id="tab-{html_text(pid)}" data-panel="{html_text(pid)}" '
                   f'aria-selected="{"true" if i == 0 else "false"}">{html_text(label)}</button>'
                   for i, (pid, label, _) in enumerate(panels))
    sections = "".join(f'<section class="panel" role="tabpanel" id="{html_text(pid)}" '
                       f'aria-labelledby="tab-{html_text(pid)}"{"" if i == 0 else " hidden"}>{body}</section>'
                       for i, (pid, _, body) in enumerate(panels))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_policy()}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>dfabench leaderboard</title>"
        f"<style>{STYLE}</style></head><body>"
        "<header><h1>dfabench leaderboard</h1>"
        '<p class="lead">Every ranked number was re-derived from the entry\'s per-sample logs (<code>dfabench verify'
        "</code>); entries are ranked together only when benchmark, split, task spec and judge match. Each entry "
        "links to its submission-checker report.</p>"
        f'<p class="method">Ranks: {html_text(ranking["method"])} over the samples every ranked entry answered, '
        f'clustered by {html_text(ranking["cluster"])}, {html_text(ranking["replicates"])} replicates (seed '
        f'{html_text(ranking["seed"])}); {html_text(ranking["rule"])} ({100 * ranking["confidence"]:g}% level). '
        "Bars: the 95% interval of each number (the run's cluster bootstrap), the tick its value.</p></header>"
        f'<nav class="tabs" role="tablist">{tabs}</nav>{sections}'
        '<footer>Generated by <code>dfabench leaderboard build</code>. Data: leaderboard.json, leaderboard.csv.'
        f"</footer><script>{SCRIPT}</script></body></html>\n")
