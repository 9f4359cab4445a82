"""``dfabench import-predictions``: prediction files that a paper released become a normal run folder.

Reviewers often receive predictions, not models. :func:`import_predictions` reads them
(:func:`read_predictions`), then runs the ordinary predict and score stages (:func:`dfabench.runner.run`) with
a model that answers every request from those files (:class:`ImportedModel`): the run folder has the same
per-sample records, masks, hashes and transaction as any run, so ``dfabench score``, ``dfabench verify`` and
``dfabench leaderboard submit`` take it as they take any run.

It is marked as imported: its model is named by the declared ``--model-name``, and its identity
(``run.json["model"]["identity"]["imported_predictions"]``) holds the format and the SHA-256 of the prediction
files (the JSON lines and every mask file they name, in order): the fingerprint changes when any of them does.

Formats (:data:`FORMATS`):

- ``mmtt``: the MMTT / ForgeryTalker release, JSON lines (or a JSON list) ``{image_id, img_path, caption}``
  plus one PNG mask per image at ``<masks>/<img_path without its extension>.png``; task FL;
- ``jsonl``: generic JSON lines ``{id, task?, text?, score?, categories?, mask?}`` (``score``: P(fake);
  ``categories``: probabilities over FS/FR/FE/EFS; ``mask``: a path relative to the file's folder);
- ``lmms-eval``: the ``--log_samples`` JSON lines of the tasks ``dfabench export lmms-eval`` wrote (each line's
  ``doc`` carries the sample id and task; the answer is ``filtered_resps`` or ``resps``).

What cannot be used is counted per sample and listed in ``import-report.json`` in the run folder: ids the
benchmark does not have, duplicate ids (the first is kept), benchmark samples without a prediction (failed
samples), missing or unreadable masks (scored as no mask, outside coverage). ``strict`` refuses the import
when there is any.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError, InputError
from dfabench.models import GenerateRequest, Model, Response, ScoreRequest, Scores

FORMATS = ("mmtt", "jsonl", "lmms-eval")
_REGISTRATIONS = itertools.count()
REPORT_FILE = "import-report.json"
#: the task of a format whose lines do not name one
_DEFAULT_TASK = {"mmtt": "FL"}


@dataclass
class Prediction:
    """One sample's released answer. ``mask``: the mask file's path (absolute), when the format gives one."""

    sample_id: str
    task: str | None
    where: str
    text: str | None = None
    fake: float | None = None
    categories: dict[str, float] | None = None
    mask: str | None = None


@dataclass
class PredictionSet:
    """What :func:`read_predictions` read: the predictions by (task, id), the files' digest, the problems."""

    format: str
    files: list[str]
    sha256: str
    by_task: dict[str | None, dict[str, Prediction]] = field(default_factory=dict)
    #: (where, sample id or None, problem), in file order
    problems: list[tuple[str, str | None, str]] = field(default_factory=list)

    def find(self, task: str, sample_id: str) -> Prediction | None:
        return (self.by_task.get(task) or {}).get(sample_id) or (self.by_task.get(None) or {}).get(sample_id)

    @property
    def tasks(self) -> list[str]:
        return sorted(t for t in self.by_task if t is not None)


