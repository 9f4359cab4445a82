"""Prompt variants (issue 11, part 4): paraphrases of a task's question, each run as its own task ``TASK@NAME``,
and the spread of the numbers across them."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from dfabench.errors import DfabenchError, InputError
from dfabench.tasks import TaskSpec, expand_variants, split_variant

#: the fingerprints of the committed leaderboard entries' specs (DF-D version 2: frame + video level; DF-C version 1):
#: listing variants must not change them
DF_D_FINGERPRINT = "f946ed0765e58f4f5faf9084320b32f877edcae4efa0bf5427adcba91164974f"
DF_C_FINGERPRINT = "c8fc6ee6070545de26a53269bac09e1812bd4f7f5eae7c2e793be0ae662ea1c9"


@pytest.fixture
def vcli(cli, monkeypatch):
    """The conftest's ``cli`` with the phrasing model (tests/dfabench_testvariants.py) loaded too."""
    from dfabench.plugins import reset_manager

    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels,dfabench_testvariants")
    reset_manager(None)
    return cli


def _spec(name: str) -> TaskSpec:
    from dfabench.plugins import get_task

    return get_task(name)


def _run(vcli, bench: Path, out: Path, *args: str, model: str = "phrasing", tasks: str = "DF-D,DF-C"):
    code, stdout, err = vcli("run", "--model", model, "--tasks", tasks, "--bench", str(bench), "--out", str(out),
                             "--no-progress", "--n-boot", "50", *args)
    assert code == 0, err
    return json.loads((out / "run.json").read_text()), stdout


# --------------------------------------------------------------------------- the specs


def test_default_fingerprints_do_not_change_and_each_variant_has_its_own():
    dfd, dfc = _spec("DF-D"), _spec("DF-C")
    assert (dfd.fingerprint, dfc.fingerprint) == (DF_D_FINGERPRINT, DF_C_FINGERPRINT)
    assert "variants" not in dfd.canonical() and "variant" not in dfd.canonical()
    assert dfd.variant_names == ("default", "real-or-fake", "lettered")
    assert len(dfc.variant_names) >= 3 and "lettered" in dfc.variant_names
    assert dfd.with_variant("default") is dfd
    prints = {dfd.with_variant(n).fingerprint for n in dfd.variant_names}
    assert len(prints) == 3
    lettered = dfd.with_variant("lettered")
    assert lettered.id == "DF-D@lettered" and lettered.base_id == "DF-D" and lettered.variant == "lettered"
    assert "A. yes" in lettered.prompt and lettered.choices == ("A", "B") and lettered.fake_choice == "A"
    assert dict(lettered.parser_options) == {"A": "fake", "B": "real"}
    # a variant does not inherit the base's answer options: they belong to the base's phrasing
    assert dfd.with_variant("real-or-fake").choices == ("fake", "real")
    # what run.json stores rebuilds the same spec (re-scoring and verify use it)
    again = TaskSpec.from_dict(lettered.canonical())
    assert again.fingerprint == lettered.fingerprint and again.canonical()["prompt"] == lettered.prompt
    assert dict(dfc.with_variant("lettered").parser_options) == {"A": "FS", "B": "FR", "C": "FE", "D": "EFS"}
    assert split_variant("DF-D@lettered") == ("DF-D", "lettered") and split_variant("DF-D") == ("DF-D", "default")


def test_expand_variants():
    dfd, ad = _spec("DF-D"), _spec("AD")
    assert expand_variants([dfd, ad], None) == [dfd, ad]
    assert [t.id for t in expand_variants([dfd, ad], "all")] == ["DF-D", "DF-D@real-or-fake", "DF-D@lettered", "AD"]
    assert [t.id for t in expand_variants([dfd], "lettered,default")] == ["DF-D@lettered", "DF-D"]
    with pytest.raises(DfabenchError, match="task AD has no prompt variant 'lettered'"):
        expand_variants([dfd, ad], "lettered")


