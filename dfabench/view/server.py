"""The viewer's web server: stdlib :mod:`http.server`, bound to 127.0.0.1 only, pages rendered on the server.

Routes: ``/`` the sample list of one task (filters: task, category, technique, outcome) with every run
side by side; ``/sample?task=T&id=ID`` one sample: the image (the FL masks overlaid), the question, each run's
answer, parsed answer, per-sample scores and the judge's rationale, the reference, and for AD a hand-rating
form (0-5 per rubric criterion, ``POST /rate``, appended to the ratings CSV); ``/file/K/PATH`` a file from
served folder K (:meth:`Catalogue.resolve` refuses anything outside it). Every text from a run is escaped
with :func:`dfabench.escape.html_text`; no page runs a script.
"""

from __future__ import annotations

import mimetypes
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from dfabench.escape import html_text
from dfabench.view.data import (
    OUTCOMES,
    Catalogue,
    append_rating,
    model_label,
    outcome,
    rubric_criteria,
    sample_json,
)

HOST = "127.0.0.1"
_STYLE = ("body{font:14px system-ui,sans-serif;margin:1.2rem;color:#1d2330}table{border-collapse:collapse}"
          "td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;vertical-align:top;text-align:left}"
          ".runs{display:flex;gap:1.5rem;flex-wrap:wrap}.run{flex:1;min-width:20rem}pre{white-space:pre-wrap}"
          ".figure{position:relative;display:inline-block}.figure img{display:block;max-width:384px}"
          ".figure img.mask{position:absolute;left:0;top:0;opacity:.45;mix-blend-mode:multiply}"
          ".correct{color:#1c6b2a}.wrong,.failed{color:#a3221b}.unparsed{color:#8a5a00}")


def _page(title: str, body: str) -> bytes:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
            f"content=\"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'\">"
            f"<title>{html_text(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>").encode()


def _file_url(catalogue: Catalogue, folder: Path | None, relpath: Any) -> str | None:
    index = catalogue.root_of(folder)
    if index is None or not isinstance(relpath, str):
        return None
    return f"/file/{index}/{quote(relpath)}"


def _mask(value: Any) -> Any:
    """FL's reference and parsed answer are ``{text, mask}``: the mask's path (relative to its folder)."""
    return value.get("mask") if isinstance(value, dict) else None


def _text(value: Any) -> Any:
    return value.get("text") if isinstance(value, dict) else value


def _select(name: str, options: list[str], chosen: str) -> str:
    items = "".join(f'<option value="{html_text(o)}"{" selected" if o == chosen else ""}>{html_text(o or "any")}'
                    "</option>" for o in ["", *options])
    return f'<label>{html_text(name)} <select name="{html_text(name)}">{items}</select></label> '


def index_page(catalogue: Catalogue, query: dict[str, str]) -> bytes:
    tasks = catalogue.tasks()
    task = query.get("task") if query.get("task") in tasks else (tasks[0] if tasks else "")
    form = ('<form method="get" action="/" id="filters">' + _select("task", tasks, task)
            + _select("category", catalogue.values(task, "category"), query.get("category", ""))
            + _select("technique", catalogue.values(task, "technique"), query.get("technique", ""))
            + _select("outcome", list(OUTCOMES), query.get("outcome", ""))
            + '<button type="submit">filter</button></form>')
    first = catalogue.runs[0]
    shown = catalogue.samples(first, task, query)
    head = "<tr><th>sample</th><th>category</th><th>technique</th>" + "".join(
        f"<th>{html_text(r.name)}</th>" for r in catalogue.runs) + "</tr>"
    rows = []
    for sample in shown:
        link = "/sample?" + urlencode({"task": task, "id": sample["id"]})
        cells = []
        for run in catalogue.runs:
            other = run.samples.get(task, {}).get(str(sample["id"]))
            state = outcome(other) if other else "—"
            cells.append(f'<td class="{html_text(state)}">{html_text(state)}</td>')
        rows.append(f'<tr class="sample"><td><a href="{html_text(link)}">{html_text(sample["id"])}</a></td>'
                    f'<td>{html_text(sample.get("category"))}</td><td>{html_text(sample.get("technique"))}</td>'
                    + "".join(cells) + "</tr>")
    models = "".join(f"<li><b>{html_text(r.name)}</b>: <code>{html_text(model_label(r.record))}</code></li>"
                     for r in catalogue.runs)
    body = (f'<h1>dfabench view</h1><ul class="models">{models}</ul><p>{len(catalogue.runs)} run(s); '
            f'<span id="count">{len(shown)}</span> sample(s) of '
            f"{html_text(task)} match (outcomes as in {html_text(first.name)}).</p>{form}"
            f'<table id="samples">{head}{"".join(rows)}</table>')
    return _page("dfabench view", body)


