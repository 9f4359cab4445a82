"""The smoke benchmark: size, splits, records, masks, descriptions, conversations, determinism."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfabench.data import smoke, synthetic
from dfabench.data.manifest import CATEGORIES, load_benchmark
from dfabench.errors import DfabenchError
from dfabench.parsing import parse_category, parse_detection

pytest.importorskip("skimage")
pytest.importorskip("matplotlib")

TECHNIQUE_CATEGORY = {
    "smoke-blend-swap": "FS", "smoke-patch-swap": "FS",
    "smoke-mouth-warp": "FR", "smoke-eye-warp": "FR",
    "smoke-skin-smooth": "FE", "smoke-color-edit": "FE", "smoke-sharpen-edit": "FE",
    "smoke-deconv-gen": "EFS", "smoke-nearest-gen": "EFS",
}


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory) -> Path:
    return smoke.build_smoke(tmp_path_factory.mktemp("smoke") / "bench", seed=0)


@pytest.fixture(scope="module")
def bench(smoke_dir):
    return load_benchmark(smoke_dir)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_default_build_has_the_promised_size_and_splits(bench):
    assert len(bench.samples) >= 600
    by_split: dict[str, dict[str, int]] = {}
    for s in bench.samples:
        key = s.category or "real"
        by_split.setdefault(s.split, {}).setdefault(key, 0)
        by_split[s.split][key] += 1
    assert set(by_split) == {"train", "val", "test"}
    test = by_split["test"]
    assert sum(test.values()) >= 200
    for key in ("real", *CATEGORIES):
        assert test[key] >= 40, (key, test)
        assert by_split["train"][key] > 0 and by_split["val"][key] > 0
    info = bench.info()
    assert info["counts"] == {split: {k: by_split[split][k] for k in ("real", *CATEGORIES)}
                              for split in ("train", "val", "test")}


def test_splits_are_disjoint_by_source_including_donors(bench):
    split_of: dict[str, str] = {}
    for s in bench.samples:
        assert s.source_id, s.id
        assert split_of.setdefault(s.source_id, s.split) == s.split, s.source_id
    sources = {s.source_id for s in bench.samples}
    assert {"astronaut", "grace-hopper"} <= sources
    # faces lent to a swap or a synthesis come from the same split as the fake they went into
    for s in bench.samples:
        for donor in [s.meta.get("donor")] + list(s.meta.get("faces", [])):
            if donor is not None:
                assert split_of[donor] == s.split, (s.id, donor)
                assert donor != s.source_id


def test_records_are_consistent(bench):
    for s in bench.samples:
        assert s.label in ("real", "fake")
        assert s.id.startswith("smoke-") and not any(w in s.id.lower() for w in ("real", "fake", "fs", "efs"))
        if s.label == "real":
            assert s.category is None and s.technique is None and s.description is None and s.mask is None
            continue
        assert TECHNIQUE_CATEGORY[s.technique] == s.category, s.id
        assert s.description and s.description.splitlines()[-1][0].isdigit()
        numbered = [line for line in s.description.splitlines() if line[:1].isdigit()]
        assert [int(line.split(".")[0]) for line in numbered] == list(range(1, len(numbered) + 1))
        assert (s.mask is None) == (s.category == "EFS"), s.id


def test_descriptions_follow_what_was_done(bench):
    titles = {"mouth": "Mouth and lips", "eyes": "Eyes", "cheeks": "Cheeks and jawline", "forehead": "Forehead"}
    for s in bench.samples:
        if s.category == "FR":
            assert f"{titles[s.meta['region']]}:" in s.description
        elif s.category == "FE":
            for edit in s.meta["edits"]:
                assert f"{titles[edit['region']]}:" in s.description
                if edit["op"] == "colour":
                    assert edit["tint"] in s.description
        elif s.category == "FS" and s.meta["region"] == "inner face":
            assert "Face boundary:" in s.description
        elif s.category == "EFS":
            assert "pattern" in s.description and ("grid" in s.description or "checkerboard" in s.description)
    wordings = {s.description.splitlines()[-1] for s in bench.samples if s.technique == "smoke-mouth-warp"}
    assert len(wordings) > 5  # varied wording


def test_conversations_parse_back_to_the_labels(bench):
    for s in bench.samples:
        turns = s.conversations
        assert turns[0]["from"] == "human" and turns[0]["value"].startswith("<image>\n")
        assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
        assert parse_detection(turns[1]["value"]) == s.label, turns[1]
        if s.label == "fake":
            assert len(turns) == 6
            assert parse_category(turns[3]["value"]) == s.category, turns[3]
            assert turns[5]["value"] == s.description
        else:
            assert len(turns) == 2


def test_images_and_masks(smoke_dir, bench):
    for s in bench.samples[::7]:
        with Image.open(smoke_dir / s.image) as image:
            assert image.format == "PNG" and image.size == (256, 256) and image.mode == "RGB"
        if s.mask is not None:
            with Image.open(smoke_dir / s.mask) as mask:
                assert mask.size == (256, 256) and mask.mode == "L"
                values = np.unique(np.asarray(mask))
            assert set(values.tolist()) == {0, 255}
    bench.check_files(bench.samples)


def test_benchmark_json_and_readme_say_what_it_is(smoke_dir):
    info = json.loads((smoke_dir / "benchmark.json").read_text())
    assert info["name"] == "dfabench-smoke" and info["seed"] == 0 and info["version"] == smoke.SMOKE_VERSION
    assert "not DFA-Bench" in info["description"]
    readme = (smoke_dir / "README.md").read_text()
    assert "not DFA-Bench" in readme and "public domain" in readme and "seed 0" in readme


def _toy_frame(rng: np.random.Generator) -> synthetic.Frame:
    base = np.asarray(Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).resize((256, 256)),
                      dtype=np.float32)
    pixels = np.clip(np.rint(base + rng.normal(0, 3, base.shape)), 0, 255).astype(np.float32)
    return synthetic.Frame(pixels, synthetic.TEMPLATE + rng.uniform(-4, 4, (3, 2)), 2.0)


@pytest.mark.parametrize("kind", ["FS", "FR", "FE"])
def test_masks_are_exact(kind):
    import random

    for trial in range(6):
        rng = np.random.default_rng(trial)
        target = _toy_frame(rng)
        say = synthetic.Wording(random.Random(trial))
        if kind == "FS":
            fake = synthetic.face_swap(target, _toy_frame(rng), rng, say)
        elif kind == "FR":
            fake = synthetic.reenact(target, rng, say)
        else:
            fake = synthetic.edit(target, rng, say)
        assert fake.category == kind
        outside = ~fake.mask
        assert fake.mask.any() and outside.any()
        np.testing.assert_array_equal(fake.pixels[outside], target.pixels[outside])
        changed = np.abs(fake.pixels - target.pixels).max(axis=-1) > 0
        assert changed[fake.mask].mean() > 0.3  # most of the masked area really changed


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    first = smoke.build_smoke(tmp_path / "a", seed=3, size="tiny")
    second = smoke.build_smoke(tmp_path / "b", seed=3, size="tiny")
    other = smoke.build_smoke(tmp_path / "c", seed=4, size="tiny")
    files_a, files_b = _files(first), _files(second)
    assert files_a == files_b
    assert "manifest.jsonl" in files_a and sum(k.startswith("masks/") for k in files_a) > 20
    assert _files(other)["manifest.jsonl"] != files_a["manifest.jsonl"]
    assert load_benchmark(first).fingerprint() == load_benchmark(second).fingerprint()


def test_rebuild_reuse_and_refusals(tmp_path):
    out = tmp_path / "smoke"
    smoke.build_smoke(out, seed=1, size="tiny")
    stamp = (out / "manifest.jsonl").stat().st_mtime_ns
    assert smoke.is_smoke_build(out, seed=1, size="tiny") and not smoke.is_smoke_build(out, seed=2)
    assert smoke.ensure_smoke(out, seed=1, size="tiny") == out
    assert (out / "manifest.jsonl").stat().st_mtime_ns == stamp  # reused, not rebuilt
    smoke.ensure_smoke(out, seed=2, size="tiny")  # replaces an earlier smoke build
    assert json.loads((out / "benchmark.json").read_text())["seed"] == 2
    assert not list(tmp_path.glob(".smoke.building-*"))

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DfabenchError, match="not empty"):
        smoke.build_smoke(foreign, size="tiny")
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(DfabenchError, match="unknown smoke benchmark size 'huge'"):
        smoke.build_smoke(tmp_path / "x", size="huge")


def test_missing_extra_gives_an_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(DfabenchError, match=r"pip install 'dfabench\[smoke\]'"):
        smoke.build_smoke(tmp_path / "x", size="tiny")
    assert not (tmp_path / "x").exists()


def test_conversations_import_back_as_dfa_instruct(smoke_dir, bench, tmp_path):
    from dfabench.data.importers import import_dfa_instruct

    records = [{"id": s.id, "image": str(smoke_dir / s.image), "conversations": list(s.conversations),
                "source_id": s.source_id, "split": s.split} for s in bench.samples[:120]]
    src = tmp_path / "smoke-dfa.json"
    src.write_text(json.dumps(records))
    report = import_dfa_instruct(src, tmp_path / "imported")
    assert report.skipped == [] and report.n_imported == len(records)
    imported = {s.id: s for s in load_benchmark(report.out).samples}
    for s in bench.samples[:120]:
        got = imported[s.id]
        assert (got.label, got.category, got.description, got.split) == (s.label, s.category, s.description, s.split)
