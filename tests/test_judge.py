"""The LLM judge: the shared chat server, rubrics, the judge stage against a real local HTTP server, the
``judge`` metric provider."""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dfabench.cli.judge import add_judge_arguments, judge_command
from dfabench.errors import DfabenchError
from dfabench.judge import (
    CACHE_FILE,
    JudgeSettings,
    JudgmentError,
    judge_input_sha256,
    judge_run,
    list_rubrics,
    load_rubric,
    parse_judgment,
    public_endpoint,
    retry_after_seconds,
)
from dfabench.metrics import MetricContext
from dfabench.metrics.judge import NOT_JUDGED, judge_metrics
from dfabench.testing.chat_server import ChatServer, Fault

_spec = importlib.util.spec_from_file_location("dfabench_test_judge_server",
                                               Path(__file__).with_name("judge_server.py"))
js = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(js)

REPORTED = "judge-model-2026-01-01"
openai = pytest.importorskip("openai")


def settings(server: ChatServer, **overrides) -> JudgeSettings:
    values = {"model": "judge-alias", "base_url": server.base_url, "timeout": 2.0, "max_retries": 2,
              "backoff_base": 0.01, "api_key_env": "DFABENCH_TEST_JUDGE_KEY", "calibrate": False}
    values.update(overrides)
    return JudgeSettings(**values)


@pytest.fixture
def judge_registered():
    """The ``judge`` metric as builtin.py registers it (added here if the core does not yet)."""
    from dfabench.plugins import MetricEntry, get_manager

    registry = get_manager().metrics
    added = "judge" not in registry
    if added:
        registry.add("judge", MetricEntry("judge", "dfabench.metrics.judge:judge_metrics", ("AD", "FC", "FL"),
                                          "LLM-judge score", "test"))
    yield
    if added:
        registry.entries.pop("judge", None)
        registry._aliases.pop("judge", None)


def samples(folder) -> dict[str, dict]:
    return {r["id"]: r for r in folder.read_samples("AD")}


# ---------------------------------------------------------------------------------------------
# The shared chat-completions server
# ---------------------------------------------------------------------------------------------


def test_chat_server_speaks_the_chat_completions_api():
    with ChatServer(responder=lambda request: f"echo {request['messages'][-1]['content']}", model="served-1",
                    api_key="sk-right") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-right", max_retries=0)
        reply = client.chat.completions.create(model="asked", messages=[{"role": "user", "content": "two words"}])
        assert reply.choices[0].message.content == "echo two words"
        assert reply.model == "served-1"
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 3)
        assert [m.id for m in client.models.list()] == ["served-1"]
        stream = client.chat.completions.create(model="asked", messages=[{"role": "user", "content": "a b"}],
                                                stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo a b"
        wrong = openai.OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="asked", messages=[{"role": "user", "content": "x"}])
        assert server.count == 3
        assert server.authorization_headers == ["Bearer sk-right", "Bearer sk-right", "Bearer sk-wrong"]
        assert server.bodies[0]["model"] == "asked"


def test_chat_server_injects_faults_in_order():
    with ChatServer(responder=lambda request: "fine") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=0.5)
        server.inject(Fault.rate_limit(retry_after=3), Fault.server_error(503), Fault.malformed(),
                      Fault.refusal("no"), Fault.hang(10), Fault.status(400, "bad image"))

        def ask():
            return client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

        with pytest.raises(openai.RateLimitError) as rate:
            ask()
        assert rate.value.response.headers["retry-after"] == "3"
        with pytest.raises(openai.InternalServerError):
            ask()
        with pytest.raises(ValueError):
            ask()
        assert ask().choices[0].message.refusal == "no"
        with pytest.raises(openai.APITimeoutError):
            ask()
        with pytest.raises(openai.BadRequestError):
            ask()
        assert ask().choices[0].message.content == "fine"
        assert [r.fault for r in server.chat_requests] == ["rate_limit", "server_error", "malformed", "refusal",
                                                           "hang", "status", None]
        started = time.monotonic()
    assert time.monotonic() - started < 5  # stopping releases the handler that still hangs


# ---------------------------------------------------------------------------------------------
# Rubrics and parsing
# ---------------------------------------------------------------------------------------------


