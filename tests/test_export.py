"""`dfabench export lmms-eval`: task files lmms-eval can run, scored the dfabench way.

These tests need no lmms-eval: they read the YAML the way lmms-eval does (with a constructor
for ``!function``), import the generated utils.py and feed it answers. The lmms-eval run itself
is tested in plugins/dfabench-lmms (in the lmms-eval environment, .ci/lmms-env.sh).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import yaml

from dfabench.errors import DfabenchError
from dfabench.export import export_lmms_eval, lmms_task_name
from dfabench.parsing import parse_category, parse_detection
from dfabench.plugins import get_task

sys.path.insert(0, str(Path(__file__).parent))
from benchmaker import make_benchmark  # noqa: E402


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))


def read_yaml(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def import_utils(folder: Path):
    name = f"exported_utils_{abs(hash(str(folder)))}"
    spec = importlib.util.spec_from_file_location(name, folder / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench(tmp_path) -> Path:
    return make_benchmark(tmp_path / "bench", n_real=6, n_per_category=2)


@pytest.fixture
def exported(bench, tmp_path) -> Path:
    out = tmp_path / "tasks"
    export_lmms_eval(bench, out, None, None)
    return out


def test_the_task_files_name_the_data_the_functions_and_the_settings(exported, bench):
    written = sorted(p.name for p in exported.iterdir())
    assert written == sorted(["dfabench_df_d.yaml", "dfabench_df_d.jsonl", "dfabench_df_c.yaml",
                              "dfabench_df_c.jsonl", "dfabench_ad.yaml", "dfabench_ad.jsonl", "utils.py",
                              "dfabench_export.json", "README.md"])
    for task_id, n in (("DF-D", 14), ("DF-C", 8), ("AD", 8)):
        spec = get_task(task_id)
        config = read_yaml(exported / f"{lmms_task_name(task_id)}.yaml")
        assert config["task"] == lmms_task_name(task_id)
        assert config["dataset_path"] == "json" and config["test_split"] == "test"
        data_file = Path(config["dataset_kwargs"]["data_files"]["test"])
        assert data_file.is_absolute() and data_file == (exported / f"{lmms_task_name(task_id)}.jsonl").resolve()
        assert config["output_type"] == "generate_until"
        for key in ("doc_to_visual", "doc_to_text", "doc_to_target", "process_results"):
            assert config[key] == ("function", f"utils.{key}")
        assert config["generation_kwargs"]["max_new_tokens"] == spec.generation.max_new_tokens
        assert config["generation_kwargs"]["do_sample"] is False
        assert config["metadata"]["dfabench_task_fingerprint"] == spec.fingerprint
        docs = [json.loads(line) for line in data_file.read_text().splitlines()]
        assert len(docs) == n and all(d["prompt"] == spec.prompt and d["task"] == task_id for d in docs)
        assert all(Path(d["image_path"]).is_file() for d in docs)
        metrics = [m["metric"] for m in config["metric_list"]]
        assert all(m["aggregation"] == ("function", f"utils.aggregate_{m['metric']}") for m in config["metric_list"])
        assert "n_unparsed" in metrics
        if task_id == "DF-D":
            assert metrics == ["accuracy", "balanced_accuracy", "n_unparsed"]  # no AUC: no log-probabilities
        if task_id == "AD":
            assert {"bleu_4", "rouge_l", "cider"} <= set(metrics) and "judge_score" not in metrics
    manifest = json.loads((exported / "dfabench_export.json").read_text())
    assert manifest["benchmark"]["split"] == "test"
    assert manifest["tasks"]["DF-D"]["left_out"] == ["ranking", "video"]  # both need scores


def test_the_generated_functions_give_the_image_the_prompt_and_the_target(exported):
    utils = import_utils(exported)
    doc = json.loads((exported / "dfabench_df_c.jsonl").read_text().splitlines()[0])
    [image] = utils.doc_to_visual(doc)
    assert image.mode == "RGB" and image.size == (16, 16)
    assert utils.doc_to_text(doc) == get_task("DF-C").prompt
    assert utils.doc_to_text(doc, {"pre_prompt": "<< ", "post_prompt": " >>"}) == f"<< {get_task('DF-C').prompt} >>"
    assert utils.doc_to_target(doc) == doc["category"]


def run_like_lmms_eval(utils, folder: Path, task_id: str, answer_for) -> dict:
    """What lmms-eval does with a generate_until task: process_results per doc, then aggregate."""
    config = read_yaml(folder / f"{lmms_task_name(task_id)}.yaml")
    docs = [json.loads(line) for line in (folder / f"{lmms_task_name(task_id)}.jsonl").read_text().splitlines()]
    per_metric: dict[str, list] = {}
    for doc in docs:
        for metric, value in utils.process_results(doc, [answer_for(doc)]).items():
            per_metric.setdefault(metric, []).append(value)
    out = {}
    for entry in config["metric_list"]:
        aggregate = getattr(utils, entry["aggregation"][1].split(".", 1)[1])
        out[entry["metric"]] = aggregate(per_metric[entry["metric"]])
    return out


def test_detection_answers_are_parsed_and_scored_like_dfabench(exported):
    utils = import_utils(exported)
    docs = [json.loads(line) for line in (exported / "dfabench_df_d.jsonl").read_text().splitlines()]
    wrong, unreadable = {docs[0]["id"], docs[-1]["id"]}, docs[3]["id"]

    def answer(doc):
        if doc["id"] == unreadable:
            return "It could be real or it could be fake."
        fake = (doc["label"] == "fake") != (doc["id"] in wrong)
        return "Yes, there are blending artifacts." if fake else "No, this face has not been manipulated."

    for doc in docs:  # the answers mean what the test says they mean, to dfabench's parser
        expected = None if doc["id"] == unreadable else (doc["label"] if doc["id"] not in wrong else
                                                         {"fake": "real", "real": "fake"}[doc["label"]])
        assert parse_detection(answer(doc)) == expected
    scores = run_like_lmms_eval(utils, exported, "DF-D", answer)
    n = len(docs)
    assert scores["accuracy"] == pytest.approx((n - 3) / n)
    assert scores["n_unparsed"] == 1
    reals = [d for d in docs if d["label"] == "real"]
    fakes = [d for d in docs if d["label"] == "fake"]

    def recall(group):
        return sum(1 for d in group if d["id"] not in wrong and d["id"] != unreadable) / len(group)

    assert scores["balanced_accuracy"] == pytest.approx((recall(reals) + recall(fakes)) / 2)


def test_category_answers_are_scored_like_dfabench(exported):
    utils = import_utils(exported)
    phrases = {"FS": "The identity was swapped: face swap.", "FR": "This is face reenactment.",
               "FE": "Attribute editing of the face.", "EFS": "The whole face was generated by a GAN."}
    for category, phrase in phrases.items():
        assert parse_category(phrase) == category
    scores = run_like_lmms_eval(utils, exported, "DF-C", lambda doc: phrases[doc["category"]])
    assert scores["accuracy"] == 1.0 and scores["macro_f1"] == pytest.approx(1.0) and scores["n_unparsed"] == 0
    always_fs = run_like_lmms_eval(utils, exported, "DF-C", lambda doc: phrases["FS"])
    assert always_fs["accuracy"] == pytest.approx(0.25)


def test_text_metrics_match_dfabench_scoring(exported):
    from dfabench.plugins import get_manager
    from dfabench.scoring import score_records

    if "text" not in get_manager().metrics:
        pytest.skip("the 'text' metric provider is not registered (dfabench.builtin)")
    utils = import_utils(exported)
    docs = [json.loads(line) for line in (exported / "dfabench_ad.jsonl").read_text().splitlines()]

    def answer(doc):
        return doc["reference"] if doc["doc_index"] % 2 == 0 else "The eyes look blurred near the edges."

    scores = run_like_lmms_eval(utils, exported, "AD", answer)
    records = [{"id": d["id"], "task": "AD", "label": d["label"], "category": d["category"],
                "technique": d["technique"], "source_id": d["source_id"], "reference": d["reference"],
                "response": answer(d), "parsed": answer(d), "unparsed": False, "error": None, "metrics": {}}
               for d in docs]
    direct = score_records(get_task("AD"), records, n_boot=1)
    assert direct.metrics, "dfabench computed no AD metric"
    for metric, value in scores.items():
        if metric == "n_unparsed":
            assert value == 0
            continue
        expected = (direct.metrics.get(metric) or {}).get("value")
        if expected is None:
            assert math.isnan(value)  # undefined stays undefined, never 0
        else:
            assert value == pytest.approx(expected)
            assert 0 < value


def test_what_cannot_be_exported_is_refused(bench, tmp_path):
    with pytest.raises(DfabenchError, match="FC"):
        export_lmms_eval(bench, tmp_path / "x", ["FC"], None)
    with pytest.raises(DfabenchError, match="nosuch"):
        export_lmms_eval(bench, tmp_path / "x", ["DF-D"], "nosuch")
    with pytest.raises(DfabenchError, match="did you mean"):
        export_lmms_eval(bench, tmp_path / "x", ["DF-X"], None)


def test_a_split_and_a_task_subset(tmp_path):
    bench = make_benchmark(tmp_path / "b", n_real=2, n_per_category=1, split="val")
    written = export_lmms_eval(bench, tmp_path / "out", ["dfc"], "val")
    assert sorted(p.name for p in written if p.suffix == ".yaml") == ["dfabench_df_c.yaml"]
    assert len((tmp_path / "out" / "dfabench_df_c.jsonl").read_text().splitlines()) == 4


def test_the_command_line(bench, tmp_path, capsys):
    from dfabench.cli import main

    code = main(["export", "lmms-eval", "--bench", str(bench), "--out", str(tmp_path / "t"), "--tasks", "DF-D,AD"])
    out = capsys.readouterr().out
    assert code == 0 and "DF-D: 14 samples -> dfabench_df_d" in out and "--include_path" in out
    assert (tmp_path / "t" / "dfabench_ad.yaml").exists() and not (tmp_path / "t" / "dfabench_df_c.yaml").exists()
    assert main(["export", "lmms-eval", "--bench", str(tmp_path / "nope"), "--out", str(tmp_path / "u")]) == 2
