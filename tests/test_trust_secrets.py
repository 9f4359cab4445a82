"""Secrets never reach a file, a log or an error message: redact first, then cut (dfabench.redact).

The exhaustive tests put a key at every offset around each cut point of every path that shortens error text
and check that not even a 4-character prefix of it survives.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from dfabench import redact as redaction
from dfabench.redact import credential_paths, is_secret_name, redact, redact_clip, scrub_value

#: a key no shape rule knows: only its value (from the environment or registered) can find it
KEY = "Zq8vN3kLp0Wm4Xr7Ty2Bc6HdQ1"
KEY_ENV = "DFAB_LEAK_TOKEN"


def leaked_prefix(text: str, key: str = KEY) -> bool:
    """Whether some prefix of ``key`` of 4 characters or more is in ``text``."""
    return key[:4] in text


# ----------------------------------------------------------------------------- the mechanism


@pytest.mark.parametrize("text, expected", [
    ("http://user:secret@host/v1", "http://***@host/v1"),
    ("https://user:p@ss@host:8000/v1/chat", "https://***@host:8000/v1/chat"),
    ("see http://host:8000/v1?api-key=abc&x=1&sig=zz#frag", "see http://host:8000/v1?api-key=***&x=1&sig=***#frag"),
    ("GET https://h/v1?key=AIzaXYZ&api_key=1&access_token=t&token=q&password=p&signature=s",
     "GET https://h/v1?key=***&api_key=***&access_token=***&token=***&password=***&signature=***"),
    ("Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer ***"),
    ("headers={'Authorization': 'Basic dXNlcjpwYXNz'}", "headers={'Authorization': 'Basic ***'}"),
    ("sent Bearer eyJhbGciOi.x1 to the server", "sent Bearer *** to the server"),
    ("Incorrect API key provided: sk-proj-AbCdEf1234567890. You can find",
     "Incorrect API key provided: ***. You can find"),
    ("hf_abcdefghijklmnopqrstuvwxyz012345 was refused", "*** was refused"),
    ('{"api_key": "abcdefgh", "password": "hunter22"}', '{"api_key": "***", "password": "***"}'),
])
def test_credentials_in_text_are_redacted(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "token='Yes' max_tokens=300 tokenizer=/path/to/tok api_key_env=OPENAI_API_KEY",
    "Bearer tokens are one way to authenticate",
    "KeyError: 'missing'",
    "see https://example.com/a?b=c&page=2 and mail me at a@b.com",
    "model raised RuntimeError: cannot handle s0003",
    "HTTP 400: bad request for key ***",
])
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_secret_environment_values_are_redacted_and_other_variables_are_not(monkeypatch):
    monkeypatch.setenv("DFAB_SERVICE_API_KEY", "v4lue-of-the-api-key")
    monkeypatch.setenv("DFAB_HF_TOKEN", "another-token-value")
    monkeypatch.setenv("DFAB_DB_PASSWORD", "correct-horse-battery")
    monkeypatch.setenv("DFAB_SHORT_TOKEN", "short")           # under 8 characters: not a secret
    monkeypatch.setenv("DFAB_KEYRING_PROVIDER", "subprocess")  # KEY inside a word: not a secret name
    monkeypatch.setenv("DFAB_JUDGE_KEY_ENV", "OPENAI_API_KEY")  # names a secret, does not hold one
    text = ("v4lue-of-the-api-key another-token-value correct-horse-battery short subprocess "
            "set OPENAI_API_KEY")
    assert redact(text) == "*** *** *** short subprocess set OPENAI_API_KEY"


def test_registered_and_given_secrets_are_redacted_whatever_their_variable(monkeypatch):
    monkeypatch.setattr(redaction, "_registered", set())
    assert redact(f"x {KEY} y") == f"x {KEY} y"
    assert redact(f"x {KEY} y", secrets=[KEY]) == "x *** y"
    redaction.register_secret(KEY)
    assert redact(f"x {KEY} y") == "x *** y"
    redaction.register_secret("EMPTY")  # a placeholder is no secret
    assert redact("EMPTY") == "EMPTY"


def test_a_prefix_left_by_an_earlier_cut_is_redacted(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    for length in range(4, len(KEY)):
        assert not leaked_prefix(redact(f"older message {KEY[:length]}...")), length
        assert not leaked_prefix(redact(f"older message {KEY[:length]}")), length


def test_secret_names():
    for name in ("api_key", "OPENAI_API_KEY", "x-api-key", "access_token", "clientSecret", "X-Amz-Signature",
                 "password", "HF_TOKEN", "key", "sig", "Authorization"):
        assert is_secret_name(name), name
    for name in ("api_key_env", "max_tokens", "tokenizer", "KeyError", "model", "base_url", "keyboard"):
        assert not is_secret_name(name), name


def test_scrub_value_reaches_nested_strings_and_secret_names():
    value = {"base_url": "http://u:pw@h/v1?api-key=k", "token": "abc", "max_tokens": 5, "api_key_env": "OPENAI_API_KEY",
             "nested": ["--token", "abc", "api_key=xy", "--api-key-env", "FOO", {"password": "p"}], "n": None}
    assert scrub_value(value) == {
        "base_url": "http://***@h/v1?api-key=***", "token": "***", "max_tokens": 5, "api_key_env": "OPENAI_API_KEY",
        "nested": ["--token", "***", "api_key=***", "--api-key-env", "FOO", {"password": "***"}], "n": None}
    assert credential_paths(value) == ["base_url", "token", "nested[1]", "nested[2]", "nested[5]"]
    assert credential_paths(scrub_value(value)) == []
    assert scrub_value(("a", 1)) == ("a", 1)


# ----------------------------------------------------------------------------- every cut, every offset


def _clippers():
    from dfabench.answers import describe_exception
    from dfabench.judge import _clip
    from dfabench.judge.call import _scrub
    return {
        "redact_clip(300)": (lambda text: redact_clip(text, 300), 300, 0),
        "redact_clip(40, one_line)": (lambda text: redact_clip(text, 40, one_line=True), 40, 0),
        "answers.describe_exception": (lambda text: describe_exception(RuntimeError(text)), 500, 0),
        "judge.call._scrub": (_scrub, 300, 0),
        "judge._clip": (_clip, 120, 0),
    }


@pytest.mark.parametrize("name", list(_clippers()))
@pytest.mark.parametrize("key", [KEY, "sk-proj-" + "Ab3" * 20, "hf_" + "x7Y" * 12])
def test_no_prefix_of_a_key_survives_any_cut(name, key, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    clip, limit, _ = _clippers()[name]
    for offset in range(max(0, limit - len(key) - 3), limit + 3):
        text = "." * offset + key + " and the rest of the message"
        out = clip(text)
        assert not leaked_prefix(out, key), (name, offset, out[-80:])


def test_random_text_around_the_key_and_random_cuts_never_leave_a_prefix(monkeypatch):
    import random
    import string

    monkeypatch.setenv(KEY_ENV, KEY)
    rng = random.Random(8)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " \n\t"
    for _ in range(2000):
        limit = rng.randint(4, 400)
        before = "".join(rng.choices(alphabet, k=rng.randint(0, limit + 40)))
        after = "".join(rng.choices(alphabet, k=rng.randint(0, 60)))
        text = before + KEY + after
        out = redact_clip(text, limit, one_line=rng.random() < 0.5)
        assert not leaked_prefix(out), (limit, text)
        assert redact(out) == out  # redacting again changes nothing


def test_model_creation_errors_are_redacted_before_the_cut(monkeypatch):
    from dfabench.errors import DfabenchError
    from dfabench.plugins import ModelEntry

    monkeypatch.setenv(KEY_ENV, KEY)

    def failing(pad: int):
        raise ValueError("." * pad + KEY + " is not accepted")

    entry = ModelEntry("failing", failing)
    for pad in range(500 - len(KEY) - 3, 503):
        with pytest.raises(DfabenchError) as info:
            entry.create(pad=pad)
        assert not leaked_prefix(str(info.value)), pad


def test_judge_endpoint_never_carries_credentials():
    from dfabench.judge import public_endpoint

    assert public_endpoint("https://user:pw@host:8443/v1/?api-key=abc#x") == "https://host:8443/v1"


# ----------------------------------------------------------------------------- through `dfabench run`

LEAKY_PLUGIN = '''
"""A test model that puts its secret into errors (raised, or as Response.error)."""

import os

from dfabench import hookimpl
from dfabench.models import ConstantModel, Response
from dfabench.redact import register_secret


class Leaky(ConstantModel):
    def __init__(self, secret_env="DFAB_LEAK_TOKEN", pad=0, mode="ok", fail_create=False, base_url=None,
                 register=False, **kwargs):
        super().__init__(**kwargs)
        self.secret = os.environ[secret_env]
        if register:
            register_secret(self.secret)
        self.pad, self.mode = int(pad), mode
        if fail_create:
            raise ValueError("." * self.pad + self.secret + " is refused")

    def generate(self, requests):
        text = "." * self.pad + self.secret + " and the rest of the message"
        if self.mode == "raise":
            raise RuntimeError(text)
        if self.mode == "error":
            return [Response(error=text) for _ in requests]
        answers = super().generate(requests)
        if self.mode == "half":  # every other sample fails
            answers = [Response(error=text) if int(r.sample_id[-1]) % 2 else a for r, a in zip(requests, answers)]
        return answers


@hookimpl
def dfabench_register_models(register):
    register("leaky", "dfabench_leaky:Leaky", description="leaks its secret into errors")
'''


@pytest.fixture
def leaky(tmp_path, monkeypatch, capsys):
    """Run the CLI in-process with the leaky plugin loaded; returns (exit code, stdout, stderr)."""
    from dfabench.cli import main
    from dfabench.plugins import reset_manager

    folder = tmp_path / "leaky-plugin"
    folder.mkdir()
    (folder / "dfabench_leaky.py").write_text(textwrap.dedent(LEAKY_PLUGIN))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_leaky")
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.delitem(sys.modules, "dfabench_leaky", raising=False)
    reset_manager(None)

    def run(*argv: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["dfabench", *argv])  # what run.json records as the command
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    reset_manager(None)


def _files_hold(folder: Path, needle: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


@pytest.mark.parametrize("mode", ["raise", "error"])
def test_model_errors_in_the_per_sample_log_hold_no_part_of_the_key(leaky, tiny_bench, tmp_path, mode):
    out = tmp_path / f"run-{mode}"
    code, stdout, stderr = leaky("run", "--model", "leaky", "--model-arg", f"mode={mode}", "--model-arg", "pad=480",
                                 "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(out), "--no-progress")
    assert code == 1  # every sample failed
    samples = [json.loads(line) for line in (out / "samples-DF-D.jsonl").read_text().splitlines()]
    assert samples and all(s["error"] and "***" in s["error"] for s in samples)
    assert not _files_hold(out, KEY[:4]) and not leaked_prefix(stdout + stderr)


def test_a_secret_the_plugin_registers_is_redacted_under_any_variable_name(leaky, tiny_bench, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("DFAB_LEAK_MATERIAL", KEY)  # a name that does not look secret
    out = tmp_path / "run"
    leaky("run", "--model", "leaky", "--model-arg", "secret_env=DFAB_LEAK_MATERIAL", "--model-arg", "register=true",
          "--model-arg", "mode=raise", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(out),
          "--no-progress")
    assert (out / "samples-DF-D.jsonl").exists() and not _files_hold(out, KEY[:4])


def test_an_error_creating_the_model_is_printed_without_the_key(leaky, tiny_bench, tmp_path):
    for pad in (0, 480, 500 - len(KEY) // 2):
        code, stdout, stderr = leaky("run", "--model", "leaky", "--model-arg", "fail_create=true",
                                     "--model-arg", f"pad={pad}", "--tasks", "DF-D", "--bench", str(tiny_bench),
                                     "--out", str(tmp_path / "never"), "--no-progress")
        assert code == 2 and "could not be created" in stderr
        assert not leaked_prefix(stdout + stderr), pad


def test_usage_errors_do_not_echo_credentials(capsys):
    from dfabench.cli import main

    with pytest.raises(SystemExit):
        main(["models", "http://user:hunter2pass@host/v1"])
    err = capsys.readouterr().err
    assert "unrecognized arguments" in err and "hunter2pass" not in err and "http://***@host/v1" in err


URL = "http://user:hunter2pass@host:8000/v1?api-key=abc123xyz&api-version=2024"


def test_credentials_in_urls_never_reach_run_json_and_do_not_change_the_fingerprint(leaky, tiny_bench, tmp_path):
    from dfabench.verify import verify

    out = tmp_path / "run"
    common = ["--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(out), "--no-progress"]
    code, stdout, stderr = leaky("run", "--model", "leaky", "--model-arg", f"base_url={URL}", *common)
    assert code == 0, stderr
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["args"]["base_url"] == "http://***@host:8000/v1?api-key=***&api-version=2024"
    assert f"base_url={record['model']['args']['base_url']}" in record["command"]
    for needle in ("hunter2pass", "abc123xyz"):
        assert not _files_hold(out, needle) and needle not in stdout + stderr
    assert verify(out).ok
    # only the credential changes: the same model (fingerprint), so every answer comes from the cache
    code, _, stderr = leaky("run", "--model", "leaky", "--model-arg", f"base_url={URL.replace('hunter2', 'other')}",
                            *common)
    assert code == 0, stderr
    again = json.loads((out / "run.json").read_text())
    assert again["model"]["fingerprint"] == record["model"]["fingerprint"]
    samples = [json.loads(line) for line in (out / "samples-DF-D.jsonl").read_text().splitlines()]
    assert samples and all(s["cached"] for s in samples)
    # the endpoint itself is part of the identity: another host is another model
    code, _, stderr = leaky("run", "--model", "leaky", "--model-arg", f"base_url={URL.replace('host:', 'elsewhere:')}",
                            "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(tmp_path / "other"),
                            "--no-progress")
    assert code == 0, stderr
    other = json.loads((tmp_path / "other" / "run.json").read_text())
    assert other["model"]["fingerprint"] != record["model"]["fingerprint"]


# ----------------------------------------------------------------------------- leaderboard submit


def test_submit_refuses_a_run_an_older_version_wrote_with_credentials(leaky, tiny_bench, tmp_path, monkeypatch):
    import dfabench.answers as answers
    import dfabench.executors.batch as batch
    import dfabench.records.identity as identity
    import dfabench.runner as runner

    out = tmp_path / "old-run"
    with monkeypatch.context() as old:  # what an older dfabench wrote: no scrubbing, error text cut unredacted
        old.setattr(runner, "scrub_value", lambda value, secrets=(): value)
        old.setattr(identity, "scrub_value", lambda value, secrets=(): value)
        old.setattr(batch, "redact", lambda text, secrets=(): text)
        old.setattr(answers, "redact_clip", lambda text, limit, secrets=(), one_line=False: text[:limit] + "...")
        code, _, stderr = leaky("run", "--model", "leaky", "--model-arg", f"base_url={URL}", "--tasks", "DF-D",
                                "--bench", str(tiny_bench), "--out", str(out), "--no-progress")
    assert code == 0, stderr
    assert _files_hold(out, "hunter2pass")  # the premise: the old record holds the credential
    code, stdout, stderr = leaky("leaderboard", "submit", str(out), "--entries", str(tmp_path / "entries"))
    assert code == 2 and "run.json model.args.base_url" in stderr and "credential" in stderr
    assert "hunter2pass" not in stdout + stderr and not (tmp_path / "entries").exists()


def test_submit_refuses_per_sample_errors_holding_a_key(leaky, tiny_bench, tmp_path, monkeypatch):
    import dfabench.executors.batch as batch

    out = tmp_path / "old-run"
    with monkeypatch.context() as old:
        old.setattr(batch, "redact", lambda text, secrets=(): text)
        code, _, stderr = leaky("run", "--model", "leaky", "--model-arg", "mode=half", "--tasks", "DF-D",
                                "--bench", str(tiny_bench), "--out", str(out), "--no-progress")
    assert code == 0, stderr
    assert _files_hold(out, KEY)  # the premise
    code, stdout, stderr = leaky("leaderboard", "submit", str(out), "--entries", str(tmp_path / "entries"))
    assert code == 2 and "samples-DF-D.jsonl line 2" in stderr, stderr
    assert not leaked_prefix(stdout + stderr) and not (tmp_path / "entries").exists()


def test_submit_scrubs_a_command_line_that_holds_a_credential(leaky, tiny_bench, tmp_path):
    out = tmp_path / "run"
    code, _, stderr = leaky("run", "--model", "leaky", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(out),
                            "--no-progress")
    assert code == 0, stderr
    path = out / "run.json"
    record = json.loads(path.read_text())
    record["command"] = [*record["command"], "--model-arg", f"base_url={URL}", "--token", "abcdef0123"]
    path.write_text(json.dumps(record, indent=2) + "\n")  # the command line is covered by no hash
    code, _, stderr = leaky("leaderboard", "submit", str(out), "--entries", str(tmp_path / "entries"),
                            "--name", "leaky")
    assert code == 0, stderr
    entry = tmp_path / "entries" / "leaky"
    submitted = json.loads((entry / "run.json").read_text())
    assert submitted["command"][-3:] == [f"base_url={redact(URL)}", "--token", "***"]
    assert not _files_hold(entry, "hunter2pass") and not _files_hold(entry, "abcdef0123")
    assert {k: v for k, v in submitted.items() if k != "command"} == {
        k: v for k, v in record.items() if k != "command"}
