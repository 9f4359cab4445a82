"""dfabench-lmms against the real lmms-eval package (run in .venv-lmms: bash .ci/lmms-env.sh).

- the ``lmms`` model runs a tiny random LLaVA through lmms-eval's ``llava_hf`` class;
- ``dfabench export lmms-eval`` writes tasks that lmms-eval's own CLI runs with ``--include_path``,
  and the numbers it reports are dfabench's for the same answers.

In an environment without lmms-eval every test here is skipped.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lmms_eval")
pytest.importorskip("dfabench_hf")

from dfabench.api import DfabenchError, GenerateRequest, GenerationSettings  # noqa: E402
from dfabench.data.manifest import write_manifest  # noqa: E402
from dfabench.export import export_lmms_eval  # noqa: E402
from dfabench.parsing import PARSERS  # noqa: E402
from dfabench.plugins import get_manager, reset_manager  # noqa: E402
from PIL import Image  # noqa: E402

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module", autouse=True)
def offline():
    saved = {k: os.environ.get(k) for k in OFFLINE}
    os.environ.update(OFFLINE)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory) -> Path:
    from dfabench_hf.testing import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("ckpt") / "tiny-llava")


@pytest.fixture(scope="module")
def lmms_model(tiny_llava):
    reset_manager()
    model = get_manager().models.get("lmms").create(lmms_model="llava_hf",
                                                    lmms_args=f"pretrained={tiny_llava},device_map=cpu")
    yield model
    model.close()


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    (root / "images").mkdir()
    kinds = [("real", None), ("real", None), ("real", None), ("fake", "FS"), ("fake", "FR"), ("fake", "FE"),
             ("fake", "EFS")]
    records = []
    for i, (label, category) in enumerate(kinds):
        Image.new("RGB", (32, 32), (30 * i, 90, 160 - 10 * i)).save(root / "images" / f"{i}.png")
        record = {"id": f"s{i}", "image": f"images/{i}.png", "label": label, "category": category,
                  "source_id": f"p{i}", "split": "test"}
        if label == "fake":
            record["description"] = f"The jawline is blurred and the skin tone of the cheek differs ({i})."
        records.append(record)
    write_manifest(root / "manifest.jsonl", records)
    return root


def request(i: int, text: str = "Has this face been forged?", history=None, max_new_tokens: int = 6):
    image = Image.new("RGB", (32, 32), (40 * i % 256, 100, 30))
    messages = history or [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    return GenerateRequest(sample_id=f"r{i}", image=image, image_path="", messages=messages, task="DF-D",
                           settings=GenerationSettings(max_new_tokens=max_new_tokens))


# ----------------------------------------------------------------------------- the lmms model


def test_the_lmms_model_runs_llava_hf_and_keeps_the_order(lmms_model):
    requests = [request(i) for i in range(3)]
    together = lmms_model.generate(requests)
    alone = [lmms_model.generate([r])[0] for r in requests]
    assert [r.error for r in together] == [None, None, None]
    assert all(isinstance(r.text, str) and r.text.strip() for r in together)
    assert [r.text for r in together] == [r.text for r in alone]
    assert all(r.completion_tokens is not None and 0 < r.completion_tokens <= 6 for r in together)


def test_answers_are_those_of_the_same_checkpoint_through_transformers(lmms_model, tiny_llava):
    hf = get_manager().models.get("hf").create(path=str(tiny_llava), device="cpu", dtype="float32")
    try:
        requests = [request(i) for i in range(2)]
        direct = hf.generate(requests)
    finally:
        hf.close()
    assert [r.text for r in lmms_model.generate(requests)] == [r.text for r in direct]


def test_history_and_the_image_reach_the_lmms_eval_class(lmms_model):
    seen = []
    original = lmms_model.lm.generate_until

    def spy(instances):
        for instance in instances:
            context, doc_to_messages, gen_kwargs, doc_id, task, split = instance.args
            seen.append((doc_to_messages(lmms_model.lm.task_dict[task][split][doc_id]), dict(gen_kwargs)))
        return original(instances)

    lmms_model.lm.generate_until = spy
    try:
        history = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Forged?"}]},
                   {"role": "assistant", "content": [{"type": "text", "text": "Yes."}]},
                   {"role": "user", "content": [{"type": "text", "text": "Why?"}]}]
        [answer] = lmms_model.generate([request(0, history=history, max_new_tokens=5)])
    finally:
        lmms_model.lm.generate_until = original
    assert answer.error is None
    [(messages, gen_kwargs)] = seen
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"][0]["type"] == "image" and isinstance(messages[0]["content"][0]["url"], Image.Image)
    assert messages[1]["content"] == [{"type": "text", "text": "Yes."}]
    assert gen_kwargs["max_new_tokens"] == 5 and gen_kwargs["do_sample"] is False


def test_identity_names_the_class_the_version_and_the_weights(lmms_model, tiny_llava):
    identity = lmms_model.identity()
    assert identity["lmms_model"] == "llava_hf" and identity["lmms_eval_version"] == "0.7.3"
    assert identity["lmms_class"].endswith("LlavaHf")
    assert identity["lmms_args"] == {"pretrained": str(tiny_llava), "device_map": "cpu"}
    assert len(identity["weights_sha256"]) == 64


def test_bad_arguments_are_one_clear_error(tiny_llava):
    entry = get_manager().models.get("lmms")
    with pytest.raises(DfabenchError, match="lmms_model"):
        entry.create()
    with pytest.raises(DfabenchError, match="no usable model"):
        entry.create(lmms_model="no_such_model_anywhere")
    with pytest.raises(DfabenchError, match="cannot create"):
        entry.create(lmms_model="llava_hf", lmms_args=f"pretrained={tiny_llava}/missing,device_map=cpu")


def test_a_dfabench_run_through_lmms(bench, tiny_llava, tmp_path):
    from dfabench.cli import main

    out = tmp_path / "run"
    code = main(["run", "--model", "lmms", "--model-arg", "lmms_model=llava_hf",
                 "--model-arg", f"lmms_args=pretrained={tiny_llava},device_map=cpu", "--tasks", "DF-D,DF-C,AD",
                 "--bench", str(bench), "--out", str(out), "--max-new-tokens", "6", "--no-progress"])
    assert code == 0
    record = json.loads((out / "run.json").read_text())
    assert {t: record["counts"][t]["n"] for t in ("DF-D", "DF-C", "AD")} == {"DF-D": 7, "DF-C": 4, "AD": 4}
    assert record["model"]["identity"]["lmms_model"] == "llava_hf"
    samples = [json.loads(line) for line in (out / "samples-DF-D.jsonl").read_text().splitlines()]
    assert all(s["response"] for s in samples if not s["error"])


# ----------------------------------------------------------------------------- export + lmms-eval's CLI


def lmms_eval_cli(tasks_dir: Path, out: Path, model: str, model_args: str, tasks: str) -> dict:
    command = [sys.executable, "-m", "lmms_eval", "--model", model, "--model_args", model_args, "--tasks", tasks,
               "--include_path", str(tasks_dir), "--output_path", str(out), "--log_samples", "--batch_size", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, **OFFLINE})
    results_files = list(out.rglob("*_results.json"))
    # lmms-eval can exit 0 after a failure (e.g. an import error inside a task or a model): a run that left
    # no single results file fails with lmms-eval's own output, not with an unpacking error
    if result.returncode != 0 or len(results_files) != 1:
        found = f"{len(results_files)} *_results.json files under {out}"
        pytest.fail(tool_failure("lmms-eval", command, result, found), pytrace=False)
    return json.loads(results_files[0].read_text())


def tool_failure(tool: str, command: list[str], result: subprocess.CompletedProcess, found: str) -> str:
    """A failure message carrying the external tool's own output (its last lines hold the cause)."""
    return (f"{tool} failed (exit code {result.returncode}; {found})\ncommand: {' '.join(command)}\n"
            f"--- stdout (last 4000 chars) ---\n{result.stdout[-4000:]}\n"
            f"--- stderr (last 8000 chars) ---\n{result.stderr[-8000:]}")


