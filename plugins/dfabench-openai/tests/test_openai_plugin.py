"""dfabench-openai against a real local HTTP server speaking the chat-completions API."""

from __future__ import annotations

import base64
import io
import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from dfabench.api import DfabenchError, GenerateRequest, GenerationSettings
from dfabench.testing.chat_server import ChatServer, Fault
from PIL import Image

openai_model = pytest.importorskip("dfabench_openai.model")
OpenAIModel = openai_model.OpenAIModel

SECRET = "sk-test-DO-NOT-LEAK-8c1f0e7a93b24d"


def make_request(i: int, image: Image.Image | None = None, path: str = "", choices=(), task: str = "DF-D",
                 history: list | None = None) -> GenerateRequest:
    image = image if image is not None else Image.new("RGB", (16, 16), (i * 10 % 256, 20, 30))
    messages = list(history or []) or [{"role": "user", "content": [{"type": "image"},
                                                                      {"type": "text", "text": f"question {i}"}]}]
    return GenerateRequest(sample_id=f"s{i}", image=image, image_path=path, messages=messages, task=task,
                           choices=tuple(choices), settings=GenerationSettings(max_new_tokens=20))


def sample_of(body: dict) -> str:
    """The sample a chat request is about (the text of its last user turn)."""
    for message in reversed(body["messages"]):
        if message["role"] == "user":
            content = message["content"]
            return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content
                                                                      if p["type"] == "text")
    return ""


@pytest.fixture
def model_factory():
    created = []

    def make(server: ChatServer, **kwargs):
        kwargs.setdefault("backoff", 0.01)
        kwargs.setdefault("timeout", 5)
        kwargs.setdefault("probe", False)
        model = OpenAIModel(model="test-model", base_url=server.base_url, **kwargs)
        created.append(model)
        return model

    yield make
    for model in created:
        model.close()


# ----------------------------------------------------------------------------- requests


def test_messages_carry_the_image_as_a_data_url_at_the_image_position(tmp_path, model_factory):
    png = tmp_path / "face.png"
    Image.new("RGB", (12, 10), (1, 2, 3)).save(png)
    history = [
        {"role": "system", "content": [{"type": "text", "text": "You are a forensic analyst."}]},
        {"role": "user", "content": [{"type": "text", "text": "Look:"}, {"type": "image"},
                                     {"type": "text", "text": "Is it forged?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Yes."}]},
        {"role": "user", "content": [{"type": "text", "text": "Why?"}]},
    ]
    reply = {"content": "Because of the blending.", "usage": {"prompt_tokens": 123, "completion_tokens": 7}}
    with ChatServer(responder=lambda body: reply) as server:
        model = model_factory(server, detail="low")
        [answer] = model.generate([make_request(0, image=Image.open(png), path=str(png), history=history)])
        [body] = server.bodies
    assert answer.error is None and answer.text == "Because of the blending."
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][0]["content"] == "You are a forensic analyst."
    assert body["messages"][2]["content"] == "Yes."
    parts = body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text"]
    url = parts[1]["image_url"]["url"]
    assert parts[1]["image_url"]["detail"] == "low"
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png.read_bytes()  # the file's own bytes
    assert body["model"] == "test-model" and body["max_tokens"] == 20 and body["temperature"] == 0.0
    assert "logprobs" not in body
    # token counts come from the reply's usage
    assert (answer.prompt_tokens, answer.completion_tokens) == (123, 7)


def test_an_image_without_a_png_or_jpeg_file_is_re_encoded(tmp_path, model_factory):
    bmp = tmp_path / "face.bmp"
    original = Image.new("RGB", (9, 7), (200, 100, 50))
    original.save(bmp)
    with ChatServer() as server:
        model = model_factory(server)
        model.generate([make_request(0, image=Image.open(bmp), path=str(bmp))])
        url = server.bodies[0]["messages"][0]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (9, 7) and decoded.convert("RGB").getpixel((3, 3)) == (200, 100, 50)


def test_a_batch_runs_concurrently_within_the_limit_and_keeps_order(model_factory):
    limit = 3
    barrier = threading.Barrier(limit, timeout=10)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def responder(body):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            barrier.wait()  # passes only when `limit` requests are in flight at once
        finally:
            with lock:
                state["now"] -= 1
        return f"answer to {sample_of(body)}"

    with ChatServer(responder=responder) as server:
        model = model_factory(server, concurrency=limit, max_retries=0)
        answers = model.generate([make_request(i) for i in range(9)])
    assert [a.error for a in answers] == [None] * 9
    assert [a.text for a in answers] == [f"answer to question {i}" for i in range(9)]
    assert state["peak"] == limit


