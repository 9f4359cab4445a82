"""dfabench-openai never writes a key or a URL credential, not even a prefix cut off at 300 characters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from dfabench.api import DfabenchError, GenerateRequest, GenerationSettings
from dfabench.testing.chat_server import ChatServer, Fault
from PIL import Image

openai_model = pytest.importorskip("dfabench_openai.model")
OpenAIModel = openai_model.OpenAIModel

#: no shape rule knows this key, and its variable's name does not look secret: only the plugin can redact it
KEY = "Zq8vN3kLp0Wm4Xr7Ty2Bc6HdQ1"
KEY_ENV = "DFAB_OPENAI_MATERIAL"


def request(i: int) -> GenerateRequest:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"question {i}"}]}]
    return GenerateRequest(sample_id=f"s{i}", image=Image.new("RGB", (8, 8)), image_path="", messages=messages,
                           task="AD", settings=GenerationSettings(max_new_tokens=8))


def test_a_key_across_the_cut_of_an_error_message_leaves_no_prefix(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)

    def responder(body):  # the key at a different offset for each request: "question N" puts it after N dots
        pad = int(re.search(r"question (\d+)", json.dumps(body)).group(1))
        return Fault.status(400, "." * pad + KEY + " is not a valid key for this project")

    with ChatServer(responder=responder, api_key=KEY) as server:
        model = OpenAIModel(model="m", base_url=server.base_url, api_key_env=KEY_ENV, probe=False, max_retries=0)
        try:
            answers = model.generate([request(pad) for pad in range(200, 320)])
        finally:
            model.close()
    assert all(a.error and "HTTP 400" in a.error for a in answers)
    assert any(a.error.endswith("...") for a in answers)  # the cut was reached
    leaks = [a.error for a in answers if KEY[:4] in a.error]
    assert not leaks, leaks[0]


def test_a_refused_base_url_is_shown_without_its_credentials():
    with pytest.raises(DfabenchError) as info:
        OpenAIModel(model="m", base_url="ftp://user:hunter2pass@host/v1")
    assert "hunter2pass" not in str(info.value) and "ftp://***@host/v1" in str(info.value)


def test_credentials_in_the_base_url_reach_no_file(tmp_path, monkeypatch, capfd):
    from dfabench.cli import main
    from dfabench.plugins import reset_manager

    endpoint_host = openai_model.endpoint_host

    bench = tmp_path / "bench"
    (bench / "images").mkdir(parents=True)
    with open(bench / "manifest.jsonl", "w") as handle:
        for i in range(4):
            Image.new("RGB", (8, 8), (i, 0, 0)).save(bench / "images" / f"{i}.png")
            handle.write(json.dumps({"id": f"s{i}", "image": f"images/{i}.png", "label": "fake", "category": "FS",
                                     "split": "test", "description": "blurred eyes"}) + "\n")
    reset_manager()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "run"
    with ChatServer(responder=lambda body: "The eyes are blurred.") as server:
        url = server.base_url.replace("://", "://user:hunter2pass@")
        code = main(["run", "--model", "openai", "--model-arg", "model=m", "--model-arg", f"base_url={url}",
                     "--tasks", "AD", "--bench", str(bench), "--out", str(out), "--no-progress"])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["args"]["base_url"] == url.replace("user:hunter2pass", "***")
    assert record["model"]["identity"]["endpoint"] == endpoint_host(url) and "@" not in endpoint_host(url)
    for path in Path(out).rglob("*"):
        if path.is_file():
            assert b"hunter2pass" not in path.read_bytes(), path
    assert "hunter2pass" not in captured.out + captured.err
