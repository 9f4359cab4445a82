"""Parts of dfabench-lmms that need no lmms-eval (they run in every environment)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from dfabench.api import DfabenchError

from dfabench_lmms.model import LmmsModel, parse_lmms_args, to_context, to_lmms_messages


def test_lmms_args_keep_lmms_evals_string_and_parse_it():
    assert parse_lmms_args("pretrained=/m,device_map=cpu") == ("pretrained=/m,device_map=cpu",
                                                               {"pretrained": "/m", "device_map": "cpu"})
    assert parse_lmms_args({"pretrained": "/m", "max_frames_num": 8}) == ("pretrained=/m,max_frames_num=8",
                                                                          {"pretrained": "/m", "max_frames_num": 8})
    assert parse_lmms_args(None) == ("", {})
    with pytest.raises(DfabenchError, match="key=value"):
        parse_lmms_args("pretrained")


def test_a_conversation_becomes_one_context_for_simple_classes():
    single = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Forged?"}]}]
    assert to_context(single) == "Forged?"
    turns = [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}, *single,
             {"role": "assistant", "content": [{"type": "text", "text": "Yes."}]},
             {"role": "user", "content": [{"type": "text", "text": "Why?"}]}]
    assert to_context(turns) == "Be brief.\nUSER: Forged?\nASSISTANT: Yes.\nUSER: Why?"


def test_messages_carry_the_image_object_for_chat_classes():
    image = object()
    messages = to_lmms_messages([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q"}]},
                                 {"role": "assistant", "content": "A"}], image)
    assert messages == [{"role": "user", "content": [{"type": "image", "url": image}, {"type": "text", "text": "Q"}]},
                        {"role": "assistant", "content": [{"type": "text", "text": "A"}]}]


def test_without_lmms_eval_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "lmms_eval", None)
    with pytest.raises(DfabenchError, match=r"pip install 'dfabench-lmms\[lmms\]'"):
        LmmsModel(lmms_model="llava_hf")


def test_listing_models_imports_nothing_heavy():
    code = ("import sys; from dfabench.plugins import get_manager; e = get_manager().models.get('lmms'); "
            "print(e.capabilities, e.distribution, 'lmms_eval' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "('generate',) dfabench-lmms False False"
