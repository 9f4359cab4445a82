"""The entries of a leaderboard build: verified, loaded, and what decides whether two are comparable.

An entry is a folder in ``leaderboard/entries/`` holding a run record (``run.json``) and its per-sample logs
(:mod:`dfabench.leaderboard.submit`), plus an optional ``entry.json`` (``{"name", "submitter", "notes", "url"}``).
Before a number is shown the entry is verified (:func:`dfabench.verify.verify`: log hashes, every metric
re-derived from the per-sample logs). Numbers are ranked together only when they are comparable: the same
benchmark (fingerprint and split), the same task spec (fingerprint), a complete selection of the same samples
(no ``--limit``; the id set is the benchmark's when ``--bench`` is given, else the one most complete entries
share) and, for columns that depend on more than the task spec (judge, embedding model, METEOR's WordNet),
the same identity.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfabench.errors import DfabenchError
from dfabench.plugins import get_manager
from dfabench.records import run_judge_identity
from dfabench.selection import is_complete, select_samples
from dfabench.store import RUN_RECORD, RunFolder
from dfabench.tasks import DEFAULT_ORDER

if TYPE_CHECKING:
    from dfabench.evidence import VerifyReport

__all__ = ["Entry", "Excluded", "column_identity", "load_entry", "not_comparable", "reference_fingerprints",
           "reference_ids", "task_layout"]


@dataclass
class Entry:
    """A verified entry: its shown name, folder, run record, ``entry.json`` and the verification report."""

    name: str
    path: Path
    record: dict[str, Any]
    meta: dict[str, Any]
    report: VerifyReport
    #: the tie test's rows of its logs, made where it was verified: task -> metric -> ``SampleRows``
    rows: dict[str, dict[str, Any]] | None = None


class Excluded(Exception):
    """An entry left out of the build; the message is the reason, ``report`` the verification (if it ran)."""

    def __init__(self, reason: str, report: VerifyReport | None = None):
        super().__init__(reason)
        self.report = report


def load_entry(path: Path, by_fingerprint: dict[str, Path], verified: VerifyReport | None = None) -> Entry:
    """A verified entry; :class:`Excluded` with the reason when it does not verify, cannot be checked here,
    or is not shaped like an entry. ``verified``: the report verifying these same bytes with this same code
    gave (the build's verification cache, :mod:`dfabench.leaderboard.verified`), used instead of verifying."""
    from dfabench.records import load_entry_meta
    from dfabench.verify import read_record, verify

    if not (path / RUN_RECORD).exists():
        raise Excluded(f"no {RUN_RECORD}")
    try:
        record = read_record(RunFolder(path))
    except DfabenchError as exc:
        raise Excluded(f"cannot be read ({exc})") from None
    bench = record.get("benchmark")
    fingerprint = bench.get("fingerprint") if isinstance(bench, dict) else None
    report = verified if verified is not None else \
        verify(path, bench=by_fingerprint.get(fingerprint) if isinstance(fingerprint, str) else None)
    if report.failed:
        raise Excluded(f"does not verify ({'; '.join(report.failed[:2])})", report)
    if report.unverifiable:
        raise Excluded(f"cannot be re-derived here: {'; '.join(report.unverifiable[:2])}", report)
    try:
        meta = load_entry_meta(path / "entry.json")
    except DfabenchError as exc:
        raise Excluded(f"entry.json: {exc}", report) from None
    shown = {"model.name": record["model"].get("name"), "benchmark.name": record["benchmark"].get("name"),
             "benchmark.split": record["benchmark"].get("split"),
             "benchmark.description": record["benchmark"].get("description")}
    shown.update({f"tasks.{t}.status": info.get("status") for t, info in record.get("tasks", {}).items()})
    wrong = [k for k, v in shown.items() if v is not None and not isinstance(v, str)]
    if wrong or not isinstance(record["model"].get("args") or {}, dict):
        raise Excluded(f"run.json: {', '.join(wrong) or 'model.args'} must be text (a mapping for model.args)", report)
    return Entry(meta.get("name") or path.name, path, record, meta, report)


def _judge_key(record: dict[str, Any], task_id: str) -> str | None:
    """The judge identity behind a task's judge score (:meth:`JudgeIdentity.label`); None when unjudged."""
    identity = run_judge_identity(record, task_id)
    return identity.label() if identity is not None and identity.model else None


def column_identity(record: dict[str, Any], task_id: str, column: str) -> str | None:
    """What besides the task spec decides a column's numbers: the judge for judge scores, the
    embedding model for embedding similarity, the nltk / WordNet versions for METEOR."""
    if column in ("judge_score", "judge_failure_rate"):
        return _judge_key(record, task_id)
    breakdowns = record.get("breakdowns", {}).get(task_id, {})
    if column == "embedding_similarity":
        return (breakdowns.get("embedding_samples") or {}).get("model")
    if column == "meteor":
        info = breakdowns.get("meteor_samples") or {}
        return f"nltk {info.get('nltk')} / WordNet {info.get('wordnet')}" if info.get("nltk") else None
    return None


def task_layout(task_ids: set[str], records: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The tasks of a board in their listed order, each with its columns (the first is the ranking key):
    the installed spec's ``order`` and ``columns``; for a task no installed plugin defines (or one whose
    spec names no columns), after the others and every metric its entries report, sorted."""
    specs = {t: spec for t in task_ids if (spec := installed_spec(t)) is not None}

    def columns(task_id: str) -> list[str]:
        spec = specs.get(task_id)
        if spec is not None and spec.columns:
            return list(spec.columns)
        return sorted({m for r in records for m in r.get("metrics", {}).get(task_id, {})})

    ordered = sorted(task_ids, key=lambda t: specs[t].sort_key if t in specs else (DEFAULT_ORDER, t))
    return [(task_id, columns(task_id)) for task_id in ordered]


def reference_fingerprints(records: list[dict[str, Any]]) -> dict[str, str]:
    """The task fingerprint each task is ranked under: the installed spec's, else the most common."""
    seen: dict[str, Counter] = {}
    for record in records:
        for task_id, info in record.get("tasks", {}).items():
            seen.setdefault(task_id, Counter())[info.get("fingerprint")] += 1
    return {task_id: spec.fingerprint if (spec := installed_spec(task_id)) is not None
            else counter.most_common(1)[0][0] for task_id, counter in sorted(seen.items())}


def installed_spec(task_id: str):
    """The installed spec of a board's task: a task id, or a prompt variant ``TASK@NAME`` (ranked as a task of
    its own, never with ``TASK``: :mod:`dfabench.tasks`); None when no installed plugin defines it."""
    from dfabench.tasks import split_variant

    registry = get_manager().tasks
    base, variant = split_variant(task_id)
    if base not in registry:
        return None
    try:
        return registry.get(base).with_variant(variant)
    except DfabenchError:
        return None


def reference_identities(records: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """For each (task, column) whose numbers depend on more than the task spec, the identity most entries
    share (the one ranked; ties broken by name, so that the build does not depend on the entries' order)."""
    identities: dict[tuple[str, str], Counter] = {}
    for record in records:
        for task_id in record.get("metrics", {}):
            for column in record["metrics"][task_id]:
                key = column_identity(record, task_id, column)
                if key is not None:
                    identities.setdefault((task_id, column), Counter())[key] += 1
    return {k: min(c, key=lambda ident: (-c[ident], ident)) for k, c in sorted(identities.items())}


def reading(info: dict[str, Any]) -> str | None:
    """How a task's answers were read: None (the rules alone), else the extractor's identity as one key."""
    extractor = info.get("extractor")
    if not isinstance(extractor, dict):
        return None
    return (f"{extractor.get('name')} {extractor.get('model')} #{str(extractor.get('fingerprint'))[:12]} "
            f"prompt v{extractor.get('prompt_version')}")


def reference_reading(entries: list[Entry], task_id: str) -> str | None:
    """The way of reading answers a board ranks for a task: the one most of its entries used (rules alone on a
    tie, as without an extractor)."""
    seen = Counter(reading(e.record["tasks"][task_id]) for e in entries if task_id in e.record.get("tasks", {}))
    if not seen:
        return None
    top = max(seen.values())
    return None if seen.get(None) == top else sorted(k for k, n in seen.items() if n == top)[0]


def not_comparable(record: dict[str, Any], task_id: str, info: dict[str, Any], reference: dict[str, str],
                   ranked_ids: str | None = None, ranked_reading: str | None = None) -> str | None:
    """Why a task of an entry is not ranked with the others (``None``: it is): another task spec, a
    partial selection (``--limit``), another set of samples than the ranked one (``ranked_ids``), or answers
    read another way (an answer extractor, :mod:`dfabench.extract`, or none, than ``ranked_reading``)."""
    if info.get("fingerprint") != reference.get(task_id):
        return (f"task spec {str(info.get('fingerprint'))[:12]} differs from the ranked spec "
                f"{str(reference.get(task_id))[:12]} (version {info.get('version')})")
    if str(info.get("status", "")).startswith("n/a"):
        return None  # shown as n/a, never ranked
    selection = info.get("selection")
    if not isinstance(selection, dict):
        return "no selection record (which samples it answered is unknown; made by an older dfabench)"
    if not is_complete(selection):
        limit = f" (--limit {selection.get('limit')})" if selection.get("limit") is not None else ""
        return f"partial run: {selection.get('n')} of {selection.get('n_available')} samples{limit}"
    if ranked_ids is not None and selection.get("ids_sha256") != ranked_ids:
        return (f"answered another set of samples (ids {str(selection.get('ids_sha256'))[:12]}) than the ranked "
                f"set ({ranked_ids[:12]}) of this benchmark split")
    own = reading(info)
    if own != ranked_reading:
        return (f"answers read {'by the extractor ' + own if own else 'by the rules alone'}; the ranked entries' "
                f"were read {'by the extractor ' + ranked_reading if ranked_reading else 'by the rules alone'}")
    return None


def reference_ids(entries: list[Entry], task_id: str, fingerprint: str | None, bench: Path | None,
                  split: Any) -> str | None:
    """The sample-id set a board ranks for a task: the benchmark's own selection when the benchmark
    is given (``--bench``), else the most common among the complete entries of the ranked task spec."""

    if bench is not None:
        from dfabench.data.manifest import load_benchmark
        from dfabench.scoring import task_from_record

        spec = next((task_from_record(task_id, e.record["tasks"][task_id], e.path) for e in entries
                     if e.record.get("tasks", {}).get(task_id, {}).get("fingerprint") == fingerprint), None)
        if spec is not None:
            try:
                pool = load_benchmark(bench).select(split if isinstance(split, str) else None)
            except DfabenchError:
                pool = None  # its entries did not verify against it: fall back to the entries' own
            if pool is not None:
                return select_samples(spec, pool, str(split), None)[1]["ids_sha256"]
    seen: Counter = Counter()
    sizes: dict[Any, int] = {}
    for entry in entries:
        info = entry.record.get("tasks", {}).get(task_id) or {}
        if info.get("fingerprint") == fingerprint and is_complete(info.get("selection")) and not str(
                info.get("status", "")).startswith("n/a"):
            seen[info["selection"].get("ids_sha256")] += 1
            sizes[info["selection"].get("ids_sha256")] = info["selection"]["n"]
    # a tie goes to the larger set: a subset of the split is what a cherry-picked entry answers
    return max(seen, key=lambda ids: (seen[ids], sizes[ids], str(ids))) if seen else None