def _run_column(catalogue: Catalogue, run, task: str, sample: dict[str, Any]) -> str:
    judge = sample.get("judge") or {}
    rationale = judge.get("rationale") or judge.get("explanation") or judge.get("error") if isinstance(judge, dict) \
        else None
    mask = _file_url(catalogue, run.path, _mask(sample.get("parsed")))
    return (f'<div class="run"><h2>{html_text(run.name)}</h2>'
            f'<p class="model">model <code>{html_text(model_label(run.record))}</code></p>'
            f'<p class="{html_text(outcome(sample))}">{html_text(outcome(sample))}</p>'
            f"<h3>answer</h3><pre>{html_text(sample.get('response'))}</pre>"
            f"<p>parsed: <code>{html_text(_text(sample.get('parsed')))}</code>; error: "
            f"{html_text(sample.get('error') or '—')}</p>"
            f"<h3>per-sample scores</h3><pre>{html_text(sample_json(sample))}</pre>"
            f"<h3>judge rationale</h3><pre>{html_text(rationale or '—')}</pre>"
            + (f'<p><a href="{html_text(mask)}">predicted mask</a></p>' if mask else "") + "</div>")


def _rating_form(task: str, sample_id: str, criteria: list[tuple[str, str]]) -> str:
    if task != "AD" or not criteria:
        return ""
    fields = "".join(f'<label>{html_text(title)} <input type="number" name="{html_text(cid)}" min="0" max="5" '
                     f'step="1" required></label><br>' for cid, title in criteria)
    return (f'<h2>Rate this answer by hand (0-5)</h2><form method="post" action="/rate" id="rating">'
            f'<input type="hidden" name="id" value="{html_text(sample_id)}">'
            f'<input type="hidden" name="task" value="{html_text(task)}">{fields}<button type="submit">save</button>'
            "</form>")


def sample_page(catalogue: Catalogue, task: str, sample_id: str) -> bytes | None:
    found = [(run, run.samples.get(task, {}).get(sample_id)) for run in catalogue.runs]
    found = [(run, s) for run, s in found if s is not None]
    if not found:
        return None
    run, sample = found[0]
    image = _file_url(catalogue, run.bench, sample.get("image"))
    reference_mask = _file_url(catalogue, run.bench, _mask(sample.get("reference")))
    predicted = _file_url(catalogue, run.path, _mask(sample.get("parsed")))
    figure = ""
    if image:
        overlays = "".join(f'<img class="mask" src="{html_text(u)}" alt="{a}">'
                           for u, a in ((reference_mask, "reference mask"), (predicted, "predicted mask")) if u)
        figure = f'<div class="figure"><img src="{html_text(image)}" alt="the image">{overlays}</div>'
    body = (f'<p><a href="/?{html_text(urlencode({"task": task}))}">all samples</a></p>'
            f"<h1>{html_text(task)} · {html_text(sample_id)}</h1>{figure}"
            f"<p>label {html_text(sample.get('label'))}, category {html_text(sample.get('category'))}, technique "
            f"{html_text(sample.get('technique'))}, source {html_text(sample.get('source_id'))}</p>"
            f"<h2>question</h2><pre>{html_text(sample.get('prompt'))}</pre>"
            f"<h2>reference</h2><pre>{html_text(_text(sample.get('reference')))}</pre>"
            f'<div class="runs">{"".join(_run_column(catalogue, r, task, s) for r, s in found)}</div>'
            + _rating_form(task, sample_id, rubric_criteria()))
    return _page(f"{task} {sample_id}", body)