def test_shipped_rubrics_are_versioned_and_render_the_sample():
    assert {"artifact-description-v1", "conversation-v1", "artifact-description-v2", "conversation-v2"} <= set(
        list_rubrics())
    rubric = load_rubric("artifact-description")  # latest version
    assert (rubric.name, rubric.version) == ("artifact-description", "2")
    assert rubric.keys == ["region_correctness", "artifact_correctness", "completeness", "hallucination"]
    assert len(rubric.sha256) == 64
    messages = rubric.messages("Which regions?", "The {eyes} are blurred.", "Mouth {x} is warped.")
    user = messages[1]["content"][-1]["text"]
    assert "Which regions?" in user and "The {eyes} are blurred." in user and "Mouth {x} is warped." in user
    assert '"region_correctness"' in user and "JSON" in user and "attached" not in user
    assert [p["type"] for p in messages[1]["content"]] == ["text"]
    with_image = rubric.messages("Q", "R", "C", with_image=True)
    assert with_image[1]["content"][0] == {"type": "image"}  # the request carries the image (any judge model)
    assert "attached" in with_image[1]["content"][-1]["text"]
    assert "attached" in with_image[1]["content"][1]["text"]
    with pytest.raises(DfabenchError, match="unknown rubric"):
        load_rubric("no-such-rubric")


def test_parse_judgment_validates_the_reply():
    rubric = load_rubric("artifact-description-v2")
    good = {"region_correctness": 5, "artifact_correctness": 4, "completeness": 3, "hallucination": 0}
    parsed = parse_judgment(json.dumps({**good, "rationale": "ok"}), rubric)
    assert parsed["score"] == pytest.approx((5 + 4 + 3 + 0) / 20)
    assert parsed["criteria"]["completeness"] == 3.0 and parsed["rationale"] == "ok"
    fenced = "```json\n" + json.dumps(good) + "\n```"
    assert parse_judgment(fenced, rubric)["score"] == parsed["score"]
    assert parse_judgment("  \n" + json.dumps(good) + "\n ", rubric)["score"] == parsed["score"]
    # exactly one object: text around it is not a judgment (it could hide an injected one)
    bad = ["Here is my grading: " + json.dumps(good) + " Thanks.", json.dumps(good) + " Thanks.",
           None, "", "looks good", "{not json", json.dumps([1, 2]),
           json.dumps({**good, "completeness": 6}), json.dumps({**good, "hallucination": -1}),
           json.dumps({**good, "completeness": True}), json.dumps({**good, "completeness": "high"}),
           json.dumps({k: v for k, v in good.items() if k != "hallucination"})]
    for reply in bad:
        with pytest.raises(JudgmentError):
            parse_judgment(reply, rubric)


def test_retry_after_header_forms():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None


# ---------------------------------------------------------------------------------------------
# The judge stage
# ---------------------------------------------------------------------------------------------


def test_judge_run_records_scores_failures_and_the_judge_identity(tmp_path, judge_registered, capsys):
    answers = [f"Answer {i}: the eyes and the mouth are blended." for i in range(8)]
    answers += ["", "x [refuse]", "y [garbage]", "z [500]", "w [outofrange]", "v [hang]", "model failed here"]
    folder = js.make_run(tmp_path / "run", answers, errors={14: "model crashed"})
    with js.judge_server(model=REPORTED) as server:
        summary = judge_run(folder.path, settings(server, timeout=1.0), stream=sys.stderr)
        calls = server.count
    got = samples(folder)
    for i in range(8):
        judge = got[f"s{i}"]["judge"]
        assert judge["score"] == pytest.approx(js.expected_score(answers[i]))
        assert judge["criteria"] == {k: float(v) for k, v in js.expected_criteria(answers[i]).items()}
        assert judge["model"] == REPORTED and judge["rubric"] == "artifact-description"
        assert judge["error"] is None and judge["cached"] is False
        assert judge["input_sha256"] == judge_input_sha256(got[f"s{i}"])
    assert got["s8"]["judge"]["score"] == 0.0 and got["s8"]["judge"]["by_rule"] is True
    failures = {sid: (got[sid]["judge"]["failure"], got[sid]["judge"]["error"]) for sid in
                ("s9", "s10", "s11", "s12", "s13")}
    assert failures["s9"][0] == "refusal" and "I can't grade this." in failures["s9"][1]
    assert failures["s10"][0] == "unparseable" and "no JSON object" in failures["s10"][1]
    assert failures["s11"][0] == "http_500" and "after 3 attempts" in failures["s11"][1]
    assert failures["s12"][0] == "unparseable" and "outside 0..5" in failures["s12"][1]
    assert failures["s13"][0] == "timeout" and "after 3 attempts" in failures["s13"][1]
    for sid in failures:
        assert got[sid]["judge"]["score"] is None
    assert got["s14"]["judge"] is None  # the model failed: nothing to judge
    # 8 good + refuse + garbage + outofrange once each; 500 and hang three times each (2 retries)
    assert calls == 8 + 3 + 3 + 3
    assert summary.n_failed == 5 and summary.tasks["AD"].n_judged == 9

    record = folder.read_record()
    assert record["judge"]["model"] == REPORTED  # as the endpoint reports it, not the alias asked for
    assert record["judge"]["rubric"] == "artifact-description" and record["judge"]["rubric_version"] == "2"
    assert record["judge"]["with_image"] is False
    assert record["judge"]["tasks"]["AD"]["n_failed"] == 5
    metrics = record["metrics"]["AD"]
    expected = [js.expected_score(a) for a in answers[:8]] + [0.0]
    assert metrics["judge_score"]["value"] == pytest.approx(sum(expected) / len(expected))
    assert metrics["judge_score"]["n"] == 9
    assert metrics["judge_failure_rate"]["value"] == pytest.approx(5 / 14)
    assert record["samples"]["AD"]["sha256"]  # re-scored: the log digest is rewritten
    err = capsys.readouterr().err
    assert "5 judge failures" in err and "run the same command again" in err


