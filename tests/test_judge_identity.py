"""One judge identity everywhere (:class:`dfabench.records.JudgeIdentity`): the judge cache key, run.json's
``judge`` and ``judge.tasks[T]``, every per-sample result, the ``judge`` metric's grouping, the leaderboard's
column identity and ``dfabench verify``; and the judge stage as one straight line (one commit)."""

from __future__ import annotations

import importlib.util
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dfabench.judge import CACHE_FILE, JudgeSettings, cache_key, judge_identity, judge_run, load_rubric
from dfabench.judge.calibration import load_calibration
from dfabench.leaderboard import column_identity
from dfabench.metrics import MetricContext
from dfabench.metrics.judge import judge_metrics
from dfabench.metrics.judge_input import answer_and_references, judge_input_sha256
from dfabench.records import GRADER_FIELDS, JudgeIdentity, judge_without_tasks, run_judge_identity
from dfabench.roles import create_role_model
from dfabench.store import RunFolder
from dfabench.verify import verify

_spec = importlib.util.spec_from_file_location("dfabench_test_judge_server_identity",
                                               Path(__file__).with_name("judge_server.py"))
js = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(js)

REPORTED = "judge-model-2026-01-01"
SHA_A, SHA_B = "a" * 64, "b" * 64


def _settings(server, **overrides) -> JudgeSettings:
    values = {"model": "judge-alias", "base_url": server.base_url, "timeout": 2.0, "max_retries": 1,
              "backoff_base": 0.01, "api_key_env": "DFABENCH_TEST_JUDGE_KEY"}
    values.update(overrides)
    return JudgeSettings(**values)


def _judged_sample(i: int, sha: str, score: float) -> dict:
    record = {"id": f"s{i}", "source_id": f"src{i}", "prompt": "q", "reference": "the eyes are blurred",
              "parsed": f"answer {i}", "error": None}
    record["judge"] = {"score": score, "criteria": {"c": score}, "model": REPORTED, "rubric": "artifact-description",
                       "rubric_version": "2", "rubric_sha256": sha, "with_image": False, "error": None,
                       "input_sha256": judge_input_sha256(record)}
    return record


def test_two_rubrics_sharing_name_and_version_but_not_text_are_not_averaged():
    """The behaviour fix: the metric grouped by (model, rubric, version, image), without the rubric's SHA-256,
    and averaged two different rubric texts that share a version; the leaderboard kept them apart."""
    records = [_judged_sample(0, SHA_A, 1.0), _judged_sample(1, SHA_A, 0.8), _judged_sample(2, SHA_B, 0.0)]
    output = judge_metrics(records, MetricContext(task="AD", n_boot=50))
    score = output.metrics["judge_score"]
    assert score.value is None and score.n == 3
    assert "#aaaaaaaa" in score.reason and "#bbbbbbbb" in score.reason and "different judges" in score.reason
    identities = output.breakdowns["judge"]["identities"]
    assert [(i["rubric_sha256"], i["n"]) for i in identities] == [(SHA_A, 2), (SHA_B, 1)]
    # one rubric text: averaged as before
    same = judge_metrics(records[:2], MetricContext(task="AD", n_boot=50)).metrics["judge_score"]
    assert same.value == pytest.approx(0.9) and same.n == 2


def test_the_identity_round_trips_and_its_key_and_label():
    data = {"model": REPORTED, "rubric": "conversation", "rubric_version": "2", "rubric_sha256": SHA_A,
            "with_image": True, "endpoint": "http://127.0.0.1:8000/v1", "n_judged": 3, "tasks": {}}
    identity = JudgeIdentity.from_dict(data)
    assert identity.to_dict() == {k: data[k] for k in GRADER_FIELDS}
    assert list(identity.to_dict()) == list(GRADER_FIELDS)
    assert identity.key() == (REPORTED, "conversation", "2", SHA_A, True, None)  # no output mode recorded
    assert identity.label() == f"{REPORTED} / conversation v2 #aaaaaaaa +image"
    schema = JudgeIdentity.from_dict({**data, "output": "json_schema"})
    assert schema.key() != identity.key() and schema.label().endswith("+image [json_schema]")
    assert schema.to_dict()["output"] == "json_schema"
    assert JudgeIdentity.from_dict({**data, "rubric_sha256": SHA_B}).key() != identity.key()
    # untrusted JSON stays hashable
    odd = JudgeIdentity.from_dict({"model": ["x"], "rubric_version": {"v": 1}})
    assert hash(odd.key()) is not None and odd.with_image is False


