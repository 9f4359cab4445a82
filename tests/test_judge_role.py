"""The judge as a model role (issue 10): any registered generate-capable model judges; structured output with
its fallback, recorded in the judge identity; the calibration set and its bias checks; judgment archives and
``dfabench judge agree``; ``--sample N``."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from dfabench.errors import DfabenchError
from dfabench.judge import JudgeSettings, judge_run, load_rubric
from dfabench.judge.calibration import load_calibration
from dfabench.store import RunFolder
from dfabench.testing.chat_server import Fault

_spec = importlib.util.spec_from_file_location("dfabench_test_judge_server_role",
                                               Path(__file__).with_name("judge_server.py"))
js = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(js)

RUBRIC = load_rubric("artifact-description-v2")


def _grades(value: int) -> str:
    return json.dumps({**{key: value for key in RUBRIC.keys}, "rationale": f"all {value}"})


def constant_judge(value: int, **extra) -> JudgeSettings:
    """The ``constant`` reference model as the judge: the same JSON judgment for every sample."""
    return JudgeSettings(judge="constant", judge_args={"text": _grades(value)}, **extra)


def openai_judge(server, **extra) -> JudgeSettings:
    values = {"model": "judge-alias", "base_url": server.base_url, "timeout": 2.0, "max_retries": 0,
              "api_key_env": "DFABENCH_TEST_JUDGE_KEY", "calibrate": False}
    values.update(extra)
    return JudgeSettings(**values)


def _samples(folder: Path, task: str = "AD") -> dict[str, dict]:
    return {r["id"]: r for r in RunFolder(folder).read_samples(task)}


# ----------------------------------------------------------------------------- any model judges


def test_any_generate_model_judges_and_its_identity_is_recorded(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred", "the mouth is warped", ""])
    summary = judge_run(folder.path, constant_judge(4, calibrate=False), stream=sys.stderr, rescore=False)
    got = _samples(folder.path)
    assert got["s0"]["judge"]["score"] == pytest.approx(0.8) and got["s1"]["judge"]["score"] == pytest.approx(0.8)
    assert got["s2"]["judge"]["by_rule"] is True  # the empty answer: 0 by the rubric's rule, no call
    judge = folder.read_record()["judge"]
    assert judge["output"] == "text"  # constant enforces no response_format: prompted for JSON, parsed strictly
    assert judge["model"] == "constant" and len(judge["judge_fingerprint"]) == 64
    assert got["s0"]["judge"]["judge_fingerprint"] == judge["judge_fingerprint"]
    assert summary.n_failed == 0


def test_a_judge_that_cannot_generate_is_one_clear_error_and_nothing_changes(tmp_path):
    folder = js.make_run(tmp_path / "run", ["a"])
    before = {p.name: p.read_bytes() for p in folder.path.iterdir()}
    with pytest.raises(DfabenchError, match="cannot generate"):
        judge_run(folder.path, JudgeSettings(judge="random", judge_args={"mode": "score"}), stream=sys.stderr)
    assert {p.name: p.read_bytes() for p in folder.path.iterdir()} == before


def test_the_openai_shorthand_and_a_named_judge_cannot_be_mixed():
    with pytest.raises(DfabenchError, match="shorthand"):
        JudgeSettings(judge="constant", model="gpt-4o").role()
    with pytest.raises(DfabenchError, match="no judge model"):
        JudgeSettings().role()
    name, args = JudgeSettings(model="gpt-4o", base_url="http://h:1/v1").role()
    assert name == "openai" and args["model"] == "gpt-4o" and args["base_url"] == "http://h:1/v1"


def test_a_garbage_judgment_is_a_counted_failure_never_a_score(tmp_path):
    folder = js.make_run(tmp_path / "run", ["a", "b"])
    settings = JudgeSettings(judge="constant", judge_args={"text": "Great answer! 5/5"}, calibrate=False)
    summary = judge_run(folder.path, settings, stream=sys.stderr, rescore=False)
    got = _samples(folder.path)
    assert all(got[s]["judge"]["score"] is None and got[s]["judge"]["failure"] == "unparseable" for s in got)
    assert summary.n_failed == 2


# ----------------------------------------------------------------------------- structured output


def test_openai_judge_asks_for_the_rubrics_json_schema(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred"])
    with js.judge_server() as server:
        judge_run(folder.path, openai_judge(server), stream=sys.stderr, rescore=False)
        (body,) = server.bodies
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]["schema"]
    assert set(schema["required"]) == {*RUBRIC.keys, "rationale"} and schema["additionalProperties"] is False
    assert _samples(folder.path)["s0"]["judge"]["output"] == "json_schema"


def test_a_server_without_json_schema_falls_back_to_json_mode_and_says_so(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred", "the mouth is warped"])
    with js.judge_server() as server:
        server.inject(Fault.status(400, "response_format json_schema is not supported by this server"))
        judge_run(folder.path, openai_judge(server, concurrency=1), stream=sys.stderr, rescore=False)
        formats = [(b.get("response_format") or {}).get("type") for b in server.bodies]
    assert formats[0] == "json_schema" and set(formats[1:]) == {"json_object"}
    got = _samples(folder.path)
    assert {got[s]["judge"]["output"] for s in got} == {"json_object"}
    assert all(got[s]["judge"]["error"] is None for s in got)
    assert folder.read_record()["judge"]["tasks"]["AD"]["output"] == "json_object"


def test_text_output_sends_no_response_format(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred"])
    with js.judge_server() as server:
        judge_run(folder.path, openai_judge(server, output="text"), stream=sys.stderr, rescore=False)
        (body,) = server.bodies
    assert "response_format" not in body
    assert _samples(folder.path)["s0"]["judge"]["output"] == "text"


# ----------------------------------------------------------------------------- calibration and bias


def test_every_shipped_rubric_has_a_well_formed_calibration_set():
    for name in ("artifact-description-v2", "conversation-v2"):
        calibration = load_calibration(load_rubric(name))
        assert calibration is not None and calibration.rubric == name
        kinds = {item.kind for item in calibration.items if item.expected}
        assert {"right", "partial", "refusal"} <= kinds
        checks = {item.check for item in calibration.items if item.check}
        assert checks == {"padding", "reorder"}


def test_a_judge_that_gives_top_marks_to_everything_is_flagged(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred"])
    summary = judge_run(folder.path, constant_judge(5), stream=sys.stderr, rescore=False)
    report = folder.read_record()["judge"]["calibration"]["artifact-description-v2"]
    out_of_range = {o["kind"] for o in report["out_of_range"]}
    assert report["flagged"] is True and {"refusal", "hallucinated", "partial"} <= out_of_range
    assert report["n"] == 9 and report["n_failed"] == 0 and len(report["fingerprint"]) == 64
    assert report["bias"]["padding"]["mean_gain"] == 0 and report["bias"]["reorder"]["mean_abs_difference"] == 0
    assert summary.calibration["artifact-description-v2"]["flagged"] is True


def test_a_careful_judge_is_not_flagged_and_a_padding_bias_is(tmp_path, monkeypatch):
    calibration = load_calibration(RUBRIC)
    middle = {item.candidate: sum(item.expected) / 2 for item in calibration.items if item.expected}
    by_base = {item.candidate: item.of for item in calibration.items if item.of}
    by_id = {item.id: item for item in calibration.items}

    def candidate_of(prompt: str) -> str:
        import re

        return re.search(r"<candidate-[0-9a-f]{16}>\n(.*?)\n</candidate-", prompt, re.S).group(1)

    def grade(candidate: str, padding_bias: bool) -> str:
        for variant, base in by_base.items():  # a variant first: a padded one starts with its base's text
            if candidate == variant:
                value = round(middle[by_id[base].candidate] * 5)
                padded = by_id[next(i.id for i in calibration.items if i.candidate == variant)].check == "padding"
                return _grades(min(5, value + (2 if padding_bias and padded else 0)))
        if candidate in middle:
            return _grades(round(middle[candidate] * 5))
        return _grades(3)

    from dfabench.models import ConstantModel, Response

    def generate(self, requests):
        return [Response(text=grade(candidate_of(r.prompt_text), self.padding_bias)) for r in requests]

    monkeypatch.setattr(ConstantModel, "generate", generate)
    monkeypatch.setattr(ConstantModel, "padding_bias", False, raising=False)
    folder = js.make_run(tmp_path / "careful", ["the eyes are blurred"])
    judge_run(folder.path, constant_judge(3), stream=sys.stderr, rescore=False)
    report = folder.read_record()["judge"]["calibration"]["artifact-description-v2"]
    assert report["flagged"] is False and report["n_in_range"] == report["n"], report["out_of_range"]

    monkeypatch.setattr(ConstantModel, "padding_bias", True, raising=False)
    folder = js.make_run(tmp_path / "biased", ["the eyes are blurred"])
    judge_run(folder.path, constant_judge(3), stream=sys.stderr, rescore=False)
    report = folder.read_record()["judge"]["calibration"]["artifact-description-v2"]
    assert report["flagged"] is True and report["bias"]["padding"]["raised"] == ["padded-1", "padded-2"]
    assert report["bias"]["padding"]["mean_gain"] == pytest.approx(0.4)


def test_calibration_is_cached_like_every_judgment(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred"])
    with js.judge_server() as server:
        judge_run(folder.path, openai_judge(server, calibrate=True), stream=sys.stderr, rescore=False)
        first = server.count
        server.reset_log()
        judge_run(folder.path, openai_judge(server, calibrate=True), stream=sys.stderr, rescore=False)
        assert server.count == 0
    assert first == 1 + len(load_calibration(RUBRIC).items)
    assert "calibration" in folder.read_record()["judge"]


# ----------------------------------------------------------------------------- archives and agreement


def _agree(cli, *argv):
    return cli("judge", "agree", *argv)


def test_two_judges_are_compared_and_the_figures_land_in_run_json(cli, tmp_path):
    folder = js.make_run(tmp_path / "run", [f"answer {i}" for i in range(6)])
    judge_run(folder.path, constant_judge(4, calibrate=False), stream=sys.stderr, rescore=False)
    judge_run(folder.path, constant_judge(2, calibrate=False), stream=sys.stderr, rescore=False)
    names = [p.name for p in folder.path.glob("judgments-*.jsonl")]
    assert len(names) == 2  # each judge keeps its archive; the logs hold the latest
    code, out, err = _agree(cli, str(folder.path), "--list")
    listed = [line.split()[0] for line in out.splitlines()]
    assert code == 0 and len(listed) == 2 and all("(6 judgments)" in line for line in out.splitlines())
    code, out, err = _agree(cli, str(folder.path), "--judges", f"{listed[0]},{listed[1]}", "--json")
    assert code == 0, err
    figures = json.loads(out)
    assert figures["n_common"] == 6 and figures["score"]["n"] == 6
    assert figures["criteria"]["completeness"]["spearman"] is None  # constant graders: correlation undefined
    stored = folder.read_record()["judge"]["agreement"]
    assert list(stored) == [f"{listed[0]} vs {listed[1]}"]
    # a unique part of a name is enough, and the figures are recorded under the full names
    code, out, err = _agree(cli, str(folder.path), "--judges", f"{listed[0][-8:]},{listed[1][-8:]}", "--json")
    assert code == 0, err
    assert json.loads(out)["judges"] == listed
    code, out, err = _agree(cli, str(folder.path), "--judges", f"{listed[0]},{listed[1]}")
    assert code == 0 and "undefined (the grades do not vary)" in out  # says why


def test_human_ratings_are_compared_with_a_judge(cli, tmp_path):
    folder = js.make_run(tmp_path / "run", [f"answer {i}" for i in range(4)])
    judge_run(folder.path, constant_judge(4, calibrate=False), stream=sys.stderr, rescore=False)
    ratings = tmp_path / "ratings.csv"
    with ratings.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample_id", "criterion", "score"])
        for i in range(4):
            for key in RUBRIC.keys:
                writer.writerow([f"s{i}", key, i + 1])
    code, out, err = _agree(cli, str(folder.path), "--human", str(ratings))
    assert code == 0, err
    assert "current vs human" in out and "weighted kappa" in out
    figures = folder.read_record()["judge"]["agreement"]["current vs human"]
    assert figures["n_common"] == 4 and figures["criteria"]["region_correctness"]["n"] == 4


@pytest.mark.parametrize("row, problem", [
    (["s0", "creativity", "3"], "unknown criterion 'creativity'"),
    (["s99", "completeness", "3"], "sample 's99' is not in the run"),
    (["s0", "completeness", "9"], "is not a number in 0..5"),
])
def test_bad_human_ratings_are_one_line_and_nothing_changes(cli, tmp_path, row, problem):
    folder = js.make_run(tmp_path / "run", ["a", "b"])
    judge_run(folder.path, constant_judge(4, calibrate=False), stream=io.StringIO(), rescore=False)
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("sample_id,criterion,score\ns1,completeness,2\n" + ",".join(row) + "\n")
    before = (folder.path / "run.json").read_bytes()
    code, out, err = _agree(cli, str(folder.path), "--human", str(ratings))
    assert code == 2 and problem in err and str(ratings) in err and "row 3" in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
    assert (folder.path / "run.json").read_bytes() == before


def test_the_judge_command_still_takes_a_run_folder(cli, tmp_path):
    folder = js.make_run(tmp_path / "run", ["a"])
    # a JSON object given as --judge-arg would become an object: in a ```json fence it stays text (and the
    # rubric's parser accepts one fence)
    code, out, err = cli("judge", str(folder.path), "--judge", "constant", "--judge-arg",
                         f"text=```json\n{_grades(3)}\n```", "--no-calibration")
    assert code == 0, err
    assert _samples(folder.path)["s0"]["judge"]["score"] == pytest.approx(0.6)


# ----------------------------------------------------------------------------- a seeded subset


def test_sample_judges_a_fixed_seeded_subset_and_records_it(tmp_path):
    answers = [f"answer {i}" for i in range(10)]
    first = js.make_run(tmp_path / "a", answers)
    second = js.make_run(tmp_path / "b", list(reversed(answers)))
    for folder in (first, second):
        judge_run(folder.path, constant_judge(4, calibrate=False, sample=3, seed=7), stream=sys.stderr,
                  rescore=False)
    judged = [{s for s, r in _samples(f.path).items() if (r.get("judge") or {}).get("score") is not None}
              for f in (first, second)]
    assert len(judged[0]) == 3 and judged[0] == judged[1]  # the same ids, whatever order the log holds
    info = first.read_record()["judge"]["tasks"]["AD"]
    assert info["sample"] == {"n": 3, "seed": 7, "n_not_sampled": 7} and info["n_judged"] == 3


# ----------------------------------------------------------------------------- a budget


def test_max_cost_stops_before_the_budget_and_records_what_was_not_asked(tmp_path):
    folder = js.make_run(tmp_path / "run", [f"answer {i}" for i in range(20)])
    # batches of 4 * concurrency = 4 judgments; each costs about 0.002 USD at these prices (a 2,000-character prompt
    # at 1 USD per million prompt tokens and 300 completion tokens at 5 USD per million)
    settings = constant_judge(4, calibrate=False, concurrency=1, price_input=1.0, price_output=5.0, max_cost=0.018)
    summary = judge_run(folder.path, settings, stream=sys.stderr, rescore=False)
    got = _samples(folder.path)
    judged = [s for s in got if got[s]["judge"]["score"] is not None]
    refused = [got[s]["judge"] for s in got if got[s]["judge"]["score"] is None]
    assert 0 < len(judged) < 20 and len(judged) % 4 == 0  # whole batches, then nothing
    assert all(r["failure"] == "budget" and "--max-cost 0.018" in r["error"] for r in refused)
    assert summary.tasks["AD"].failures["budget"] == len(refused)
    with pytest.raises(DfabenchError, match="--price-in"):
        judge_run(folder.path, constant_judge(4, max_cost=1.0), stream=sys.stderr)


def test_a_sampled_judge_run_after_a_full_one_leaves_a_consistent_run(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--model", "constant", "--tasks", "AD", "--bench", str(tiny_bench), "--out", str(out),
               "--no-progress", "--n-boot", "20")[0] == 0
    judge_run(out, constant_judge(4, calibrate=False), stream=io.StringIO())
    judge_run(out, constant_judge(4, calibrate=False, sample=3), stream=io.StringIO())
    judged = [r for r in RunFolder(out).read_samples("AD") if r.get("judge")]
    assert len(judged) == 3
    code, stdout, _ = cli("verify", str(out))
    assert code == 0, stdout


def test_the_leaderboard_says_which_judge_made_the_judge_scores(cli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--model", "constant", "--tasks", "AD", "--bench", str(tiny_bench), "--out", str(out),
               "--no-progress", "--n-boot", "20")[0] == 0
    judge_run(out, constant_judge(4, calibrate=False), stream=io.StringIO())
    assert cli("leaderboard", "submit", str(out), "--entries", str(tmp_path / "entries"))[0] == 0
    code, _, err = cli("leaderboard", "build", "--entries", str(tmp_path / "entries"), "--out", str(tmp_path / "lb"),
                       "--bench", str(tiny_bench))
    assert code == 0, err
    label = "constant / artifact-description v2"
    assert f"`judge_score` by {label}" in (tmp_path / "lb" / "README.md").read_text()
    assert f"<code>judge_score</code> by {label}" in (tmp_path / "lb" / "index.html").read_text()
