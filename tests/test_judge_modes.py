"""The judge's output modes under malformed replies (the chat server's seeded injection,
:data:`dfabench.testing.chat_server.MALFORMED_KINDS`): every defect a mode lets through is a parse failure of the
strict parser (a single ```json fence excepted: allowed), never a score; what the mode prevents is judged."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest

from dfabench.judge import JudgeSettings, judge_run
from dfabench.store import RunFolder
from dfabench.testing.chat_server import MALFORMED_KINDS, ChatServer, judge_reply, malformed

_spec = importlib.util.spec_from_file_location("dfabench_test_judge_server_modes",
                                               Path(__file__).with_name("judge_server.py"))
js = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(js)


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "text"])
def test_each_defect_a_mode_lets_through_is_a_parse_failure(tmp_path, mode):
    folder = js.make_run(tmp_path / "run", [f"answer {i}: the eyes are blurred" for i in range(40)])
    with ChatServer(responder=judge_reply, model="judge-2026", malformed_rate=0.6, malformed_seed=3) as server:
        settings = JudgeSettings(model="judge-alias", base_url=server.base_url, api_key_env="DFABENCH_NO_KEY",
                                 timeout=5.0, max_retries=0, calibrate=False, output=mode)
        summary = judge_run(folder.path, settings, stream=io.StringIO(), rescore=False)
        injected = [r.extra["malformed"] for r in server.chat_requests if "malformed" in r.extra]
        counts = server.malformed_counts
    sent = [m["kind"] for m in injected if not m["prevented"]]
    assert counts == {"injected": len(injected), "sent": len(sent)} and len(injected) >= 10
    refused = [kind for kind in sent if kind != "fenced"]  # one ```json fence is allowed by the strict parser
    task = summary.tasks["AD"]
    assert task.failures == ({"unparseable": len(refused)} if refused else {})
    assert task.n_judged == 40 - len(refused)
    if mode == "json_schema":
        assert set(sent) <= {"truncated"}
    if mode == "json_object":
        assert {MALFORMED_KINDS[k] for k in sent} <= {"schema", "length"}
    failed = [r["judge"] for r in RunFolder(folder.path).read_samples("AD") if r["judge"]["score"] is None]
    assert all(j["failure"] == "unparseable" and j["criteria"] is None for j in failed)


def test_the_injection_is_seeded_by_the_request_not_its_arrival():
    body = {"messages": [{"role": "user", "content": "x"}]}
    text = json.dumps({"a": 3, "rationale": "r"})
    picks = []
    for _ in range(2):
        server = ChatServer(malformed_rate=1.0, malformed_seed=5)
        record = type("R", (), {"extra": {}})()
        picks.append((server._malform(body, text, record), record.extra["malformed"]))
    assert picks[0] == picks[1]
    for kind in MALFORMED_KINDS:
        assert malformed(text, kind) != text
    with pytest.raises(ValueError):
        ChatServer(malformed_rate=1.5)
