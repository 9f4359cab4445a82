"""``dfabench sweep ROUND.yaml`` (issue 14 part 5): a whole round — models x tasks x benchmarks — run, resumed,
judged, submitted and built by one command; bad round files are one line naming the file and the key; one failing
cell never stops the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dfabench.data import smoke
from dfabench.judge import load_rubric
from dfabench.store import RunFolder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """The tiny smoke benchmark, built once for the module."""
    return smoke.build_smoke(tmp_path_factory.mktemp("sweep-smoke") / "bench", seed=0, size="tiny")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DFABENCH_CACHE_DIR", str(tmp_path / "cache"))


def write_round(folder: Path, bench: Path, models: list[dict], **extra) -> Path:
    """A round file in ``folder``: the tiny benchmark, DF-D + DF-C, a small bootstrap."""
    data = {"round": "test-round", "out": "out", "entries": "board/entries", "leaderboard": "board",
            "benchmarks": {"tiny": str(bench)}, "tasks": ["DF-D", "DF-C"], "n_boot": 10, "replicates": 10,
            "models": models}
    data.update(extra)
    path = folder / "round.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def reference_models(log: Path) -> list[dict]:
    """``random`` on both tasks and ``slow`` (constant's answers; it logs every call) on DF-D."""
    return [{"model": "random"}, {"name": "logged", "model": "slow", "args": {"log": str(log)}, "tasks": ["DF-D"]}]


def calls(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def cell_rows(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows by model name (the table is the last thing printed)."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("model ") and "benchmark" in line)
    return {line.split()[0]: line.split() for line in lines[start + 2:] if line.strip()}


def test_a_round_runs_submits_and_builds_and_a_second_sweep_skips_every_cell(cli, tmp_path, bench):
    log = tmp_path / "calls.log"
    round_file = write_round(tmp_path, bench, reference_models(log))
    code, out, err = cli("sweep", str(round_file), "--no-progress")
    assert code == 0, err
    rows = cell_rows(out)
    assert rows["random"][3] == "done" and rows["logged"][3] == "done"
    random_cell, logged_cell = tmp_path / "out/runs/random/tiny", tmp_path / "out/runs/logged/tiny"
    record = RunFolder(random_cell).read_record()
    assert {t: i["status"] for t, i in record["tasks"].items()} == {"DF-D": "done", "DF-C": "done"}
    assert list(RunFolder(logged_cell).read_record()["tasks"]) == ["DF-D"]  # the model's own restriction
    assert record["n_boot"] == 10
    assert record["command"][:4] == ["dfabench", "run", "--model", "random"]  # the equivalent run, recorded
    entry = tmp_path / "board/entries/random-tiny"
    assert json.loads((entry / "entry.json").read_text())["name"] == "random"
    board = json.loads((tmp_path / "board/leaderboard.json").read_text())
    assert not board["excluded"] and not board["not_ranked"]
    shown = {row["entry"] for b in board["boards"] for task in b["tasks"].values() for row in task["rows"]}
    assert shown == {"random", "logged"}
    assert calls(log) > 0

    before = {p: p.read_bytes() for p in (random_cell / "run.json", logged_cell / "run.json", entry / "run.json")}
    n_calls = calls(log)
    code, out, err = cli("sweep", str(round_file), "--no-progress")
    assert code == 0, err
    rows = cell_rows(out)
    assert rows["random"][3] == rows["logged"][3] == "skipped-complete"
    assert "up to date" in out
    assert calls(log) == n_calls  # no model call
    assert {p: p.read_bytes() for p in before} == before  # nothing rewritten


def test_an_incomplete_cell_is_resumed_from_its_cache_and_resubmitted(cli, tmp_path, bench):
    log = tmp_path / "calls.log"
    round_file = write_round(tmp_path, bench, [{"model": "random"}, {"name": "logged", "model": "slow",
                                                                      "args": {"log": str(log)}}])
    assert cli("sweep", str(round_file), "--no-progress", "--no-build")[0] == 0
    logged = tmp_path / "out/runs/logged/tiny"
    untouched = (tmp_path / "out/runs/random/tiny/run.json").read_bytes()
    n_calls = calls(log)
    (logged / "samples-DF-C.jsonl").unlink()  # a lost per-sample log

    code, out, err = cli("sweep", str(round_file), "--no-progress")
    assert code == 0, err
    rows = cell_rows(out)
    assert rows["logged"][3] == "resumed" and rows["random"][3] == "skipped-complete"
    assert "resume DF-C (DF-C: per-sample log samples-DF-C.jsonl is missing)" in out
    assert calls(log) == n_calls  # the response cache answered it all
    record = RunFolder(logged).read_record()
    assert RunFolder(logged).integrity_problems(record) == []
    assert set(record["samples"]) == {"DF-D", "DF-C"}
    assert (tmp_path / "out/runs/random/tiny/run.json").read_bytes() == untouched
    held = json.loads((tmp_path / "board/entries/logged-tiny/run.json").read_text())
    assert held["updated"] == record["updated"]  # the entry replaced by the resumed run

    # killed before its first commit: only the response cache is left; resumed without a model call
    for path in logged.iterdir():
        if path.name != "cache.sqlite":
            path.unlink() if path.is_file() else None
    code, out, err = cli("sweep", str(round_file), "--no-progress", "--only", "logged")
    assert code == 0, err
    assert cell_rows(out)["logged"][3] == "resumed"
    assert calls(log) == n_calls


def test_one_failing_cell_does_not_stop_the_others(cli, tmp_path, bench):
    round_file = write_round(tmp_path, bench, [{"name": "broken", "model": "constant", "args": {"label": "maybe"}},
                                               {"model": "random"}])
    code, out, err = cli("sweep", str(round_file), "--no-progress")
    assert code == 1
    rows = cell_rows(out)
    assert rows["broken"][3] == "failed" and "predict: constant: label must be 'real' or 'fake'" in out
    assert rows["random"][3] == "done"
    assert (tmp_path / "board/entries/random-tiny/run.json").exists()
    assert not (tmp_path / "board/entries/broken-tiny").exists()
    assert (tmp_path / "board/leaderboard.json").exists()  # built from what was done
    assert "1 of 2 cells failed" in err


def test_a_failing_cells_reason_is_redacted(cli, tmp_path, bench):
    secret = "https://robot:hunter2-sweep-secret@example.invalid/v1"
    round_file = write_round(tmp_path, bench, [{"name": "leaky", "model": "constant", "args": {"label": secret}}])
    code, out, err = cli("sweep", str(round_file), "--no-progress", "--no-build")
    assert code == 1 and cell_rows(out)["leaky"][3] == "failed"
    assert "hunter2-sweep-secret" not in out + err and "label must be 'real' or 'fake'" in out


def test_executor_and_batch_settings_reach_the_runner_per_model(cli, tmp_path, bench, monkeypatch):
    import dfabench.runner
    from dfabench.errors import DfabenchError

    seen = []

    def fake_run(options, stream=None):
        seen.append(options)
        raise DfabenchError("not run in this test")

    monkeypatch.setattr(dfabench.runner, "run", fake_run)
    executor = {"kind": "ray", "replicas": 2, "gpus_per_replica": 1, "cpus_per_replica": 0.5, "ray_address": "auto"}
    round_file = write_round(tmp_path, bench, [{"model": "random", "executor": executor, "batch_size": 16,
                                                "max_new_tokens": 32}, {"model": "constant"}],
                             frames_per_video=2, seed=3, split="all")
    code, out, _ = cli("sweep", str(round_file), "--no-progress", "--no-build")
    rows = cell_rows(out)
    assert code == 1 and rows["random"][3] == rows["constant"][3] == "failed"  # each cell reported, none stopped
    ray, local = seen
    assert (ray.model, ray.executor, ray.batch_size, ray.max_new_tokens) == ("random", "ray", 16, 32)
    assert ray.executor_options == {"ray_address": "auto", "replicas": 2, "gpus_per_replica": 1,
                                    "cpus_per_replica": 0.5}
    assert (ray.frames_per_video, ray.seed, ray.split, ray.n_boot) == (2, 3, "all", 10)
    assert (local.executor, local.executor_options, local.batch_size) == ("local", {}, None)
    assert ray.out == tmp_path / "out/runs/random/tiny" and ray.bench == str(bench)


def test_a_cell_holding_another_run_is_refused_and_the_others_go_on(cli, tmp_path, bench):
    round_file = write_round(tmp_path, bench, [{"model": "random"}, {"model": "constant"}])
    assert cli("sweep", str(round_file), "--no-progress", "--no-build")[0] == 0
    write_round(tmp_path, bench, [{"model": "random", "args": {"seed": 7}}, {"model": "constant"}])
    code, out, _ = cli("sweep", str(round_file), "--no-progress", "--no-build")
    assert code == 1
    rows = cell_rows(out)
    assert rows["random"][3] == "failed" and "holds another run" in out and "round.yaml" in out
    assert rows["constant"][3] == "skipped-complete"


@pytest.mark.parametrize(("models", "extra", "expected"), [
    ([{"model": "random", "executer": {"kind": "ray"}}], {},
     "round.yaml: line 1\\d: models\\[0\\].executer: unknown key 'executer'; did you mean 'executor'\\?"),
    ([{"model": "random"}], {"n_bot": 3}, "round.yaml: line \\d+: n_bot: unknown key 'n_bot'; did you mean 'n_boot'"),
    ([{"model": "random"}, {"model": "randon"}], {}, "models\\[1\\].model: unknown model 'randon'; did you mean "
                                                     "'random'"),
    ([{"model": "random"}], {"tasks": ["DF-D", "DFX"]}, "tasks\\[1\\]: unknown task 'DFX'"),
    ([{"model": "random", "tasks": ["AD"]}], {}, "models\\[0\\].tasks: AD not in the round's tasks"),
    ([{"model": "random"}], {"benchmarks": {"tiny": "no/such/bench"}}, "benchmarks.tiny: benchmark folder .*no/such/"
                                                                       "bench does not exist"),
    ([{"model": "random"}, {"model": "random"}], {}, "models\\[1\\].name: the name 'random' is also models\\[0\\]'s"),
    ([{"model": "random", "executor": {"kind": "local", "replicas": 2}}], {}, "replicas need kind: ray"),
    ([{"model": "random", "batch_size": 0}], {}, "models\\[0\\].batch_size: must be at least 1, not 0"),
    ([{"model": "random", "args": {"sede": 3}}], {},
     "models\\[0\\].args: model 'random': unknown model argument\\(s\\) sede \\(known: seed, mode\\); did you mean "
     "'sede' -> 'seed'\\?"),
    ([{"model": "random"}], {"judge": {"model": "random", "args": {"mode": "score"}, "rubrc": "x"}},
     "judge.rubrc: unknown key 'rubrc'; did you mean 'rubric'"),
    ([{"model": "random"}], {"judge": {"model": "openai"}}, "judge.args: the openai judge needs model: ID"),
])
def test_a_bad_round_file_is_one_line_naming_the_file_and_the_key_before_any_work(cli, tmp_path, bench, models,
                                                                                  extra, expected):
    round_file = write_round(tmp_path, bench, models, **extra)
    code, out, err = cli("sweep", str(round_file))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dfabench: error: ") and str(round_file) in lines[0]
    import re

    assert re.search(expected, lines[0]), lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "board").exists()  # no cell ran, nothing built


def test_a_key_given_twice_and_broken_yaml_are_refused(cli, tmp_path):
    path = tmp_path / "round.yaml"
    path.write_text("round: r\nout: a\nout: b\n", encoding="utf-8")
    code, _, err = cli("sweep", str(path))
    assert code == 2 and "round.yaml: line 3: out: given twice" in err
    path.write_text("round: [r\n", encoding="utf-8")
    code, _, err = cli("sweep", str(path))
    assert code == 2 and "not valid YAML" in err
    code, _, err = cli("sweep", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml: no such round file" in err


def test_dry_run_prints_the_plan_and_does_nothing(cli, tmp_path, bench):
    round_file = write_round(tmp_path, bench, [{"model": "random"}, {"model": "constant", "tasks": ["DF-D"]}])
    code, out, _ = cli("sweep", str(round_file), "--dry-run")
    assert code == 0
    assert "would run DF-D,DF-C" in out and "would run DF-D" in out and "would build the leaderboard" in out
    assert cell_rows(out)["random"][3:5] == ["would", "run"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "board").exists()
    code, _, err = cli("sweep", str(round_file), "--dry-run", "--only", "randm")
    assert code == 2 and "--only 'randm': no such model" in err and "did you mean 'random'" in err


def test_text_tasks_are_judged_once_by_the_rounds_judge(cli, tmp_path, bench):
    rubric = load_rubric("artifact-description-v2")
    grades = json.dumps({**{key: 4 for key in rubric.keys}, "rationale": "all 4"})
    round_file = write_round(tmp_path, bench, [{"model": "constant"}], tasks=["AD"], limit=4,
                             judge={"model": "constant", "args": {"text": grades}, "calibrate": False})
    code, out, err = cli("sweep", str(round_file), "--no-progress", "--no-build")
    assert code == 0, err
    assert cell_rows(out)["constant"][4:6] == ["judged", "AD"]
    cell = tmp_path / "out/runs/constant/tiny"
    record = RunFolder(cell).read_record()
    assert record["judge"]["tasks"]["AD"]["n_judged"] == 4
    assert record["metrics"]["AD"]["judge_score"]["value"] == pytest.approx(0.8)
    held = json.loads((tmp_path / "board/entries/constant-tiny/run.json").read_text())
    assert held["judge"]["tasks"]["AD"]["judge_fingerprint"] == record["judge"]["tasks"]["AD"]["judge_fingerprint"]
    before = (cell / "run.json").read_bytes()
    code, out, err = cli("sweep", str(round_file), "--no-progress", "--no-build")
    assert code == 0, err
    assert "judged by this judge already" in out and (cell / "run.json").read_bytes() == before


def test_without_a_judge_text_tasks_are_left_unjudged_and_said_so(cli, tmp_path, bench):
    round_file = write_round(tmp_path, bench, [{"model": "constant"}], tasks=["AD"], limit=2)
    code, out, err = cli("sweep", str(round_file), "--no-progress", "--no-build")
    assert code == 0, err
    assert "AD: not judged (the round names no judge)" in out


def test_bench_smoke_resolves_like_run_and_paths_are_relative_to_the_round_file(tmp_path, bench, monkeypatch):
    import dfabench.data
    from dfabench.sweep import load_round

    asked = []
    monkeypatch.setattr(dfabench.data, "resolve_bench", lambda value, seed=0: asked.append(value) or bench)
    path = write_round(tmp_path, bench, [{"model": "random"}], benchmarks={"smoke": "smoke"})
    round_ = load_round(path)
    assert asked == ["smoke"] and round_.benchmarks[0].path == bench
    assert round_.out == tmp_path / "out" and round_.entries == tmp_path / "board/entries"
    assert [c.folder for c in round_.cells()] == [tmp_path / "out/runs/random/smoke"]


def test_the_example_rounds_are_valid(tmp_path, bench, monkeypatch):
    """rounds/smoke.yaml loads as it is; the template rounds/example.yaml uses only known keys."""
    import dfabench.data
    from dfabench import sweep
    from dfabench.plugins import get_manager

    if "spectrum" not in get_manager().models or "noise-inconsistency" not in get_manager().models:
        pytest.skip("the baselines plugin (dfabench-baselines) is not installed")
    monkeypatch.setattr(dfabench.data, "resolve_bench", lambda value, seed=0: bench)
    round_ = sweep.load_round(REPO / "rounds/smoke.yaml")
    assert [m.name for m in round_.models] == ["spectrum", "noise-inconsistency", "random", "constant"]
    assert [t.id for t in round_.models[1].tasks] == ["DF-D", "DF-C", "FL"]
    template = yaml.safe_load((REPO / "rounds/example.yaml").read_text())
    assert set(template) <= set(sweep.ROUND_KEYS) and set(template["judge"]) <= set(sweep.JUDGE_KEYS)
    for model in template["models"]:
        assert set(model) <= set(sweep.MODEL_KEYS) and set(model.get("executor") or {}) <= set(sweep.EXECUTOR_KEYS)


def test_a_round_with_prompt_variants_runs_each_and_a_models_task_keeps_its_variants(cli, tmp_path, bench):
    log = tmp_path / "calls.log"
    round_file = write_round(tmp_path, bench, reference_models(log), prompt_variant="default,lettered")
    code, out, err = cli("sweep", str(round_file), "--no-progress")
    assert code == 0, err
    record = RunFolder(tmp_path / "out/runs/random/tiny").read_record()
    assert list(record["tasks"]) == ["DF-D", "DF-D@lettered", "DF-C", "DF-C@lettered"]
    assert all(info["status"] == "done" for info in record["tasks"].values())
    assert set(record["variants"]) == {"DF-D", "DF-C"}
    assert "DF-D@lettered" in record["command"][record["command"].index("--tasks") + 1]
    logged = RunFolder(tmp_path / "out/runs/logged/tiny").read_record()
    assert list(logged["tasks"]) == ["DF-D", "DF-D@lettered"]  # its DF-D, with the round's variant of it
    board = json.loads((tmp_path / "board/leaderboard.json").read_text())
    assert not board["excluded"]
    assert {"DF-D", "DF-D@lettered"} <= {t for b in board["boards"] for t in b["tasks"]}

    code, out, err = cli("sweep", str(round_file), "--no-progress")  # complete: nothing asked again
    assert code == 0, err
    assert cell_rows(out)["random"][3] == "skipped-complete"


def test_an_unknown_prompt_variant_in_a_round_is_one_line_before_any_work(cli, tmp_path, bench):
    round_file = write_round(tmp_path, bench, [{"model": "random"}], prompt_variant="no-such")
    code, _, err = cli("sweep", str(round_file))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "prompt_variant" in err and "no-such" in err
    assert not (tmp_path / "out").exists()
