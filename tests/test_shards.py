"""Deterministic shards (`run --shard K/N`) and `dfabench merge`: the merged run equals the unsharded one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dfabench.errors import DfabenchError
from dfabench.executors.shards import parse_shard, shard_of, take_shard

#: fields of a per-sample record that differ between any two runs (wall-clock times)
VOLATILE_SAMPLE = {"timings"}
#: fields of run.json that differ between any two runs, or say how the run was made
VOLATILE_RECORD = {"created", "updated", "command", "executor", "merged_from", "samples", "environment"}


def _samples(out: Path, task: str) -> list[dict]:
    lines = (out / f"samples-{task}.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in VOLATILE_SAMPLE} for line in lines]


def _record(out: Path) -> dict:
    record = json.loads((out / "run.json").read_text())
    return {k: v for k, v in record.items() if k not in VOLATILE_RECORD}


def test_shard_specs():
    assert parse_shard("1/4") == (1, 4) and parse_shard(" 4 / 4 ") == (4, 4)
    for bad, says in (("3/2", "between 1 and 2"), ("0/4", "counted from 1"), ("1/0", "between 1 and"),
                      ("a/b", "must be K/N"), ("2", "must be K/N"), ("-1/3", "must be K/N")):
        with pytest.raises(DfabenchError, match=says):
            parse_shard(bad)


def test_a_sample_s_shard_is_a_hash_of_its_id_only():
    # the same on every machine and Python version: SHA-256 of the UTF-8 id, not hash()
    assert [shard_of(i, 4) for i in ["a", "sample-0001", "ff++/000_003/frame_12.png", "é"]] == [3, 2, 1, 4]
    ids = [f"s{i:04d}" for i in range(400)]
    parts = [take_shard(ids, (k, 4), id_of=str) for k in range(1, 5)]
    assert sorted(sum(parts, [])) == ids  # a partition
    assert all(60 < len(p) < 140 for p in parts)
    assert take_shard(ids, None, id_of=str) == ids


def _run(cli, bench, out, *extra, model=("--model", "random", "--model-arg", "mode=score")):
    code, _, err = cli("run", *model, "--bench", str(bench), "--out", str(out), "--no-progress", "--n-boot", "50",
                       *extra)
    assert code == 0, err
    return out


def test_four_shards_merged_equal_the_unsharded_run(cli, tiny_bench, tmp_path):
    whole = _run(cli, tiny_bench, tmp_path / "whole", "--tasks", "DF-D,DF-C")
    shards = [_run(cli, tiny_bench, tmp_path / f"shard{k}", "--tasks", "DF-D,DF-C", "--shard", f"{k}/4")
              for k in range(1, 5)]
    n = [json.loads((s / "run.json").read_text())["counts"]["DF-D"]["n"] for s in shards]
    assert sum(n) == 20 and all(x < 20 for x in n)
    code, out, err = cli("merge", *map(str, reversed(shards)), "--out", str(tmp_path / "merged"))
    assert code == 0, err
    merged = tmp_path / "merged"
    for task in ("DF-D", "DF-C"):
        assert _samples(merged, task) == _samples(whole, task)
    assert _record(merged) == _record(whole)
    record = json.loads((merged / "run.json").read_text())
    assert record["shard"] is None and [m["shard"] for m in record["merged_from"]] == ["1/4", "2/4", "3/4", "4/4"]
    assert cli("verify", str(merged), "--bench", str(tiny_bench))[0] == 0
    # the merged folder holds the shards' cached answers: a run into it asks the model nothing
    code, _, err = cli("run", "--model", "random", "--model-arg", "mode=score", "--bench", str(tiny_bench),
                       "--out", str(merged), "--tasks", "DF-D", "--no-progress", "--n-boot", "50")
    assert code == 0, err
    assert json.loads((merged / "run.json").read_text())["metrics"]["DF-D"] == record["metrics"]["DF-D"]
    assert all(r["cached"] for r in _samples(merged, "DF-D"))


def test_merged_masks_of_a_localization_task(cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2, with_masks=True)
    model = ("--model", "masker")
    whole = _run(cli, bench, tmp_path / "whole", "--tasks", "FL", model=model)
    shards = [_run(cli, bench, tmp_path / f"s{k}", "--tasks", "FL", "--shard", f"{k}/3", model=model)
              for k in (1, 2, 3)]
    assert cli("merge", *map(str, shards), "--out", str(tmp_path / "merged"))[0] == 0
    merged = tmp_path / "merged"
    assert _samples(merged, "FL") == _samples(whole, "FL")
    assert _record(merged)["metrics"] == _record(whole)["metrics"]
    assert cli("verify", str(merged), "--bench", str(bench))[0] == 0


def test_merge_refuses_what_is_not_the_n_shards_of_one_run(cli, tiny_bench, tmp_path):
    s = {k: _run(cli, tiny_bench, tmp_path / f"s{k}", "--tasks", "DF-D", "--shard", f"{k}/3") for k in (1, 2, 3)}
    other_seed = _run(cli, tiny_bench, tmp_path / "seed1", "--tasks", "DF-D", "--shard", "3/3", "--seed", "1")
    whole = _run(cli, tiny_bench, tmp_path / "whole", "--tasks", "DF-D")
    two = _run(cli, tiny_bench, tmp_path / "half", "--tasks", "DF-D", "--shard", "1/2")
    cases = [
        ((s[1], s[2]), "shard(s) 3/3 missing"),
        ((s[1], s[2], s[2], s[3]), "shard 2/3 is given twice"),
        ((s[1], s[2], other_seed), "shards of different runs (seed differs"),
        ((s[1], s[2], s[3], whole), "is not a shard of a run"),
        ((s[1], s[2], two), "shards of different splits"),
    ]
    for folders, says in cases:
        target = tmp_path / "merged"
        code, _, err = cli("merge", *map(str, folders), "--out", str(target))
        assert code == 2 and says in err, (says, err)
        assert len(err.strip().splitlines()) == 1
        assert not (target / "run.json").exists()
    # a changed shard log is refused (its hash no longer matches)
    tampered = tmp_path / "tampered"
    shutil.copytree(s[2], tampered)
    log = tampered / "samples-DF-D.jsonl"
    log.write_text(log.read_text().replace('"real"', '"fake"', 1))
    code, _, err = cli("merge", str(s[1]), str(tampered), str(s[3]), "--out", str(tmp_path / "m2"))
    assert code == 2 and "changed after it was written" in err
    # into a folder that holds something: refused, nothing changed
    code, _, err = cli("merge", str(s[1]), str(s[2]), str(s[3]), "--out", str(whole))
    assert code == 2 and "not an empty folder" in err


def test_a_shard_folder_resumes_only_as_the_same_shard_and_is_no_entry(cli, tiny_bench, tmp_path):
    shard = _run(cli, tiny_bench, tmp_path / "s1", "--tasks", "DF-D", "--shard", "1/3")
    code, _, err = cli("run", "--model", "random", "--model-arg", "mode=score", "--bench", str(tiny_bench),
                       "--out", str(shard), "--tasks", "DF-D", "--shard", "2/3", "--no-progress", "--n-boot", "50")
    assert code == 2 and "shard 1/3" in err
    code, _, err = cli("run", "--model", "random", "--model-arg", "mode=score", "--bench", str(tiny_bench),
                       "--out", str(shard), "--tasks", "DF-D", "--no-progress", "--n-boot", "50")
    assert code == 2 and "shard 1/3" in err
    code, _, err = cli("leaderboard", "submit", str(shard), "--entries", str(tmp_path / "entries"), "--name", "x")
    assert code == 2 and "dfabench merge" in err
    # verify: the shard's own evidence holds; the one failure is that it is not a whole run
    code, out, _ = cli("verify", str(shard), "--bench", str(tiny_bench))
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert code == 1 and len(failures) == 1 and "shard 1/3 of a run, not a whole run" in failures[0], out


def test_bad_shard_and_executor_flags_are_one_line(cli, tiny_bench, tmp_path):
    for extra, says in ((("--shard", "3/2"), "between 1 and 2"), (("--shard", "0/4"), "counted from 1"),
                        (("--replicas", "2"), "need --executor ray")):
        code, _, err = cli("run", "--model", "random", "--bench", str(tiny_bench), "--out", str(tmp_path / "r"),
                           "--tasks", "DF-D", *extra)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "r").exists()
