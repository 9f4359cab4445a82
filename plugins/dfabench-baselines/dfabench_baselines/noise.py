"""The noise-inconsistency localizer: a classical forgery-localization baseline (numpy and pillow only).

A camera leaves a roughly uniform noise (grain) over a photograph. A region that was pasted from
another picture, blurred, re-rendered at a lower resolution or sharpened carries a different noise
level, and that inconsistency is what this model maps, in the spirit of blind local noise
estimation for splicing localization (Mahdian & Saic, "Using noise inconsistencies for blind image
forensics", Image and Vision Computing 2009; Lyu, Pan & Zhang, "Exposing region splicing forgeries
with blind local noise estimation", IJCV 2014). Nothing is learned about the pixels:

1. **residual**: each RGB channel minus the mean of its four neighbours (a 4-neighbour Laplacian,
   a high-pass filter that keeps the grain and removes smooth content);
2. **local energy**: the log of the mean squared residual in a ``(2r+1)²`` window, ``r = 4`` pixels
   at 256 px (windows scale with the image; images longer than ``max_side`` are analysed
   downscaled);
3. **z-score** of that log-energy against the image's *own* statistics (median and MAD, so the
   forged area does not shift the reference), averaged over the three channels: ``z < 0`` where
   the grain is weaker than usual in this image (smoothed, re-rendered), ``z > 0`` where it is
   stronger (sharpened, noisier donor);
4. **smoothing**: ``|z|`` averaged in a window of radius 6 px at 256 px;
5. **mask**: the pixels where the smoothed ``|z|`` exceeds a threshold, as a 2-D uint8 array (0 / 255)
   of the image's size.

What is fitted, on the benchmark's ``train`` split only (the test split is never looked at):
the mask threshold (from :data:`THRESHOLD_GRID`, by the mean IoU against the train split's
reference masks; :data:`DEFAULT_THRESHOLD` when there are no masks to fit on) and two logistic
regressions on ten statistics of the map (:func:`map_features`): DF-D (fake or real, classes
balanced) and DF-C (FS / FR / FE / EFS, fakes only). The fitted model is a small JSON file, cached
under ``$DFABENCH_CACHE_DIR/baselines/`` by the benchmark's fingerprint, like the spectrum model.

Answers (:class:`NoiseInconsistencyLocalizer`): FL gets the mask and a report naming the facial
regions where the mask lies and how the grain differs there; AD and FC get the same report (no
mask); DF-D gets "Yes"/"No" with the probability as choice log-probabilities (so AUC is scored);
DF-C the most probable category. Regions are fixed fractions of the image (:data:`REGIONS`): this
assumes an aligned face crop (eyes at about 40 % of the height, mouth at about 73 %), as in
MMTT, DFA-Bench and the smoke benchmark. Without a train split there are no DF-D / DF-C
classifiers, and those requests fail (visibly) rather than answer at random.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from dfabench.api import (
    DfabenchError,
    GenerateRequest,
    InputError,
    Model,
    Response,
    atomic_write_text,
    load_mask,
    load_or_train,
    mask_scores,
)

from dfabench_baselines.spectrum import CATEGORIES, _decode, _safe_scale, cache_dir

if TYPE_CHECKING:  # pragma: no cover
    from dfabench.api import Benchmark

MODEL_NAME = "noise-inconsistency"
MODEL_FORMAT = "dfabench-baselines/noise-inconsistency-v1"
METHOD = "laplacian-residual-local-log-energy-robust-z"
METHOD_VERSION = 1
#: window radii (pixels) at this image size; they scale with the shorter side of the analysed image
REFERENCE_SIZE = 256
ENERGY_RADIUS = 4
SMOOTH_RADIUS = 6
#: the mask threshold on the smoothed |z| when there is nothing to fit it on (two robust standard deviations)
DEFAULT_THRESHOLD = 2.0
#: candidate thresholds when fitting on the train split's masks
THRESHOLD_GRID = tuple(round(0.5 + 0.25 * i, 2) for i in range(15))  # 0.5 .. 4.0
DEFAULT_MAX_SIDE = 1024
#: inverse regularisation of the DF-D and DF-C logistic regressions (standardised features)
CLASSIFIER_C = 1.0
MAD_FLOOR = 0.05  # in log-energy units: a mostly flat image does not turn every textured pixel into an outlier

#: facial regions of an aligned face crop, as fractions of the image: (name, top, bottom, left, right);
#: a pixel belongs to the first region that contains it, and to "outside the face" if none does
REGIONS: tuple[tuple[str, float, float, float, float], ...] = (
    ("eyes", 0.30, 0.50, 0.18, 0.82),
    ("forehead", 0.08, 0.30, 0.20, 0.80),
    ("nose", 0.50, 0.64, 0.38, 0.62),
    ("mouth and lips", 0.64, 0.82, 0.32, 0.68),
    ("cheeks", 0.50, 0.82, 0.12, 0.88),
    ("jawline and chin", 0.82, 0.98, 0.18, 0.82),
)
OUTSIDE = "outside the face (hair, background)"
REGION_NAMES = tuple(r[0] for r in REGIONS) + (OUTSIDE,)
#: a region is named in the report when at least this share of it is flagged ...
REGION_COVERAGE = 0.25
#: ... or when it holds at least this share of the flagged pixels
REGION_SHARE = 0.3
MAX_REGIONS = 4
FEATURE_NAMES = ("flagged_fraction", "mean_abs_z", "p99_abs_z", "mean_signed_z_flagged",
                 *(f"flagged_{name.replace(' ', '_')}" for name in REGION_NAMES[:-1]))

_CATEGORY_TEXT = {"FS": "Face swapping is used.", "FR": "Face reenactment is used.",
                  "FE": "Face editing is used.", "EFS": "Entire face synthesis is used."}
_NO_CLASSIFIER = (", and this benchmark has none (or none was prepared); pass --model-arg weights=MODEL.json, "
                  "a fitted model such as the one cached for another benchmark")
_NOT_LOCATED = ("No region shows inconsistent noise: the image grain is consistent across the face, "
                "so no manipulated region is located.")


# --------------------------------------------------------------------------- the map


def box_mean(array: np.ndarray, radius: int) -> np.ndarray:
    """Mean of ``array`` over a ``(2 radius + 1)²`` window centred on each pixel (borders mirrored)."""
    k = 2 * radius + 1
    padded = np.pad(array, ((radius + 1, radius), (radius + 1, radius)), mode="reflect")
    total = padded.cumsum(0).cumsum(1)
    return (total[k:, k:] - total[:-k, k:] - total[k:, :-k] + total[:-k, :-k]) / (k * k)


def laplacian_residual(channel: np.ndarray) -> np.ndarray:
    """The channel minus the mean of its four neighbours (times 4): the high-pass noise residual."""
    p = np.pad(channel, 1, mode="reflect")
    return 4.0 * channel - p[:-2, 1:-1] - p[2:, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:]


@dataclass
class NoiseMap:
    """The inconsistency map of one image, at the analysis resolution.

    ``magnitude``: smoothed ``|z|`` (how unusual the local noise level is); ``signed``: smoothed
    ``z`` (< 0: weaker grain than the rest of the image, > 0: stronger); ``size``: the image's
    (width, height), which the full-size mask gets.
    """

    magnitude: np.ndarray
    signed: np.ndarray
    size: tuple[int, int]

    def flagged(self, threshold: float) -> np.ndarray:
        """Boolean mask at the analysis resolution."""
        return self.magnitude > threshold

    def mask(self, threshold: float) -> np.ndarray:
        """The forgery mask: a 2-D uint8 array, 255 = forged, 0 = authentic, of the image's size."""
        from PIL import Image

        binary = np.where(self.flagged(threshold), 255, 0).astype(np.uint8)
        if (binary.shape[1], binary.shape[0]) != self.size:
            binary = np.asarray(Image.fromarray(binary).resize(self.size, Image.Resampling.NEAREST))
        return binary


