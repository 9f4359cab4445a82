"""Reviewer checks and the leaderboard: every number is re-derived, non-comparable runs are not ranked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def two_runs(cli, tiny_bench, tmp_path):
    runs = {}
    for model, args in (("constant", []), ("random", ["--model-arg", "seed=1"])):
        out = tmp_path / "runs" / model
        assert cli("run", "--model", model, *args, "--tasks", "DF-D,DF-C", "--bench", str(tiny_bench),
                   "--out", str(out), "--no-progress")[0] == 0
        runs[model] = out
    return runs


def test_verify_passes_on_an_untouched_run(cli, two_runs, tiny_bench):
    code, out, _ = cli("verify", str(two_runs["constant"]), "--bench", str(tiny_bench),
                       "--claim", "DF-D.accuracy=0.6", "--claim", "dfd.balanced_accuracy=0.5")
    assert code == 0, out
    assert "VERIFIED" in out and "FAIL" not in out


def test_verify_fails_on_a_wrong_claim(cli, two_runs):
    code, out, _ = cli("verify", str(two_runs["constant"]), "--claim", "DF-D.accuracy=0.9")
    assert code == 1
    assert "claim DF-D.accuracy=0.9 does not hold: the logs give 0.600000" in out


def test_verify_fails_on_an_edited_metric(cli, two_runs):
    path = two_runs["constant"] / "run.json"
    record = json.loads(path.read_text())
    record["metrics"]["DF-D"]["accuracy"]["value"] = 0.99
    path.write_text(json.dumps(record))
    code, out, _ = cli("verify", str(two_runs["constant"]))
    assert code == 1
    assert "metrics differ from the re-derivation: accuracy.value 0.99 != 0.6" in out


def test_verify_fails_on_an_edited_sample_log(cli, two_runs):
    path = two_runs["constant"] / "samples-DF-D.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["parsed"] = "real"
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    code, out, _ = cli("verify", str(two_runs["constant"]))
    assert code == 1
    assert "does not match the SHA-256" in out


def test_verify_fails_when_the_benchmark_differs(cli, two_runs, tiny_bench):
    manifest = tiny_bench / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    record = json.loads(lines[0])
    record["label"] = "fake"
    record["category"] = "FS"
    manifest.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    code, out, _ = cli("verify", str(two_runs["constant"]), "--bench", str(tiny_bench))
    assert code == 1
    assert "benchmark fingerprint" in out and "do not match the benchmark" in out


def test_leaderboard_ranks_comparable_runs_and_explains_the_rest(cli, two_runs, tiny_bench, tmp_path):
    entries = tmp_path / "entries"
    for name, run in two_runs.items():
        assert cli("leaderboard", "submit", str(run), "--entries", str(entries), "--name", name)[0] == 0
    partial = tmp_path / "runs" / "partial"
    assert cli("run", "--model", "random", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(partial),
               "--limit", "5", "--no-progress")[0] == 0
    assert cli("leaderboard", "submit", str(partial), "--entries", str(entries), "--name", "partial")[0] == 0
    # an entry whose log was tampered with is excluded
    tampered = entries / "tampered"
    tampered.mkdir()
    for file in (entries / "constant").iterdir():
        (tampered / file.name).write_bytes(file.read_bytes())
    (tampered / "samples-DF-D.jsonl").write_text("{}\n")
    out_dir = tmp_path / "board"
    code, _, err = cli("leaderboard", "build", "--entries", str(entries), "--out", str(out_dir))
    assert code == 1  # an excluded entry is an error the maintainer must see; the build goes on
    board = json.loads((out_dir / "leaderboard.json").read_text())
    [ranked] = board["boards"]
    names = [row["entry"] for row in ranked["tasks"]["DF-D"]["rows"]]
    assert sorted(names) == ["constant", "random"]
    assert any(x["entry"] == "partial" and "partial run" in x["reason"] for x in board["not_ranked"])
    assert any("tampered" in x for x in board["excluded"]) and "tampered" in err
    text = (out_dir / "README.md").read_text()
    assert "### DF-D" in text and "| constant |" in text.replace("  ", " ")


def test_leaderboard_shows_na_for_a_task_the_model_cannot_do(cli, tiny_bench, tmp_path):
    entries = tmp_path / "entries"
    for model, args in (("random", ["--model-arg", "mode=score"]), ("constant", [])):
        out = tmp_path / model
        assert cli("run", "--model", model, *args, "--tasks", "DF-D,AD", "--bench", str(tiny_bench),
                   "--out", str(out), "--no-progress")[0] == 0
        assert cli("leaderboard", "submit", str(out), "--entries", str(entries), "--name", model)[0] == 0
    assert cli("leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "board"))[0] == 0
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    rows = {r["entry"]: r for r in board["boards"][0]["tasks"]["AD"]["rows"]}
    assert rows["random"]["na"] is True and rows["constant"]["na"] is False
    ad_section = (tmp_path / "board" / "README.md").read_text().split("### AD")[1]
    assert "n/a" in ad_section


def test_leaderboard_refuses_to_rank_a_different_task_spec(cli, two_runs, tmp_path):
    entries = tmp_path / "entries"
    for name, run in two_runs.items():
        cli("leaderboard", "submit", str(run), "--entries", str(entries), "--name", name)
    # simulate an entry made with an older DF-D prompt: change the spec and re-fingerprint consistently
    from dfabench.store import RunFolder
    from dfabench.tasks import TaskSpec

    path = entries / "random" / "run.json"
    record = json.loads(path.read_text())
    record["tasks"]["DF-D"]["spec"]["prompt"] = "Is this a deepfake?"
    record["tasks"]["DF-D"]["fingerprint"] = TaskSpec.from_dict(record["tasks"]["DF-D"]["spec"]).fingerprint
    RunFolder(entries / "random").write_record(record)
    assert cli("leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "board"))[0] == 0
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert [r["entry"] for r in board["boards"][0]["tasks"]["DF-D"]["rows"]] == ["constant"]
    assert any(x["entry"] == "random" and x["task"] == "DF-D" and "task spec" in x["reason"]
               for x in board["not_ranked"])


def test_submit_refuses_a_run_that_does_not_verify(cli, two_runs, tmp_path):
    (two_runs["constant"] / "samples-DF-C.jsonl").write_text("")
    code, _, err = cli("leaderboard", "submit", str(two_runs["constant"]), "--entries", str(tmp_path / "e"))
    assert code == 2 and "does not verify" in err
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())


def test_score_of_a_missing_run_folder_is_a_clear_error(cli, tmp_path):
    code, _, err = cli("score", str(tmp_path / "nothing"))
    assert code == 2 and "no such run folder" in err
    Path(tmp_path / "notrun").mkdir()
    code, _, err = cli("verify", str(tmp_path / "notrun"))
    assert code == 2 and "not a run folder" in err


def test_verify_fails_on_an_edited_breakdown(cli, two_runs):
    path = two_runs["constant"] / "run.json"
    record = json.loads(path.read_text())
    technique = next(iter(record["breakdowns"]["DF-D"]["per_technique"]))
    record["breakdowns"]["DF-D"]["per_technique"][technique]["value"] = 0.123
    path.write_text(json.dumps(record))
    code, out, _ = cli("verify", str(two_runs["constant"]))
    assert code == 1 and "breakdowns differ from the re-derivation: per_technique" in out


def test_column_identities_that_decide_comparability():
    from dfabench.leaderboard import column_identity

    record = {
        "judge": {"model": "gpt-4o-2024-08-06", "rubric": "artifact-description", "rubric_version": "1",
                  "tasks": {"AD": {"model": "qwen2.5-7b", "rubric": "artifact-description", "rubric_version": "1",
                                   "with_image": True, "rubric_sha256": "651a0b2c3d4e"}}},
        "breakdowns": {"AD": {"embedding_samples": {"model": "all-MiniLM-L6-v2"},
                              "meteor_samples": {"nltk": "3.10", "wordnet": "3.0"}}},
    }
    # the rubric's own hash is part of it: an edited rubric under the same name and version is another judge
    assert column_identity(record, "AD", "judge_score") == "qwen2.5-7b / artifact-description v1 #651a0b2c +image"
    assert column_identity(record, "FC", "judge_score") == "gpt-4o-2024-08-06 / artifact-description v1"
    assert column_identity(record, "AD", "embedding_similarity") == "all-MiniLM-L6-v2"
    assert column_identity(record, "AD", "meteor") == "nltk 3.10 / WordNet 3.0"
    assert column_identity(record, "AD", "bleu_4") is None