def _lines(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, parsed value) of each record of a JSON-lines file, or of a JSON list."""
    from dfabench.records import loads_json

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the prediction file ({exc})") from None
    if text.lstrip().startswith("["):
        values = loads_json(text, path)
        if not isinstance(values, list):
            raise InputError(path, "expected JSON lines or a JSON list of predictions")
        for index, value in enumerate(values):
            yield f"{path.name}: record {index}", value
        return
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield f"{path.name}: line {number}", loads_json(line, path, f"line {number}")
            except InputError as exc:  # one bad line is a counted problem (--strict refuses), not the end
                yield f"{path.name}: line {number}", _Unreadable(str(exc).rsplit(": ", 1)[-1])


class _Unreadable:
    """A line of a prediction file that is not JSON (its reason)."""

    def __init__(self, reason: str):
        self.reason = reason


def _text(value: Any) -> str | None:
    while isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) else None


def _mmtt(where: str, item: dict[str, Any], src: Path, masks: Path | None) -> Prediction:
    raw_id = item.get("image_id")
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or raw_id == "":
        raise ValueError("'image_id' must be a non-empty string or an integer")
    image = item.get("img_path") or item.get("relative_path")
    mask = os.path.join(masks, os.path.splitext(image)[0] + ".png") if isinstance(image, str) and masks else None
    return Prediction(str(raw_id), None, where, text=_text(item.get("caption")), mask=mask)


def _jsonl(where: str, item: dict[str, Any], src: Path, masks: Path | None) -> Prediction:
    raw_id = item.get("id")
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or raw_id == "":
        raise ValueError("'id' must be a non-empty string or an integer")
    fake, categories = item.get("score"), item.get("categories")
    if fake is not None and (not isinstance(fake, (int, float)) or isinstance(fake, bool) or not 0 <= fake <= 1):
        raise ValueError("'score' must be a probability in [0, 1]")
    if categories is not None and not (isinstance(categories, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in categories.values())):
        raise ValueError("'categories' must map category names to probabilities")
    mask = item.get("mask")
    if mask is not None and not isinstance(mask, str):
        raise ValueError("'mask' must be a path")
    task = item.get("task")
    return Prediction(str(raw_id), task if isinstance(task, str) and task else None, where,
                      text=_text(item.get("text", item.get("answer"))), fake=fake, categories=categories,
                      mask=os.path.join(masks or src.parent, mask) if mask else None)


def _lmms_eval(where: str, item: dict[str, Any], src: Path, masks: Path | None) -> Prediction:
    doc = item.get("doc")
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not isinstance(doc.get("task"), str):
        raise ValueError("'doc' must be the exported document, with its 'id' and 'task' (was the task exported "
                         "by `dfabench export lmms-eval` and run with --log_samples?)")
    text = _text(item.get("filtered_resps")) if item.get("filtered_resps") is not None else _text(item.get("resps"))
    if text is None:
        raise ValueError("no answer text in 'filtered_resps' or 'resps'")
    return Prediction(doc["id"], doc["task"], where, text=text)


_READERS = {"mmtt": _mmtt, "jsonl": _jsonl, "lmms-eval": _lmms_eval}


def read_predictions(fmt: str, src: str | Path, masks: str | Path | None = None) -> PredictionSet:
    """Read the prediction file ``src`` of format ``fmt``; a line that is not an object of the format is one
    problem (with its line), a broken file one :class:`InputError`."""
    if fmt not in _READERS:
        raise DfabenchError(f"unknown prediction format {fmt!r} (known: {', '.join(FORMATS)})")
    src = Path(src)
    if masks is None and fmt == "mmtt" and (src.parent / "masks").is_dir():
        masks = src.parent / "masks"
    masks = Path(masks) if masks is not None else None
    read, default_task = _READERS[fmt], _DEFAULT_TASK.get(fmt)
    out = PredictionSet(fmt, [str(src)], "")
    for where, item in _lines(src):
        if isinstance(item, _Unreadable):
            out.problems.append((where, None, f"malformed line: {item.reason}"))
            continue
        if not isinstance(item, dict):
            out.problems.append((where, None, "malformed record: expected a JSON object"))
            continue
        try:
            prediction = read(where, item, src, masks)
        except ValueError as exc:
            out.problems.append((where, None, f"malformed record: {exc}"))
            continue
        prediction.task = prediction.task or default_task
        seen = out.by_task.setdefault(prediction.task, {})
        if prediction.sample_id in seen:
            first = seen[prediction.sample_id].where
            out.problems.append((where, prediction.sample_id, f"duplicate id (the first, {first}, is kept)"))
            continue
        seen[prediction.sample_id] = prediction
    out.sha256 = _digest(src, out)
    return out


def _digest(src: Path, predictions: PredictionSet) -> str:
    """SHA-256 over the prediction file and every mask file it names (path and bytes, in order)."""
    digest = hashlib.sha256(src.read_bytes())
    for by_id in predictions.by_task.values():
        for prediction in by_id.values():
            if prediction.mask and os.path.isfile(prediction.mask):
                digest.update(os.path.relpath(prediction.mask, src.parent).encode() + b"\0")
                digest.update(hashlib.sha256(Path(prediction.mask).read_bytes()).digest())
    return digest.hexdigest()


def _score_as_logprobs(prediction: Prediction, request: GenerateRequest) -> dict[str, float] | None:
    """A prediction's P(fake) as the log-probabilities of the task's two answer options (its ``fake_choice`` gets
    P(fake)), or None when there is no score or the task has no options."""
    import math

    from dfabench.plugins import get_task

    if prediction.fake is None or len(request.choices) != 2:
        return None
    fake_choice = get_task(request.task).fake_choice
    if fake_choice not in request.choices:
        return None
    other = next(c for c in request.choices if c != fake_choice)
    fake = min(max(float(prediction.fake), 1e-12), 1 - 1e-12)
    return {fake_choice: math.log(fake), other: math.log(1 - fake)}


class ImportedModel(Model):
    """Answers each request from a :class:`PredictionSet`; what cannot be used is noted in :attr:`problems`."""

    deterministic = True
    default_batch_size = 64

    def __init__(self, predictions: PredictionSet, model_name: str):
        self.predictions = predictions
        self.model_name = model_name
        self.problems: list[tuple[str, str | None, str]] = []
        caps = set()
        for by_id in predictions.by_task.values():
            for p in by_id.values():
                caps |= {"generate"} if p.text is not None else set()
                caps |= {"score"} if p.fake is not None or p.categories else set()
                caps |= {"localize"} if p.task == "FL" or p.mask else set()
        self.capabilities = frozenset(caps or {"generate"})

    def identity(self) -> dict[str, Any]:
        return {"imported_predictions": {"format": self.predictions.format, "sha256": self.predictions.sha256,
                                         "model_name": self.model_name}}

    def _find(self, task: str, sample_id: str) -> Prediction | None:
        prediction = self.predictions.find(task, sample_id)
        if prediction is None:
            self.problems.append((task, sample_id, "the benchmark sample has no prediction (a failed sample)"))
        return prediction

    def _mask(self, prediction: Prediction, size: tuple[int, int] | None):
        """The mask as the MMTT script reads it (grey, nearest-neighbour to the image's size), or None."""
        import numpy as np
        from PIL import Image

        from dfabench.images import apply_pixel_limit

        if not prediction.mask:
            return None
        apply_pixel_limit()
        try:
            with Image.open(prediction.mask) as image:
                image = image.convert("L")
                if size is not None and image.size != tuple(size):
                    image = image.resize(tuple(size), Image.NEAREST)
                return np.asarray(image)
        except FileNotFoundError:
            problem = f"the mask file {prediction.mask} is missing"
        except (OSError, ValueError) as exc:
            problem = f"the mask file {prediction.mask} cannot be read ({exc})"
        self.problems.append((prediction.where, prediction.sample_id, problem))
        return None

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        out = []
        for request in requests:
            prediction = self._find(request.task, request.sample_id)
            if prediction is None:
                out.append(Response(error="no prediction for this sample in the imported files"))
            elif (prediction.text is None and request.reference != "mask_and_description"
                  and not _score_as_logprobs(prediction, request)):
                out.append(Response(error="the imported prediction has no text"))
            else:
                mask = None
                if request.reference == "mask_and_description":
                    mask = self._mask(prediction, getattr(request.image, "size", None))
                # a P(fake) given beside (or instead of) the text is kept: as the two answer options'
                # log-probabilities, which the DF-D task turns back into the same probability
                out.append(Response(text=prediction.text or "", mask=mask,
                                    choice_logprobs=_score_as_logprobs(prediction, request)))
        return out

    def score(self, requests: list[ScoreRequest]) -> list[Scores]:
        out = []
        for request in requests:
            prediction = self._find(request.task, request.sample_id)
            if prediction is None or (prediction.fake is None and not prediction.categories):
                out.append(Scores(error="no imported score for this sample"))
            else:
                out.append(Scores(fake=prediction.fake, categories=prediction.categories))
        return out


def import_predictions(fmt: str, src: str | Path, bench: str | Path, out: str | Path, *, model_name: str | None = None,
                       masks: str | Path | None = None, tasks: list[str] | None = None, strict: bool = False,
                       split: str | None = "auto", command: list[str] | None = None) -> tuple[dict[str, Any], dict]:
    """Import the predictions ``src`` against the benchmark ``bench`` into the run folder ``out``; returns the
    run record and the import report (also written to ``out/import-report.json``)."""
    from dfabench import __version__
    from dfabench.data.manifest import load_benchmark
    from dfabench.entries import ModelEntry
    from dfabench.plugins import get_manager, get_task
    from dfabench.runner import RunOptions, run
    from dfabench.store import RunFolder

    predictions = read_predictions(fmt, src, masks)
    known = {sample.id for sample in load_benchmark(bench).samples}
    for by_id in predictions.by_task.values():
        for sample_id in [i for i in by_id if i not in known]:
            predictions.problems.append((by_id.pop(sample_id).where, sample_id, "the benchmark has no such id"))
    if strict and predictions.problems:
        raise InputError(src, _first_problems(predictions.problems, "the predictions"))
    task_ids = tasks or predictions.tasks
    if not task_ids:
        raise DfabenchError(f"{src}: the predictions name no task; pass --tasks")
    model_name = model_name or Path(src).stem
    if strict:
        _strict_check(predictions, bench, task_ids, split, src)
    model = ImportedModel(predictions, model_name)
    # a registration of this process only, under a key no plugin can claim; the run names the declared model
    key = f"imported-predictions:{predictions.sha256[:16]}:{next(_REGISTRATIONS)}"
    get_manager().models.add(key, ModelEntry(model_name, lambda: model, (), tuple(sorted(model.capabilities)),
                                             "predictions imported from released files", "dfabench", "dfabench",
                                             __version__, __name__))
    record = run(RunOptions(model=key, tasks=[get_task(t) for t in task_ids], bench=str(bench), out=Path(out),
                            split=split, progress=False, command=command or []))
    for task_id in task_ids:  # predictions for samples the run did not take (another split): said, not dropped
        asked = {str(r["id"]) for r in RunFolder(out).read_samples(task_id)} if task_id in record["samples"] else set()
        for sample_id, prediction in sorted((predictions.by_task.get(task_id) or {}).items()):
            if sample_id not in asked:
                predictions.problems.append((prediction.where, sample_id, f"not in the run's selection of task "
                                             f"{task_id} (split {record['benchmark'].get('split')}): not scored"))
    if strict and model.problems:
        raise InputError(src, _first_problems(model.problems, "the imported run") + f" (the run in {out} is kept)")
    report = _report(predictions, model, record)
    with RunFolder(out).transaction() as tx:
        tx.write_text(REPORT_FILE, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return record, report


def _strict_check(predictions: PredictionSet, bench: str | Path, task_ids: list[str], split: str | None,
                  src: str | Path) -> None:
    """--strict, before anything is written: every sample the run will take has a prediction, and every mask
    file named exists; else one :class:`InputError`."""
    from dfabench.data.manifest import load_benchmark
    from dfabench.plugins import get_task
    from dfabench.runner import select_split
    from dfabench.selection import select_samples

    benchmark = load_benchmark(bench)
    split_name, pool = select_split(benchmark, split)
    problems: list[tuple[str, str | None, str]] = []
    for task_id in task_ids:
        chosen, _ = select_samples(get_task(task_id), pool, split_name)
        by_id = predictions.by_task.get(task_id) or {}
        for sample in chosen:
            prediction = by_id.get(sample.id)
            if prediction is None:
                problems.append((task_id, sample.id, "the benchmark sample has no prediction"))
            elif prediction.mask and not os.path.isfile(prediction.mask):
                problems.append((prediction.where, sample.id, f"the mask file {prediction.mask} is missing"))
        taken = {s.id for s in chosen}
        problems += [(p.where, i, f"not in split {split_name} of the benchmark") for i, p in sorted(by_id.items())
                     if i not in taken]
    if problems:
        raise InputError(src, _first_problems(problems, "the predictions") + " (nothing was written)")


def _first_problems(problems: list[tuple[str, str | None, str]], what: str) -> str:
    shown = "; ".join(f"{where}{f' (id {i!r})' if i else ''}: {problem}" for where, i, problem in problems[:3])
    more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
    return f"{len(problems)} problems in {what} (--strict): {shown}{more}"


def _report(predictions: PredictionSet, model: ImportedModel, record: dict[str, Any]) -> dict[str, Any]:
    from collections import Counter

    problems = [{"where": where, "id": sample_id, "problem": problem}
                for where, sample_id, problem in (*predictions.problems, *model.problems)]
    kinds = Counter(_kind(p["problem"]) for p in problems)
    return {"format": predictions.format, "files": predictions.files, "sha256": predictions.sha256,
            "model": record["model"]["name"], "tasks": sorted(record.get("tasks", {})),
            "n_predictions": sum(len(v) for v in predictions.by_task.values()), "counts": dict(sorted(kinds.items())),
            "problems": problems}


def _kind(problem: str) -> str:
    for marker, kind in (("no such id", "unknown_id"), ("duplicate", "duplicate"), ("no prediction", "no_prediction"),
                         ("is missing", "missing_mask"), ("cannot be read", "unreadable_mask"),
                         ("malformed", "malformed"), ("not in the run's selection", "not_in_selection")):
        if marker in problem:
            return kind
    return "other"
