"""The noise-inconsistency localizer: the map, the mask contract, the report, fitting and caching, FL end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dfabench.answers import encode_mask
from dfabench.api import DfabenchError, GenerateRequest, InputError, load_mask, mask_scores
from dfabench.data.manifest import load_benchmark, write_manifest
from dfabench.parsing import parse_category, parse_detection
from dfabench.plugins import get_task
from PIL import Image, ImageFilter

from dfabench_baselines.noise import (
    DEFAULT_THRESHOLD,
    REGION_NAMES,
    THRESHOLD_GRID,
    NoiseInconsistencyLocalizer,
    NoiseModel,
    analyse,
    box_mean,
    cached_model_path,
    fit_noise_model,
    report,
)


def _face(seed: int = 0, size: tuple[int, int] = (256, 256), patch: tuple[float, float, float, float] | None = None,
          noise: float = 6.0) -> tuple[Image.Image, np.ndarray]:
    """A smooth picture with camera-like grain; ``patch`` = (top, bottom, left, right) fractions of a region
    whose grain is blurred away (a re-rendered area). Returns the image and the patch's mask."""
    rng = np.random.default_rng(seed)
    width, height = size
    base = Image.fromarray(rng.integers(40, 220, (6, 6, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    pixels = np.asarray(base, dtype=np.float64) + rng.normal(0, noise, (height, width, 3))
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    truth = np.zeros((height, width), bool)
    if patch is not None:
        top, bottom, left, right = (round(f * n) for f, n in zip(patch, (height, height, width, width), strict=True))
        truth[top:bottom, left:right] = True
        blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(2.0)))
        image = Image.fromarray(np.where(truth[..., None], blurred, np.asarray(image)))
    return image, truth


def _request(image, task: str = "FL", choices: tuple[str, ...] = ()) -> GenerateRequest:
    return GenerateRequest("x", image, "x.png", [{"role": "user", "content": [{"type": "image"}]}],
                           task=task, choices=choices, reference=get_task(task).reference)


# --------------------------------------------------------------------------- the map and the mask


def test_box_mean_matches_a_direct_window_mean():
    rng = np.random.default_rng(1)
    array = rng.normal(size=(9, 7))
    padded = np.pad(array, 2, mode="reflect")
    direct = np.array([[padded[i:i + 5, j:j + 5].mean() for j in range(7)] for i in range(9)])
    np.testing.assert_allclose(box_mean(array, 2), direct, atol=1e-12)


def test_mask_shape_dtype_values_and_determinism():
    image, truth = _face(0, size=(240, 200), patch=(0.62, 0.84, 0.3, 0.7))
    model = NoiseInconsistencyLocalizer(threshold=DEFAULT_THRESHOLD)
    first = model.generate([_request(image)])[0]
    assert first.error is None
    mask = first.mask
    assert mask.shape == (200, 240) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    again = NoiseInconsistencyLocalizer(threshold=DEFAULT_THRESHOLD).generate([_request(image.copy())])[0]
    assert np.array_equal(mask, again.mask) and first.text == again.text
    assert encode_mask(mask)  # what the runner accepts
    assert mask_scores(mask > 127, truth)["iou"] > 0.5  # the de-noised patch is found
    # an image longer than max_side is analysed downscaled, but its mask has the image's size
    big, _ = _face(2, size=(300, 180), patch=(0.3, 0.6, 0.3, 0.6))
    small_side = NoiseInconsistencyLocalizer(threshold=DEFAULT_THRESHOLD, max_side=128).generate([_request(big)])[0]
    assert small_side.mask.shape == (180, 300) and small_side.mask.dtype == np.uint8


def test_uniform_grain_gives_an_empty_mask_and_says_so():
    plain, _ = _face(3)
    response = NoiseInconsistencyLocalizer(threshold=4.0).generate([_request(plain)])[0]
    assert not response.mask.any()
    assert response.text.startswith("No region shows inconsistent noise")
    flat = NoiseInconsistencyLocalizer().generate([_request(Image.new("RGB", (64, 48), (120, 90, 80)))])[0]
    assert flat.error is None and flat.mask.shape == (48, 64) and not flat.mask.any()


def test_report_names_the_regions_and_the_artefact():
    image, _ = _face(4, patch=(0.64, 0.82, 0.32, 0.68))  # the mouth of an aligned face
    text = report(analyse(image), DEFAULT_THRESHOLD)
    assert text.startswith("1. Mouth and lips: the texture is smoother")
    assert "(inconsistent noise)" in text and "Blending boundary" in text
    sharpened, _ = _face(5)
    pixels = np.asarray(sharpened).copy()
    eyes = np.asarray(sharpened.filter(ImageFilter.UnsharpMask(2, 300, 0)))
    pixels[80:125, 50:205] = eyes[80:125, 50:205]
    text = report(analyse(Image.fromarray(pixels)), DEFAULT_THRESHOLD)
    assert text.startswith("1. Eyes: the texture is noisier") and "sharpened" in text
    assert all(line.split(":")[0].split(". ", 1)[1].lower() in (*REGION_NAMES, "blending boundary")
               for line in text.splitlines())


def test_tasks_get_the_answers_they_need():
    image, _ = _face(6, patch=(0.3, 0.5, 0.2, 0.8))
    model = NoiseInconsistencyLocalizer()  # not prepared: default threshold, no classifiers
    fl, ad, fc, dfd, dfc = model.generate([_request(image, "FL"), _request(image, "AD"), _request(image, "FC"),
                                           _request(image, "DF-D", ("yes", "no")), _request(image, "DF-C")])
    assert fl.mask is not None and ad.mask is None and fc.mask is None
    assert fl.text == ad.text == fc.text and "Eyes" in fl.text
    assert dfd.error and "no DF-D classifier" in dfd.error and dfc.error and "no DF-C classifier" in dfc.error
    bad = model.generate([_request(None), _request(image)])
    assert bad[0].error and "failed" in bad[0].error and bad[1].error is None


def test_bad_arguments_and_weights(tmp_path):
    with pytest.raises(DfabenchError, match="threshold must be"):
        NoiseInconsistencyLocalizer(threshold="high")
    with pytest.raises(DfabenchError, match="threshold must be positive"):
        NoiseInconsistencyLocalizer(threshold=-1)
    with pytest.raises(DfabenchError, match="max_side must be"):
        NoiseInconsistencyLocalizer(max_side=4)
    with pytest.raises(InputError, match="no such model file"):
        NoiseInconsistencyLocalizer(weights=str(tmp_path / "absent.json"))
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(InputError, match="not a dfabench-baselines/noise-inconsistency-v1 model"):
        NoiseInconsistencyLocalizer(weights=str(tmp_path / "junk.json"))


def test_without_a_train_split_fl_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("DFABENCH_CACHE_DIR", str(tmp_path / "cache"))
    image, _ = _face(7, patch=(0.1, 0.3, 0.2, 0.8))
    image.save(tmp_path / "a.png")
    write_manifest(tmp_path / "manifest.jsonl", [{"id": "a", "image": "a.png", "label": "fake", "split": "test"}])
    model = NoiseInconsistencyLocalizer()
    model.prepare(load_benchmark(tmp_path))
    identity = model.identity()
    assert identity["threshold"] == DEFAULT_THRESHOLD and identity["trained_on"] is None
    assert "no train split" in identity["threshold_source"]
    assert model.generate([_request(image)])[0].mask.any()


# --------------------------------------------------------------------------- the smoke benchmark


@pytest.fixture(scope="module")
def smoke_bench(tmp_path_factory):
    pytest.importorskip("skimage")
    from dfabench.data.smoke import build_smoke

    return load_benchmark(build_smoke(tmp_path_factory.mktemp("smoke") / "bench", seed=0, size="small"))


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def fitted(smoke_bench) -> NoiseModel:
    return fit_noise_model(smoke_bench)


def test_fit_uses_the_train_split_masks_and_labels(fitted, smoke_bench):
    trained_on = fitted.meta["trained_on"]
    assert trained_on["fingerprint"] == smoke_bench.fingerprint() and trained_on["split"] == "train"
    assert trained_on["n"] == smoke_bench.splits()["train"]
    assert trained_on["n_masks"] == sum(1 for s in smoke_bench.select("train") if s.mask) > 0
    assert fitted.threshold in THRESHOLD_GRID and fitted.meta["threshold_source"].startswith("fitted")
    assert fitted.detect is not None and sorted(fitted.categorise["classes"]) == ["EFS", "FE", "FR", "FS"]


def test_prepare_fits_once_then_uses_the_cache(smoke_bench, fitted, cache_root, monkeypatch, tmp_path):
    import dfabench_baselines.noise as noise

    monkeypatch.setenv("DFABENCH_CACHE_DIR", str(cache_root))
    path = cached_model_path(smoke_bench.fingerprint())
    assert str(path).startswith(str(cache_root / "baselines"))
    if not path.exists():
        fitted.save(path)  # as if an earlier run had fitted it
    monkeypatch.setattr(noise, "fit_noise_model", lambda *a, **k: pytest.fail("should not fit again"))
    model = NoiseInconsistencyLocalizer()
    model.prepare(smoke_bench)
    identity = model.identity()
    assert identity["weights_sha256"] == fitted.fingerprint() == NoiseModel.load(path).fingerprint()
    assert identity["trained_on"]["fingerprint"] == smoke_bench.fingerprint()
    assert cached_model_path(smoke_bench.fingerprint(), threshold=1.0) != path  # other settings, other entry
    # the same model from a weights file; a given threshold replaces the fitted one
    weights = fitted.save(tmp_path / "noise.json")
    assert NoiseInconsistencyLocalizer(weights=str(weights)).identity()["weights_sha256"] == fitted.fingerprint()
    assert NoiseInconsistencyLocalizer(weights=str(weights), threshold=3.0).identity()["threshold"] == 3.0
    # DF-D and DF-C answers parse, with a DF-D probability
    sample = next(s for s in smoke_bench.select("train") if s.label == "fake")
    with Image.open(smoke_bench.path_of(sample.image)) as image:
        dfd, dfc = model.generate([_request(image.convert("RGB"), "DF-D", ("yes", "no")),
                                   _request(image.convert("RGB"), "DF-C")])
    assert parse_detection(dfd.text) in ("fake", "real") and set(dfd.choice_logprobs) == {"yes", "no"}
    assert parse_category(dfc.text) in ("FS", "FR", "FE", "EFS")


def test_plugin_registers_the_localizer_without_importing_it():
    code = ("import sys; from dfabench.plugins import PluginManager; m = PluginManager(); "
            "e = m.models.get('noise-inconsistency'); print(e.capabilities, e.factory, e.distribution); "
            "print('sklearn' in sys.modules, 'dfabench_baselines.noise' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == ("('generate', 'localize') dfabench_baselines.noise:NoiseInconsistencyLocalizer "
                      "dfabench-baselines")
    assert out[1] == "False False"


def test_dfabench_run_fl_beats_the_empty_and_full_masks(smoke_bench, fitted, cache_root, tmp_path):
    path = cached_model_path(smoke_bench.fingerprint())
    if not path.exists():
        fitted.save(path)  # fitted above: do not pay for it twice
    run_dir = tmp_path / "run"
    env = {**os.environ, "DFABENCH_CACHE_DIR": str(cache_root)}
    result = subprocess.run([sys.executable, "-m", "dfabench.cli", "run", "--model", "noise-inconsistency",
                             "--tasks", "FL", "--bench", str(smoke_bench.root), "--out", str(run_dir),
                             "--no-progress", "--n-boot", "200"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads((run_dir / "run.json").read_text())
    metrics, counts = record["metrics"]["FL"], record["counts"]["FL"]
    for name in ("iou", "precision", "recall", "f1", "bleu_4", "rouge_l", "cider"):
        assert metrics[name]["value"] is not None, name
    test = [s for s in smoke_bench.select("test") if s.label == "fake" and s.mask]
    assert counts["n"] == len(test) > 0 and counts["n_failed"] == 0
    assert record["model"]["identity"]["trained_on"]["fingerprint"] == smoke_bench.fingerprint()
    truths = [load_mask(str(smoke_bench.path_of(s.mask))) for s in test]
    empty = float(np.mean([mask_scores(np.zeros_like(t), t)["iou"] for t in truths]))
    full = float(np.mean([mask_scores(np.ones_like(t), t)["iou"] for t in truths]))
    iou = metrics["iou"]["value"]
    assert iou > max(empty, full) + 0.2, (iou, empty, full)