def _radius(base: int, shorter_side: int) -> int:
    return max(1, round(base * shorter_side / REFERENCE_SIZE))


def analyse(image, max_side: int = DEFAULT_MAX_SIDE) -> NoiseMap:
    """The noise-inconsistency map of a PIL image or an HxW(x3) uint8 array."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    size = image.size
    rgb = image.convert("RGB")
    if max(size) > max_side:
        scale = max_side / max(size)
        rgb = rgb.resize((max(1, round(size[0] * scale)), max(1, round(size[1] * scale))), Image.Resampling.BOX)
    pixels = np.asarray(rgb, dtype=np.float64)
    shorter = min(pixels.shape[:2])
    energy_r, smooth_r = _radius(ENERGY_RADIUS, shorter), _radius(SMOOTH_RADIUS, shorter)
    z = np.zeros(pixels.shape[:2])
    for c in range(3):
        residual = laplacian_residual(pixels[..., c])
        energy = np.log(box_mean(residual * residual, energy_r) + 1.0)
        median = float(np.median(energy))
        mad = max(float(np.median(np.abs(energy - median))) * 1.4826, MAD_FLOOR)
        z += (energy - median) / mad
    z /= 3.0
    return NoiseMap(box_mean(np.abs(z), smooth_r), box_mean(z, smooth_r), size)


@lru_cache(maxsize=16)
def region_labels(height: int, width: int) -> np.ndarray:
    """Index into :data:`REGION_NAMES` of each pixel of a ``height`` x ``width`` image."""
    labels = np.full((height, width), len(REGIONS), dtype=np.intp)
    ys = (np.arange(height) + 0.5) / height
    xs = (np.arange(width) + 0.5) / width
    for index in reversed(range(len(REGIONS))):  # the first region listed wins where they overlap
        _name, top, bottom, left, right = REGIONS[index]
        inside = ((ys >= top) & (ys < bottom))[:, None] & ((xs >= left) & (xs < right))[None, :]
        labels[inside] = index
    labels.setflags(write=False)
    return labels


def region_stats(nmap: NoiseMap, flagged: np.ndarray) -> list[dict[str, Any]]:
    """Per region: its flagged share (coverage), its share of all flagged pixels, the mean signed z there."""
    labels = region_labels(*flagged.shape)
    n_labels = len(REGION_NAMES)
    area = np.bincount(labels.ravel(), minlength=n_labels)
    hits = np.bincount(labels.ravel(), weights=flagged.ravel().astype(np.float64), minlength=n_labels)
    signed = np.bincount(labels.ravel(), weights=(nmap.signed * flagged).ravel(), minlength=n_labels)
    total = max(float(hits.sum()), 1.0)
    return [{"region": name, "coverage": float(hits[i] / max(area[i], 1)), "share": float(hits[i] / total),
             "flagged": int(hits[i]), "signed_z": float(signed[i] / hits[i]) if hits[i] else 0.0}
            for i, name in enumerate(REGION_NAMES)]


def map_features(nmap: NoiseMap, threshold: float) -> np.ndarray:
    """Ten statistics of a map (:data:`FEATURE_NAMES`): what the DF-D and DF-C classifiers see."""
    flagged = nmap.flagged(threshold)
    stats = region_stats(nmap, flagged)
    signed = float(nmap.signed[flagged].mean()) if flagged.any() else 0.0
    return np.array([float(flagged.mean()), float(nmap.magnitude.mean()), float(np.percentile(nmap.magnitude, 99)),
                     signed, *(s["coverage"] for s in stats[:-1])])


def report(nmap: NoiseMap, threshold: float) -> str:
    """The written report: the regions where the mask lies, how the grain differs there, the boundary."""
    flagged = nmap.flagged(threshold)
    if not flagged.any():
        return _NOT_LOCATED
    stats = region_stats(nmap, flagged)
    chosen = [s for s in stats if s["flagged"] and (s["coverage"] >= REGION_COVERAGE or s["share"] >= REGION_SHARE)]
    chosen = sorted(chosen or [max(stats, key=lambda s: s["flagged"])], key=lambda s: -s["flagged"])[:MAX_REGIONS]
    lines = []
    for number, s in enumerate(chosen, 1):
        grain = "smoother, with less fine grain," if s["signed_z"] < 0 else "noisier, with stronger fine grain,"
        lines.append(f"{number}. {s['region'][0].upper()}{s['region'][1:]}: the texture is {grain} than in "
                     "the rest of the image (inconsistent noise).")
    smoother = sum(s["flagged"] for s in chosen if s["signed_z"] < 0) >= sum(s["flagged"] for s in chosen) / 2
    how = ("blurred, re-rendered at a lower resolution or pasted from another picture" if smoother
           else "sharpened or pasted from another picture")
    lines.append(f"{len(chosen) + 1}. Blending boundary: the noise level changes abruptly along the edge of the "
                 f"flagged area ({100 * float(flagged.mean()):.0f}% of the image), where a region that was {how} "
                 "meets the original image.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the fitted model


def _settings(max_side: int, threshold: float | str) -> dict[str, Any]:
    return {"method": METHOD, "version": METHOD_VERSION, "reference_size": REFERENCE_SIZE,
            "energy_radius": ENERGY_RADIUS, "smooth_radius": SMOOTH_RADIUS, "max_side": max_side,
            "threshold": threshold, "threshold_grid": list(THRESHOLD_GRID), "default_threshold": DEFAULT_THRESHOLD,
            "regions": [list(r) for r in REGIONS], "features": list(FEATURE_NAMES),
            "classifier": {"kind": "logistic-regression", "C": CLASSIFIER_C, "standardised": True,
                           "class_weight": "balanced"}}


def cached_model_path(fingerprint: str, max_side: int = DEFAULT_MAX_SIDE, threshold: float | str = "auto") -> Path:
    """The cache file of the model fitted on the benchmark with ``fingerprint`` with these settings."""
    settings = hashlib.sha256(json.dumps([MODEL_FORMAT, _settings(max_side, threshold)],
                                         sort_keys=True).encode()).hexdigest()
    return cache_dir() / f"{MODEL_NAME}-{fingerprint[:24]}-{settings[:12]}.json"


@dataclass
class NoiseModel:
    """What is fitted: the mask threshold and the DF-D / DF-C logistic regressions (``None``: not fitted).

    ``detect``: ``mean``, ``scale``, ``coef`` (one row), ``intercept``; ``categorise``: the same plus
    ``classes`` (one row of ``coef`` per class; a single class gives that class always).
    """

    threshold: float
    detect: dict[str, Any] | None = None
    categorise: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": MODEL_FORMAT, "threshold": self.threshold, "detect": self.detect,
                "categorise": self.categorise, "meta": self.meta}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def p_fake(self, features: np.ndarray) -> float:
        d = self.detect
        z = (features - np.asarray(d["mean"])) / np.asarray(d["scale"])
        logit = float(z @ np.asarray(d["coef"][0]) + d["intercept"][0])
        return 0.5 * (1.0 + math.tanh(logit / 2))  # the logistic function, without overflow

    def category_probs(self, features: np.ndarray) -> dict[str, float]:
        c = self.categorise
        classes = list(c["classes"])
        if len(classes) == 1:
            probs = np.ones(1)
        else:
            z = (features - np.asarray(c["mean"])) / np.asarray(c["scale"])
            scores = np.asarray(c["coef"]) @ z + np.asarray(c["intercept"])
            if len(classes) == 2:  # binary: one coefficient row
                scores = np.array([-scores[0] / 2, scores[0] / 2])
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
        known = dict(zip(classes, (float(p) for p in probs), strict=True))
        return {k: known.get(k, 0.0) for k in CATEGORIES}

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), sort_keys=True, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> NoiseModel:
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "no such model file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
                raise ValueError(f"format {data.get('format') if isinstance(data, dict) else None!r}")
            threshold = float(data["threshold"])
            if not math.isfinite(threshold) or threshold <= 0:
                raise ValueError(f"threshold {threshold}")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(path, f"not a {MODEL_FORMAT} model ({exc})") from None
        return cls(threshold, data.get("detect"), data.get("categorise"), data.get("meta") or {})


def _logistic(features: np.ndarray, targets: list, classes_kind: str) -> dict[str, Any] | None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    present = sorted(set(targets), key=str)
    if len(present) < 2:
        if classes_kind == "category" and present:
            return {"classes": present}
        return None
    scaler = StandardScaler().fit(features)
    scale = _safe_scale(scaler.scale_)
    model = LogisticRegression(C=CLASSIFIER_C, max_iter=5000, class_weight="balanced").fit(
        (features - scaler.mean_) / scale, targets)
    return {"classes": [c.item() if hasattr(c, "item") else c for c in model.classes_],
            "mean": scaler.mean_.tolist(), "scale": scale.tolist(), "coef": model.coef_.tolist(),
            "intercept": model.intercept_.tolist()}


def fit_threshold(maps: list[NoiseMap], truths: list[np.ndarray]) -> tuple[float, float]:
    """The threshold of :data:`THRESHOLD_GRID` with the best mean IoU of the masks against ``truths``
    (boolean arrays of each map's analysis size); returns it and that IoU. Ties go to the lower one."""
    best, best_iou = THRESHOLD_GRID[0], -1.0
    for threshold in THRESHOLD_GRID:
        iou = float(np.mean([mask_scores(m.flagged(threshold), t)["iou"] for m, t in zip(maps, truths, strict=True)]))
        if iou > best_iou + 1e-12:
            best, best_iou = threshold, iou
    return best, best_iou


def fit_noise_model(benchmark: Benchmark, *, split: str = "train", max_side: int = DEFAULT_MAX_SIDE,
                    threshold: float | str = "auto") -> NoiseModel:
    """Fit the threshold (``"auto"``: on ``split``'s reference masks) and the DF-D / DF-C classifiers
    on ``split`` of ``benchmark``. The other splits are never looked at."""
    from PIL import Image

    samples = benchmark.select(split)
    if not samples:
        raise DfabenchError(f"{MODEL_NAME}: benchmark {benchmark.root} has no {split!r} split to fit on")
    maps = [analyse(_decode(benchmark, s.image), max_side) for s in samples]
    masked = [(m, s) for m, s in zip(maps, samples, strict=True) if s.mask]
    fitted_on: dict[str, Any] = {"n_masks": len(masked)}
    if threshold != "auto":
        chosen, source = float(threshold), "given"
    elif masked:
        truths = []
        for m, s in masked:
            path = benchmark.path_of(s.mask)
            try:
                truth = load_mask(str(path))
            except (OSError, ValueError) as exc:
                raise InputError(path, f"cannot read the reference mask ({exc})", f"id {s.id!r}") from None
            shape = m.magnitude.shape
            if truth.shape != shape:
                resized = Image.fromarray(truth.astype(np.uint8) * 255).resize((shape[1], shape[0]),
                                                                               Image.Resampling.NEAREST)
                truth = np.asarray(resized) > 127
            truths.append(truth)
        chosen, iou = fit_threshold([m for m, _ in masked], truths)
        source = f"fitted: best mean IoU on the {split} split's masks"
        fitted_on["train_iou"] = round(iou, 4)
    else:
        chosen, source = DEFAULT_THRESHOLD, f"default: the {split} split has no masks"
    features = np.stack([map_features(m, chosen) for m in maps])
    labels = [s.label for s in samples]
    detect = _logistic(features, labels, "label")
    if detect is not None and detect["classes"] != ["fake", "real"]:
        raise DfabenchError(f"{MODEL_NAME}: unexpected labels {detect['classes']}")  # pragma: no cover
    if detect is not None:  # coef is for the second class ("real"): flip it to P(fake)
        detect["coef"] = [[-v for v in detect["coef"][0]]]
        detect["intercept"] = [-detect["intercept"][0]]
    fakes = [i for i, s in enumerate(samples) if s.label == "fake" and s.category in CATEGORIES]
    categorise = _logistic(features[fakes], [samples[i].category for i in fakes], "category") if fakes else None
    counts: dict[str, int] = {}
    for s in samples:
        key = s.category if s.label == "fake" and s.category else s.label
        counts[key] = counts.get(key, 0) + 1
    meta = {"trained_on": {"benchmark": benchmark.name, "fingerprint": benchmark.fingerprint(), "split": split,
                           "n": len(samples), "counts": dict(sorted(counts.items())), **fitted_on},
            "threshold_source": source, "settings": _settings(max_side, threshold)}
    return NoiseModel(chosen, detect, categorise, meta)


# --------------------------------------------------------------------------- the dfabench model


def _parse_threshold(value: Any) -> float | str:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise DfabenchError(f"{MODEL_NAME}: threshold must be a positive number or 'auto', not {value!r}") from None
    if not (math.isfinite(threshold) and threshold > 0):
        raise DfabenchError(f"{MODEL_NAME}: threshold must be positive, not {threshold}")
    return threshold


class NoiseInconsistencyLocalizer(Model):
    """dfabench model ``noise-inconsistency``: capabilities ``generate`` and ``localize``.

    Arguments: ``weights`` (a fitted model JSON, e.g. copied from the cache: no fitting),
    ``threshold`` (``auto`` (default): fitted on the train split's masks; or a number: fixed; with
    ``weights`` it sets the mask's threshold only),
    ``max_side`` (longer images are analysed downscaled to this many pixels; default 1024).
    """

    capabilities = frozenset({"generate", "localize"})
    deterministic = True
    default_batch_size = 32

    def __init__(self, weights: str | None = None, threshold: float | str = "auto",
                 max_side: int = DEFAULT_MAX_SIDE):
        self.threshold = _parse_threshold(threshold)
        try:
            self.max_side = int(max_side)
        except (TypeError, ValueError):
            raise DfabenchError(f"{MODEL_NAME}: max_side must be an integer, not {max_side!r}") from None
        if not 32 <= self.max_side <= 16384:
            raise DfabenchError(f"{MODEL_NAME}: max_side must be between 32 and 16384, not {self.max_side}")
        self.weights = Path(weights).expanduser() if weights else None
        self.model: NoiseModel | None = None
        if self.weights is not None:
            self.model = NoiseModel.load(self.weights)

    def prepare(self, benchmark: Benchmark) -> None:
        """Use the given weights, else the model cached for this benchmark, else fit on its train split
        (or, without one, use the default threshold and no DF-D / DF-C classifiers)."""
        if self.model is not None:
            return
        if "train" not in benchmark.splits():
            threshold = DEFAULT_THRESHOLD if self.threshold == "auto" else float(self.threshold)
            self.model = NoiseModel(threshold, meta={
                "trained_on": None, "settings": _settings(self.max_side, self.threshold),
                "threshold_source": "default: no train split" if self.threshold == "auto" else "given"})
            return
        path = cached_model_path(benchmark.fingerprint(), self.max_side, self.threshold)
        self.model, _ = load_or_train(
            path, NoiseModel.load, lambda: fit_noise_model(benchmark, max_side=self.max_side, threshold=self.threshold))

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {"settings": _settings(self.max_side, self.threshold)}
        if self.model is not None:
            identity["threshold"] = self.mask_threshold()
            identity["threshold_source"] = self.model.meta.get("threshold_source")
            identity["trained_on"] = self.model.meta.get("trained_on")
            identity["weights_sha256"] = self.model.fingerprint()
        return identity

    def _model(self) -> NoiseModel:
        if self.model is None:
            # no benchmark yet (e.g. `dfabench chat`): the default threshold, no classifiers
            threshold = DEFAULT_THRESHOLD if self.threshold == "auto" else float(self.threshold)
            self.model = NoiseModel(threshold, meta={"trained_on": None, "threshold_source": "default: not prepared",
                                                     "settings": _settings(self.max_side, self.threshold)})
        return self.model

    def mask_threshold(self) -> float:
        """The mask's threshold: the one given, else the fitted model's. (The DF-D / DF-C features always
        use the threshold the classifiers were fitted with.)"""
        return float(self.threshold) if self.threshold != "auto" else self._model().threshold

    def answer(self, request: GenerateRequest) -> Response:
        """The answer to one request (see the module docstring for what each task gets)."""
        model = self._model()
        nmap = analyse(request.image, self.max_side)
        kind = request.reference  # what the task compares the answer with (see GenerateRequest)
        if kind == "label":
            if model.detect is None:
                return Response(error=f"{MODEL_NAME}: no DF-D classifier: it is fitted on a benchmark's train split "
                                      f"with real and fake images{_NO_CLASSIFIER}")
            p = model.p_fake(map_features(nmap, model.threshold))
            text = "Yes, this face has been forged." if p >= 0.5 else "No, this face is real."
            logprobs = None
            if len(request.choices) == 2:
                yes, no = request.choices
                logprobs = {yes: math.log(max(p, 1e-12)), no: math.log(max(1.0 - p, 1e-12))}
            return Response(text=text, choice_logprobs=logprobs)
        if kind == "category":
            if model.categorise is None:
                return Response(error=f"{MODEL_NAME}: no DF-C classifier: it is fitted on the categorised fakes of "
                                      f"a benchmark's train split{_NO_CLASSIFIER}")
            probs = model.category_probs(map_features(nmap, model.threshold))
            return Response(text=_CATEGORY_TEXT[max(probs, key=lambda c: (probs[c], -CATEGORIES.index(c)))])
        threshold = self.mask_threshold()
        text = report(nmap, threshold)
        if kind != "mask_and_description":
            return Response(text=text)  # AD, FC: the report alone
        return Response(text=text, mask=nmap.mask(threshold))  # FL (and any other localization task)

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        out = []
        for request in requests:
            try:
                out.append(self.answer(request))
            except Exception as exc:  # noqa: BLE001 - one bad image fails that sample only
                out.append(Response(error=f"{MODEL_NAME} failed: {type(exc).__name__}: {exc}"))
        return out
