"""`dfabench chat`: a multi-turn conversation about one image, driven through a pipe."""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from dfabench import hookimpl
from dfabench.cli.chat import add_chat_arguments, chat_command
from dfabench.errors import DfabenchError, InputError
from dfabench.models import GenerateRequest, Model, RandomModel, Response
from dfabench.plugins import PluginManager, reset_manager


class RecordingModel(Model):
    """Answers ``answer N`` and keeps every request; fails on ``boom`` (raises) and ``fail`` (error)."""

    capabilities = frozenset({"generate"})
    instances: list[RecordingModel] = []

    def __init__(self):
        self.requests: list[GenerateRequest] = []
        self.closed = False
        RecordingModel.instances.append(self)

    def generate(self, requests):
        out = []
        for request in requests:
            self.requests.append(request)
            if "boom" in request.prompt_text:
                raise RuntimeError("the GPU caught fire")
            if "fail" in request.prompt_text:
                out.append(Response(error="endpoint said no"))
                continue
            out.append(Response(text=f"answer {len(self.requests)}", prompt_tokens=7, completion_tokens=2))
        return out

    def close(self):
        self.closed = True


class _TestPlugin:
    @hookimpl
    def dfabench_register_models(self, register):
        register("recording", RecordingModel, capabilities=("generate",))


@pytest.fixture
def manager():
    reset_manager(PluginManager(load_entry_points=False, extra_plugins=[_TestPlugin()]))
    RecordingModel.instances.clear()
    yield
    reset_manager(None)


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "face.png"
    Image.new("RGB", (32, 32), (180, 140, 120)).save(path)
    return path


