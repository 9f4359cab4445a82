"""Crash and concurrency safety of every write into a run folder (dfabench.store transactions).

- every stage that writes (run into an empty folder, run into a folder with an earlier run, score,
  judge) is killed right after each of its file operations, for every k: the folder is then the old
  state or the new one, byte for byte, and verifies (tests/commit_kill.py does the loop);
- a second writer gets exit 2 naming the folder and the holder's pid, and changes nothing;
- score and judge refuse a folder whose logs or masks do not match run.json (nothing is written);
- predicted masks are part of the commit and hashed in run.json; verify fails on a changed mask.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import commit_kill as ck
import pytest

from dfabench import store
from dfabench.errors import DfabenchError
from dfabench.store import JOURNAL_FILE, RUN_RECORD, FolderLockedError, RunFolder
from dfabench.testing.chat_server import ChatServer, judge_reply


@pytest.fixture(scope="module")
def judge_endpoint():
    with ChatServer(responder=judge_reply, model="judge-kill-2026") as server:
        yield server


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory, judge_endpoint) -> dict[str, ck.Scenario]:
    work = tmp_path_factory.mktemp("commit")
    return {s.name: s for s in ck.build_scenarios(work, judge_endpoint.base_url)}


def fresh(scenario: ck.Scenario, path: Path) -> Path:
    shutil.copytree(scenario.old, path)
    return path


def files(folder: Path) -> dict[str, bytes]:
    """Every file's bytes (the lock file, which only exists while a writer holds it, aside)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != store.LOCK_FILE}


# --------------------------------------------------------------------------- kill at every step


@pytest.mark.parametrize("name", ["run into an empty folder", "run into a folder with an earlier run", "score",
                                  "judge"])
def test_a_kill_after_any_file_operation_leaves_the_old_or_the_new_state(name, scenarios, tmp_path):
    result = ck.kill_every_step(scenarios[name], tmp_path)
    assert result.inconsistent == []
    # staged files (write + fsync each), the journal, the renames, the clean-up: many steps, both sides seen
    assert result.steps >= 12
    assert result.states["old"] > 0 and result.states["new"] > 0
    assert sum(result.states.values()) == result.steps


def test_a_committed_journal_is_completed_by_verify(scenarios, tmp_path):
    """Killed right after the commit point: `dfabench verify` (a reader) rolls the switch forward."""
    scenario = scenarios["score"]
    reference = tmp_path / "reference"
    assert ck.run_clean(scenario, reference).returncode == 0
    for k in range(1, 200):
        folder = fresh(scenario, tmp_path / f"k{k}")
        proc = ck.dfabench(ck._args(scenario, folder), ck.environment(**{store.FAULT_ENV: str(k)}))
        assert proc.returncode == store.FAULT_EXIT_CODE, proc.stderr
        if (folder / JOURNAL_FILE).exists():
            break
    else:
        pytest.fail("no step left a committed journal")
    verified = ck.dfabench(["verify", str(folder)], ck.environment())
    assert verified.returncode == 0, verified.stdout
    assert not (folder / JOURNAL_FILE).exists()
    assert ck.snapshot(folder) == ck.snapshot(reference)


def test_an_uncommitted_transaction_is_invisible_and_cleaned_up(scenarios, tmp_path):
    folder = fresh(scenarios["score"], tmp_path / "run")
    before = files(folder)
    staging = folder / ".staging-1-deadbeef"
    (staging / "masks" / "FL").mkdir(parents=True)
    (staging / RUN_RECORD).write_text("{}")
    (staging / "masks" / "FL" / "x.png").write_bytes(b"half")
    (folder / (JOURNAL_FILE + ".tmp")).write_text('{"staging": ".staging-1-dead')
    assert RunFolder(folder).read_record()["schema_version"] == store.SCHEMA_VERSION
    assert files(folder) == before
    assert not staging.exists()


# --------------------------------------------------------------------------- the lock

HOLD = textwrap.dedent("""
    import sys
    from dfabench.store import RunFolder
    with RunFolder(sys.argv[1]).transaction():
        print("locked", flush=True)
        sys.stdin.read()
""")


def test_a_second_writer_gets_exit_2_and_changes_nothing(scenarios, tmp_path):
    folder = fresh(scenarios["run into a folder with an earlier run"], tmp_path / "run")
    before = files(folder)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for args in (ck._args(scenarios["run into a folder with an earlier run"], folder), ["score", str(folder)]):
            proc = ck.dfabench(args, ck.environment())
            assert proc.returncode == 2, proc.stderr
            lines = [line for line in proc.stderr.splitlines() if "writing to this folder" in line]
            assert len(lines) == 1
            assert str(folder) in lines[0] and f"pid {holder.pid}" in lines[0]
            assert files(folder) == before
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0
    assert not (folder / store.LOCK_FILE).exists()  # released and removed
    assert ck.dfabench(ck._args(scenarios["run into a folder with an earlier run"], folder),
                       ck.environment()).returncode == 0


def test_one_process_cannot_open_two_transactions_on_a_folder(tmp_path):
    folder = RunFolder(tmp_path / "run")
    with folder.transaction(create=True) as tx:
        tx.write_record({"schema_version": store.SCHEMA_VERSION})
        with pytest.raises(FolderLockedError), RunFolder(tmp_path / "run").transaction():
            pass
    assert json.loads((tmp_path / "run" / RUN_RECORD).read_text()) == {"schema_version": store.SCHEMA_VERSION}