def test_second_run_makes_no_calls_and_failures_are_retried(tmp_path, judge_registered):
    answers = [f"answer {i}" for i in range(10)] + ["broken [500]"]
    folder = js.make_run(tmp_path / "run", answers)
    with js.judge_server() as server:
        judge_run(folder.path, settings(server, max_retries=0), stream=sys.stderr)
        assert server.count == 11
        server.reset_log()
        summary = judge_run(folder.path, settings(server, max_retries=0), stream=sys.stderr)
        assert server.count == 1  # only the failed one is asked again
        assert summary.tasks["AD"].n_cached == 10
    got = samples(folder)
    assert all(got[f"s{i}"]["judge"]["cached"] for i in range(10))
    assert got["s10"]["judge"]["failure"] == "http_500"


def test_retry_after_on_429_is_honoured(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the mouth is blended"])
    with js.judge_server() as server:
        server.inject(Fault.rate_limit(retry_after=0.6))
        judge_run(folder.path, settings(server, concurrency=1, backoff_base=0.001), stream=sys.stderr, rescore=False)
        first, second = server.chat_requests
    assert second.received - first.received >= 0.55  # waited as told, not the 1 ms backoff
    judge = samples(folder)["s0"]["judge"]
    assert judge["error"] is None and server.count == 2


def test_transient_errors_are_retried_until_success(tmp_path):
    folder = js.make_run(tmp_path / "run", ["a", "b"])
    with js.judge_server() as server:
        server.inject(Fault.server_error(502), Fault.malformed(), Fault.disconnect(), Fault.rate_limit(None))
        judge_run(folder.path, settings(server, concurrency=1, max_retries=4), stream=sys.stderr, rescore=False)
        assert server.count == 6
    got = samples(folder)
    assert [got[s]["judge"]["error"] for s in ("s0", "s1")] == [None, None]


def test_a_hanging_judge_times_out(tmp_path):
    folder = js.make_run(tmp_path / "run", ["slow [hang]"])
    with js.judge_server() as server:
        summary = judge_run(folder.path, settings(server, timeout=0.3, max_retries=0), stream=sys.stderr,
                            rescore=False)
    judge = samples(folder)["s0"]["judge"]
    assert judge["failure"] == "timeout" and "timed out after 0.3 s" in judge["error"]
    assert summary.n_failed == 1


def test_concurrency_is_limited(tmp_path):
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    inner = js.judge_responder()

    def responder(request):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.1)
        with lock:
            state["now"] -= 1
        return inner(request)

    folder = js.make_run(tmp_path / "run", [f"answer {i}" for i in range(16)])
    with ChatServer(responder=responder) as server:
        judge_run(folder.path, settings(server, concurrency=4), stream=sys.stderr, rescore=False)
    assert 2 <= state["max"] <= 4


def test_wrong_key_stops_the_run_before_anything_is_written(tmp_path, monkeypatch):
    secret = "sk-test-0123456789-not-the-right-one"
    monkeypatch.setenv("DFABENCH_TEST_JUDGE_KEY", secret)
    folder = js.make_run(tmp_path / "run", ["a", "b", "c"])
    before = folder.samples_path("AD").read_bytes()
    with js.judge_server(api_key="sk-the-right-key") as server:
        with pytest.raises(DfabenchError, match="refused the key") as error:
            judge_run(folder.path, settings(server), stream=sys.stderr)
    assert secret not in str(error.value)
    assert folder.samples_path("AD").read_bytes() == before
    assert folder.read_record()["judge"] is None


