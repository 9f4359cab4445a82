"""A cache answers only for the same input: the key covers the image's content (not just its id) and the
code of a plugin whose version does not pin it (editable or unpackaged)."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

import pytest


def _answered(log: Path) -> list[str]:
    """Sample ids the ``slow`` test model answered, in order (its log has one line per batch)."""
    if not log.exists():
        return []
    return [item.split(":", 1)[1] for line in log.read_text().splitlines() for item in line.split()]


def _samples(out: Path, task: str = "DF-D") -> list[dict]:
    return [json.loads(line) for line in (out / f"samples-{task}.jsonl").read_text().splitlines()]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- the image is part of the key


def test_a_shared_cache_answers_another_benchmark_with_the_same_ids_only_for_the_same_images(cli, tmp_path):
    benches = {}
    for seed in (0, 1):
        benches[seed] = tmp_path / f"smoke-{seed}"
        code, _, err = cli("bench", "smoke", "--size", "tiny", "--seed", str(seed), "--out", str(benches[seed]))
        assert code == 0, err
    ids = [[json.loads(line)["id"] for line in (benches[s] / "manifest.jsonl").read_text().splitlines()]
           for s in (0, 1)]
    assert ids[0] == ids[1]  # the premise: the same ids, other images
    cache, log = tmp_path / "shared-cache.sqlite", tmp_path / "calls.log"

    def run(seed: int, out: str) -> list[str]:
        before = len(_answered(log))
        code, _, err = cli("run", "--model", "slow", "--model-arg", f"log={log}", "--tasks", "DF-D", "--split", "all",
                           "--bench", str(benches[seed]), "--out", str(tmp_path / out), "--cache", str(cache),
                           "--no-progress")
        assert code == 0, err
        return _answered(log)[before:]

    assert sorted(run(0, "run-0")) == sorted(ids[0])
    answered = run(1, "run-1")
    differs = {s["id"] for s in _samples(tmp_path / "run-1")
               if _sha(benches[1] / s["image"]) != _sha(benches[0] / s["image"])}
    assert differs and differs <= set(answered)  # every sample whose image differs was asked again
    assert not any(s["cached"] for s in _samples(tmp_path / "run-1") if s["id"] in differs)
    # the cache still answers for the first benchmark's images
    assert run(0, "run-0-again") == []
    assert all(s["cached"] for s in _samples(tmp_path / "run-0-again"))


def test_the_image_hashes_are_the_fingerprints_no_image_is_hashed_twice(cli, tiny_bench, tmp_path, monkeypatch):
    from dfabench.data import manifest

    hashed: list[str] = []
    original = manifest._hash_file

    def counting(path: str) -> str:
        hashed.append(path)
        return original(path)

    monkeypatch.setattr(manifest, "_hash_file", counting)
    code, _, err = cli("run", "--model", "constant", "--tasks", "DF-D,DF-C", "--bench", str(tiny_bench),
                       "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 0, err
    assert hashed and len(hashed) == len(set(hashed))  # the fingerprint hashed each file once, the keys reused it
    benchmark = manifest.load_benchmark(tiny_bench)
    sample = benchmark.samples[0]
    assert benchmark.image_sha256(sample) == _sha(tiny_bench / sample.image)


def test_the_cache_key_covers_the_image():
    from dfabench.store import cache_key

    args = ("model", "task", "s1", "prompt", {"temperature": 0})
    assert cache_key(*args, "a" * 64) != cache_key(*args, "b" * 64)
    assert cache_key(*args, "a" * 64) == cache_key(*args, "a" * 64)


# ----------------------------------------------------------------------------- the plugin's code is part of it

PLUGIN = '''
"""A plugin under development (loaded through DFABENCH_PLUGINS, no distribution)."""

from dfabench import hookimpl
from dfabench.models import ConstantModel


class Dev(ConstantModel):
    def __init__(self, log, **kwargs):
        super().__init__(**kwargs)
        self.log = log

    def generate(self, requests):
        with open(self.log, "a") as handle:
            handle.write(" ".join(f"{r.task}:{r.sample_id}" for r in requests) + "\\n")
        return super().generate(requests)


ANSWER = "{answer}"


@hookimpl
def dfabench_register_models(register):
    register("dev", "dfabench_devplugin:Dev", description="a model whose code is being edited")
'''


@pytest.fixture
def dev_plugin(tmp_path, monkeypatch, capsys):
    """(write(answer): (re)write the plugin's source, run(*argv) -> (code, out, err)) for an unpackaged plugin."""
    from dfabench.cli import main
    from dfabench.plugins import reset_manager

    folder = tmp_path / "dev-plugin"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_devplugin")

    def write(answer: str) -> None:
        (folder / "dfabench_devplugin.py").write_text(textwrap.dedent(PLUGIN).replace("{answer}", answer))

    def run(*argv: str) -> tuple[int, str, str]:
        sys.modules.pop("dfabench_devplugin", None)  # a new process would import the edited code
        reset_manager(None)
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield write, run
    sys.modules.pop("dfabench_devplugin", None)
    reset_manager(None)


def test_editing_an_unpackaged_plugin_asks_the_model_again(dev_plugin, tiny_bench, tmp_path):
    write, run = dev_plugin
    log, out = tmp_path / "calls.log", tmp_path / "run"
    common = ["run", "--model", "dev", "--model-arg", f"log={log}", "--tasks", "DF-D", "--bench", str(tiny_bench),
              "--out", str(out), "--no-progress"]
    write("first")
    assert run(*common)[0] == 0
    first = json.loads((out / "run.json").read_text())["model"]
    n = len(_samples(out))
    assert len(_answered(log)) == n
    assert first["source"]["install"] == "unpackaged" and len(first["source"]["sha256"]) == 64
    assert run(*common)[0] == 0 and len(_answered(log)) == n  # unchanged code: all from the cache
    write("second")  # the same name, no version, the same identity(): only the code changed
    code, _, err = run(*common)
    assert code == 0, err
    again = json.loads((out / "run.json").read_text())["model"]
    assert again["source"]["sha256"] != first["source"]["sha256"]
    assert again["fingerprint"] != first["fingerprint"]
    assert len(_answered(log)) == 2 * n and not any(s["cached"] for s in _samples(out))


def test_results_kept_from_an_edited_plugin_are_refused_like_any_other_identity_change(dev_plugin, tiny_bench,
                                                                                       tmp_path):
    write, run = dev_plugin
    log, out = tmp_path / "calls.log", tmp_path / "run"
    common = ["--model", "dev", "--model-arg", f"log={log}", "--bench", str(tiny_bench), "--out", str(out),
              "--no-progress"]
    write("first")
    assert run("run", "--tasks", "DF-D,DF-C", *common)[0] == 0
    write("second")
    code, _, err = run("run", "--tasks", "DF-D", *common)  # DF-C's answers would come from the old code
    assert code == 2 and "identity differs" in err


def test_editable_installs_are_detected_from_direct_url_json(monkeypatch):
    from importlib import metadata

    from dfabench import provenance

    class Dist:
        def __init__(self, direct_url: str | None):
            self.direct_url = direct_url

        def read_text(self, name: str) -> str | None:
            return self.direct_url if name == "direct_url.json" else None

    found = {"editable": Dist('{"url": "file:///src/p", "dir_info": {"editable": true}}'),
             "local": Dist('{"url": "file:///src/p", "dir_info": {}}'),
             "wheel": Dist(None)}

    def distribution(name: str):
        if name not in found:
            raise metadata.PackageNotFoundError(name)
        return found[name]

    monkeypatch.setattr(provenance.metadata, "distribution", distribution)
    assert provenance.install_kind("editable") == "editable"
    assert provenance.install_kind("local") is None  # a regular install from a folder: its version is the identity
    assert provenance.install_kind("wheel") is None
    assert provenance.install_kind("gone") == "unpackaged"


def test_source_identity_is_for_editable_and_unpackaged_plugins_only(monkeypatch):
    from dfabench import entries, provenance
    from dfabench.plugins import ModelEntry

    entry = ModelEntry("x", "dfabench_testmodels:SlowModel", plugin="p", distribution="dist-p", version="1.0",
                       module="dfabench_testmodels")
    monkeypatch.setattr(entries, "install_kind", lambda name: None)
    assert entry.source_identity() is None  # a regular install: the version is the identity
    monkeypatch.setattr(entries, "install_kind", lambda name: "editable")
    source = entry.source_identity()
    assert source["install"] == "editable"
    assert source["sha256"] == provenance.source_sha256(["dfabench_testmodels"])
    builtin = ModelEntry("constant", "dfabench.models:ConstantModel", plugin="dfabench", distribution="dfabench",
                         module="dfabench.builtin")
    assert builtin.source_identity() is None  # dfabench's own models: the dfabench version


def test_a_model_record_without_source_keeps_its_fingerprint():
    from dfabench.records import model_fingerprint

    record = {"name": "m", "distribution": "d", "version": "1", "args": {}, "identity": {}}
    assert model_fingerprint(record) != model_fingerprint({**record, "source": {"install": "editable",
                                                                                "sha256": "0" * 64}})
    assert model_fingerprint({**record, "source": None}) == model_fingerprint(record)