def test_a_failed_stage_leaves_nothing_behind(tmp_path):
    folder = RunFolder(tmp_path / "run")
    with pytest.raises(DfabenchError), folder.transaction(create=True) as tx:
        tx.write_bytes("masks/FL/a.png", b"x")
        raise DfabenchError("bad input")
    assert not folder.path.exists()  # it was created for the transaction, and nothing was committed


# --------------------------------------------------------------------------- hashes checked before a rewrite


def _tamper_log(folder: Path, task: str) -> None:
    path = folder / f"samples-{task}.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    record = json.loads(lines[0])
    record["parsed"] = {"text": "edited", "mask": record["parsed"]["mask"]} if task == "FL" else "edited answer"
    path.write_text(json.dumps(record) + "\n" + "".join(lines[1:]))


def _refused(proc: subprocess.CompletedProcess, what: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and what in lines[0] and "refusing" in lines[0], proc.stderr


def test_score_refuses_a_tampered_log_and_writes_nothing(scenarios, tmp_path):
    folder = fresh(scenarios["score"], tmp_path / "run")
    _tamper_log(folder, "DF-D")
    before = files(folder)
    _refused(ck.dfabench(["score", str(folder)], ck.environment()), "samples-DF-D.jsonl does not match")
    assert files(folder) == before
    assert ck.dfabench(["verify", str(folder)], ck.environment()).returncode == 1  # still visible


def test_score_refuses_a_changed_or_missing_mask_and_verify_fails(scenarios, tmp_path):
    for change in ("changed", "missing"):
        folder = fresh(scenarios["score"], tmp_path / change)
        mask = sorted((folder / "masks" / "FL").glob("*.png"))[0]
        if change == "changed":
            mask.write_bytes(base64.b64decode(
                "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAGP6vXgAAAABJRU5ErkJggg=="))
        else:
            mask.unlink()
        before = files(folder)
        _refused(ck.dfabench(["score", str(folder)], ck.environment()), f"predicted mask masks/FL/{mask.name}")
        assert files(folder) == before
        verified = ck.dfabench(["verify", str(folder)], ck.environment())
        assert verified.returncode == 1
        assert f"FL: predicted mask masks/FL/{mask.name} {'is missing' if change == 'missing' else 'does not'}" \
            in verified.stdout


def test_judge_refuses_a_tampered_log_before_any_call_or_file(scenarios, judge_endpoint, tmp_path):
    scenario = scenarios["judge"]
    folder = fresh(scenario, tmp_path / "run")
    _tamper_log(folder, "FC")
    before = files(folder)
    calls = judge_endpoint.count
    _refused(ck.dfabench(ck._args(scenario, folder), ck.environment(**scenario.env)), "samples-FC.jsonl does not match")
    assert files(folder) == before  # no judge cache either
    assert judge_endpoint.count == calls


def test_a_listed_log_that_is_missing_is_refused(scenarios, tmp_path):
    folder = fresh(scenarios["score"], tmp_path / "run")
    (folder / "samples-DF-D.jsonl").unlink()
    _refused(ck.dfabench(["score", str(folder)], ck.environment()), "samples-DF-D.jsonl is missing")


# --------------------------------------------------------------------------- masks in the record, schema


def test_predicted_masks_are_hashed_in_the_record(scenarios):
    folder = RunFolder(scenarios["score"].old)
    record = folder.read_record()
    assert record["schema_version"] == store.SCHEMA_VERSION == 2
    listed = record["samples"]["FL"]["masks"]
    referenced = {r["parsed"]["mask"] for r in folder.read_samples("FL") if r["parsed"]["mask"]}
    assert referenced and set(listed) == referenced
    assert all(store.sha256_file(folder.path / rel) == digest for rel, digest in listed.items())
    assert "masks" not in record["samples"]["DF-D"]
    assert folder.integrity_problems(record) == []


def test_a_version_1_record_stays_readable_and_rescorable(scenarios, tmp_path):
    folder = RunFolder(fresh(scenarios["score"], tmp_path / "run"))
    record = folder.read_record()
    record["schema_version"] = 1
    for info in record["samples"].values():
        info.pop("masks", None)
    folder.write_record(record)
    assert folder.read_record()["schema_version"] == 1
    assert folder.integrity_problems(folder.read_record()) == []  # no mask list: masks unchecked
    assert ck.dfabench(["score", str(folder.path)], ck.environment()).returncode == 0
    assert folder.read_record()["schema_version"] == 1


def test_a_journal_that_points_outside_the_folder_is_refused(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.write_record({"schema_version": store.SCHEMA_VERSION})
    (folder.path / JOURNAL_FILE).write_text(json.dumps({"staging": ".staging-1-x", "files": ["../escape"],
                                                        "delete": []}))
    with pytest.raises(DfabenchError, match="not a commit journal"):
        folder.read_record()


# --------------------------------------------------------------------------- the leaderboard writes


def test_submit_and_build_commit_as_a_whole(scenarios, tmp_path):
    from dfabench.leaderboard import build_leaderboard, submit_run

    run = fresh(scenarios["score"], tmp_path / "run")
    entries = tmp_path / "entries"
    entry = submit_run(run, entries, name="masker-test")
    copied = files(entry)
    assert set(copied) == {RUN_RECORD, "entry.json", *(p for p in files(run) if p.startswith(("samples-", "masks/")))}
    assert all(copied[p] == (run / p).read_bytes() for p in copied if p != "entry.json")
    (entry / "masks" / "FL" / "stale.png").write_bytes(b"from an earlier submission")
    assert submit_run(run, entries, name="masker-test", force=True) == entry
    assert files(entry) == copied  # replaced as a whole: the stale file went at the switch
    out = tmp_path / "board"
    result = build_leaderboard(entries, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in result.written)