def test_default_batch_size_and_concurrency_make_concurrency_matter(model_factory):
    with ChatServer() as server:
        model = model_factory(server)
    assert model.default_batch_size >= 32 and model.concurrency >= 8


# ----------------------------------------------------------------------------- retries and failures


def scripted(faults_by_sample: dict[str, list]):
    """A responder that gives each sample its listed faults first, then a normal answer."""
    lock = threading.Lock()

    def responder(body):
        key = sample_of(body)
        with lock:
            queue = faults_by_sample.get(key)
            if queue:
                return queue.pop(0)
        return f"ok {key}"

    return responder


def test_429_waits_as_long_as_retry_after_says(model_factory):
    with ChatServer(responder=scripted({"question 0": [Fault.rate_limit(retry_after=0.6)]})) as server:
        model = model_factory(server, backoff=0.001)
        [answer] = model.generate([make_request(0)])
        first, second = server.chat_requests
    assert answer.error is None and answer.text == "ok question 0"
    assert first.fault == "rate_limit" and second.fault is None
    assert second.received - first.received >= 0.55


@pytest.mark.parametrize("fault", [Fault.server_error(500), Fault.server_error(503), Fault.status(408, "timeout"),
                                   Fault.status(409, "conflict"), Fault.malformed(), Fault.disconnect(),
                                   Fault.rate_limit(retry_after=None)])
def test_transient_failures_are_retried(fault, model_factory):
    with ChatServer(responder=scripted({"question 1": [fault, fault]})) as server:
        model = model_factory(server)
        answers = model.generate([make_request(0), make_request(1)])
        assert server.count == 4
    assert [a.error for a in answers] == [None, None]
    assert answers[1].text == "ok question 1"


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
def test_other_4xx_are_not_retried(code, model_factory):
    with ChatServer(responder=scripted({"question 0": [Fault.status(code, "nope")]})) as server:
        model = model_factory(server)
        answers = model.generate([make_request(0), make_request(1)])
        assert server.count == 2
    assert answers[0].error is not None and f"HTTP {code}" in answers[0].error and answers[0].text == ""
    assert answers[1].error is None


def test_a_request_that_keeps_failing_becomes_an_error_and_the_batch_goes_on(model_factory):
    with ChatServer(responder=scripted({"question 2": [Fault.server_error()] * 10})) as server:
        model = model_factory(server, max_retries=2)
        answers = model.generate([make_request(i) for i in range(4)])
        assert server.count == 3 + 3
    assert [a.error is None for a in answers] == [True, True, False, True]
    assert "HTTP 500" in answers[2].error and "after 3 attempts" in answers[2].error
    assert answers[2].text == ""


def test_a_hanging_request_times_out_and_is_retried(model_factory):
    with ChatServer(responder=scripted({"question 0": [Fault.hang(30)]})) as server:
        model = model_factory(server, timeout=0.5, max_retries=1)
        [answer] = model.generate([make_request(0)])
        assert server.count == 2
    assert answer.error is None and answer.text == "ok question 0"
    with ChatServer(responder=scripted({"question 0": [Fault.hang(30)] * 2})) as server:
        model = model_factory(server, timeout=0.5, max_retries=1)
        [answer] = model.generate([make_request(0)])
    assert answer.error is not None and "timed out" in answer.error


def test_a_refusal_is_an_answer_not_a_failure(model_factory):
    with ChatServer(responder=lambda body: Fault.refusal("I can't help with that.")) as server:
        model = model_factory(server)
        [answer] = model.generate([make_request(0)])
    assert answer.error is None and answer.text == "I can't help with that."


def test_an_empty_message_is_a_failure(model_factory):
    with ChatServer(responder=lambda body: {"content": None, "finish_reason": "length"}) as server:
        model = model_factory(server)
        [answer] = model.generate([make_request(0)])
    assert answer.error is not None and "no message content" in answer.error and "length" in answer.error


def test_an_unreadable_image_fails_that_item_only(model_factory):
    with ChatServer() as server:
        model = model_factory(server)
        bad = make_request(1)
        bad.image, bad.image_path = None, "/nonexistent/face.png"
        answers = model.generate([make_request(0), bad])
        assert server.count == 1
    assert answers[0].error is None and answers[1].error is not None and "no image" in answers[1].error


# ----------------------------------------------------------------------------- logprobs


