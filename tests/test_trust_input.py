"""Bad input that used to slip through (issue 8, item 6): each test fails on the code before the fix.

Run records and per-sample logs are validated against one schema (dfabench.records); images and
masks are scaled to 8 bits by one rule (dfabench.images); reference masks are never resized;
conversations need a question and an answer; nesting is bounded; plugin name clashes and capability
disagreements are refused; model answers that break the contract are counted failures.
"""

from __future__ import annotations

import json
import math
import types
from pathlib import Path

import numpy as np
import pytest
from benchmaker import make_benchmark
from PIL import Image

from dfabench import hookimpl
from dfabench.errors import DfabenchError, InputError
from dfabench.models import ConstantModel

DEEP = 100_000


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _edit_record(run: Path, change) -> None:
    path = run / "run.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


# ----------------------------------------------------------------------------- run records


def test_a_100000_deep_run_json_is_one_clear_line(cli, tmp_path):
    from dfabench.store import RunFolder

    folder = tmp_path / "deep"
    folder.mkdir()
    (folder / "run.json").write_text('{"schema_version": 1, "model": ' + _deep(DEEP) + "}")
    with pytest.raises(InputError, match=r"run\.json: JSON nested deeper than 64 levels \(line 1, column \d+\)"):
        RunFolder(folder).read_record()
    code, _, err = cli("verify", str(folder))
    assert code == 2 and "nested deeper than 64 levels" in err and "Traceback" not in err


def test_a_string_where_a_metric_number_belongs_is_refused_with_its_json_path(run_dir):
    from dfabench.store import RunFolder

    _edit_record(run_dir, lambda r: r["metrics"]["DF-D"]["accuracy"].__setitem__("value", "0.99"))
    with pytest.raises(InputError, match=r"\$\.metrics\.DF-D\.accuracy\.value: expected a number or null, "
                                         r"got a string \('0\.99'\)"):
        RunFolder(run_dir).read_record()


def test_a_list_where_a_map_belongs_is_refused(run_dir):
    from dfabench.store import RunFolder

    _edit_record(run_dir, lambda r: r.__setitem__("model", ["random"]))
    with pytest.raises(InputError, match=r"\$\.model: expected an object, got a list"):
        RunFolder(run_dir).read_record()
    _edit_record(run_dir, lambda r: (r.__setitem__("model", {"name": "random"}),
                                     r["counts"].__setitem__("DF-D", {"n": 20, "n_failed": "0", "n_unparsed": 0})))
    with pytest.raises(InputError, match=r"\$\.counts\.DF-D\.n_failed: expected an integer"):
        RunFolder(run_dir).read_record()


def test_a_samples_file_outside_the_run_folder_is_refused(run_dir):
    from dfabench.store import RunFolder

    _edit_record(run_dir, lambda r: r["samples"]["DF-D"].__setitem__("file", "../../etc/passwd"))
    with pytest.raises(InputError, match=r"\$\.samples\.DF-D\.file: '\.\./\.\./etc/passwd' does not match"):
        RunFolder(run_dir).read_record()


def test_unknown_additions_are_accepted(run_dir):
    from dfabench.store import RunFolder

    def add(record):
        record["provenance"] = {"submitted_by": "someone"}
        record["tasks"]["DF-D"]["selection"] = {"split": "test", "n": 20, "n_available": 20, "n_pool": 20,
                                                "excluded": {}, "ids_sha256": "0" * 64, "future": [1, 2]}
        record["samples"]["DF-D"]["masks"] = {"masks/a.png": "0" * 64}
        record["counts"]["DF-D"]["n_excluded"] = 0

    _edit_record(run_dir, add)
    assert RunFolder(run_dir).read_record()["provenance"] == {"submitted_by": "someone"}


def test_one_bogus_entry_is_excluded_with_its_reason_and_the_build_goes_on(cli, tiny_bench, tmp_path):
    from dfabench.leaderboard import build_leaderboard

    entries = tmp_path / "entries"
    for name in ("good", "bogus"):
        out = tmp_path / name
        assert cli("run", "--model", "random", "--tasks", "DF-D", "--bench", str(tiny_bench), "--out", str(out),
                   "--no-progress")[0] == 0
        assert cli("leaderboard", "submit", str(out), "--entries", str(entries), "--name", name)[0] == 0
    _edit_record(entries / "bogus", lambda r: r.__setitem__("model", ["random"]))
    result = build_leaderboard(entries, tmp_path / "board")
    assert any(x.startswith("bogus:") and "$.model: expected an object" in x for x in result.excluded)
    assert [r["entry"] for r in result.data["boards"][0]["tasks"]["DF-D"]["rows"]] == ["good"]


