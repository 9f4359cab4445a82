"""Several servers behind one `openai` model: balancing, health checks, failover, identity, keys.

Every server is a real HTTP server on 127.0.0.1 (dfabench.testing.chat_server); a "killed" one stops listening
and drops every connection it still has, as a crashed vLLM replica would."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from dfabench.api import DfabenchError, GenerateRequest, GenerationSettings
from dfabench.testing.chat_server import ChatServer, Fault, count_words
from PIL import Image

openai_model = pytest.importorskip("dfabench_openai.model")
OpenAIModel = openai_model.OpenAIModel

SECRET = "sk-pool-test-DO-NOT-LEAK-51a7c2e9d0"


class Replica(ChatServer):
    """A chat server that can be killed (stops listening, drops its kept-alive connections) and that can list the
    model with a vLLM-style ``root`` (the weights it was started from)."""

    def __init__(self, *args, root: str | None = None, die_after: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.root = root
        self.die_after = die_after
        self.dead = threading.Event()
        self.answered = 0
        self._count_lock = threading.Lock()
        inner = self.responder or (lambda body: f"answer to {sample_of(body)}")

        def responder(body):
            if self.dead.is_set():
                return Fault.disconnect()
            with self._count_lock:
                if self.die_after is not None and self.answered >= self.die_after:
                    self.kill()
                    return Fault.disconnect()
                self.answered += 1
            return inner(body)

        self.responder = responder

    def kill(self) -> None:
        if not self.dead.is_set():
            self.dead.set()
            threading.Thread(target=self.stop, daemon=True).start()  # stop() joins the serving thread

    def _handler_class(self):
        base = super()._handler_class()
        server = self

        class Handler(base):
            def _drop(self) -> bool:
                if not server.dead.is_set():
                    return False
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return True

            def do_GET(self):  # noqa: N802
                if self._drop():
                    return
                if server.root and self.path.split("?")[0].rstrip("/").endswith("/models"):
                    data = [{"id": m, "object": "model", "root": server.root} for m in server.models]
                    self._send_json(200, {"object": "list", "data": data})
                    return
                super().do_GET()

            def do_POST(self):  # noqa: N802
                if self._drop():
                    return
                super().do_POST()

        return Handler


def sample_of(body: dict) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content if p["type"] == "text")


def make_request(i: int) -> GenerateRequest:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"question {i}"}]}]
    return GenerateRequest(sample_id=f"s{i}", image=Image.new("RGB", (8, 8), (i, 0, 0)), image_path="",
                           messages=messages, task="AD", settings=GenerationSettings(max_new_tokens=8))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pool_model():
    created = []

    def make(urls, **kwargs):
        for key, value in {"backoff": 0.01, "timeout": 5, "probe": False, "cooloff": 30}.items():
            kwargs.setdefault(key, value)
        model = OpenAIModel(model="test-model", base_url=urls, **kwargs)
        created.append(model)
        return model

    yield make
    for model in created:
        model.close()


# ----------------------------------------------------------------------------- failover and balancing


def test_a_replica_killed_mid_run_leaves_every_sample_answered_by_the_other(pool_model, capfd):
    with Replica(die_after=3) as doomed, Replica() as survivor:
        label, survivor_label = doomed.base_url, survivor.base_url
        model = pool_model([label, survivor_label], concurrency=2)
        model.identity()
        answers = model.generate([make_request(i) for i in range(24)])
        more = model.generate([make_request(i) for i in range(24, 30)])
        model.close()
        usage = doomed.usage_total["prompt_tokens"] + survivor.usage_total["prompt_tokens"]
        assert doomed.dead.is_set()
        assert doomed.answered == 3 and survivor.answered == 27
    err = capfd.readouterr().err
    everything = answers + more
    assert [a.error for a in everything] == [None] * 30
    assert [a.text for a in everything] == [f"answer to question {i}" for i in range(30)]
    # only the replies that answered carry usage: nothing counted twice for the attempts that failed over
    assert sum(a.prompt_tokens for a in everything) == usage
    expected = count_words(make_request(0).messages[0]["content"][1]["text"])
    assert {a.prompt_tokens for a in everything} == {expected}
    down = [line for line in err.splitlines() if f"{label} is down" in line]
    assert len(down) == 1 and "going on with 1 of 2" in down[0]
    summary = [line for line in err.splitlines() if line.startswith("openai: 2 endpoints:")]
    assert len(summary) == 1 and f"{survivor_label} answered 27" in summary[0] and "(down:" in summary[0]


def test_requests_are_balanced_by_the_fewest_in_flight(pool_model):
    barrier = threading.Barrier(2, timeout=10)  # passes only with one request in flight on each server

    def responder(body):
        barrier.wait()
        return f"answer to {sample_of(body)}"

    with Replica(responder=responder) as a, Replica(responder=responder) as b:
        model = pool_model(f"{a.base_url},{b.base_url}", concurrency=1, max_retries=0)
        answers = model.generate([make_request(i) for i in range(8)])
        assert (a.count, b.count) == (4, 4)
    assert [a.error for a in answers] == [None] * 8
    assert model.default_batch_size == 2 * OpenAIModel.default_batch_size


def test_a_request_failing_on_one_replica_is_retried_on_the_other_at_once(pool_model):
    with Replica(responder=lambda body: Fault.server_error(503)) as failing, Replica() as good:
        model = pool_model([failing.base_url, good.base_url], max_retries=0, backoff=30)  # a backoff would hang
        answers = model.generate([make_request(i) for i in range(6)])
    assert [a.error for a in answers] == [None] * 6
    assert failing.count >= 1 and good.count == 6


# ----------------------------------------------------------------------------- health checks


def test_the_health_check_refuses_a_server_serving_another_model(pool_model, capfd):
    with Replica(models=["test-model"]) as right, Replica(models=["other-model"]) as wrong:
        wrong_label = wrong.base_url
        model = pool_model([right.base_url, wrong.base_url])
        identity = model.identity()
        answers = model.generate([make_request(i) for i in range(4)])
        assert wrong.count == 0 and right.count == 4
    assert [a.error for a in answers] == [None] * 4
    assert "endpoint" not in identity and identity["served_model"] == "test-model"
    line = next(line for line in capfd.readouterr().err.splitlines() if "1 of 2 endpoints up" in line)
    assert f"{wrong_label} refused (serves 'other-model', not 'test-model')" in line


def test_servers_started_from_other_weights_are_refused(pool_model):
    with Replica(root="/models/qwen-a") as a, Replica(root="/models/qwen-b") as b:
        model = pool_model([a.base_url, b.base_url])
        with pytest.raises(DfabenchError, match="different weights") as info:
            model.identity()
    assert "/models/qwen-a" in str(info.value) and "/models/qwen-b" in str(info.value)
    with Replica(root="/models/qwen-a") as a, Replica(root="/models/qwen-a") as b:
        identity = pool_model([a.base_url, b.base_url]).identity()
    assert identity["served_root"] == "/models/qwen-a"


def test_unreachable_servers_stop_at_the_start_with_one_line(pool_model):
    urls = [f"http://127.0.0.1:{free_port()}/v1", f"http://127.0.0.1:{free_port()}/v1"]
    with pytest.raises(DfabenchError) as info:
        pool_model(urls, max_retries=1).identity()
    message = str(info.value)
    assert "\n" not in message and message.startswith("openai: none of the 2 endpoints can serve 'test-model'")
    assert all(f"{url}: cannot reach" in message for url in urls)
    with pytest.raises(DfabenchError, match="cannot reach 127.0.0.1"):  # one URL: the probe says it in one line
        pool_model(urls[0], max_retries=1, probe=True).identity()


def test_a_replica_down_at_the_start_is_re_probed_and_used_when_it_comes_back(pool_model, capfd):
    port = free_port()
    with Replica() as up:
        model = pool_model([up.base_url, f"http://127.0.0.1:{port}/v1"], cooloff=0.01)
        model.identity()
        with Replica(port=port) as late:
            answers = []
            while late.count == 0 and len(answers) < 50:  # each request re-probes it once its cool-off is over
                answers += model.generate([make_request(len(answers))])
            assert late.count >= 1  # re-probed, then given requests
    assert all(a.error is None for a in answers)
    assert "is up again" in capfd.readouterr().err


def test_all_replicas_down_mid_run_fail_every_sample_with_one_line(pool_model, capfd):
    with Replica() as a, Replica() as b:
        model = pool_model([a.base_url, b.base_url], max_retries=1)
        model.identity()
        a.kill()
        b.kill()
        a.dead.wait()
        b.dead.wait()
        answers = model.generate([make_request(i) for i in range(5)])
        later = model.generate([make_request(5)])
    for answer in answers + later:
        assert answer.error and answer.text == "" and "\n" not in answer.error
        assert answer.error.startswith("no endpoint is up: all 2 endpoints are down")
        assert answer.error_kind == "no_endpoint"
    assert "all 2 endpoints are down" in capfd.readouterr().err


# ----------------------------------------------------------------------------- identity


def fingerprint(model, args) -> str:
    from dfabench.plugins import get_manager
    from dfabench.records import ModelIdentity

    return ModelIdentity.create(get_manager().models.get("openai"), args, model).fingerprint


def test_a_pool_identity_does_not_depend_on_which_or_how_many_servers_answer(pool_model):
    with Replica() as a, Replica() as b, Replica() as c:
        pools = [[a.base_url, b.base_url], f"{c.base_url},{a.base_url}", [b.base_url], f"{c.base_url},"]
        prints = {fingerprint(pool_model(urls), {"model": "test-model", "base_url": urls}) for urls in pools}
        single_a = pool_model(a.base_url)
        single_b = pool_model(b.base_url)
        pooled = pool_model([a.base_url, b.base_url])
        assert single_a.identity() == {"model": "test-model", "endpoint": f"127.0.0.1:{a.port}",
                                       "api": "chat.completions", "served_model": "test-model"}
        singles = {fingerprint(m, {"model": "test-model", "base_url": m.base_url}) for m in (single_a, single_b)}
    assert len(prints) == 1
    assert len(singles) == 2 and not singles & prints  # one URL: named in the identity, as it always was
    assert "base_url" not in single_a.operational_args and "base_url" in OpenAIModel.operational_args
    assert "base_url" in pooled.operational_args


@pytest.mark.parametrize("urls", [["http://127.0.0.1:9/v1", "ftp://h/v1"], "http://127.0.0.1:9/v1,http://127.0.0.1:9/v1/",
                                  [], ",", [3]])
def test_bad_base_url_lists_are_refused(urls):
    with pytest.raises(DfabenchError, match="base_url"):
        OpenAIModel(model="m", base_url=urls)


# ----------------------------------------------------------------------------- through `dfabench run`


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pool") / "bench"
    (folder / "images").mkdir(parents=True)
    with open(folder / "manifest.jsonl", "w") as handle:
        for i in range(6):
            Image.new("RGB", (8, 8), (i, 9, 0)).save(folder / "images" / f"{i}.png")
            handle.write(json.dumps({"id": f"s{i}", "image": f"images/{i}.png", "label": "fake", "category": "FS",
                                     "split": "test", "description": "blurred eyes"}) + "\n")
    return folder


def test_a_run_resumed_on_other_servers_reuses_the_cache_and_no_key_leaks(bench, tmp_path, monkeypatch, capfd):
    from dfabench.cli import main
    from dfabench.plugins import reset_manager

    reset_manager()
    monkeypatch.setenv("DFAB_POOL_KEY", SECRET)
    out = tmp_path / "run"
    common = ["--model", "openai", "--model-arg", "model=test-model", "--model-arg", "api_key_env=DFAB_POOL_KEY",
              "--tasks", "AD", "--bench", str(bench), "--out", str(out), "--no-progress"]
    reply = lambda body: "The eyes are blurred."  # noqa: E731
    # `a` is reached with credentials in its URL (sent as HTTP basic auth instead of the key); `b` checks the key
    with Replica(reply) as a, Replica(reply, api_key=SECRET) as b:
        urls = f"{a.base_url.replace('://', '://user:hunter2pass@')},{b.base_url}"
        code = main(["run", *common, "--model-arg", f"base_url={urls}"])
        first = json.loads((out / "run.json").read_text())
        assert code == 0 and a.count + b.count == 1 + 6  # the probe, then every sample once
    with Replica(reply, api_key=SECRET) as c:
        code = main(["run", *common, "--model-arg", f"base_url={c.base_url},"])
        assert code == 0 and c.count == 1  # the probe only: every answer came from the cache
    second = json.loads((out / "run.json").read_text())
    assert first["model"]["fingerprint"] == second["model"]["fingerprint"]
    assert "endpoint" not in second["model"]["identity"] and "base_url" in second["model"]["operational_args"]
    captured = capfd.readouterr()
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and b"hunter2pass" not in data, path
    assert SECRET not in captured.out + captured.err and "hunter2pass" not in captured.out + captured.err
    assert "2 of 2 endpoints up" in captured.err


def test_a_run_on_unreachable_servers_stops_with_one_line(bench, tmp_path, capfd):
    from dfabench.cli import main
    from dfabench.plugins import reset_manager

    reset_manager()
    urls = f"http://127.0.0.1:{free_port()}/v1,http://127.0.0.1:{free_port()}/v1"
    code = main(["run", "--model", "openai", "--model-arg", "model=m", "--model-arg", f"base_url={urls}",
                 "--model-arg", "max_retries=1", "--model-arg", "backoff=0.01", "--tasks", "AD", "--bench", str(bench),
                 "--out", str(tmp_path / "run"), "--no-progress"])
    err = capfd.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "none of the 2 endpoints can serve 'm'" in err
    assert not (tmp_path / "run" / "run.json").exists()