def test_unknown_judge_model_stops_the_run(tmp_path):
    folder = js.make_run(tmp_path / "run", ["a"])
    with js.judge_server() as server:
        server.inject(Fault.status(404, "The model `nope` does not exist"))
        with pytest.raises(DfabenchError, match="does not serve the judge model"):
            judge_run(folder.path, settings(server, model="nope"), stream=sys.stderr)


def test_no_file_in_the_run_folder_and_no_output_contains_the_api_key(tmp_path, monkeypatch, capfd,
                                                                        judge_registered):
    secret = "sk-live-SECRET-4242-abcdefghijklmnop"
    monkeypatch.setenv("DFABENCH_TEST_JUDGE_KEY", secret)
    answers = ["fine answer", "other answer", "x [refuse]", "y [garbage]", "z [500]"]
    folder = js.make_run(tmp_path / "run", answers)
    with js.judge_server(api_key=secret) as server:
        judge_run(folder.path, settings(server, max_retries=0), stream=sys.stderr)
        args = argparse.ArgumentParser()
        add_judge_arguments(args)
        code = judge_command(args.parse_args([str(folder.path), "--judge-model", "judge-alias", "--base-url",
                                              server.base_url, "--api-key-env", "DFABENCH_TEST_JUDGE_KEY",
                                              "--max-retries", "0"]))
        assert set(server.authorization_headers) == {f"Bearer {secret}"}  # the key was used...
    assert code == 1  # judge failures remain
    files = [p for p in folder.path.rglob("*") if p.is_file()]
    assert any(p.name == CACHE_FILE for p in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), path  # ...and is nowhere in the run folder
    out = capfd.readouterr()
    assert secret not in out.out and secret not in out.err


def test_only_the_public_part_of_the_endpoint_is_recorded():
    assert public_endpoint("https://user:sk-secret@example.com:8443/v1/?api-key=sk-secret#x") == \
        "https://example.com:8443/v1"
    assert public_endpoint(None) == "https://api.openai.com/v1"
    assert "sk-secret" not in repr(JudgeSettings(model="m", base_url="https://u:sk-secret@example.com/v1"))


def test_missing_key_without_base_url_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("DFABENCH_TEST_NO_KEY", raising=False)
    folder = js.make_run(tmp_path / "run", ["a"])
    parser = argparse.ArgumentParser()
    add_judge_arguments(parser)
    args = parser.parse_args([str(folder.path), "--judge-model", "gpt-x", "--api-key-env", "DFABENCH_TEST_NO_KEY"])
    with pytest.raises(DfabenchError, match="DFABENCH_TEST_NO_KEY"):
        judge_command(args)


def test_dry_run_prints_the_request_and_the_call_count_without_calling(tmp_path, capsys):
    bench = js.make_bench(tmp_path / "bench", {f"s{i}": b"\x89PNG fake image bytes %d" % i for i in range(3)})
    folder = js.make_run(tmp_path / "run", ["first answer", "second answer", ""], bench=bench)
    before = {p.name: p.read_bytes() for p in folder.path.iterdir()}
    with js.judge_server() as server:
        summary = judge_run(folder.path, settings(server, with_image=True), dry_run=True, stream=sys.stdout)
        assert server.count == 0
    out = capsys.readouterr().out
    assert "calls that would be made: 2" in out
    assert "first answer" in out and "artifact-description-v2" in out
    assert str(bench / "images" / "s0.png") in out and "base64" not in out.split("first request", 1)[1]
    assert summary.dry_run and summary.n_called == 2
    after = {p.name: p.read_bytes() for p in folder.path.iterdir()}
    assert after == before  # a dry run writes nothing, not even a cache


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_with_image_sends_the_benchmark_image_as_a_data_url(tmp_path):
    image = _png_bytes()
    bench = js.make_bench(tmp_path / "bench", {"s0": image, "s1": None})
    folder = js.make_run(tmp_path / "run", ["with image", "its image is missing"], bench=bench)
    with js.judge_server() as server:
        judge_run(folder.path, settings(server, with_image=True), stream=sys.stderr, rescore=False)
        (body,) = server.bodies
    parts = body["messages"][1]["content"]
    assert parts[0]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(image).decode()
    got = samples(folder)
    assert got["s0"]["judge"]["with_image"] is True and got["s0"]["judge"]["error"] is None
    assert "image not found" in got["s1"]["judge"]["error"]
    assert folder.read_record()["judge"]["with_image"] is True