def chat(argv: list[str], text: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    add_chat_arguments(parser)
    args = parser.parse_args(argv)
    out = io.StringIO()
    code = chat_command(args, stdin=io.StringIO(text), stdout=out)
    return code, out.getvalue()


def test_shortcuts_ask_the_task_prompts_and_show_the_parsed_answer(manager, image):
    from dfabench.plugins import get_task

    code, out = chat(["--model", "constant", "--model-arg", "category=FR", str(image)],
                     "/detect\n/classify\n/describe\n")
    assert code == 0
    assert get_task("DF-D").prompt in out and get_task("DF-C").prompt in out and get_task("AD").prompt in out
    assert "model> Yes, this face has been forged." in out and "parsed: fake" in out
    assert "model> Face reenactment is used" in out and "parsed: FR" in out


def test_each_turn_sends_the_history_with_the_image_in_the_first_question(manager, image):
    code, out = chat(["--model", "recording", str(image)], "What do you see?\n/detect\nWhy?\n/reset\nAnd now?\n")
    assert code == 0
    [model] = RecordingModel.instances
    first, second, third, fourth = model.requests
    assert [m["role"] for m in first.messages] == ["user"]
    assert first.messages[0]["content"][0] == {"type": "image"}
    assert [m["role"] for m in third.messages] == ["user", "assistant", "user", "assistant", "user"]
    texts = [" ".join(p.get("text", "") for p in m["content"]) for m in third.messages]
    assert texts[0].strip() == "What do you see?" and texts[1] == "answer 1" and texts[3] == "answer 2"
    assert texts[4] == "Why?"
    images = [p for m in third.messages for p in m["content"] if p["type"] == "image"]
    assert len(images) == 1 and third.messages[0]["content"][0] == {"type": "image"}
    assert second.task == "DF-D" and second.choices == ("yes", "no") and second.settings.max_new_tokens == 32
    assert third.task == "FC" and third.settings.max_new_tokens == 256
    # after /reset the conversation starts again, image first
    assert [m["role"] for m in fourth.messages] == ["user"] and fourth.messages[0]["content"][0]["type"] == "image"
    assert third.image_path == str(image) and third.image.size == (32, 32)
    assert model.closed


def test_a_model_error_is_shown_and_the_conversation_goes_on(manager, image, tmp_path):
    transcript = tmp_path / "t.json"
    code, out = chat(["--model", "recording", "--transcript", str(transcript), str(image)],
                     "hello\nboom now\nplease fail\nstill there?\n")
    assert code == 0
    assert "model error: RuntimeError: the GPU caught fire" in out
    assert "model error: endpoint said no" in out
    [model] = RecordingModel.instances
    last = model.requests[-1]
    sent = [" ".join(p.get("text", "") for p in m["content"]).strip() for m in last.messages]
    assert sent == ["hello", "answer 1", "still there?"]  # failed turns are not sent as history
    turns = json.loads(transcript.read_text())["turns"]
    assert [t["error"] is None for t in turns] == [True, False, False, True]
    assert turns[1]["answer"] is None and turns[0]["answer"] == "answer 1"


def test_history_save_and_the_transcript(manager, image, tmp_path):
    target = tmp_path / "chat.json"
    code, out = chat(["--model", "random", "--model-arg", "seed=3", str(image)],
                     f"/detect\nwhy?\n/history\n/save {target}\n/quit\nnever asked\n")
    assert code == 0
    assert "1. you [/detect]: Has this face been forged?" in out and "2. you: why?" in out
    assert f"transcript saved to {target}" in out and "never asked" not in out
    data = json.loads(target.read_text())
    assert data["model"] == {"name": "random", "args": {"seed": 3}, "identity": {"seed": 3}}
    assert data["image"]["path"] == str(image) and len(data["image"]["sha256"]) == 64
    assert [t["question"] for t in data["turns"]] == ["Has this face been forged? Answer yes or no.", "why?"]
    detect = data["turns"][0]
    # the P(fake) shown is the one the model's yes/no log-probabilities give
    request = GenerateRequest(sample_id="chat-1", image=None, image_path="", messages=[], task="DF-D",
                              reference="label", choices=("yes", "no"))
    [response] = RandomModel(seed=3).generate([request])
    lp = response.choice_logprobs
    expected = math.exp(lp["yes"]) / (math.exp(lp["yes"]) + math.exp(lp["no"]))
    assert detect["p_fake"] == pytest.approx(expected)
    assert detect["parsed"] == ("fake" if expected >= 0.5 else "real")
    assert f"P(fake) = {expected:.3f}" in out


def test_unknown_commands_and_empty_lines(manager, image):
    code, out = chat(["--model", "constant", str(image)], "\n\n/what\n/save\n/help\n")
    assert code == 0
    assert "unknown command /what" in out and "usage: /save FILE" in out and "/describe" in out
    assert "model>" not in out


def test_a_save_that_fails_is_reported_and_the_chat_goes_on(manager, image, tmp_path):
    code, out = chat(["--model", "constant", str(image)], f"/save {tmp_path}/no/such/dir/t.json\n/detect\n")
    assert code == 0 and "cannot save the transcript" in out and "parsed: fake" in out


def test_models_that_cannot_chat_are_refused(manager, image):
    with pytest.raises(DfabenchError, match="generate"):
        chat(["--model", "random", "--model-arg", "mode=score", str(image)], "hi\n")
    with pytest.raises(DfabenchError, match="did you mean"):
        chat(["--model", "constantt", str(image)], "hi\n")


def test_bad_images_are_refused_naming_the_file(manager, tmp_path):
    with pytest.raises(InputError, match="missing.png"):
        chat(["--model", "constant", str(tmp_path / "missing.png")], "hi\n")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(InputError, match="broken.png"):
        chat(["--model", "constant", str(broken)], "hi\n")


def test_the_command_line_reads_a_pipe(image):
    result = subprocess.run([sys.executable, "-m", "dfabench.cli", "chat", "--model", "constant", str(image)],
                            input="/detect\nwhere?\n", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "you> /detect" in result.stdout and "parsed: fake" in result.stdout and "you> where?" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "dfabench.cli", "chat", "--model", "constant", "nope.png"],
                         input="", capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "nope.png" in bad.stderr and "Traceback" not in bad.stderr
