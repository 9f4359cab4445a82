"""``dfabench export lmms-eval``: DFA-Bench tasks that lmms-eval runs and scores the dfabench way.

For each task (DF-D, DF-C, AD: every generative task with one prompt and one plain reference) it
writes into ``TASKS_DIR``:

- ``dfabench_<task>.jsonl``: one document per sample of the chosen split (sample id, absolute
  image path, the task prompt, the reference, label/category/technique/source id);
- ``dfabench_<task>.yaml``: an lmms-eval task (``dataset_path: json`` with
  ``dataset_kwargs.data_files`` pointing at that JSONL, ``doc_to_visual`` / ``doc_to_text`` /
  ``doc_to_target`` / ``process_results`` and one aggregation per metric as ``!function utils.x``,
  the task's generation settings);

and once: ``utils.py`` (the functions; it imports dfabench's parsers and calls dfabench's own
scoring, :func:`dfabench.scoring.score_records`, so lmms-eval reports the numbers dfabench would
report for the same answers), ``dfabench_export.json`` (what was exported: dfabench version,
benchmark and task fingerprints, split, counts) and ``README.md`` (the command to run).

Run with ``lmms-eval --model llava_hf --model_args pretrained=... --tasks dfabench_df_d
--include_path TASKS_DIR``; dfabench must be importable in lmms-eval's environment.

What lmms-eval cannot give is left out, never faked: DF-D's AUC/AP/EER (lmms-eval's
``generate_until`` returns text, no log-probabilities), the LLM-judge score (``dfabench judge``),
FC (multi-turn history) and FL (masks). A metric that cannot be computed (e.g. METEOR without
WordNet) is reported as NaN with the reason in the log, never as 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.plugins import get_manager, get_task
from dfabench.selection import takes

#: what an exported task's answer may be compared with: lmms-eval documents carry one image, one prompt
#: and one reference (FC's multi-turn history and FL's masks do not fit)
EXPORTABLE_REFERENCES = ("label", "category", "description")
#: metric provider -> the metrics it gives that lmms-eval can aggregate (providers not listed,
#: such as ``ranking`` and ``judge``, need what lmms-eval does not give)
PROVIDER_METRICS: dict[str, tuple[str, ...]] = {
    "detection": ("accuracy", "balanced_accuracy"),
    "classification": ("accuracy", "macro_f1"),
    "text": ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider"),
    "meteor": ("meteor",),
    "embedding_similarity": ("embedding_similarity",),
}
#: metrics every exported task also reports (counts, lower is better)
COUNT_METRICS = ("n_unparsed",)
EXPORT_FILE = "dfabench_export.json"


def exportable(spec: Any) -> bool:
    """Whether a task can be exported: a generative task with one prompt and one plain reference."""
    return spec.reference in EXPORTABLE_REFERENCES and "generate" in spec.requires


def default_tasks() -> list[str]:
    """Every registered exportable task, in the tasks' listed order (DF-D, DF-C, AD with the core alone)."""
    registry = get_manager().tasks
    return [spec.id for spec in sorted((registry.entries[n] for n in registry), key=lambda t: t.sort_key)
            if exportable(spec)]


def lmms_task_name(task_id: str) -> str:
    """``DF-D`` -> ``dfabench_df_d``."""
    return "dfabench_" + task_id.lower().replace("-", "_")