def test_lettered_answers_are_read_through_the_spec_s_options():
    from dfabench.runner import task_parser

    read = task_parser(_spec("DF-D").with_variant("lettered"))
    assert [read(a) for a in ("A", "(B)", "Answer: A", "B. no", "**A**", "yes", "I am not sure.")] == [
        "fake", "real", "fake", "real", "fake", "fake", None]
    read = task_parser(_spec("DF-C").with_variant("lettered"))
    assert [read(a) for a in ("A", "D", "The answer is B.", "C. face editing (FE)")] == ["FS", "EFS", "FR", "FE"]
    # without options a bare letter is no answer
    assert task_parser(_spec("DF-D"))("B") is None


_BASE = {"id": "T", "version": "1", "requires": ["generate"], "samples": "all", "reference": "label",
         "prompt": "Has this face been forged?", "parser": "detection", "metrics": ["detection"]}


@pytest.mark.parametrize("change, problem", [
    ({"variants": {"x": {"prompt": "Q?", "colour": 1}}}, "'variants.x': unknown field(s) ['colour']"),
    ({"variants": {"x": {"choices": ["a", "b"]}}}, "'variants.x.prompt' must be the question's text"),
    ({"variants": {"default": {"prompt": "Q?"}}}, "'variants': 'default' is not a variant name"),
    ({"variants": {"All": {"prompt": "Q?"}}}, "'variants': 'All' is not a variant name"),
    ({"variants": ["Q?"]}, "'variants' must be a mapping"),
    ({"variants": {"x": "Q?"}}, "'variants.x' must be a mapping"),
    ({"variants": {"x": {"prompt": "Q?", "choices": ["A"], "fake_choice": "A"}}},
     "variants.x: 'choices' must list two answers"),
    ({"variants": {"x": {"prompt": "Q?", "parser_options": {"AB": "fake"}}}},
     "variants.x: 'parser_options': option keys must be distinct single letters"),
    ({"variants": {"x": {"prompt": "Q?", "generation": {"beams": 4}}}}, "variants.x: bad 'generation' settings"),
    ({"parser_options": {"A": ""}}, "'parser_options.A' must be the answer the letter stands for"),
    ({"id": "T@x"}, "'id' must not contain '@'"),
    ({"reference": "conversation", "variants": {"x": {"prompt": "Q?"}}}, "a conversation task asks"),
])
def test_a_bad_variant_is_one_line_naming_the_file_and_the_field(tmp_path, change, problem):
    import yaml

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({**_BASE, **change}))
    with pytest.raises(InputError) as caught:
        TaskSpec.load(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and problem in message and "\n" not in message


def test_a_stored_variant_spec_must_carry_its_name_in_its_id():
    spec = _spec("DF-D").with_variant("lettered").canonical()
    with pytest.raises(InputError, match="must have the id TASK@lettered"):
        TaskSpec.from_dict({**spec, "id": "DF-D"})


def test_a_parser_without_options_is_refused_for_a_lettered_spec(monkeypatch):
    from dfabench.plugins import get_manager
    from dfabench.runner import task_parser

    spec = TaskSpec.from_dict({**_BASE, "parser": "text", "parser_options": {"A": "fake"}})
    entry = get_manager().parsers.get("text")
    monkeypatch.setattr(entry, "load", lambda: (lambda text: text))
    with pytest.raises(InputError, match="takes no options"):
        task_parser(spec)


# --------------------------------------------------------------------------- runs


def test_a_phrasing_sensitive_model_shows_a_spread(vcli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    record, stdout = _run(vcli, tiny_bench, out, "--prompt-variant", "all")
    assert list(record["tasks"]) == ["DF-D", "DF-D@real-or-fake", "DF-D@lettered", "DF-C", "DF-C@open",
                                     "DF-C@lettered"]
    for key in record["tasks"]:
        assert (out / f"samples-{key}.jsonl").exists()
    info = record["tasks"]["DF-D@lettered"]
    assert (info["variant"], info["base"]) == ("lettered", "DF-D") and "A. yes" in info["spec"]["prompt"]
    assert "variant" not in record["tasks"]["DF-D"]  # the default keeps the record it always had
    # 8 real, 12 fake: "Yes." (all fake) -> 0.6, "B" / "real" (all real) -> 0.4
    acc = {k: record["metrics"][k]["accuracy"]["value"] for k in ("DF-D", "DF-D@lettered", "DF-D@real-or-fake")}
    assert acc == {"DF-D": 0.6, "DF-D@lettered": 0.4, "DF-D@real-or-fake": 0.4}
    summary = record["variants"]["DF-D"]
    assert summary["tasks"] == {"default": "DF-D", "lettered": "DF-D@lettered", "real-or-fake": "DF-D@real-or-fake"}
    spread = summary["spread"]["accuracy"]
    assert spread["values"] == {"default": 0.6, "lettered": 0.4, "real-or-fake": 0.4}
    assert (spread["min"], spread["max"]) == (0.4, 0.6) and spread["range"] == pytest.approx(0.2, abs=1e-12)
    mean = (0.6 + 0.4 + 0.4) / 3
    assert spread["std"] == pytest.approx(math.sqrt(((0.6 - mean) ** 2 + 2 * (0.4 - mean) ** 2) / 3), abs=1e-12)
    assert summary["spread"]["balanced_accuracy"]["range"] == 0  # every variant answers one label only
    # DF-C: the lettered answer "C" is face editing (3 of 12); the open question is never answered (unparsed)
    dfc = record["variants"]["DF-C"]["spread"]
    assert dfc["accuracy"]["values"] == {"default": 0.25, "lettered": 0.25, "open": 0.0}
    assert dfc["unparsed_rate"]["values"] == {"default": 0.0, "lettered": 0.0, "open": 1.0}
    lettered = [json.loads(line) for line in (out / "samples-DF-C@lettered.jsonl").read_text().splitlines()]
    assert {r["parsed"] for r in lettered} == {"FE"} and {r["response"] for r in lettered} == {"C"}
    # the printed table: one block per variant, then the spread of each headline metric
    assert "DF-D@lettered" in stdout and "spread across prompt variants:" in stdout
    block = stdout.split("spread across prompt variants:")[1]
    assert "default 0.6000 / lettered 0.4000 / real-or-fake 0.4000" in block
    assert any(line.split()[:2] == ["DF-D", "accuracy"] and "0.2000" in line for line in block.splitlines())
    # the reviewer's check: the variants' prompts and the spread are re-derived
    code, report, _ = vcli("verify", str(out), "--bench", str(tiny_bench))
    assert code == 0, report
    assert "DF-D@lettered: every answer was asked the variant's question" in report
    assert "spread across prompt variants re-derived exactly (DF-D, DF-C)" in report
    # re-scoring gives the same record
    assert vcli("score", str(out))[0] == 0
    assert json.loads((out / "run.json").read_text())["variants"] == record["variants"]


def test_a_phrasing_insensitive_model_shows_no_spread(vcli, tiny_bench, tmp_path):
    record, _ = _run(vcli, tiny_bench, tmp_path / "run", "--prompt-variant", "all", model="constant")
    for base in ("DF-D", "DF-C"):
        spread = record["variants"][base]["spread"]
        assert len(record["variants"][base]["tasks"]) == 3 and "accuracy" in spread
        for metric, figures in spread.items():
            if figures["min"] is None:  # e.g. AUC: the constant model gives no scores in any variant
                assert "undefined" in figures["reason"], metric
                continue
            assert figures["range"] == 0 and figures["std"] == 0, metric


def test_each_variant_keys_its_own_cache_entries_and_a_rerun_asks_nothing(vcli, tiny_bench, tmp_path):
    out, calls = tmp_path / "run", tmp_path / "calls.txt"
    _run(vcli, tiny_bench, out, "--prompt-variant", "all", "--model-arg", f"calls={calls}")
    with sqlite3.connect(out / "cache.sqlite") as db:
        rows = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert rows == 3 * 20 + 3 * 12  # one entry per variant and sample: the variants never share an answer
    asked = calls.read_text()
    record, _ = _run(vcli, tiny_bench, out, "--prompt-variant", "all", "--model-arg", f"calls={calls}")
    assert calls.read_text() == asked  # every answer came from the cache
    assert record["variants"]["DF-D"]["spread"]["accuracy"]["range"] == pytest.approx(0.2, abs=1e-12)


def test_one_variant_alone_and_beside_an_earlier_default(vcli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    record, stdout = _run(vcli, tiny_bench, out, "--prompt-variant", "lettered", tasks="DF-D")
    assert list(record["tasks"]) == ["DF-D@lettered"]
    assert record["variants"]["DF-D"]["reason"].startswith("fewer than two variants")
    assert "spread across prompt variants" not in stdout  # recorded, not printed: one variant has no spread
    record, _ = _run(vcli, tiny_bench, out, tasks="DF-D")  # the default into the same folder: both kept
    assert set(record["tasks"]) == {"DF-D", "DF-D@lettered"}
    assert record["variants"]["DF-D"]["spread"]["accuracy"]["values"] == {"default": 0.6, "lettered": 0.4}
    assert vcli("verify", str(out))[0] == 0


def test_an_unknown_variant_is_one_line_and_exit_2(vcli, tiny_bench, tmp_path):
    code, _, err = vcli("run", "--model", "phrasing", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out",
                        str(tmp_path / "run"), "--prompt-variant", "letterd")
    assert code == 2 and "no prompt variant 'letterd'" in err and "lettered" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_verify_catches_an_edited_spread_and_a_renamed_variant(vcli, tiny_bench, tmp_path):
    out = tmp_path / "run"
    record, _ = _run(vcli, tiny_bench, out, "--prompt-variant", "all", tasks="DF-D")
    edited = json.loads(json.dumps(record))
    edited["variants"]["DF-D"]["spread"]["accuracy"]["range"] = 0.0
    (out / "run.json").write_text(json.dumps(edited))
    code, report, _ = vcli("verify", str(out))
    assert code == 1 and "the spread across prompt variants of DF-D differs from the re-derivation" in report
    # the lettered variant's numbers passed off as the default's
    edited = json.loads(json.dumps(record))
    edited["tasks"]["DF-D"] = edited["tasks"]["DF-D@lettered"]
    (out / "run.json").write_text(json.dumps(edited))
    code, report, _ = vcli("verify", str(out))
    assert code == 1 and "DF-D: run.json keeps the spec of DF-D@lettered under it" in report


def test_shards_of_a_variant_run_merge_to_the_whole_run(vcli, tiny_bench, tmp_path):
    whole, _ = _run(vcli, tiny_bench, tmp_path / "whole", "--prompt-variant", "all")
    for k in (1, 2):
        _run(vcli, tiny_bench, tmp_path / f"s{k}", "--prompt-variant", "all", "--shard", f"{k}/2")
    code, _, err = vcli("merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "merged"))
    assert code == 0, err
    merged = json.loads((tmp_path / "merged" / "run.json").read_text())
    assert merged["variants"] == whole["variants"] and merged["metrics"] == whole["metrics"]
    assert vcli("verify", str(tmp_path / "merged"), "--bench", str(tiny_bench))[0] == 0


def test_the_leaderboard_ranks_each_variant_on_its_own(vcli, tiny_bench, tmp_path):
    from dfabench.leaderboard.entries import reference_fingerprints, task_layout

    entries = tmp_path / "entries"
    for model in ("phrasing", "constant"):
        _run(vcli, tiny_bench, tmp_path / model, "--prompt-variant", "all", model=model, tasks="DF-D")
        code, _, err = vcli("leaderboard", "submit", str(tmp_path / model), "--entries", str(entries), "--name", model)
        assert code == 0, err
    code, _, err = vcli("leaderboard", "build", "--entries", str(entries), "--out", str(tmp_path / "out"),
                        "--bench", str(tiny_bench), "--replicates", "50")
    assert code == 0, err
    board = (tmp_path / "out" / "README.md").read_text()
    sections = {part.split("\n", 1)[0].strip(): part for part in board.split("### ")[1:]}
    assert {"DF-D", "DF-D@lettered", "DF-D@real-or-fake"} <= set(sections)
    # each board ranks both entries under its own question, with the base task's columns
    for name in ("DF-D", "DF-D@lettered", "DF-D@real-or-fake"):
        assert "| phrasing |" in sections[name] and "| constant |" in sections[name]
        assert "balanced_accuracy | accuracy | auc" in sections[name]
    assert board.index("### DF-D\n") < board.index("### DF-D@lettered") < board.index("### DF-D@real-or-fake")
    records = [json.loads((entries / m / "run.json").read_text()) for m in ("phrasing", "constant")]
    reference = reference_fingerprints(records)
    assert reference["DF-D"] == DF_D_FINGERPRINT
    assert reference["DF-D@lettered"] == _spec("DF-D").with_variant("lettered").fingerprint
    assert [t for t, _ in task_layout(set(reference), records)] == ["DF-D", "DF-D@lettered", "DF-D@real-or-fake"]


def test_the_variants_field_is_outside_the_fingerprint_of_every_shipped_spec():
    import yaml

    from dfabench.tasks import builtin_task_files

    checked = 0
    for path in builtin_task_files():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not data.get("variants"):
            continue
        without = dict(data)
        del without["variants"]
        assert TaskSpec.from_dict(without).fingerprint == TaskSpec.from_dict(data).fingerprint, path.name
        checked += 1
    assert checked >= 2  # DF-D and DF-C list variants


def test_dfabench_tasks_lists_the_variants_with_their_fingerprints(vcli):
    code, out, _ = vcli("tasks")
    assert code == 0
    listed = out.split("prompt variants", 1)[1]
    dfd = _spec("DF-D")
    for name in dfd.variant_names[1:]:
        variant = dfd.with_variant(name)
        assert f"{variant.id}  " in listed and variant.fingerprint[:12] in listed
    assert "DF-D@lettered" in listed and "A. yes / B. no" in listed


def test_a_score_model_is_asked_no_question_so_its_variants_are_na(vcli, tiny_bench, tmp_path):
    record, stdout = _run(vcli, tiny_bench, tmp_path / "run", "--prompt-variant", "all", "--model-arg", "mode=score",
                          model="random")
    assert record["tasks"]["DF-D"]["status"] == "done"
    for name in ("DF-D@lettered", "DF-D@real-or-fake"):
        assert record["tasks"][name]["status"].startswith("n/a: a score model is asked no question")
        assert name not in record["samples"]
    assert "fewer than two variants" in record["variants"]["DF-D"]["reason"]
    assert "spread across prompt variants" not in stdout


def test_variant_names_are_case_insensitive_and_a_variant_is_not_expanded_again(vcli, tiny_bench, tmp_path):
    assert _spec("dfd@Lettered").id == "DF-D@lettered"
    assert [t.id for t in expand_variants([_spec("DF-D")], "LETTERED")] == ["DF-D@lettered"]
    with pytest.raises(DfabenchError, match="is itself a prompt variant"):
        expand_variants([_spec("DF-D@lettered")], "all")
    code, _, err = vcli("run", "--model", "constant", "--tasks", "DF-D@lettered", "--prompt-variant", "all",
                        "--bench", str(tiny_bench), "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 2 and "is itself a prompt variant" in err and not (tmp_path / "run").exists()
