"""Test helpers for the judge: a local chat-completions server that grades like a judge, and run folders
written by hand (no runner needed).

The judge server is :class:`dfabench.testing.chat_server.ChatServer` with :func:`judge_responder`: it reads
the answer out of the rubric prompt and replies with a JSON judgment whose criteria follow from the answer
(:func:`expected_criteria`), so a test knows every score in advance. Answers containing a marker make it
misbehave for that sample only: ``[refuse]`` (a refusal), ``[garbage]`` (not JSON), ``[outofrange]``
(a criterion of 9), ``[500]`` (HTTP 500 every time), ``[hang]`` (no reply for 30 s).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from dfabench.store import SCHEMA_VERSION, RunFolder
from dfabench.tasks import TaskSpec
from dfabench.testing.chat_server import ChatServer, Fault

TASKS_DIR = Path(__file__).resolve().parents[1] / "tasks"
AD_KEYS = ("region_correctness", "artifact_correctness", "completeness", "hallucination")
#: the answer block of a nonce-delimited rubric prompt (prompt_format 2)
_ANSWER = re.compile(r"\n<candidate-([0-9a-f]{16})>\n(.*)\n</candidate-\1>\n", re.S)


def answer_of(request: dict[str, Any]) -> str:
    content = request["messages"][-1]["content"]
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
    match = _ANSWER.search(content)
    assert match, "the judge prompt has no answer block"
    return match.group(2)


def expected_criteria(answer: str, keys: tuple[str, ...] = AD_KEYS) -> dict[str, int]:
    """The criteria the test judge gives an answer: a fixed function of its text."""
    digest = hashlib.sha256(answer.strip().encode()).digest()
    return {key: digest[i] % 6 for i, key in enumerate(keys)}


def expected_score(answer: str, keys: tuple[str, ...] = AD_KEYS) -> float:
    values = expected_criteria(answer, keys)
    return sum(v / 5 for v in values.values()) / len(values)


def judge_responder(keys: tuple[str, ...] = AD_KEYS):
    def respond(request: dict[str, Any]) -> Any:
        answer = answer_of(request)
        if "[refuse]" in answer:
            return Fault.refusal("I can't grade this.")
        if "[garbage]" in answer:
            return "Sure! The answer looks pretty good overall."
        if "[500]" in answer:
            return Fault.server_error(500)
        if "[hang]" in answer:
            return Fault.hang(30)
        criteria = expected_criteria(answer, keys)
        if "[outofrange]" in answer:
            criteria[keys[0]] = 9
        return json.dumps({**criteria, "rationale": "test judge"})

    return respond


def judge_server(delay: float = 0.0, model: str = "judge-model-2026-01-01", api_key: str | None = None) -> ChatServer:
    return ChatServer(responder=judge_responder(), delay=delay, model=model, api_key=api_key)


def task_spec(task: str = "AD", metrics: tuple[str, ...] = ("judge",)) -> TaskSpec:
    data = yaml.safe_load((TASKS_DIR / f"{task.lower()}.yaml").read_text(encoding="utf-8"))
    data["metrics"] = list(metrics)
    return TaskSpec.from_dict(data)


def make_run(path: Path, answers: list[str | None], references: list[str | None] | None = None, *,
             task: str = "AD", errors: dict[int, str] | None = None, bench: Path | None = None,
             metrics: tuple[str, ...] = ("judge",), source_ids: list[str] | None = None) -> RunFolder:
    """A run folder with one text task: ``answers[i]`` is sample ``s{i}``'s parsed answer."""
    references = references or [f"The {region} shows blending artifacts and blur." for region in
                                (["eyes", "mouth", "jawline", "forehead", "nose"] * (len(answers) // 5 + 1))]
    errors = errors or {}
    spec = task_spec(task, metrics)
    records = []
    for i, answer in enumerate(answers):
        failed = errors.get(i)
        reference = references[i]
        records.append({
            "id": f"s{i}", "task": task, "image": f"images/s{i}.png", "label": "fake", "category": "FS",
            "technique": "simswap", "source_id": source_ids[i] if source_ids else f"id{i // 2}",
            "prompt": spec.prompt, "prompt_hash": "0" * 64,
            "reference": {"text": reference, "mask": None} if task == "FL" else reference,
            "response": None if failed else (answer or ""),
            "parsed": None if failed else ({"text": answer, "mask": None} if task == "FL" else answer),
            "score": None, "category_scores": None, "unparsed": not failed and not answer, "error": failed,
            "cached": False, "timings": {"model_s": 0.0}, "tokens": None, "metrics": {}, "judge": None,
        })
    folder = RunFolder(path)
    digest = folder.write_samples(task, records)
    folder.write_record({
        "schema_version": SCHEMA_VERSION, "dfabench_version": "test", "model": {"name": "constant"},
        "benchmark": {"path": str(bench) if bench else "/nonexistent-bench", "name": "test",
                      "fingerprint": _fingerprint(bench)},
        "tasks": {task: {"version": spec.version, "fingerprint": spec.fingerprint, "spec": spec.canonical()}},
        "seed": 0, "n_boot": 200, "judge": None, "metrics": {}, "counts": {}, "breakdowns": {},
        "samples": {task: {"file": f"samples-{task}.jsonl", "sha256": digest}},
    })
    return folder


def _fingerprint(bench: Path | None) -> str:
    if bench is None or not (Path(bench) / "manifest.jsonl").exists():
        return "x"
    from dfabench.data.manifest import load_benchmark

    return load_benchmark(bench).fingerprint()


def make_bench(path: Path, images: dict[str, bytes | None]) -> Path:
    """A benchmark folder whose manifest lists each sample id of ``images`` with ``images/ID.png``, holding
    ``images[id]`` (None: listed, but the file is missing)."""
    from dfabench.data.manifest import write_manifest

    (path / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for sample_id, data in images.items():
        if data is not None:
            (path / "images" / f"{sample_id}.png").write_bytes(data)
        records.append({"id": sample_id, "image": f"images/{sample_id}.png", "label": "fake", "category": "FS"})
    write_manifest(path / "manifest.jsonl", records)
    return path