def export_lmms_eval(bench: Path, out: Path, tasks: list[str] | None = None, split: str | None = None) -> list[Path]:
    """Write lmms-eval task files for ``tasks`` of the benchmark ``bench`` into ``out``.

    ``split``: a split name, ``all``, or ``None`` (``test`` when the benchmark has one, else all).
    Returns the paths written. Raises :class:`DfabenchError` for a task that cannot be exported
    or a split with no sample for a task.
    """
    from dfabench import __version__
    from dfabench.data.manifest import load_benchmark

    benchmark = load_benchmark(bench)
    if split is None or split == "auto":
        split = "test" if any(s.split == "test" for s in benchmark.samples) else "all"
    pool = benchmark.select(split)
    specs = []
    for name in tasks or default_tasks():
        spec = get_task(name)
        if "generate" not in spec.requires:
            raise DfabenchError(f"task {spec.id} does not ask a generative model")
        if not exportable(spec):
            raise DfabenchError(f"task {spec.id} cannot be exported to lmms-eval (exportable: "
                                f"{', '.join(default_tasks())}): its reference is {spec.reference!r}, and lmms-eval "
                                "documents carry one prompt and one plain reference (no multi-turn history, no masks)")
        if spec not in specs:
            specs.append(spec)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    benchmark.check_files(s for s in pool if any(takes(spec, s) for spec in specs))
    written: list[Path] = []
    manifest: dict[str, Any] = {
        "dfabench_version": __version__,
        "benchmark": {"path": str(benchmark.root.resolve()), "name": benchmark.name,
                      "fingerprint": benchmark.fingerprint(), "split": split},
        "tasks": {},
    }
    for spec in specs:
        samples = [s for s in pool if takes(spec, s)]
        if not samples:
            raise DfabenchError(f"task {spec.id}: no sample of split {split!r} of {benchmark.root} is usable "
                                f"(the task takes '{spec.samples}' samples)")
        name = lmms_task_name(spec.id)
        metrics = [m for provider in spec.metrics for m in PROVIDER_METRICS.get(provider, ())]
        metrics = list(dict.fromkeys(metrics))
        docs_path = out / f"{name}.jsonl"
        _write_docs(docs_path, spec, samples, benchmark)
        yaml_path = out / f"{name}.yaml"
        _write_text(yaml_path, _task_yaml(name, spec, docs_path.resolve(), metrics, benchmark.fingerprint()))
        written += [yaml_path, docs_path]
        manifest["tasks"][spec.id] = {
            "lmms_task": name, "version": spec.version, "fingerprint": spec.fingerprint, "parser": spec.parser,
            "prompt": _full_prompt(spec), "metrics": metrics + list(COUNT_METRICS), "n": len(samples),
            "left_out": [p for p in spec.metrics if p not in PROVIDER_METRICS],
        }
    manifest_path = out / EXPORT_FILE
    _write_text(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    utils_path = out / "utils.py"
    _write_text(utils_path, UTILS_PY)
    readme_path = out / "README.md"
    _write_text(readme_path, _readme(out, manifest))
    return written + [utils_path, manifest_path, readme_path]


def _full_prompt(spec) -> str:
    """The task prompt as one text (lmms-eval tasks carry no system turn: it goes in front)."""
    return f"{spec.system}\n\n{spec.prompt}" if spec.system else spec.prompt


def _write_text(path: Path, text: str) -> None:
    from dfabench.store import atomic_write_text

    atomic_write_text(path, text)


def _write_docs(path: Path, spec, samples, benchmark) -> None:
    prompt = _full_prompt(spec)
    lines = []
    for index, sample in enumerate(samples):
        reference = spec.reference_of(sample)
        doc = {
            "doc_index": index, "id": sample.id, "task": spec.id, "image_path": str(benchmark.path_of(sample.image)
                                                                                    .resolve()),
            "prompt": prompt, "parser": spec.parser, "reference": reference, "label": sample.label,
            "category": sample.category, "technique": sample.technique, "source_id": sample.source_id,
        }
        lines.append(json.dumps(doc, ensure_ascii=False))
    _write_text(path, "\n".join(lines) + "\n")


def _q(value: Any) -> str:
    """A YAML scalar (JSON strings and numbers are valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def _task_yaml(name: str, spec, docs_path: Path, metrics: list[str], bench_fingerprint: str) -> str:
    settings = spec.generation
    lines = [
        f"# Generated by `dfabench export lmms-eval`: DFA-Bench task {spec.id} v{spec.version}.",
        "# Do not edit: re-export instead (the prompt and scoring come from the dfabench task spec).",
        f"task: {name}",
        "dataset_path: json",
        "dataset_kwargs:",
        "  data_files:",
        f"    test: {_q(str(docs_path))}",
        "test_split: test",
        "output_type: generate_until",
        "doc_to_visual: !function utils.doc_to_visual",
        "doc_to_text: !function utils.doc_to_text",
        "doc_to_target: !function utils.doc_to_target",
        "process_results: !function utils.process_results",
        "generation_kwargs:",
        f"  max_new_tokens: {int(settings.max_new_tokens)}",
        f"  temperature: {float(settings.temperature)}",
        f"  top_p: {float(settings.top_p)}",
        "  num_beams: 1",
        f"  do_sample: {'true' if settings.temperature > 0 else 'false'}",
        "metric_list:",
    ]
    for metric in metrics:
        lines += [f"  - metric: {metric}", f"    aggregation: !function utils.aggregate_{metric}",
                  "    higher_is_better: true"]
    for metric in COUNT_METRICS:
        lines += [f"  - metric: {metric}", f"    aggregation: !function utils.aggregate_{metric}",
                  "    higher_is_better: false"]
    lines += [
        "metadata:",
        f"  version: {_q(spec.version)}",
        f"  dfabench_task: {_q(spec.id)}",
        f"  dfabench_task_fingerprint: {_q(spec.fingerprint)}",
        f"  dfabench_benchmark_fingerprint: {_q(bench_fingerprint)}",
    ]
    return "\n".join(lines) + "\n"


def _readme(out: Path, manifest: dict[str, Any]) -> str:
    names = ",".join(t["lmms_task"] for t in manifest["tasks"].values())
    rows = "\n".join(f"| {task} | `{info['lmms_task']}` | {info['n']} | {', '.join(info['metrics'])} |"
                     for task, info in manifest["tasks"].items())
    return f"""# DFA-Bench tasks for lmms-eval (exported by dfabench {manifest['dfabench_version']})

Benchmark `{manifest['benchmark']['name']}`, split `{manifest['benchmark']['split']}`,
fingerprint `{manifest['benchmark']['fingerprint']}`.

| dfabench task | lmms-eval task | samples | metrics |
|---|---|---|---|
{rows}

Run (dfabench must be installed in lmms-eval's environment; the documents point at the
benchmark's images by absolute path, so re-export after moving the benchmark):

```
HF_DATASETS_OFFLINE=1 python -m lmms_eval --model llava_hf \\
    --model_args pretrained=llava-hf/llava-1.5-7b-hf --tasks {names} \\
    --include_path {out.resolve()} --batch_size 1 --output_path lmms-out/ --log_samples
```

Answers are parsed by dfabench's parsers and scored by dfabench's metric providers (same code,
same numbers as `dfabench run`). Not exported: DF-D's AUC/AP/EER (needs answer
log-probabilities), the LLM-judge score (`dfabench judge`), FC and FL. `n_unparsed` counts
answers the parser could not read (they count as wrong in accuracy, as in dfabench). A NaN
means the metric could not be computed (the reason is logged), never a score of 0.
"""


UTILS_PY = '''"""lmms-eval task functions for DFA-Bench tasks exported by `dfabench export lmms-eval`.

Generated file: do not edit, re-export. It needs dfabench importable in lmms-eval's
environment: answers are parsed with dfabench's parsers and scored with dfabench's own
scoring (dfabench.scoring.score_records), so the numbers are those dfabench gives.
"""

import json
import logging
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_EXPORT = json.loads((_HERE / "dfabench_export.json").read_text(encoding="utf-8"))
_LOG = logging.getLogger("dfabench.export")
_WARNED = set()
_SCORED = {}


def doc_to_visual(doc):
    from dfabench.images import open_rgb

    return [open_rgb(doc["image_path"])]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['prompt']}{kwargs.get('post_prompt', '')}"


def doc_to_target(doc):
    reference = doc["reference"]
    return reference if isinstance(reference, str) else json.dumps(reference)


def _answer_text(results):
    if not results:
        return ""
    answer = results[0]
    if isinstance(answer, (list, tuple)) and answer and isinstance(answer[0], str):
        answer = answer[0]
    return answer if isinstance(answer, str) else str(getattr(answer, "text", answer))


def sample_record(doc, text):
    """The per-sample record dfabench would log for this answer (see dfabench.store)."""
    from dfabench.plugins import get_manager

    parsed = get_manager().parsers.get(doc["parser"]).load()(text)
    return {"id": doc["id"], "task": doc["task"], "label": doc["label"], "category": doc["category"],
            "technique": doc["technique"], "source_id": doc["source_id"], "prompt": doc["prompt"],
            "reference": doc["reference"], "response": text, "parsed": parsed, "unparsed": parsed is None,
            "score": None, "category_scores": None, "error": None, "metrics": {}}


def process_results(doc, results):
    # wrapped: lmms-eval reads a "score" key of a dict item as a number (its CLT stderr)
    item = {"dfabench_record": sample_record(doc, _answer_text(results))}
    return {metric: item for metric in _EXPORT["tasks"][doc["task"]]["metrics"]}


def _task_spec(task_id):
    from dfabench.plugins import get_task

    spec = get_task(task_id)
    exported = _EXPORT["tasks"][task_id]["fingerprint"]
    if spec.fingerprint != exported and task_id not in _WARNED:
        _WARNED.add(task_id)
        _LOG.warning("dfabench task %s changed since the export (fingerprint %s, exported %s): "
                     "scoring with the installed spec; re-export to compare like with like",
                     task_id, spec.fingerprint[:12], exported[:12])
    return spec


def score(records):
    """dfabench's scores (dfabench.scoring.TaskScores) of the per-sample records of one task."""
    from dfabench.scoring import score_records

    task_id = records[0]["task"]
    key = (task_id, json.dumps(records, sort_keys=True, default=str))
    if key not in _SCORED:
        _SCORED.clear()
        _SCORED[key] = score_records(_task_spec(task_id), [dict(r) for r in records], n_boot=1)
    return _SCORED[key]


def _metric(name, items):
    if not items:
        return float("nan")
    records = [item["dfabench_record"] if "dfabench_record" in item else item for item in items]
    if name == "n_unparsed":
        return score(records).counts["n_unparsed"]
    result = score(records).metrics.get(name)
    if result is None or result.get("value") is None:
        reason = (result or {}).get("reason") or "not computed (see the metric errors above)"
        _LOG.warning("dfabench %s: %s is undefined: %s", records[0]["task"], name, reason)
        return float("nan")
    return result["value"]


def _aggregator(name):
    def aggregate(items):
        return _metric(name, items)

    aggregate.__name__ = f"aggregate_{name}"
    return aggregate


'''
_AGGREGATE_NAMES = sorted({m for names in PROVIDER_METRICS.values() for m in names} | set(COUNT_METRICS))
UTILS_PY += "".join(f"aggregate_{name} = _aggregator({name!r})\n" for name in _AGGREGATE_NAMES)
del _AGGREGATE_NAMES
