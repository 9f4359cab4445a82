"""Kill a stage right after each file operation of its commit, for every k, and check the folder.

Shared by ``tests/test_trust_commit.py`` and ``benchmarks/bench_commit_kill.py``. A :class:`Scenario`
is an old state (a template folder), a ``dfabench`` command line (run in a subprocess, as a user
runs it) and, implicitly, the new state: the template after the command ran uninterrupted. For
k = 1, 2, ... the command runs on a fresh copy of the old state with ``DFABENCH_FAULT_AFTER=k`` (the
store exits right after its k-th file operation) until it completes without reaching k. After each
kill the folder is opened (:meth:`RunFolder.recover`, what every reader does) and must be the old
state or the new one, byte for byte, and verify when it holds a run; an interrupted first run
(the old state is an empty folder) must complete when run again.

Not compared: the lock file and the response caches (their own atomic stores), and the wall-clock
fields of run.json (``created``, ``updated``, ``judge.last_run.seconds``), which differ between any
two runs of the same command; the folder's own path in run.json (the command line) is replaced by
``{folder}``, since every k runs in a folder of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dfabench.store import FAULT_ENV, FAULT_EXIT_CODE, LOCK_FILE, RUN_RECORD, RunFolder

TESTS = Path(__file__).resolve().parent
NOT_STATE = frozenset({LOCK_FILE, *(f"{cache}{suffix}" for cache in ("cache.sqlite", "judge-cache.sqlite")
                                    for suffix in ("", "-wal", "-shm", "-journal"))})
MAX_STEPS = 2000


@dataclass
class Scenario:
    name: str
    old: Path  # the old state (copied for every k; never changed)
    args: list[str]  # the dfabench command line; "{folder}" stands for the run folder
    env: dict[str, str] = field(default_factory=dict)
    first_run: bool = False  # the old state is an empty folder: a killed run must complete when run again


@dataclass
class KillResult:
    scenario: str
    steps: int = 0  # file operations of the uninterrupted command
    states: Counter = field(default_factory=Counter)  # "old" / "new" after each kill
    inconsistent: list[str] = field(default_factory=list)


def environment(**extra: str) -> dict[str, str]:
    """The environment of the subprocesses: the test models plugin, no fault unless asked."""
    env = dict(os.environ)
    env.pop(FAULT_ENV, None)
    env["DFABENCH_PLUGINS"] = "dfabench_testmodels"
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


def dfabench(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """``dfabench ARGS`` in a child process: forked from this one where the OS can (the imports are
    done once, so a kill loop of hundreds of runs takes seconds), else a fresh interpreter."""
    if FORK:
        return _forked(args, env, timeout)
    code = "import sys; from dfabench.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


FORK = hasattr(os, "fork") and os.environ.get("DFABENCH_KILL_TEST_SPAWN") != "1"


def _forked(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    import tempfile
    import time

    with tempfile.TemporaryFile() as output:
        pid = os.fork()
        if pid == 0:  # the child: the CLI as a fresh process would run it, then exit
            code = 99
            try:
                os.dup2(output.fileno(), 1)
                os.dup2(output.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
                os.environ.clear()
                os.environ.update(env)
                from dfabench import transaction
                from dfabench.cli import main
                from dfabench.plugins import reset_manager

                transaction._FAULTS.count = 0  # this process's own count of file operations
                reset_manager(None)
                code = main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - reported through the exit code and the output
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise subprocess.TimeoutExpired(["dfabench", *args], timeout)
            time.sleep(0.005)
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    return subprocess.CompletedProcess(["dfabench", *args], os.waitstatus_to_exitcode(status), text, text)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) below ``folder``, the non-state files left out;
    run.json without its wall-clock fields, and the folder's own path in it (the command line) as
    ``{folder}``."""
    files: dict[str, bytes | None] = {}
    if not folder.is_dir():
        return files
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel in NOT_STATE:
            continue
        files[rel] = None if path.is_dir() else path.read_bytes()
    if files.get(RUN_RECORD):
        record = json.loads(files[RUN_RECORD].replace(str(folder).encode(), b"{folder}"))
        record.pop("created", None)
        record.pop("updated", None)
        if isinstance((record.get("judge") or {}).get("last_run"), dict):
            record["judge"]["last_run"].pop("seconds", None)
        files[RUN_RECORD] = json.dumps(record, sort_keys=True).encode()
    return files


def difference(a: dict[str, bytes | None], b: dict[str, bytes | None]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k, b"\0missing") != b.get(k, b"\0missing"))


def _args(scenario: Scenario, folder: Path) -> list[str]:
    return [a.replace("{folder}", str(folder)) for a in scenario.args]


def _verify_problems(folder: Path) -> list[str]:
    from dfabench.verify import verify

    report = verify(folder)
    return list(report.failed) + list(getattr(report, "unverifiable", []))


def run_clean(scenario: Scenario, folder: Path) -> subprocess.CompletedProcess:
    shutil.copytree(scenario.old, folder)
    return dfabench(_args(scenario, folder), environment(**scenario.env))


