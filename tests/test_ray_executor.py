"""The Ray executor on a local Ray (the CPUs of this machine): one actor per replica, answers committed by
the driver, a dead actor's batches rescheduled, replicas that fail to start reported, resume across
executors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray executor's tests need ray (pip install 'dfabench[ray]')")

TESTS = str(Path(__file__).parent)
PLUGINS = "dfabench_testmodels,dfabench_testray"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (starting one takes seconds); the test plugins importable by its workers."""
    if ray.is_initialized():
        ray.shutdown()
    path = os.pathsep.join(p for p in (TESTS, os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": path, "DFABENCH_PLUGINS": PLUGINS}})
    yield
    ray.shutdown()


@pytest.fixture
def rcli(cli, monkeypatch, local_ray):
    from dfabench.plugins import reset_manager

    monkeypatch.setenv("DFABENCH_PLUGINS", PLUGINS)
    reset_manager(None)
    return cli


def _samples(out: Path, task: str) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in ("timings", "cached")}
            for line in (out / f"samples-{task}.jsonl").read_text().splitlines()]


def _run(cli, bench, out, *extra):
    return cli("run", "--model", "crash", "--tasks", "DF-D,DF-C", "--bench", str(bench), "--out", str(out),
               "--batch-size", "2", "--no-progress", "--n-boot", "50", *extra)


def test_ray_replicas_give_the_local_run_s_files(rcli, tiny_bench, tmp_path):
    assert _run(rcli, tiny_bench, tmp_path / "local")[0] == 0
    code, _, err = _run(rcli, tiny_bench, tmp_path / "ray", "--executor", "ray", "--replicas", "2")
    assert code == 0, err
    for task in ("DF-D", "DF-C"):
        assert _samples(tmp_path / "ray", task) == _samples(tmp_path / "local", task)
    local = json.loads((tmp_path / "local" / "run.json").read_text())
    remote = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert remote["metrics"] == local["metrics"] and remote["model"] == local["model"]
    assert remote["executor"]["kind"] == "ray" and remote["executor"]["started"] == 2
    assert rcli("verify", str(tmp_path / "ray"), "--bench", str(tiny_bench))[0] == 0


def test_an_actor_killed_mid_run_has_its_batches_rescheduled(rcli, tiny_bench, tmp_path):
    assert _run(rcli, tiny_bench, tmp_path / "local")[0] == 0
    flag, log = tmp_path / "crashed", tmp_path / "calls.log"
    code, _, err = _run(rcli, tiny_bench, tmp_path / "ray", "--executor", "ray", "--replicas", "2",
                        "--model-arg", f"crash_flag={flag}", "--model-arg", f"log={log}")
    assert code == 0, err
    assert flag.exists() and "replica" in err and "died" in err
    record = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert len(record["executor"]["died"]) == 1 and record["executor"]["rescheduled_batches"] >= 1
    for task in ("DF-D", "DF-C"):
        assert _samples(tmp_path / "ray", task) == _samples(tmp_path / "local", task)
    assert record["counts"]["DF-D"]["n_failed"] == 0


def test_a_replica_that_fails_to_start_is_reported_and_the_others_answer(rcli, tiny_bench, tmp_path):
    flag = tmp_path / "failed-once"
    code, _, err = _run(rcli, tiny_bench, tmp_path / "ray", "--executor", "ray", "--replicas", "2",
                        "--model-arg", f"fail_start_flag={flag}")
    assert code == 0, err
    assert "failed to start: crash model: cannot load the weights (test)" in err
    record = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert record["counts"]["DF-D"] == {"n": 20, "n_failed": 0, "n_unparsed": 0}
    assert len(record["executor"]["failed_to_start"]) == 1


def test_no_replica_starting_is_one_line_and_leaves_nothing(rcli, tiny_bench, tmp_path):
    code, out, err = _run(rcli, tiny_bench, tmp_path / "ray", "--executor", "ray", "--replicas", "2",
                          "--model-arg", "fail_start_flag=always")
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("dfabench: error: no model replica started on Ray") and "cannot load the weights" in last
    assert not (tmp_path / "ray" / "run.json").exists()


def test_an_unreachable_ray_address_is_one_line(rcli, tiny_bench, tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    code, _, err = _run(rcli, tiny_bench, tmp_path / "ray", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}")
    assert code == 2 and "cannot reach a Ray cluster there" in err and len(err.strip().splitlines()) == 1
    assert time.monotonic() - start < 30
    assert not (tmp_path / "ray" / "run.json").exists()


def _answered(log: Path) -> list[str]:
    return [i for line in log.read_text().splitlines() for i in line.split()] if log.exists() else []


def test_resume_across_executors(rcli, tiny_bench, tmp_path):
    """Start locally and get killed; resume on Ray; get every replica killed there; resume locally."""
    out, log = tmp_path / "run", tmp_path / "calls.log"
    env = {**os.environ, "DFABENCH_PLUGINS": PLUGINS, "PYTHONPATH": TESTS}
    common = ["run", "--model", "slow", "--model-arg", f"log={log}", "--tasks", "DF-D", "--bench", str(tiny_bench),
              "--out", str(out), "--batch-size", "2", "--no-progress", "--n-boot", "50"]
    proc = subprocess.Popen([sys.executable, "-m", "dfabench.cli", *common, "--model-arg", "delay=0.4"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(_answered(log)) < 4 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    time.sleep(0.1)  # inside the next batch's delay, after the cache commit
    proc.kill()
    proc.wait()
    first = _answered(log)
    assert 4 <= len(first) < 20, "the local run was to be killed part way"
    # on Ray: the slow model (`delay` is operational: the same run) is asked only for what was not answered
    code, _, err = rcli(*common, "--model-arg", "delay=0", "--executor", "ray", "--replicas", "2")
    assert code == 0, err
    asked_on_ray = _answered(log)[len(first):]
    assert len(set(first + asked_on_ray)) == len(first + asked_on_ray) == 20
    # a crash model on Ray whose every replica dies after its first batch, then resumed locally
    out2, log2 = tmp_path / "run2", tmp_path / "calls2.log"
    crash = ("run", "--model", "crash", "--model-arg", f"log={log2}", "--tasks", "DF-D", "--bench", str(tiny_bench),
             "--out", str(out2), "--batch-size", "2", "--no-progress", "--n-boot", "50")
    code, _, err = rcli(*crash, "--executor", "ray", "--model-arg", f"crash_flag={tmp_path / 'flag'}")
    assert code == 2 and "every model replica on Ray died" in err and "run the same command again" in err
    assert not (out2 / "run.json").exists()
    on_ray = _answered(log2)
    assert len(on_ray) == 2  # its first batch was answered before it died
    code, _, err = rcli(*crash)
    assert code == 0, err
    local = _answered(log2)[2:]
    ids = sorted(s["id"] for s in _samples(out2, "DF-D"))
    assert len(local) == len(set(local)) and sorted(set(local) | set(on_ray)) == ids
    # the first batch was committed to the cache (asked only for the rest), unless its reply had not left the
    # actor when the process was killed (a SIGKILL right after a reply can take it along: then asked again)
    assert len(local) in (len(ids) - 2, len(ids))
