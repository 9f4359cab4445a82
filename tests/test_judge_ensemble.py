"""Judge ensembles (issue 10, part 4): several judges averaged as one judge identity, cached per member, a member's
failure failing the sample for the ensemble, members' coverage, calibration and agreement in run.json; and the
judge identity of an openai pool, which names no server (adding one keeps the cached judgments)."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from dfabench.errors import DfabenchError
from dfabench.judge import JudgeSettings, judge_run, load_rubric
from dfabench.judge.ensemble import OUTPUT
from dfabench.records import JudgeIdentity
from dfabench.store import RunFolder

_spec = importlib.util.spec_from_file_location("dfabench_test_judge_server_ensemble",
                                               Path(__file__).with_name("judge_server.py"))
js = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(js)

RUBRIC = load_rubric("artifact-description-v2")
KEY_ENV = "DFABENCH_TEST_JUDGE_KEY"


def _grades(value: int) -> str:
    return json.dumps({**{key: value for key in RUBRIC.keys}, "rationale": f"all {value}"})


def constant(value: int) -> tuple[str, dict]:
    return ("constant", {"text": _grades(value)})


def openai_member(server) -> tuple[str, dict]:
    return ("openai", {"model": "judge-alias", "base_url": server.base_url, "api_key_env": KEY_ENV,
                       "timeout": 2.0, "max_retries": 0})


def ensemble(*members, **extra) -> JudgeSettings:
    return JudgeSettings(members=list(members), **extra)


def _samples(folder: Path, task: str = "AD") -> dict[str, dict]:
    return {r["id"]: r for r in RunFolder(folder).read_samples(task)}


def test_an_ensemble_is_the_mean_per_criterion_under_one_identity(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred", "the mouth is warped", ""])
    summary = judge_run(folder.path, ensemble(constant(4), constant(1), calibrate=False), stream=io.StringIO())
    got = _samples(folder.path)
    judge = got["s0"]["judge"]
    assert judge["criteria"] == {key: pytest.approx(2.5) for key in RUBRIC.keys}
    assert judge["score"] == pytest.approx((0.8 + 0.2) / 2)
    assert [m["score"] for m in judge["members"]] == [pytest.approx(0.8), pytest.approx(0.2)]
    assert judge["output"] == OUTPUT and judge["model"] == "ensemble(constant [text] + constant [text])"
    assert got["s2"]["judge"]["by_rule"] is True and got["s2"]["judge"]["output"] == OUTPUT  # empty: 0, no call
    record = folder.read_record()
    assert record["metrics"]["AD"]["judge_score"]["value"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    assert JudgeIdentity.from_dict(record["judge"]).key() == JudgeIdentity.from_dict(judge).key()
    members = record["judge"]["ensemble"]["members"]
    assert [m["coverage"]["AD"]["n_judged"] for m in members] == [3, 3]
    assert len({m["judge_fingerprint"] for m in members}) == 2
    assert record["judge"]["judge_fingerprint"] not in {m["judge_fingerprint"] for m in members}
    assert summary.n_failed == 0 and summary.tasks["AD"].n_judged == 3
    # each member's judgments are archived as a single judge's are
    assert len(list(folder.path.glob("judgments-constant-*.jsonl"))) == 2


def test_the_members_order_does_not_change_the_identity_and_each_member_is_cached(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred", "the mouth is warped", "the nose"])
    judge_run(folder.path, ensemble(constant(4), constant(1), calibrate=False), stream=io.StringIO())
    first = folder.read_record()["judge"]
    summary = judge_run(folder.path, ensemble(constant(1), constant(4), calibrate=False), stream=io.StringIO())
    again = folder.read_record()["judge"]
    assert summary.tally.attempts == 0 and summary.tasks["AD"].n_cached == 3  # every member's judgment cached
    assert JudgeIdentity.from_dict(again).key() == JudgeIdentity.from_dict(first).key()
    assert again["judge_fingerprint"] == first["judge_fingerprint"]
    # a third member: only it is asked
    summary = judge_run(folder.path, ensemble(constant(4), constant(1), constant(2), calibrate=False),
                        stream=io.StringIO())
    assert summary.tally.attempts == 3
    assert _samples(folder.path)["s0"]["judge"]["score"] == pytest.approx((0.8 + 0.2 + 0.4) / 3)


def test_a_member_judged_alone_before_is_not_asked_again(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred", "the mouth is warped", "the jawline"])
    with js.judge_server(model="judge-2026") as server:
        judge_run(folder.path, JudgeSettings(model="judge-alias", base_url=server.base_url, api_key_env=KEY_ENV,
                                             timeout=2.0, max_retries=0, calibrate=False),
                  stream=io.StringIO())
        alone = {s: r["judge"]["score"] for s, r in _samples(folder.path).items()}
        asked = server.count
        judge_run(folder.path, ensemble(openai_member(server), constant(5), calibrate=False), stream=io.StringIO())
        assert server.count == asked  # the openai member's judgments came from the cache
    got = _samples(folder.path)
    for sample_id, record in got.items():
        assert record["judge"]["score"] == pytest.approx((alone[sample_id] + 1.0) / 2)
    assert got["s0"]["judge"]["model"] == "ensemble(constant [text] + judge-2026 [json_schema])"


def test_a_sample_a_member_fails_is_failed_for_the_ensemble_never_a_partial_mean(tmp_path, cli):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred", "[garbage] the mouth", "the nose"])
    with js.judge_server() as server:
        summary = judge_run(folder.path, ensemble(openai_member(server), constant(4), calibrate=False),
                            stream=io.StringIO())
    got = _samples(folder.path)
    failed = got["s1"]["judge"]
    assert failed["score"] is None and failed["criteria"] is None and failed["failure"] == "member_unparseable"
    assert "ensemble member openai (judge-alias) failed" in failed["error"]
    assert [m["score"] is None for m in failed["members"]] == [True, False]  # the constant member judged it
    record = folder.read_record()
    assert record["metrics"]["AD"]["judge_score"]["n"] == 2  # the two samples both members judged
    assert record["metrics"]["AD"]["judge_failure_rate"]["value"] == pytest.approx(1 / 3)
    coverage = [m["coverage"]["AD"] for m in record["judge"]["ensemble"]["members"]]
    assert [(c["n_judged"], c["n_failed"]) for c in coverage] == [(2, 1), (3, 0)]
    assert summary.tasks["AD"].failures == {"member_unparseable": 1}
    assert record["judge"]["tasks"]["AD"]["members"][0]["failures"] == {"unparseable": 1}


def test_members_agreement_calibration_and_the_results_table(tmp_path, cli, tiny_bench):
    out = tmp_path / "run"
    assert cli("run", "--model", "constant", "--tasks", "AD", "--bench", str(tiny_bench), "--out", str(out),
               "--no-progress", "--n-boot", "20")[0] == 0
    folder = RunFolder(out)
    # make the answers differ, so that the graders' scores vary (two servers grading alike agree perfectly)
    records = folder.read_samples("AD")
    for i, record in enumerate(records):
        record["parsed"] = record["response"] = f"answer {i}: the eyes and the mouth show blending"
    run = folder.read_record()
    run["samples"]["AD"]["sha256"] = folder.write_samples("AD", records)
    folder.write_record(run)
    with js.judge_server(model="judge-a") as a, js.judge_server(model="judge-b") as b:
        code, stdout, stderr = cli("judge", str(out), "--judge", "openai", "--judge-arg", "model=judge-alias",
                                   "--judge-arg", f"base_url={a.base_url}", "--judge", "openai",
                                   "--judge-arg", f"base_url={b.base_url}", "--judge-arg", "model=judge-alias",
                                   "--api-key-env", KEY_ENV)
    assert code == 0, stderr
    record = folder.read_record()
    judge = record["judge"]
    assert judge["model"] == "ensemble(judge-a [json_schema] + judge-b [json_schema])"
    (pair, figures), = judge["agreement"].items()
    assert pair == "openai (judge-alias) #1 vs openai (judge-alias) #2" and figures["ensemble_members"] is True
    n = len(records)
    assert figures["score"]["n"] == n and figures["score"]["spearman"] == pytest.approx(1.0)
    members = judge["ensemble"]["members"]
    assert all(len(m["calibration"]["artifact-description-v2"]["fingerprint"]) == 64 for m in members)
    assert judge["calibration"]["artifact-description-v2"]["n"] >= 1  # the ensemble's own calibration report
    assert "ensemble of 2 judges" in stderr and "member openai (judge-alias) #1 [json_schema]" in stderr
    assert cli("verify", str(out))[0] == 0
    code, stdout, _ = cli("score", str(out))
    assert code == 0
    assert f"judge member openai (judge-alias) #2 [json_schema]: AD {n} judged / 0 failed; calibration" in stdout
    assert f"judge agreement openai (judge-alias) #1 vs openai (judge-alias) #2: {n} samples" in stdout
    # the members' archives: `dfabench judge agree` compares them afterwards
    code, stdout, _ = cli("judge", "agree", str(out), "--judges", "judge-a-artifact,judge-b-artifact", "--json")
    assert code == 0 and json.loads(stdout)["score"]["spearman"] == pytest.approx(1.0)


def test_bad_ensembles_are_one_clear_line_and_change_nothing(tmp_path, cli):
    folder = js.make_run(tmp_path / "run", ["a"])
    before = {p.name: p.read_bytes() for p in folder.path.iterdir()}
    code, _, err = cli("judge", str(folder.path), "--judge", "constant", "--judge", "constant")
    assert code == 2 and "the same arguments twice" in err
    code, _, err = cli("judge", str(folder.path), "--judge-model", "gpt-4o", "--judge", "openai", "--judge",
                       "constant")
    assert code == 2 and "shorthand for one openai judge" in err
    code, _, err = cli("judge", str(folder.path), "--judge", "constant", "--judge", "random", "--judge-arg",
                       "mode=score")
    assert code == 2 and "cannot" in err
    assert {p.name: p.read_bytes() for p in folder.path.iterdir()} == before
    with pytest.raises(DfabenchError, match="creates its member judges"):
        judge_run(folder.path, ensemble(constant(1), constant(2)), stream=sys.stderr, judge=object())


def test_judge_args_belong_to_the_judge_before_them():
    import argparse

    from dfabench.cli.judge import add_judge_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_judge_arguments(parser)
    one = settings_from_args(parser.parse_args(["r", "--judge-arg", "path=p", "--judge", "hf"]))
    assert one.judge == "hf" and one.judge_args == {"path": "p"} and one.members == []
    two = settings_from_args(parser.parse_args(["r", "--judge-arg", "model=A", "--judge", "openai", "--judge", "hf",
                                                "--judge-arg", "path=B"]))
    assert two.members == [("openai", {"model": "A"}), ("hf", {"path": "B"})]


# ----------------------------------------------------------------------------- a pool names no server


def test_an_openai_pool_judge_names_no_server_and_adding_one_keeps_the_cache(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred", "the mouth is warped"])

    def pool(*servers) -> JudgeSettings:  # the shorthand --base-url URL,URL (a trailing comma: a pool of one)
        return JudgeSettings(model="judge-model-2026-01-01", base_url=",".join(s.base_url for s in servers) + ",",
                             api_key_env=KEY_ENV, timeout=2.0, max_retries=0, calibrate=False)

    with js.judge_server() as a, js.judge_server() as b:
        judge_run(folder.path, pool(a), stream=io.StringIO(), rescore=False)
        record = folder.read_record()
        assert record["judge"]["endpoint"] is None  # the pool's identity names no server
        asked = a.count + b.count
        summary = judge_run(folder.path, pool(a, b), stream=io.StringIO(), rescore=False)
        assert a.count + b.count == asked and summary.tasks["AD"].n_cached == 2  # a server added: nothing re-asked
        assert folder.read_record()["judge"]["judge_fingerprint"] == record["judge"]["judge_fingerprint"]
    # one server (not a pool) is named, as dfabench has always recorded it, however the URL is given
    with js.judge_server() as c:
        judge_run(folder.path, JudgeSettings(judge="openai", judge_args={"model": "m", "base_url": c.base_url,
                                                                         "api_key_env": KEY_ENV},
                                             calibrate=False, timeout=2.0), stream=io.StringIO(), rescore=False)
        assert folder.read_record()["judge"]["endpoint"] == c.base_url


def test_max_cost_is_one_budget_for_the_whole_ensemble(tmp_path):
    folder = js.make_run(tmp_path / "run", [f"answer {i}" for i in range(8)])
    # about 0.002 USD a judgment (see test_judge_role's budget test): 0.024 covers the first member's 8 and a batch
    # or two of the second's, never both members' 16
    settings = ensemble(constant(4), constant(2), calibrate=False, concurrency=1, price_input=1.0, price_output=5.0,
                        max_cost=0.024)
    summary = judge_run(folder.path, settings, stream=io.StringIO(), rescore=False)
    got = _samples(folder.path)
    failed = [r["judge"] for r in got.values() if r["judge"]["score"] is None]
    assert failed and all(j["failure"] == "member_budget" for j in failed)
    assert all(j["members"][0]["score"] is not None for j in failed)  # the first member judged everything
    assert summary.tally.spent <= 0.024 and summary.tasks["AD"].failures == {"member_budget": len(failed)}