def logged_answers(out: Path, tasks_dir: Path, task: str) -> dict[str, str]:
    """Sample id -> the answer lmms-eval logged (documents are in the order of the exported JSONL)."""
    docs = [json.loads(line) for line in (tasks_dir / f"{task}.jsonl").read_text().splitlines()]
    paths = list(out.rglob(f"*_samples_{task}.jsonl"))
    assert len(paths) == 1, f"lmms-eval logged {len(paths)} sample files for {task} under {out}: {paths}"
    path = paths[0]
    answers = {}
    for line in path.read_text().splitlines():
        sample = json.loads(line)
        response = sample["filtered_resps"]
        while isinstance(response, list):
            response = response[0]
        answers[docs[sample["doc_id"]]["id"]] = response
    return answers


def test_exported_tasks_run_in_lmms_eval_and_score_like_dfabench(bench, tmp_path):
    tasks_dir = tmp_path / "tasks"
    export_lmms_eval(bench, tasks_dir, ["DF-D", "DF-C", "AD"], None)
    out = tmp_path / "out"
    results = lmms_eval_cli(tasks_dir, out, "dummy", "response=Yes.",
                            "dfabench_df_d,dfabench_df_c,dfabench_ad")["results"]
    docs = [json.loads(line) for line in (tasks_dir / "dfabench_df_d.jsonl").read_text().splitlines()]
    answers = logged_answers(out, tasks_dir, "dfabench_df_d")
    assert set(answers) == {d["id"] for d in docs}
    parsed = {d["id"]: PARSERS["detection"](answers[d["id"]]) for d in docs}
    expected_accuracy = sum(parsed[d["id"]] == d["label"] for d in docs) / len(docs)
    assert results["dfabench_df_d"]["accuracy,none"] == pytest.approx(expected_accuracy)
    assert results["dfabench_df_d"]["accuracy,none"] == pytest.approx(4 / 7)  # "yes" = fake; 4 of 7 are fake
    assert results["dfabench_df_d"]["balanced_accuracy,none"] == pytest.approx(0.5)
    assert results["dfabench_df_d"]["n_unparsed,none"] == 0
    # "Yes." names no manipulation: every DF-C answer is unparsed (and wrong)
    assert results["dfabench_df_c"]["n_unparsed,none"] == 4
    assert results["dfabench_df_c"]["accuracy,none"] == 0
    # AD: the text metrics are dfabench's own on the same answers (NaN where dfabench has no value)
    from dfabench.plugins import get_task
    from dfabench.scoring import score_records

    ad_docs = [json.loads(line) for line in (tasks_dir / "dfabench_ad.jsonl").read_text().splitlines()]
    ad_answers = logged_answers(out, tasks_dir, "dfabench_ad")
    records = [{"id": d["id"], "task": "AD", "label": d["label"], "category": d["category"],
                "technique": d["technique"], "source_id": d["source_id"], "reference": d["reference"],
                "response": ad_answers[d["id"]], "parsed": ad_answers[d["id"]], "unparsed": False, "error": None,
                "metrics": {}} for d in ad_docs]
    direct = score_records(get_task("AD"), records, n_boot=1).metrics
    assert results["dfabench_ad"]["n_unparsed,none"] == 0
    for metric in ("bleu_1", "bleu_4", "rouge_l", "cider"):
        value = results["dfabench_ad"][f"{metric},none"]
        expected = (direct.get(metric) or {}).get("value")
        assert math.isnan(value) if expected is None else value == pytest.approx(expected)


def test_exported_tasks_run_a_tiny_llava_in_lmms_eval(bench, tiny_llava, tmp_path):
    tasks_dir = tmp_path / "tasks"
    export_lmms_eval(bench, tasks_dir, ["DF-D", "DF-C"], None)  # AD's 256 new tokens are slow on a CPU
    out = tmp_path / "out"
    results = lmms_eval_cli(tasks_dir, out, "llava_hf", f"pretrained={tiny_llava},device_map=cpu,device=cpu",
                            "dfabench_df_d,dfabench_df_c")["results"]
    for task, n in (("dfabench_df_d", 7), ("dfabench_df_c", 4)):
        answers = logged_answers(out, tasks_dir, task)
        assert len(answers) == n
        unparsed = sum(PARSERS["detection" if task == "dfabench_df_d" else "category" if task == "dfabench_df_c"
                               else "text"](a) is None for a in answers.values())
        assert results[task]["n_unparsed,none"] == unparsed