def kill_every_step(scenario: Scenario, work: Path) -> KillResult:
    """Run ``scenario`` killed after its k-th file operation, for every k; see the module docstring."""
    result = KillResult(scenario.name)
    shutil.copytree(scenario.old, work / "old")
    old = snapshot(work / "old")  # as a copy sees it
    reference = run_clean(scenario, work / "reference")
    if reference.returncode != 0:
        raise RuntimeError(f"{scenario.name}: the uninterrupted command failed ({reference.returncode}): "
                           f"{reference.stderr[-2000:]}")
    new = snapshot(work / "reference")
    if new == old:
        raise RuntimeError(f"{scenario.name}: the command changes nothing, so a kill test proves nothing")
    for k in range(1, MAX_STEPS + 1):
        folder = work / f"k{k}"
        shutil.copytree(scenario.old, folder)
        proc = dfabench(_args(scenario, folder), environment(**scenario.env, **{FAULT_ENV: str(k)}))
        if proc.returncode == 0:
            result.steps = k - 1
            if snapshot(folder) != new:
                result.inconsistent.append(f"k={k}: completed, but not in the new state "
                                           f"({difference(snapshot(folder), new)})")
            shutil.rmtree(folder)
            return result
        if proc.returncode != FAULT_EXIT_CODE:
            result.inconsistent.append(f"k={k}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
            return result
        RunFolder(folder).recover()
        now = snapshot(folder)
        state = "old" if now == old else "new" if now == new else None
        if state is None:
            result.inconsistent.append(f"k={k}: neither the old nor the new state (old differs in "
                                       f"{difference(now, old)}, new in {difference(now, new)})")
        else:
            result.states[state] += 1
            if (folder / RUN_RECORD).exists():
                problems = _verify_problems(folder)
                if problems:
                    result.inconsistent.append(f"k={k}: {state} state does not verify: {problems[:3]}")
            elif not scenario.first_run:
                result.inconsistent.append(f"k={k}: the run record is gone")
            else:
                again = dfabench(_args(scenario, folder), environment(**scenario.env))
                if again.returncode != 0 or snapshot(folder) != new:
                    result.inconsistent.append(f"k={k}: the run again after the kill did not complete "
                                               f"(exit {again.returncode}): {again.stderr.strip()[-300:]}")
        shutil.rmtree(folder)
    result.inconsistent.append(f"still not done after {MAX_STEPS} file operations")
    return result


def _checked(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {proc.stderr[-2000:]}")


def _strip_sample_metrics(folder: Path) -> None:
    """The logs as a run made before per-sample metrics existed: ``score`` writes them in (its new state)."""
    with RunFolder(folder).transaction() as tx:
        record = RunFolder(folder).read_record()
        for task in record["samples"]:
            records = RunFolder(folder).read_samples(task)
            for sample in records:
                sample["metrics"] = {}
            record["samples"][task]["sha256"] = tx.write_samples(task, records)
        tx.write_record(record)


def build_scenarios(work: Path, judge_url: str, limit: int = 2) -> list[Scenario]:
    """The old states of ``run`` (into an empty folder, into a folder with an earlier run, FL
    included), ``score`` and ``judge`` on a tiny smoke benchmark."""
    from dfabench.data import smoke

    if FORK:  # imported once here, not in every forked child
        import contextlib

        with contextlib.suppress(ImportError):
            import openai  # noqa: F401
    work.mkdir(parents=True, exist_ok=True)
    bench = smoke.build_smoke(work / "bench", seed=0, size="tiny")
    env = environment()
    common = ["--bench", str(bench), "--limit", str(limit), "--n-boot", "20", "--no-progress", "--model", "masker"]

    # run into an empty folder; the responses come from a warm cache outside it (so timings are 0)
    cache = work / "responses.sqlite"
    first = ["run", *common, "--tasks", "DF-D,FL", "--cache", str(cache), "--out", "{folder}"]
    _checked(dfabench([a.replace("{folder}", str(work / "warm")) for a in first], env), "warming the cache")
    (work / "old-empty").mkdir()

    # an earlier run (DF-D and FL, masks) and a stray mask of an older dfabench: FL is run again
    earlier = work / "old-run"
    _checked(dfabench(["run", *common, "--tasks", "DF-D,FL", "--out", str(earlier)], env), "the earlier run")
    stray = earlier / "masks" / "FL" / "0000000000000000.png"
    stray.write_bytes(next((earlier / "masks" / "FL").glob("*.png")).read_bytes())

    # score: logs without per-sample metrics
    unscored = work / "old-score"
    _checked(dfabench(["run", *common, "--tasks", "DF-D,FL", "--out", str(unscored)], env), "the run to score")
    _strip_sample_metrics(unscored)

    # judge: a conversation task (text and judge metrics)
    unjudged = work / "old-judge"
    _checked(dfabench(["run", *common, "--tasks", "FC", "--out", str(unjudged)], env), "the run to judge")
    for folder in (earlier, unscored, unjudged):
        problems = _verify_problems(folder)
        if problems:
            raise RuntimeError(f"the old state {folder.name} does not verify: {problems[:3]}")

    return [
        Scenario("run into an empty folder", work / "old-empty", first, first_run=True),
        Scenario("run into a folder with an earlier run", earlier,
                 ["run", *common, "--tasks", "FL", "--out", "{folder}"]),
        Scenario("score", unscored, ["score", "{folder}"]),
        Scenario("judge", unjudged, ["judge", "{folder}", "--judge-model", "judge-alias", "--base-url", judge_url,
                                     "--api-key-env", "DFABENCH_TEST_JUDGE_KEY", "--concurrency", "2"],
                 env={"DFABENCH_TEST_JUDGE_KEY": "sk-test"}),
    ]