def test_per_sample_records_are_validated_where_scoring_reads_them(run_dir):
    from dfabench.store import RunFolder

    path = run_dir / "samples-DF-D.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record["score"] = "0.7"
    path.write_text("\n".join([lines[0], json.dumps(record), *lines[2:]]) + "\n")
    with pytest.raises(InputError, match=r"samples-DF-D\.jsonl: line 2: \$\.score: expected a number or null"):
        RunFolder(run_dir).read_samples("DF-D")
    path.write_text(lines[0] + "\n" + '{"id": "x", "metrics": ' + _deep(DEEP) + "}\n")
    with pytest.raises(InputError, match=r"line 2: JSON nested deeper than 64 levels"):
        RunFolder(run_dir).read_samples("DF-D")


def test_the_published_json_schemas_are_the_generated_ones():
    from dfabench.records import SCHEMA_DIR, SCHEMA_FILES, schema_text

    for kind, name in SCHEMA_FILES.items():
        committed = (SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert committed == schema_text(kind), f"{name} is stale: run `python -m dfabench.records`"


def test_the_sample_record_schema_accepts_real_logs_and_refuses_bad_types():
    from dfabench.records import SAMPLE_RECORD, json_schema, sample_record_problem

    lines = (Path(__file__).parent.parent / "leaderboard/entries/random-smoke/samples-DF-D.jsonl").read_text()
    records = [json.loads(line) for line in lines.splitlines()[:50]]
    assert all(sample_record_problem(r) is None and SAMPLE_RECORD.problem(r, "$") is None for r in records)
    bad = {**records[0], "unparsed": "no"}
    assert sample_record_problem(bad) == "$.unparsed: expected a boolean or null, got a string ('no')"
    assert sample_record_problem({**records[0], "judge": {"score": [1]}}).startswith("$.judge.score: expected")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema("sample-record")
    for record in records:
        jsonschema.validate(record, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# ----------------------------------------------------------------------------- images and masks


def test_a_16_bit_png_is_scaled_not_saturated(tmp_path):
    from dfabench.chat import load_image
    from dfabench.runner import decode_image

    values = np.array([[0, 257, 32896, 65535], [1000, 20000, 40000, 60000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    expected = np.rint(values / 257).astype(np.uint8)
    for decoded in (decode_image(str(tmp_path / "deep.png")), load_image(tmp_path / "deep.png")):
        assert decoded.mode == "RGB"
        assert (np.asarray(decoded)[..., 0] == expected).all()


def test_a_float_tiff_is_scaled_in_0_1_and_refused_outside(tmp_path):
    from dfabench.runner import ImageError, decode_image

    values = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    Image.fromarray(values).save(tmp_path / "float.tiff")
    decoded = np.asarray(decode_image(str(tmp_path / "float.tiff")))[..., 0]
    assert (decoded == np.rint(values * 255).astype(np.uint8)).all()
    Image.fromarray(values * 1000).save(tmp_path / "hdr.tiff")
    with pytest.raises(ImageError, match=r"float image with samples in \[0, 1000\]: only \[0, 1\]"):
        decode_image(str(tmp_path / "hdr.tiff"))


def test_a_16_bit_mask_is_thresholded_on_its_scale(tmp_path):
    from dfabench.metrics.localization import load_mask

    Image.fromarray(np.array([[0, 30000, 40000, 65535]], dtype=np.uint16)).save(tmp_path / "mask.png")
    assert load_mask(str(tmp_path / "mask.png")).tolist() == [[False, False, True, True]]


def test_a_reference_mask_of_the_wrong_size_is_refused_before_any_model_call(cli, tmp_path):
    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=1, with_masks=True)
    manifest = [json.loads(line) for line in (bench / "manifest.jsonl").read_text().splitlines()]
    target = next(r for r in manifest if r.get("mask"))
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(bench / target["mask"])  # the images are 16x16
    log = tmp_path / "calls.log"
    code, _, err = cli("run", "--model", "slow", "--model-arg", f"log={log}", "--tasks", "FL", "--bench", str(bench),
                       "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 2
    assert (f"manifest.jsonl: id '{target['id']}': mask '{target['mask']}': the mask is 8x8 but its image is "
            "16x16") in err
    assert not log.exists()  # refused before the model was asked anything


@pytest.fixture
def pillow_limit():
    saved = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = saved


def test_our_pixel_limit_is_the_one_that_applies_above_and_below_pillows(tmp_path, monkeypatch, pillow_limit):
    from dfabench.runner import ImageError, decode_image

    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(tmp_path / "big.png")  # 4096 pixels
    # above: Pillow's own limit (here 1000, so it would refuse above 2000 pixels) does not refuse what we allow
    Image.MAX_IMAGE_PIXELS = 1000
    monkeypatch.setenv("DFABENCH_MAX_IMAGE_PIXELS", "10000")
    assert decode_image(str(tmp_path / "big.png")).size == (64, 64)
    assert Image.MAX_IMAGE_PIXELS == 10000
    # below: Pillow's (larger) limit does not let through what we refuse
    Image.MAX_IMAGE_PIXELS = 89_478_485
    monkeypatch.setenv("DFABENCH_MAX_IMAGE_PIXELS", "4000")
    with pytest.raises(ImageError, match=r"64x64 pixels > 4000"):
        decode_image(str(tmp_path / "big.png"))
    assert Image.MAX_IMAGE_PIXELS == 4000


# ----------------------------------------------------------------------------- manifests


def _manifest(tmp_path: Path, records: list[dict]) -> Path:
    bench = tmp_path / "bench"
    (bench / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(bench / "images/a.png")
    (bench / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" if isinstance(r, dict) else r + "\n"
                                                  for r in records))
    return bench


def test_a_conversation_with_only_human_turns_is_refused_naming_the_record(tmp_path):
    from dfabench.data.manifest import load_benchmark

    turns = [{"from": "human", "value": "<image>\nIs it fake?"}, {"from": "human", "value": "Why?"}]
    bench = _manifest(tmp_path, [{"id": "a", "image": "images/a.png", "label": "fake", "category": "FS",
                                  "conversations": turns}])
    with pytest.raises(InputError, match=r"manifest\.jsonl: line 1 \(id 'a'\): field 'conversations' needs a human "
                                         r"turn followed by a gpt turn .* only human turns"):
        load_benchmark(bench)
    answer_first = [{"from": "gpt", "value": "It is fake."}, {"from": "human", "value": "Why?"}]
    bench = _manifest(tmp_path / "2", [{"id": "b", "image": "images/a.png", "label": "real",
                                        "conversations": answer_first}])
    with pytest.raises(InputError, match=r"id 'b'.*no gpt turn after a human turn"):
        load_benchmark(bench)


def test_deeply_nested_meta_is_one_clear_line_never_a_recursion_error(tmp_path):
    from dfabench.data.manifest import load_benchmark

    line = '{"id": "a", "image": "images/a.png", "label": "real", "meta": ' + _deep(DEEP) + "}"
    with pytest.raises(InputError, match=r"line 1: JSON nested deeper than 64 levels"):
        load_benchmark(_manifest(tmp_path, [line]))
    # deep enough to trouble whatever reads it next, shallow enough for json.loads
    line = '{"id": "a", "image": "images/a.png", "label": "real", "meta": ' + _deep(300) + "}"
    with pytest.raises(InputError, match=r"nested deeper than 64 levels"):
        load_benchmark(_manifest(tmp_path / "2", [line]))


def test_a_list_where_a_label_belongs_is_one_clear_line(tmp_path):
    from dfabench.data.manifest import load_benchmark

    bench = _manifest(tmp_path, [{"id": "a", "image": "images/a.png", "label": ["fake"]}])
    with pytest.raises(InputError, match=r"line 1 \(id 'a'\): unknown label \['fake'\]"):
        load_benchmark(bench)


# ----------------------------------------------------------------------------- plugins


def _plugin(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    return module


def _models(*registrations):
    def register_models(register):
        for args, kwargs in registrations:
            register(*args, **kwargs)
    return register_models


def test_two_plugins_registering_one_name_are_both_named_and_the_name_is_refused():
    from dfabench.plugins import NameClashError, PluginManager

    first = _plugin("plugin_a", dfabench_register_models=_models(
        (("dup", "dfabench.models:ConstantModel"), {"aliases": ("shared",)}),
        (("only-a", "dfabench.models:ConstantModel"), {})))
    second = _plugin("plugin_b", dfabench_register_models=_models((("DUP", "dfabench.models:RandomModel"),
                                                                   {"capabilities": ("generate", "score")})))
    third = _plugin("plugin_c", dfabench_register_models=_models((("shared", "dfabench.models:ConstantModel"), {})))
    manager = PluginManager(load_entry_points=False, extra_plugins=[first, second, third])
    with pytest.raises(NameClashError, match=r"model 'dup' is registered by more than one plugin: .*plugin_a.*"
                                             r"plugin_b"):
        manager.models.get("dup")
    with pytest.raises(NameClashError, match=r"'shared'.*plugin_a.* as an alias of 'dup'.*plugin_c"):
        manager.models.get("shared")
    assert "dup" not in manager.models and "shared" not in manager.models
    assert manager.models.get("only-a").plugin == "plugin_a"  # the rest of the plugin still works
    assert set(manager.models.clashes()) == {"dup", "shared"}
    assert {p.name for p in manager.clashing()} == {"plugin_a", "plugin_b", "plugin_c"}


def test_a_plugin_clashing_with_a_builtin_name_refuses_it_too():
    from dfabench.plugins import NameClashError, PluginManager

    plugin = _plugin("impostor", dfabench_register_models=_models((("constant", "dfabench.models:ConstantModel"),
                                                                   {})))
    manager = PluginManager(load_entry_points=False, extra_plugins=[plugin])
    with pytest.raises(NameClashError, match=r"dfabench 0\.1\.0 \(plugin dfabench\); impostor"):
        manager.models.get("constant")


def test_a_task_or_metric_registered_twice_is_refused_the_same_way():
    from dfabench.plugins import NameClashError, PluginManager, get_task

    spec = {**get_task("DF-D").canonical(), "prompt": "Is this face forged? (another plugin's DF-D)"}
    plugin = _plugin("shadowing", dfabench_register_tasks=lambda register: register(spec),
                     dfabench_register_metrics=lambda register: register("text", "dfabench.metrics.text:text_metrics"))
    manager = PluginManager(load_entry_points=False, extra_plugins=[plugin])
    with pytest.raises(NameClashError, match=r"task 'DF-D' is registered by more than one plugin: .*shadowing"):
        manager.tasks.get("DF-D")
    with pytest.raises(NameClashError, match=r"metric 'text' is registered by more than one plugin"):
        manager.metrics.get("text")
    assert manager.tasks.get("DF-C").id == "DF-C"


CLASH_PLUGIN = """
from dfabench import hookimpl

@hookimpl
def dfabench_register_models(register):
    register("twin", "dfabench.models:ConstantModel", description="{which}")
"""


def test_the_cli_shows_the_clash_and_run_exits_2_naming_both(cli, tmp_path, monkeypatch, tiny_bench):
    for which in ("twin_a", "twin_b"):
        (tmp_path / f"dfabench_{which}.py").write_text(CLASH_PLUGIN.format(which=which))
    (tmp_path / "dfabench_brokenx.py").write_text("raise ImportError('brokenx cannot import its weights library')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels,dfabench_twin_a,dfabench_twin_b,dfabench_brokenx")
    code, _, err = cli("run", "--model", "twin", "--tasks", "DF-D", "--bench", str(tiny_bench),
                       "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 2 and "dfabench_twin_a" in err and "dfabench_twin_b" in err and "more than one plugin" in err
    code, out, _ = cli("models")
    assert code == 0 and "twin" in out and "CLASH" in out
    code, out, _ = cli("plugins")
    assert code == 0 and out.count("CLASH: model 'twin' is also registered by") == 2
    # the plugin that would provide the model failed to load: name it and its error, no "did you mean"
    code, _, err = cli("run", "--model", "brokenx", "--tasks", "DF-D", "--bench", str(tiny_bench),
                       "--out", str(tmp_path / "run2"), "--no-progress")
    assert code == 2
    assert "dfabench_brokenx" in err and "failed to load" in err and "cannot import its weights library" in err
    assert "did you mean" not in err


class ScoreOnly(ConstantModel):
    capabilities = frozenset({"score"})


def test_capabilities_given_to_register_and_on_the_class_must_agree():
    from dfabench.plugins import PluginManager

    plugin = _plugin("disagreeing", dfabench_register_models=_models((("liar", ScoreOnly),
                                                                      {"capabilities": ("generate",)})))
    manager = PluginManager(load_entry_points=False, extra_plugins=[plugin])
    [broken] = manager.broken()
    assert broken.name == "disagreeing"
    assert "register() declares capabilities ['generate'] but its class ScoreOnly declares ['score']" in broken.error
    assert "liar" not in manager.models


def test_a_lazily_imported_class_or_created_model_must_agree_with_its_registration():
    from dfabench.plugins import PluginManager

    plugin = _plugin("lazy_liar", dfabench_register_models=_models(
        (("lazy", "test_trust_input:ScoreOnly"), {"capabilities": ("generate",)}),
        (("narrower", "dfabench.models:RandomModel"), {"capabilities": ("generate",)})))
    manager = PluginManager(load_entry_points=False, extra_plugins=[plugin])
    with pytest.raises(DfabenchError, match=r"class ScoreOnly declares \['score'\]"):
        manager.models.get("lazy").create()
    assert manager.models.get("narrower").create(mode="generate").capabilities == {"generate"}
    with pytest.raises(DfabenchError, match=r"created with capabilities \['score'\] but its registration declares "
                                            r"\['generate'\]"):
        manager.models.get("narrower").create(mode="score")


# ----------------------------------------------------------------------------- model answers

BAD_LOGPROBS = {
    "s0000": {"Yes": -0.1, "No": -2.3},           # keys that are not the choices
    "s0001": {"yes": math.nan, "no": -1.0},       # NaN
    "s0002": {"yes": 0.5, "no": -1.0},            # a positive "log-probability"
    "s0003": {"yes": -0.1},                       # a choice missing
    "s0004": {"yes": -0.1, "no": -2.0, "maybe": -3.0},  # an extra key
    "s0005": [("yes", -0.1), ("no", -2.3)],       # not a dict
}


class LogprobModel(ConstantModel):
    def generate(self, requests):
        answers = super().generate(requests)
        for request, answer in zip(requests, answers, strict=True):
            answer.choice_logprobs = BAD_LOGPROBS.get(request.sample_id, {"yes": -0.2, "no": -1.7})
        return answers


class WrongMaskModel(ConstantModel):
    capabilities = frozenset({"generate", "localize"})

    def generate(self, requests):
        answers = super().generate(requests)
        for request, answer in zip(requests, answers, strict=True):
            width, height = request.image.size
            wrong = request.sample_id == "s0003"
            answer.mask = np.zeros((height + 4 if wrong else height, width), dtype=np.uint8)
        return answers


@pytest.fixture
def answer_models(cli):
    from dfabench.plugins import PluginManager, reset_manager

    plugin = _plugin("answer_models", dfabench_register_models=_models(
        (("logprobs", LogprobModel), {}), (("wrong-mask", WrongMaskModel), {"capabilities": ("generate", "localize")})))
    reset_manager(PluginManager(load_entry_points=False, extra_plugins=[plugin]))
    return cli


def _lines(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_choice_logprobs_that_break_the_contract_are_counted_failures(answer_models, tiny_bench, tmp_path):
    out = tmp_path / "run"
    code, _, err = answer_models("run", "--model", "logprobs", "--tasks", "DF-D", "--bench", str(tiny_bench),
                                 "--out", str(out), "--no-progress")
    assert code == 0, err
    samples = _lines(out / "samples-DF-D.jsonl")
    for sample_id in BAD_LOGPROBS:
        assert samples[sample_id]["error"].startswith("model: choice_logprobs"), samples[sample_id]
        assert samples[sample_id]["score"] is None
    assert "unknown ['No', 'Yes']" in samples["s0000"]["error"]
    assert "nan" in samples["s0001"]["error"] and "0.5" in samples["s0002"]["error"]
    assert "missing ['no']" in samples["s0003"]["error"] and "unknown ['maybe']" in samples["s0004"]["error"]
    good = samples["s0006"]
    assert good["error"] is None and good["score"] == pytest.approx(1 / (1 + math.exp(-1.7 + 0.2)))
    record = json.loads((out / "run.json").read_text())
    assert record["counts"]["DF-D"]["n_failed"] == len(BAD_LOGPROBS)


def test_a_predicted_mask_not_of_the_image_size_is_a_contract_failure(answer_models, tmp_path):
    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2, with_masks=True)
    out = tmp_path / "run"
    code, _, err = answer_models("run", "--model", "wrong-mask", "--tasks", "FL", "--bench", str(bench),
                                 "--out", str(out), "--no-progress")
    assert code == 0, err
    samples = _lines(out / "samples-FL.jsonl")
    assert samples["s0003"]["error"] == ("model: the mask has shape (20, 16) but the image is 16x16: a mask must "
                                         "have the image's shape (height, width) = (16, 16)")
    assert all(s["error"] is None for i, s in samples.items() if i != "s0003")
    assert json.loads((out / "run.json").read_text())["counts"]["FL"]["n_failed"] == 1