def rating_problem(catalogue: Catalogue, form: dict[str, str]) -> str | None:
    """Why a posted hand rating is refused (``None``: it may be saved): its task must be a rated one (AD) of a
    served run, its sample one of that task's, and every other field a criterion of the task's rubric."""
    task, sample_id = form.get("task", "AD"), form.get("id", "")
    if task != "AD":
        return f"only AD answers are rated by hand, not task {task!r}"
    if task not in catalogue.tasks():
        return "no served run holds task 'AD'"
    if not sample_id:
        return "the rating names no sample (id)"
    if not any(sample_id in run.samples.get(task, {}) for run in catalogue.runs):
        return f"sample {sample_id!r} is not in the served runs' {task} log"
    criteria = {cid for cid, _ in rubric_criteria()}
    unknown = sorted(set(form) - criteria - {"id", "task"})
    if unknown:
        return (f"{', '.join(map(repr, unknown))}: not a criterion of the {task} rubric "
                f"(its criteria: {', '.join(sorted(criteria))})")
    return None


def make_handler(catalogue: Catalogue, ratings: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "dfabench-view"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return

        def _send(self, status: int, body: bytes, kind: str = "text/html; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the base class's name
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/":
                return self._send(200, index_page(catalogue, query))
            if url.path == "/sample":
                page = sample_page(catalogue, query.get("task", ""), query.get("id", ""))
                return self._send(200, page) if page else self._send(404, _page("not found", "no such sample"))
            if url.path.startswith("/file/"):
                return self._file(url.path)
            if url.path == "/favicon.ico":  # asked for by every browser: none, rather than a 404 in its console
                return self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return self._send(404, _page("not found", "not found"))

        def _file(self, path: str) -> None:
            from urllib.parse import unquote

            index, _, rel = path[len("/file/"):].partition("/")
            try:
                target = catalogue.resolve(int(index) if index.isdigit() else -1, unquote(rel))
            except PermissionError:
                return self._send(HTTPStatus.FORBIDDEN, _page("refused", "refused: outside the served folders"))
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            return self._send(200, target.read_bytes(), kind)

        def do_POST(self) -> None:  # noqa: N802 - the base class's name
            if urlsplit(self.path).path != "/rate":
                return self._send(404, _page("not found", "not found"))
            length = min(int(self.headers.get("Content-Length") or 0), 65536)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
            problem = rating_problem(catalogue, form)
            if problem:
                return self._send(400, _page("bad rating", html_text(problem)))
            criteria = [cid for cid, _ in rubric_criteria()]
            try:
                scores = {c: int(form[c]) for c in criteria}
            except (KeyError, ValueError):
                return self._send(400, _page("bad rating", "every criterion needs a score from 0 to 5"))
            if not all(0 <= s <= 5 for s in scores.values()):
                return self._send(400, _page("bad rating", "every criterion needs a score from 0 to 5"))
            append_rating(ratings, form["id"], scores)
            back = "/sample?" + urlencode({"task": form.get("task", "AD"), "id": form["id"]})
            return self._send(200, _page("saved", f'<p>saved to {html_text(ratings.name)}.</p>'
                                                  f'<a href="{html_text(back)}">back</a>'))

    return Handler


def make_server(catalogue: Catalogue, ratings: Path, port: int = 0) -> ThreadingHTTPServer:
    """A server on 127.0.0.1 (``port`` 0: any free port); never on another interface."""
    return ThreadingHTTPServer((HOST, port), make_handler(catalogue, ratings))