def test_cache_is_keyed_by_answer_reference_and_judge(tmp_path):
    folder = js.make_run(tmp_path / "run", [f"answer {i}" for i in range(6)])
    with js.judge_server() as server:
        judge_run(folder.path, settings(server), stream=sys.stderr, rescore=False)
        records = folder.read_samples("AD")
        records[2]["parsed"] = "a new answer"
        records[4]["reference"] = "A new reference."
        record = folder.read_record()
        record["samples"]["AD"]["sha256"] = folder.write_samples("AD", records)  # a new log, hashed: no tampering
        folder.write_record(record)
        server.reset_log()
        judge_run(folder.path, settings(server), stream=sys.stderr, rescore=False)
        assert sorted(js.answer_of(b) for b in server.bodies) == ["a new answer", "answer 4"]
        server.reset_log()
        judge_run(folder.path, settings(server, model="another-judge"), stream=sys.stderr, rescore=False)
        assert server.count == 6  # another judge: everything again
        server.reset_log()
        custom = tmp_path / "mine.yaml"
        custom.write_text(Path(load_rubric("artifact-description-v2").path).read_text().replace(
            'version: "2"', 'version: "2-local"'))
        judge_run(folder.path, settings(server, rubric=str(custom)), stream=sys.stderr, rescore=False)
        assert server.count == 6  # another rubric version: everything again
    assert folder.read_record()["judge"]["rubric_version"] == "2-local"


KILL_SCRIPT = r"""
import sys
from dfabench.judge import JudgeSettings, judge_run
judge_run(sys.argv[1], JudgeSettings(model="judge-alias", base_url=sys.argv[2], concurrency=2, timeout=10,
                                     api_key_env="DFABENCH_TEST_JUDGE_KEY", calibrate=False), rescore=False)
"""


def test_a_killed_judge_run_resumes_with_exactly_the_missing_calls(tmp_path):
    n = 40
    folder = js.make_run(tmp_path / "run", [f"answer number {i}" for i in range(n)])
    cache = folder.path / CACHE_FILE
    with js.judge_server(delay=0.05) as server:
        child = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(folder.path), server.base_url],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            cached = 0
            while time.monotonic() < deadline and child.poll() is None:
                if cache.exists():
                    try:
                        with sqlite3.connect(cache) as db:
                            cached = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
                    except sqlite3.Error:
                        cached = 0
                if cached >= 10:
                    break
                time.sleep(0.02)
            assert child.poll() is None, "the judge run finished before it could be killed"
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait()
        assert child.returncode == -signal.SIGKILL
        assert all(r.get("judge") is None for r in folder.read_samples("AD"))  # nothing half-written
        with sqlite3.connect(cache) as db:
            done = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        assert 10 <= done < n
        before = server.count
        server.reset_log()
        summary = judge_run(folder.path, settings(server, max_retries=0), stream=sys.stderr, rescore=False)
        assert server.count == n - done  # exactly the missing ones
        assert before >= done
    asked = {js.answer_of(b) for b in server.bodies}
    assert len(asked) == n - done
    got = samples(folder)
    assert all(got[f"s{i}"]["judge"]["score"] == pytest.approx(js.expected_score(f"answer number {i}"))
               for i in range(n))
    assert summary.tasks["AD"].n_cached == done and summary.tasks["AD"].n_judged == n


def test_fl_reports_and_fc_answers_are_judged_with_their_rubrics(tmp_path, capsys):
    fl = js.make_run(tmp_path / "fl", ["The mouth is swapped."], task="FL")
    with js.judge_server() as server:
        judge_run(fl.path, settings(server), stream=sys.stderr, rescore=False)
        assert "The mouth is swapped." == js.answer_of(server.bodies[0])
    judge = fl.read_samples("FL")[0]["judge"]
    assert judge["rubric"] == "artifact-description" and judge["error"] is None
    fc = js.make_run(tmp_path / "fc", ["Yes, it is a face swap."], task="FC")
    with ChatServer(responder=js.judge_responder(("correctness", "completeness", "hallucination"))) as server:
        judge_run(fc.path, settings(server), stream=sys.stderr, rescore=False)
    judge = fc.read_samples("FC")[0]["judge"]
    assert judge["rubric"] == "conversation" and set(judge["criteria"]) == {"correctness", "completeness",
                                                                            "hallucination"}


