"""The predict stage and the run folder: exact reference-model numbers, resume, failures, re-scoring."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TESTS = Path(__file__).parent


def _run_record(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def _samples(out: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"samples-{task}.jsonl").read_text().splitlines()]


def test_constant_model_accuracy_is_the_class_prior(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = cli("run", "--model", "constant", "--tasks", "DF-D,DF-C", "--bench", str(tiny_bench),
                          "--out", str(out), "--no-progress")
    assert code == 0
    record = _run_record(out)
    # 12 fakes of 20 samples: always answering "fake" is right exactly 12/20 of the time.
    assert record["metrics"]["DF-D"]["accuracy"]["value"] == 12 / 20
    assert record["metrics"]["DF-D"]["balanced_accuracy"]["value"] == 0.5
    assert record["metrics"]["DF-D"]["accuracy_real"]["value"] == 0.0
    assert record["metrics"]["DF-D"]["accuracy_FS"]["value"] == 1.0
    # DF-C runs on the 12 fakes; the constant answer FS is right for 3 of them.
    assert record["metrics"]["DF-C"]["accuracy"]["value"] == 3 / 12
    assert record["counts"]["DF-D"] == {"n": 20, "n_failed": 0, "n_unparsed": 0}
    assert record["counts"]["DF-C"] == {"n": 12, "n_failed": 0, "n_unparsed": 0}
    assert record["metrics"]["DF-D"]["auc"]["value"] is None  # no scores from a constant text answer
    assert "accuracy" in stdout and "DF-C" in stdout
    # run record contents the design asks for
    for key in ("schema_version", "dfabench_version", "model", "tasks", "benchmark", "seed", "environment",
                "metrics", "counts", "samples"):
        assert key in record
    assert record["tasks"]["DF-D"]["fingerprint"] and record["benchmark"]["fingerprint"]
    for info in record["samples"].values():
        assert hashlib.sha256((out / info["file"]).read_bytes()).hexdigest() == info["sha256"]
    line = _samples(out, "DF-D")[0]
    for key in ("id", "prompt", "prompt_hash", "reference", "response", "parsed", "score", "error", "timings"):
        assert key in line


def test_rescoring_gives_identical_numbers(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--model", "random", "--tasks", "DF-D,DF-C", "--bench", str(tiny_bench), "--out", str(out),
               "--no-progress")[0] == 0
    before = _run_record(out)
    assert before["metrics"]["DF-D"]["auc"]["value"] is not None  # random gives choice log-probabilities
    code, stdout, _ = cli("score", str(out))
    assert code == 0
    after = _run_record(out)
    assert after["metrics"] == before["metrics"]
    assert after["counts"] == before["counts"]
    assert after["samples"] == before["samples"]
    assert "auc" in stdout


def test_random_score_mode_gives_ranking_metrics(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--model", "random", "--model-arg", "mode=score", "--tasks", "DF-D,DF-C,AD",
               "--bench", str(tiny_bench), "--out", str(out), "--no-progress")[0] == 0
    record = _run_record(out)
    assert 0.0 <= record["metrics"]["DF-D"]["auc"]["value"] <= 1.0
    assert record["metrics"]["DF-C"]["accuracy"]["value"] is not None
    # a score-only model cannot describe artifacts: the task is n/a, never a number
    assert record["tasks"]["AD"]["status"].startswith("n/a")
    assert "AD" not in record["metrics"]


def test_localization_task_is_na_for_a_score_only_model(cli, tiny_bench, tmp_path):
    # (a text model answers FL since FL v3: its mask is derived from its text, tests/test_fl_text_masks.py)
    out = tmp_path / "run"
    code, stdout, _ = cli("run", "--model", "random", "--model-arg", "mode=score", "--tasks", "FL", "--bench",
                          str(tiny_bench), "--out", str(out), "--no-progress")
    assert code == 0
    assert _run_record(out)["tasks"]["FL"]["status"].startswith("n/a")
    assert "n/a" in stdout


def test_corrupt_and_oversized_images_fail_only_their_samples(cli, tiny_bench, tmp_path, monkeypatch):
    (tiny_bench / "images" / "0003.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(tiny_bench / "images" / "0005.png")
    monkeypatch.setenv("DFABENCH_MAX_IMAGE_PIXELS", "1000")  # 16x16 = 256 pass, 64x64 = 4096 does not
    out = tmp_path / "run"
    assert cli("run", "--model", "constant", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(out),
               "--no-progress")[0] == 0
    record = _run_record(out)
    assert record["counts"]["DF-D"] == {"n": 20, "n_failed": 2, "n_unparsed": 0}
    errors = {r["id"]: r["error"] for r in _samples(out, "DF-D") if r["error"]}
    assert set(errors) == {"s0003", "s0005"}
    assert "cannot decode image" in errors["s0003"]
    assert "too large to decode safely" in errors["s0005"]
    # failures count as wrong: s0003 and s0005 are real, so the constant "fake" was wrong on them anyway
    assert record["metrics"]["DF-D"]["accuracy"]["value"] == 12 / 20


def test_model_exception_is_retried_one_by_one(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--model", "flaky", "--model-arg", "fail_ids=s0009,s0010", "--tasks", "DF-D",
               "--bench", str(tiny_bench), "--out", str(out), "--batch-size", "4", "--no-progress")[0] == 0
    samples = _samples(out, "DF-D")
    failed = {r["id"]: r["error"] for r in samples if r["error"]}
    assert set(failed) == {"s0009", "s0010"}
    assert "RuntimeError: cannot handle s0009" in failed["s0009"]
    assert _run_record(out)["counts"]["DF-D"]["n_failed"] == 2
    # s0008 and s0011 shared a batch with the failures and were answered one by one
    assert all(r["parsed"] == "fake" for r in samples if r["id"] in ("s0008", "s0011"))


def test_out_of_memory_on_a_batch_falls_back_to_one_by_one(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--model", "oom", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(out),
               "--batch-size", "8", "--no-progress")[0] == 0
    assert _run_record(out)["counts"]["DF-D"] == {"n": 20, "n_failed": 0, "n_unparsed": 0}


def test_unparseable_answers_are_counted_and_wrong(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--model", "constant", "--model-arg", "text=I like turtles.", "--tasks", "DF-D",
               "--bench", str(tiny_bench), "--out", str(out), "--no-progress")[0] == 0
    record = _run_record(out)
    assert record["counts"]["DF-D"] == {"n": 20, "n_failed": 0, "n_unparsed": 20}
    assert record["metrics"]["DF-D"]["accuracy"]["value"] == 0.0
    assert all(r["unparsed"] and r["parsed"] is None for r in _samples(out, "DF-D"))


def test_limit_split_and_cache_hits(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    log = tmp_path / "calls.log"
    args = ("run", "--model", "slow", "--model-arg", f"log={log}", "--tasks", "DF-D", "--bench", str(tiny_bench),
            "--out", str(out), "--limit", "5", "--no-progress")
    assert cli(*args)[0] == 0
    assert _run_record(out)["counts"]["DF-D"]["n"] == 5
    assert cli(*args)[0] == 0  # the same run again: everything from the cache
    assert len(log.read_text().split()) == 5
    assert all(r["cached"] for r in _samples(out, "DF-D"))


def test_a_different_run_is_refused_and_changes_nothing(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--model", "constant", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(out),
               "--no-progress")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.suffix != ".sqlite"}
    code, _, err = cli("run", "--model", "random", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(out),
                       "--no-progress")
    assert code == 2 and "already holds a different run" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.suffix != ".sqlite"} == before


def test_bad_manifest_exits_2_with_one_line(cli, tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "manifest.jsonl").write_text('{"id": "a", "image": "x.png", "label": "maybe"}\n')
    code, out, err = cli("run", "--model", "constant", "--tasks", "DF-D", "--bench", str(bench),
                         "--out", str(tmp_path / "r"))
    assert code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "manifest.jsonl: line 1 (id 'a'): unknown label 'maybe'" in err
    assert not (tmp_path / "r").exists()


def test_bad_task_yaml_is_refused(tmp_path):
    from dfabench.errors import InputError
    from dfabench.tasks import TaskSpec

    bad = tmp_path / "bad.yaml"
    bad.write_text("id: X\nprompt: [unclosed\n")
    with pytest.raises(InputError, match=r"bad.yaml: line \d+: malformed YAML"):
        TaskSpec.load(bad)
    bad.write_text("id: X\nversion: 1\n")
    with pytest.raises(InputError, match="missing field 'requires'"):
        TaskSpec.load(bad)


def _spawn(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dfabench.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_lines(log: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before it was killed: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError("the run made no progress")


def test_kill_9_then_resume_predicts_every_sample_exactly_once(tiny_bench, tmp_path):
    env = {**os.environ, "DFABENCH_PLUGINS": "dfabench_testmodels",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    out, log = tmp_path / "run", tmp_path / "calls.log"
    common = ["--model", "slow", "--model-arg", f"log={log}", "--model-arg", "delay=0.4",
              "--bench", str(tiny_bench), "--out", str(out), "--batch-size", "2", "--no-progress"]

    # 1. a complete DF-D run
    first = subprocess.run([sys.executable, "-m", "dfabench.cli", "run", "--tasks", "DF-D", *common], env=env,
                           capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    kept = {name: (out / name).read_bytes() for name in ("run.json", "samples-DF-D.jsonl")}

    # 2. DF-D + DF-C, killed with SIGKILL in the middle of DF-C
    proc = _spawn(["run", "--tasks", "DF-D,DF-C", *common], env)
    _wait_for_lines(log, 10 + 2, proc)  # DF-D: 10 batches (first run); DF-C: 2 batches answered
    time.sleep(0.1)  # now inside the next batch's delay, after the cache commit
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # nothing computed before is lost or overwritten
    assert {name: (out / name).read_bytes() for name in kept} == kept
    assert not (out / "samples-DF-C.jsonl").exists()

    # 3. the same command again finishes the job
    again = subprocess.run([sys.executable, "-m", "dfabench.cli", "run", "--tasks", "DF-D,DF-C", *common], env=env,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    calls = log.read_text().split()
    expected = {f"DF-D:s{i:04d}" for i in range(20)} | {f"DF-C:s{i:04d}" for i in range(8, 20)}
    assert sorted(calls) == sorted(expected)  # every sample predicted exactly once in total
    record = _run_record(out)
    assert record["counts"]["DF-C"]["n"] == 12 and record["counts"]["DF-D"]["n"] == 20


def test_forgery_localization_masks_are_scored(cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2, with_masks=True)
    out = tmp_path / "run"
    code, _, err = cli("run", "--model", "masker", "--tasks", "FL", "--bench", str(bench), "--out", str(out),
                       "--no-progress")
    assert code == 0, err
    record = _run_record(out)
    # prediction = left half, truth = top half: intersection is a quarter, union three quarters
    assert record["metrics"]["FL"]["iou"]["value"] == pytest.approx(1 / 3)
    assert record["metrics"]["FL"]["precision"]["value"] == pytest.approx(0.5)
    assert record["metrics"]["FL"]["recall"]["value"] == pytest.approx(0.5)
    assert record["counts"]["FL"] == {"n": 8, "n_failed": 0, "n_unparsed": 0}
    sample = _samples(out, "FL")[0]
    assert (out / sample["parsed"]["mask"]).exists()
    assert cli("verify", str(out), "--bench", str(bench))[0] == 0


def test_mask_scores_edge_cases():
    from dfabench.metrics.localization import mask_scores

    empty = np.zeros((4, 4), dtype=bool)
    full = np.ones((4, 4), dtype=bool)
    assert mask_scores(empty, empty) == {"iou": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert mask_scores(empty, full) == {"iou": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert mask_scores(full, empty)["iou"] == 0.0


def test_operational_arguments_keep_the_cache_and_allow_resuming(cli, tiny_bench, tmp_path):
    out, log = tmp_path / "run", tmp_path / "calls.log"
    base = ("run", "--model", "slow", "--model-arg", f"log={log}", "--tasks", "DF-D", "--bench", str(tiny_bench),
            "--out", str(out), "--no-progress")
    assert cli(*base, "--model-arg", "delay=0")[0] == 0
    first = _run_record(out)["model"]["fingerprint"]
    # `delay` is declared operational by the slow model: a changed delay is the same run, answered from the cache
    assert cli(*base, "--model-arg", "delay=0.01")[0] == 0
    assert _run_record(out)["model"]["fingerprint"] == first
    assert len(log.read_text().split()) == 20


def test_contract_breaking_answers_fail_their_samples(cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2, with_masks=True)
    out = tmp_path / "run"
    code, _, err = cli("run", "--model", "badanswers", "--tasks", "DF-D,DF-C", "--bench", str(bench),
                       "--out", str(out), "--no-progress")
    assert code == 0, err
    record = _run_record(out)
    errors = {r["id"]: r["error"] for r in _samples(out, "DF-D") if r["error"]}
    assert set(errors) == {"s0000", "s0001"} and "probability in [0, 1]" in errors["s0000"]
    # a detector without category probabilities cannot classify: n/a, not 0
    assert record["tasks"]["DF-C"]["status"].startswith("n/a") and "DF-C" not in record["metrics"]
    out = tmp_path / "run-fl"
    assert cli("run", "--model", "badanswers", "--model-arg", "mode=localize", "--tasks", "FL", "--bench", str(bench),
               "--out", str(out), "--no-progress")[0] == 0
    fl = {r["id"]: r["error"] for r in _samples(out, "FL")}
    assert "2-D array" in fl["s0002"] and fl["s0003"] is None  # a 3-D mask fails; a probability map is fine
    assert _run_record(out)["counts"]["FL"]["n_failed"] == 1


def test_moved_benchmark_refuses_to_rescore_masks_and_verifies_with_bench(cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=1, n_per_category=1, with_masks=True)
    out = tmp_path / "run"
    assert cli("run", "--model", "masker", "--tasks", "FL", "--bench", str(bench), "--out", str(out),
               "--no-progress")[0] == 0
    before = (out / "run.json").read_text()
    moved = bench.rename(tmp_path / "moved")
    code, _, err = cli("score", str(out))
    assert code == 2 and "pass --bench" in err
    assert (out / "run.json").read_text() == before  # nothing rewritten
    assert cli("verify", str(out))[0] == 1
    assert cli("verify", str(out), "--bench", str(moved))[0] == 0


def test_more_tasks_into_a_folder_need_the_same_model_identity_and_n_boot(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--model", "random", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(out),
               "--no-progress")[0] == 0
    code, _, err = cli("run", "--model", "random", "--tasks", "DF-C", "--bench", str(tiny_bench), "--out", str(out),
                       "--n-boot", "50", "--no-progress")
    assert code == 2 and "n-boot" in err
    assert cli("run", "--model", "random", "--tasks", "DF-C", "--bench", str(tiny_bench), "--out", str(out),
               "--no-progress")[0] == 0
    assert set(_run_record(out)["metrics"]) == {"DF-D", "DF-C"}
    assert cli("verify", str(out))[0] == 0


@pytest.mark.parametrize("args", [["--n-boot", "0"], ["--limit", "0"], ["--batch-size", "-1"],
                                  ["--max-new-tokens", "0"], ["--model-arg", "seed=abc"]])
def test_bad_run_options_are_one_line_errors(cli, tiny_bench, tmp_path, args):
    code, _, err = cli("run", "--model", "random", "--tasks", "DF-D", "--bench", str(tiny_bench),
                       "--out", str(tmp_path / "r"), *args)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_out_must_be_a_new_or_run_folder(cli, tiny_bench, tmp_path):
    code, _, err = cli("run", "--model", "constant", "--tasks", "DF-D", "--bench", str(tiny_bench),
                       "--out", str(tiny_bench), "--no-progress")
    assert code == 2 and "not empty and holds no run" in err
    (tmp_path / "file").write_text("x")
    code, _, err = cli("run", "--model", "constant", "--tasks", "DF-D", "--bench", str(tiny_bench),
                       "--out", str(tmp_path / "file"), "--no-progress")
    assert code == 2 and "is a file" in err


def test_a_task_where_every_sample_failed_exits_1(cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=1)
    for image in (bench / "images").iterdir():
        image.write_bytes(b"not an image")
    code, _, err = cli("run", "--model", "constant", "--tasks", "DF-D", "--bench", str(bench),
                       "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 1 and "every one of the 6 samples failed" in err
    assert _run_record(tmp_path / "run")["counts"]["DF-D"] == {"n": 6, "n_failed": 6, "n_unparsed": 0}


def test_run_refuses_a_folder_whose_logs_were_changed_after_they_were_written(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    command = ("run", "--model", "constant", "--tasks", "DF-D,DF-C", "--bench", str(tiny_bench), "--out", str(out),
               "--no-progress", "--n-boot", "20")
    code, _, err = cli(*command)
    assert code == 0, err
    log = out / "samples-DF-D.jsonl"
    edited = log.read_text().replace('"fake"', '"real"', 1)
    log.write_text(edited)
    for argv in (command, (*command[:4], "DF-C", *command[5:])):  # the task itself, or another one beside it
        code, _, err = cli(*argv)
        assert code == 2 and "samples-DF-D.jsonl does not match the SHA-256 in run.json" in err, err
        assert "refusing to run into it" in err
        assert log.read_text() == edited  # the evidence is left as it is