def top(*pairs):
    first_token, first_lp = pairs[0]
    return {"content": [{"token": first_token, "logprob": first_lp, "bytes": None,
                         "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in pairs]}]}


def test_choice_logprobs_come_from_the_first_token(model_factory):
    reply = {"content": "Yes, it is forged.", "logprobs": top(("Yes", -0.2), ("No", -1.9), (" yes", -3.5),
                                                               ("Maybe", -6.0))}
    with ChatServer(responder=lambda body: reply) as server:
        model = model_factory(server, logprobs=True)
        answers = model.generate([make_request(0, choices=("yes", "no")), make_request(1, task="AD")])
        bodies = sorted(server.bodies, key=sample_of)
    assert bodies[0]["logprobs"] is True and bodies[0]["top_logprobs"] == 20
    assert "logprobs" not in bodies[1]  # no choices: no log-probabilities asked
    logprobs = answers[0].choice_logprobs
    assert logprobs["no"] == pytest.approx(-1.9)
    assert logprobs["yes"] == pytest.approx(math.log(math.exp(-0.2) + math.exp(-3.5)))
    assert answers[1].choice_logprobs is None


def test_no_choice_logprobs_when_a_choice_is_not_among_the_top_tokens(model_factory):
    reply = {"content": "Yes.", "logprobs": top(("Yes", -0.01), ("Sure", -5.0))}
    with ChatServer(responder=lambda body: reply) as server:
        model = model_factory(server, logprobs="true")
        [answer] = model.generate([make_request(0, choices=("yes", "no"))])
    assert answer.error is None and answer.text == "Yes." and answer.choice_logprobs is None


def test_logprobs_are_not_asked_unless_enabled(model_factory):
    with ChatServer() as server:
        model = model_factory(server)
        model.generate([make_request(0, choices=("yes", "no"))])
        assert "logprobs" not in server.bodies[0]


def test_an_endpoint_that_refuses_logprobs_is_asked_again_without(model_factory):
    def responder(body):
        if body.get("logprobs"):
            return Fault.status(400, "logprobs are not supported by this model")
        return "No."

    with ChatServer(responder=responder) as server:
        model = model_factory(server, logprobs=True, max_retries=0)
        first = model.generate([make_request(0, choices=("yes", "no"))])
        second = model.generate([make_request(1, choices=("yes", "no"))])
        bodies = server.bodies
    assert first[0].text == "No." and first[0].error is None and first[0].choice_logprobs is None
    assert second[0].text == "No."
    assert [("logprobs" in b) for b in bodies] == [True, False, False]


# ----------------------------------------------------------------------------- identity and keys


def test_identity_is_the_served_model_and_the_host_never_the_key(monkeypatch, model_factory):
    monkeypatch.setenv("DFAB_TEST_KEY", SECRET)
    with ChatServer(model="test-model-2026-01-01", api_key=SECRET) as server:
        model = model_factory(server, api_key_env="DFAB_TEST_KEY", probe=True)
        identity = model.identity()
        assert server.authorization_headers == [f"Bearer {SECRET}"]  # the probe
        assert model.identity() == identity and server.count == 1  # computed once
        port = server.port
    assert identity["served_model"] == "test-model-2026-01-01"
    assert identity["model"] == "test-model"
    assert identity["endpoint"] == f"127.0.0.1:{port}"
    assert SECRET not in json.dumps(identity) and SECRET not in repr(model)


def test_identity_from_the_model_list_without_a_probe(model_factory):
    with ChatServer(models=["other", "test-model"]) as server:
        model = model_factory(server, probe=False)
        identity = model.identity()
        assert server.count == 0
    assert identity["served_model"] == "test-model"
    with ChatServer(models=["other"]) as server:
        assert model_factory(server, probe=False).identity()["served_model"] is None


def test_a_refused_key_stops_at_the_probe_with_a_clear_error(monkeypatch, model_factory):
    monkeypatch.setenv("DFAB_TEST_KEY", SECRET)
    with ChatServer(api_key="the-right-key") as server:
        model = model_factory(server, api_key_env="DFAB_TEST_KEY", probe=True)
        with pytest.raises(DfabenchError) as info:
            model.identity()
    assert "DFAB_TEST_KEY" in str(info.value) and "401" in str(info.value) and SECRET not in str(info.value)


def test_error_messages_never_carry_the_key(monkeypatch, model_factory):
    monkeypatch.setenv("DFAB_TEST_KEY", SECRET)
    with ChatServer(responder=lambda body: Fault.status(400, f"invalid key {SECRET} for this project")) as server:
        model = model_factory(server, api_key_env="DFAB_TEST_KEY")
        [answer] = model.generate([make_request(0)])
    assert answer.error is not None and "invalid key" in answer.error and SECRET not in answer.error


def test_keys_come_only_from_the_environment(monkeypatch):
    with pytest.raises(DfabenchError, match="api_key_env") as info:
        OpenAIModel(model="gpt-4o", api_key=SECRET)
    assert SECRET not in str(info.value)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(DfabenchError, match="OPENAI_API_KEY"):
        OpenAIModel(model="gpt-4o")
    with pytest.raises(DfabenchError, match="model id"):
        OpenAIModel(base_url="http://127.0.0.1:9/v1")


def test_a_local_server_needs_no_key(monkeypatch, model_factory):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ChatServer() as server:
        model = model_factory(server)
        model.generate([make_request(0)])
        assert server.authorization_headers == ["Bearer EMPTY"]


@pytest.mark.parametrize("args", [{"concurrency": 0}, {"timeout": "soon"}, {"max_retries": -1}, {"detail": "max"},
                                  {"logprobs": "maybe"}, {"base_url": "ftp://host/v1"}])
def test_bad_model_arguments_are_refused(args):
    kwargs = {"model": "m", "base_url": "http://127.0.0.1:9/v1", **args}
    with pytest.raises(DfabenchError):
        OpenAIModel(**kwargs)


def test_a_missing_openai_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(DfabenchError, match="pip install dfabench-openai"):
        OpenAIModel(model="m", base_url="http://127.0.0.1:9/v1")


def test_the_plugin_registers_the_model_without_importing_openai():
    code = ("import sys; from dfabench.plugins import get_manager; m = get_manager(); "
            "e = m.models.get('openai'); print(e.capabilities, e.distribution, "
            "'openai' in sys.modules, 'dfabench_openai.model' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "('generate',) dfabench-openai False False"


# ----------------------------------------------------------------------------- through `dfabench run`


@pytest.fixture(scope="module")
def smoke_bench(tmp_path_factory) -> Path:
    smoke = pytest.importorskip("dfabench.data.smoke")
    return smoke.build_smoke(tmp_path_factory.mktemp("smoke") / "bench", seed=0)


def test_a_run_on_the_smoke_benchmark_records_failures_and_never_stores_the_key(smoke_bench, tmp_path,
                                                                                  monkeypatch, capfd):
    from dfabench.cli import main
    from dfabench.plugins import reset_manager

    reset_manager()
    monkeypatch.setenv("DFAB_TEST_KEY", SECRET)

    def responder(body):
        question = sample_of(body)
        if "forged" in question:
            return "Yes, it has been forged."
        if "technique" in question:
            return "Face swap."
        return "The jawline is blurred."

    failing = {"calls": 0}
    lock = threading.Lock()

    def flaky(body):
        with lock:
            failing["calls"] += 1
            if failing["calls"] in (2, 3, 4):  # one DF-D sample fails on every attempt
                return Fault.status(400, f"bad request for key {SECRET}")
        return responder(body)

    out = tmp_path / "run"
    with ChatServer(responder=flaky, model="served-2026", api_key=SECRET) as server:
        code = main(["run", "--model", "openai", "--model-arg", "model=test-model",
                     "--model-arg", f"base_url={server.base_url}", "--model-arg", "api_key_env=DFAB_TEST_KEY",
                     "--model-arg", "concurrency=1", "--model-arg", "max_retries=0",
                     "--tasks", "DF-D,DF-C,AD", "--bench", str(smoke_bench), "--limit", "8", "--out", str(out),
                     "--no-progress"])
        calls = server.count
    captured = capfd.readouterr()
    assert code == 0, captured.err
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["identity"]["served_model"] == "served-2026"
    assert record["counts"]["DF-D"]["n_failed"] == 3 and record["counts"]["DF-D"]["n"] == 8
    assert record["counts"]["DF-C"] == {"n": 8, "n_failed": 0, "n_unparsed": 0}
    assert record["counts"]["AD"]["n_failed"] == 0 and record["counts"]["AD"]["n"] == 8
    assert record["metrics"]["DF-C"]["accuracy"]["value"] is not None
    assert calls == 1 + 8 + 8 + 8  # probe + DF-D + DF-C + AD
    failed = [json.loads(line) for line in (out / "samples-DF-D.jsonl").read_text().splitlines()]
    assert sum(1 for r in failed if r["error"] and "HTTP 400" in r["error"] and "***" in r["error"]) == 3
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in captured.out and SECRET not in captured.err
