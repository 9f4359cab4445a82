"""The spectrum detector: features, training, saving, the dfabench model contract, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dfabench.api import DfabenchError, InputError
from dfabench.data.manifest import load_benchmark, write_manifest
from dfabench.metrics.classification import roc_auc
from dfabench.models import RandomModel, ScoreRequest
from PIL import Image

from dfabench_baselines.features import n_features, spectrum_features
from dfabench_baselines.spectrum import (
    C_GRID,
    CATEGORIES,
    SpectrumClassifier,
    SpectrumDetector,
    cached_model_path,
    train_spectrum,
)


def _pattern(seed: int, checker: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.asarray(Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).resize((256, 256)),
                      dtype=np.float64)
    yy, xx = np.mgrid[0:256, 0:256]
    base += checker * np.where((xx + yy) % 2 == 0, 1.0, -1.0)[..., None]
    return np.clip(np.rint(base), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- features


def test_features_shape_and_determinism():
    image = _pattern(0)
    first = spectrum_features(image)
    assert first.shape == (n_features(256),) == (182,)
    assert np.array_equal(first, spectrum_features(image))
    assert np.array_equal(first, spectrum_features(Image.fromarray(image)))
    assert abs(first.mean()) < 1e-9  # centred profile
    assert spectrum_features(Image.fromarray(image).resize((300, 200))).shape == first.shape
    assert spectrum_features(image, size=64).shape == (n_features(64),)


def test_features_see_checkerboard_artefacts():
    plain, checked = spectrum_features(_pattern(1)), spectrum_features(_pattern(1, checker=6.0))
    corner = n_features(256) - 1  # radius of the (N/2, N/2) frequency, where a checkerboard puts its energy
    assert checked[corner] - checked[:100].mean() > plain[corner] - plain[:100].mean() + 1.0


# --------------------------------------------------------------------------- training on the smoke benchmark


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _build(tmp_path_factory, size: str):
    pytest.importorskip("skimage")
    from dfabench.data.smoke import build_smoke

    return load_benchmark(build_smoke(tmp_path_factory.mktemp(f"smoke-{size}") / "bench", seed=0, size=size))


@pytest.fixture(scope="module")
def smoke_bench(tmp_path_factory):
    """The small smoke benchmark (about 180 samples): fast, for everything but the headline numbers."""
    return _build(tmp_path_factory, "small")


@pytest.fixture(scope="module")
def trained(smoke_bench) -> SpectrumClassifier:
    return train_spectrum(smoke_bench)


@pytest.fixture(scope="module")
def full_bench(tmp_path_factory):
    """The default smoke benchmark, whose test split the headline claims are about."""
    return _build(tmp_path_factory, "default")


@pytest.fixture(scope="module")
def full_trained(full_bench) -> SpectrumClassifier:
    return train_spectrum(full_bench)


@pytest.fixture
def cache_env(cache_root, monkeypatch) -> Path:
    monkeypatch.setenv("DFABENCH_CACHE_DIR", str(cache_root))
    return cache_root


def _requests(bench, samples) -> list[ScoreRequest]:
    requests = []
    for s in samples:
        with Image.open(bench.path_of(s.image)) as image:
            requests.append(ScoreRequest(s.id, image.convert("RGB"), str(bench.path_of(s.image)), task="DF-D"))
    return requests


def test_training_records_what_it_was_trained_on(trained, smoke_bench):
    trained_on = trained.meta["trained_on"]
    assert trained_on["fingerprint"] == smoke_bench.fingerprint()
    assert trained_on["split"] == "train" and trained_on["n"] == smoke_bench.splits()["train"]
    assert set(trained.categories) == set(CATEGORIES)
    assert trained.meta["validation"]["n"] == smoke_bench.splits()["val"]
    assert trained.meta["C"]["DF-D"] in C_GRID and trained.meta["C"]["DF-C"] in C_GRID


def test_numpy_prediction_matches_sklearn(trained, smoke_bench):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from dfabench_baselines.spectrum import features_of

    samples = smoke_bench.select("train")
    features = features_of(smoke_bench, samples)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=trained.meta["C"]["DF-D"], max_iter=5000,
                                                                  class_weight="balanced"))
    pipeline.fit(features, [s.label == "fake" for s in samples])
    p_fake, categories = trained.predict(features[:20])
    np.testing.assert_allclose(p_fake, pipeline.predict_proba(features[:20])[:, 1], atol=1e-6)
    for probs in categories:
        assert set(probs) == set(CATEGORIES) and abs(sum(probs.values()) - 1) < 1e-9


@pytest.mark.slow
def test_spectrum_beats_random_on_the_smoke_test_split(full_trained, full_bench, tmp_path):
    path = full_trained.save(tmp_path / "model.npz")
    detector = SpectrumDetector(weights=str(path))
    test = full_bench.select("test")
    requests = _requests(full_bench, test)
    labels = [int(s.label == "fake") for s in test]
    spectrum_scores = detector.score(requests)
    random_scores = RandomModel(seed=0, mode="score").score(requests)
    assert all(s.error is None for s in spectrum_scores)
    spectrum_auc = roc_auc(labels, [s.fake for s in spectrum_scores])
    random_auc = roc_auc(labels, [s.fake for s in random_scores])
    assert spectrum_auc > random_auc and spectrum_auc > 0.6, (spectrum_auc, random_auc)
    # entirely synthesised faces carry upsampling artefacts that the spectrum sees best
    efs = [i for i, s in enumerate(test) if s.label == "real" or s.category == "EFS"]
    assert roc_auc([labels[i] for i in efs], [spectrum_scores[i].fake for i in efs]) > 0.9
    # DF-C: better than chance (1/4) on the fakes
    fakes = [(sc.categories, s.category) for sc, s in zip(spectrum_scores, test, strict=True) if s.label == "fake"]
    assert sum(max(c, key=c.get) == truth for c, truth in fakes) / len(fakes) > 0.4


def test_save_load_round_trip_without_pickle(trained, tmp_path):
    path = trained.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as data:
        assert "header" in data.files
    loaded = SpectrumClassifier.load(path)
    features = np.stack([spectrum_features(_pattern(i)) for i in range(3)])
    p_before, categories_before = trained.predict(features)
    p_after, categories_after = loaded.predict(features)
    assert np.array_equal(p_before, p_after) and categories_before == categories_after
    assert loaded.fingerprint() == trained.fingerprint()
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(InputError, match="junk.npz"):
        SpectrumClassifier.load(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="no such model file"):
        SpectrumDetector(weights=str(tmp_path / "absent.npz"))


def test_prepare_trains_once_then_uses_the_cache(smoke_bench, trained, cache_env, monkeypatch):
    import dfabench_baselines.spectrum as spectrum

    path = cached_model_path(smoke_bench.fingerprint())
    assert str(path).startswith(str(cache_env / "baselines"))
    if not path.exists():
        trained.save(path)  # as if an earlier run had trained it
    monkeypatch.setattr(spectrum, "train_spectrum", lambda *a, **k: pytest.fail("should not train again"))
    detector = SpectrumDetector()
    assert detector.identity().get("trained_on") is None  # not prepared yet
    detector.prepare(smoke_bench)
    identity = detector.identity()
    assert identity["trained_on"]["fingerprint"] == smoke_bench.fingerprint()
    assert identity["weights_sha256"] == trained.fingerprint()
    assert identity["settings"]["features"] == {"kind": "azimuthal-log-fft", "version": 1, "size": 256, "n": 182}
    # a different setting is a different model, hence a different cache entry and identity
    assert cached_model_path(smoke_bench.fingerprint(), C=0.1) != path


def test_prepare_without_train_split_and_bad_arguments(tmp_path, cache_env):
    Image.fromarray(_pattern(3)).save(tmp_path / "a.png")
    write_manifest(tmp_path / "manifest.jsonl", [{"id": "a", "image": "a.png", "label": "real", "split": "test"}])
    with pytest.raises(DfabenchError, match="no 'train' split"):
        SpectrumDetector().prepare(load_benchmark(tmp_path))
    with pytest.raises(DfabenchError, match="C must be"):
        SpectrumDetector(C="lots")
    with pytest.raises(DfabenchError, match="size must be"):
        SpectrumDetector(size=4)


def test_a_bad_image_fails_only_its_sample(trained, tmp_path):
    detector = SpectrumDetector(weights=str(trained.save(tmp_path / "m.npz")))
    good = ScoreRequest("good", Image.fromarray(_pattern(5)), "good.png")
    bad = ScoreRequest("bad", None, "bad.png")
    scores = detector.score([good, bad])
    assert scores[0].error is None and 0 <= scores[0].fake <= 1
    assert scores[1].fake is None and "spectrum features failed" in scores[1].error


# --------------------------------------------------------------------------- plugin, CLI, end to end


def test_plugin_registers_spectrum_without_importing_heavy_modules():
    code = ("import sys; from dfabench.plugins import PluginManager; m = PluginManager(); "
            "e = m.models.get('spectrum'); print(e.capabilities, e.factory, e.distribution); "
            "print('sklearn' in sys.modules, 'dfabench_baselines.spectrum' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "('score',) dfabench_baselines.spectrum:SpectrumDetector dfabench-baselines"
    assert out[1] == "False False"


def test_cli_train_and_info(smoke_bench, tmp_path, capsys):
    from dfabench_baselines.cli import main

    out = tmp_path / "spectrum.npz"
    assert main(["train", "--bench", str(smoke_bench.root), "--out", str(out), "--C", "0.01"]) == 0
    assert "weights=" in capsys.readouterr().out and out.is_file()
    assert main(["info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["trained_on"]["fingerprint"] == smoke_bench.fingerprint() and info["C"]["DF-D"] == 0.01
    assert main(["info", str(tmp_path / "absent.npz")]) == 2


@pytest.mark.slow
def test_dfabench_run_end_to_end(full_bench, full_trained, cache_env, tmp_path):
    smoke_bench = full_bench
    path = cached_model_path(smoke_bench.fingerprint())
    if not path.exists():
        full_trained.save(path)  # trained by the test above: do not pay for it twice
    run_dir = tmp_path / "run"
    env = {**os.environ, "DFABENCH_CACHE_DIR": str(cache_env)}
    result = subprocess.run([sys.executable, "-m", "dfabench.cli", "run", "--model", "spectrum",
                             "--tasks", "DF-D,DF-C", "--bench", str(smoke_bench.root), "--out", str(run_dir),
                             "--no-progress", "--n-boot", "200"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    record = json.loads((run_dir / "run.json").read_text())
    assert record["metrics"]["DF-D"]["auc"]["value"] > 0.5
    assert record["counts"]["DF-D"]["n_failed"] == 0 and record["counts"]["DF-C"]["n_failed"] == 0
    assert record["model"]["identity"]["trained_on"]["fingerprint"] == smoke_bench.fingerprint()
    assert "auc" in result.stdout