def test_unknown_task_and_bad_settings_are_clear_errors(tmp_path):
    folder = js.make_run(tmp_path / "run", ["a"])
    with js.judge_server() as server:
        with pytest.raises(DfabenchError, match="not in this run"):
            judge_run(folder.path, settings(server), tasks=["FC"])
        with pytest.raises(DfabenchError, match="concurrency"):
            judge_run(folder.path, settings(server, concurrency=0))
        summary = judge_run(folder.path, settings(server), tasks=["ad"], stream=sys.stderr, rescore=False)
    assert summary.tasks["AD"].n_judged == 1


# ---------------------------------------------------------------------------------------------
# The metric provider
# ---------------------------------------------------------------------------------------------


def judged(i: int, score, *, error=None, model=REPORTED, source=None, answer=None, **extra) -> dict:
    record = {"id": f"s{i}", "source_id": source or f"src{i}", "prompt": "Q?", "parsed": answer or f"answer {i}",
              "reference": "The eyes are blurred.", "error": None}
    record["judge"] = {"score": score, "criteria": {"completeness": score * 5 if score is not None else None},
                       "model": model, "rubric": "artifact-description", "rubric_version": "1", "with_image": False,
                       "error": error, "failure": "refusal" if error else None,
                       "input_sha256": judge_input_sha256(record), **extra}
    return record


def context() -> MetricContext:
    return MetricContext(task="AD", n_boot=200)


def test_judge_provider_scores_judged_samples_only():
    records = [judged(i, s) for i, s in enumerate([1.0, 0.5, 0.25, 0.75])]
    records.append(judged(4, None, error="judge refused: no"))
    records.append({"id": "s5", "parsed": None, "reference": "r", "error": "model crashed", "judge": None})
    records.append({"id": "s6", "parsed": "not judged yet", "reference": "r", "error": None, "judge": None})
    stale = judged(7, 1.0)
    stale["parsed"] = "changed after judging"
    records.append(stale)
    out = judge_metrics(records, context())
    score = out.metrics["judge_score"]
    assert score.value == pytest.approx(0.625) and score.n == 4
    assert score.ci_low <= score.value <= score.ci_high
    rate = out.metrics["judge_failure_rate"]
    assert rate.value == pytest.approx(1 / 5) and rate.n == 5
    info = out.breakdowns["judge"]
    assert (info["n_judged"], info["n_failed"], info["n_not_judged"], info["n_stale"], info["n_model_failed"]) == \
        (4, 1, 1, 1, 1)
    assert info["failure_kinds"] == {"refusal": 1}
    assert info["per_criterion"]["completeness"] == pytest.approx(0.625 * 5)
    assert set(out.per_sample) == {"s0", "s1", "s2", "s3"}


def test_judge_provider_never_turns_failures_into_scores():
    out = judge_metrics([judged(0, None, error="timeout"), judged(1, None, error="refused")], context())
    assert out.metrics["judge_score"].value is None and "every judgment failed" in out.metrics["judge_score"].reason
    assert out.metrics["judge_failure_rate"].value == 1.0
    nothing = judge_metrics([{"id": "a", "parsed": "x", "reference": "y", "error": None, "judge": None}], context())
    assert nothing.metrics["judge_score"].value is None and nothing.metrics["judge_score"].reason == NOT_JUDGED


def test_judge_provider_refuses_to_average_different_judges():
    out = judge_metrics([judged(0, 1.0), judged(1, 0.0, model="another-judge")], context())
    assert out.metrics["judge_score"].value is None
    assert "different judges" in out.metrics["judge_score"].reason and "another-judge" in out.metrics[
        "judge_score"].reason


def test_an_unreachable_judge_changes_nothing(tmp_path):
    folder = js.make_run(tmp_path / "run", ["the eyes are blurred"])
    before = {p.name: p.read_bytes() for p in folder.path.iterdir() if p.name.endswith((".json", ".jsonl"))}
    with js.judge_server() as server:
        unreachable = settings(server, max_retries=0)
    # the server is gone now: every call fails to connect
    with pytest.raises(DfabenchError, match="could not be reached"):
        judge_run(folder.path, unreachable, stream=sys.stderr, rescore=False)
    after = {p.name: p.read_bytes() for p in folder.path.iterdir() if p.name.endswith((".json", ".jsonl"))}
    assert after == before