def test_re_run_tasks_lose_their_judge_identity():
    judge = {"model": REPORTED, "tasks": {"AD": {"model": REPORTED}, "FC": {"model": REPORTED}}}
    assert judge_without_tasks(judge, ["AD"]) == {"model": REPORTED, "tasks": {"FC": {"model": REPORTED}}}
    assert judge["tasks"].keys() == {"AD", "FC"}  # the previous record is not edited
    assert judge_without_tasks(None, ["AD"]) is None
    assert judge_without_tasks({"model": REPORTED}, ["AD"]) == {"model": REPORTED}


def test_one_identity_from_the_cache_key_to_verify(tmp_path, monkeypatch):
    pytest.importorskip("openai")
    folder = js.make_run(tmp_path / "run", [f"Answer {i}: the eyes are blended." for i in range(4)])
    transactions = []
    real_transaction = RunFolder.transaction

    def counting(self, *args, **kwargs):
        transactions.append(self.path)
        return real_transaction(self, *args, **kwargs)

    monkeypatch.setattr(RunFolder, "transaction", counting)
    with js.judge_server(model=REPORTED) as server:
        settings = _settings(server)
        judge_run(folder.path, settings, stream=sys.stderr)
        # the judge model in its role, as the stage created it (its fingerprint keys the cache)
        role = create_role_model("judge", *settings.role())
        role.close()
    assert len(transactions) == 1  # the judged logs, their metrics and run.json: one commit

    record = folder.read_record()
    rubric = load_rubric(record["judge"]["rubric"])
    # as requested (the openai judge: the rubric's JSON Schema), with the model the replies reported and the judge
    # model's fingerprint
    expected = judge_identity(settings, rubric, output="json_schema").reported(REPORTED)
    assert record["judge"]["output"] == "json_schema" and len(record["judge"]["judge_fingerprint"]) == 64
    expected = JudgeIdentity.from_dict({**expected.to_dict(), "judge_fingerprint": record["judge"]["judge_fingerprint"],
                                        "endpoint": expected.endpoint})
    # run.json, overall and per task
    assert run_judge_identity(record) == JudgeIdentity.from_dict(record["judge"])
    assert run_judge_identity(record).key() == expected.key()
    assert run_judge_identity(record, "AD").key() == expected.key()
    assert record["judge"]["endpoint"] == settings.endpoint() == expected.endpoint
    # every per-sample result
    samples = folder.read_samples("AD")
    assert {JudgeIdentity.from_dict(s["judge"]).key() for s in samples} == {expected.key()}
    # the judge metric groups them as one judge
    breakdown = record["breakdowns"]["AD"]["judge"]["identities"]
    assert breakdown == [{**expected.to_dict(), "n": 4}]
    assert record["metrics"]["AD"]["judge_score"]["value"] is not None
    # the leaderboard keys the column by the same identity
    assert column_identity(record, "AD", "judge_score") == expected.label()
    # the cache key is computed from the identity as requested
    with sqlite3.connect(folder.path / CACHE_FILE) as db:
        stored = {row[0] for row in db.execute("SELECT key FROM responses")}
    requested = judge_identity(settings, rubric, role, "json_schema")
    keys = {cache_key(requested, "AD", s, *answer_and_references(s), None) for s in samples}
    calibration = load_calibration(rubric)
    assert keys <= stored and len(stored - keys) == len(calibration.items)  # the rest: the calibration set
    # verify checks run.json against the per-sample identity, rubric text included
    report = verify(folder.path)
    assert "AD: the judge identity is the one the per-sample results carry" in report.passed
    record["judge"]["tasks"]["AD"]["rubric_sha256"] = SHA_B
    record["judge"]["rubric_sha256"] = SHA_B
    folder.write_record(record)
    report = verify(folder.path)
    assert any("run.json names the judge" in line and "#bbbbbbbb" in line for line in report.failed), report.failed


def test_the_judge_metric_does_not_import_the_judge_stage():
    code = ("import sys\n"
            "from dfabench.metrics import MetricContext\n"
            "from dfabench.metrics.judge import judge_metrics\n"
            "sample = {'id': 's0', 'parsed': 'a', 'reference': 'r', 'judge': {'score': 1.0, 'input_sha256': 'x'}}\n"
            "judge_metrics([sample], MetricContext(task='AD', n_boot=1))\n"
            "sys.exit(1 if any(m == 'dfabench.judge' or m.startswith('dfabench.judge.') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
