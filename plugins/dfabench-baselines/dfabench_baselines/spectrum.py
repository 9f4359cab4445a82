"""The spectrum detector: spectrum features + logistic regression, for DF-D and DF-C.

- DF-D: a binary logistic regression on standardised features gives the probability of fake;
  classes are weighted to balance, so 0.5 is a threshold that does not favour the majority class.
- DF-C: a multinomial logistic regression, fitted on the fakes only, gives the probabilities of
  FS / FR / FE / EFS (a category absent from the training data gets probability 0).

Training (:func:`train_spectrum`) uses the ``train`` split of a benchmark only, with a fixed
regularisation ``C`` or one chosen by grouped cross-validation on that split; the test split is
never looked at. The fitted model is saved without pickle: one ``.npz`` file holding the
standardisers, the coefficients and a JSON string with the settings and the training benchmark's
fingerprint (:class:`SpectrumClassifier`). Prediction needs numpy only.

Model arguments (``--model-arg``): ``weights=PATH`` (a saved model: no training), ``size``
(features' image size, default 256), ``C`` (inverse regularisation, or ``auto`` (default): chosen
by cross-validation on the train split, folds grouped by ``source_id``).
Without ``weights``, :meth:`SpectrumDetector.prepare` loads the model cached for the benchmark's
fingerprint (``$DFABENCH_CACHE_DIR/baselines/`` or ``~/.cache/dfabench/baselines/``) or trains and
caches it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from dfabench.api import CATEGORIES, DfabenchError, InputError, Model, ScoreRequest, Scores, load_or_train, open_rgb
from dfabench.api import cache_dir as dfabench_cache_dir

from dfabench_baselines.features import DEFAULT_SIZE, FEATURE_KIND, FEATURE_VERSION, n_features, spectrum_features

if TYPE_CHECKING:  # pragma: no cover
    from dfabench.api import Benchmark

MODEL_FORMAT = "dfabench-baselines/spectrum-v1"
_ARRAYS = ("detect_mean", "detect_scale", "detect_coef", "detect_intercept",
           "category_mean", "category_scale", "category_coef", "category_intercept")


def cache_dir() -> Path:
    """Where trained models are cached: ``$DFABENCH_CACHE_DIR/baselines`` or ``~/.cache/dfabench/baselines``."""
    return dfabench_cache_dir() / "baselines"


#: candidate regularisation strengths when ``C="auto"``
C_GRID = (0.001, 0.01, 0.1)
CV_FOLDS = 4


def _settings(size: int, C: float | str) -> dict[str, Any]:
    return {"features": {"kind": FEATURE_KIND, "version": FEATURE_VERSION, "size": size, "n": n_features(size)},
            "classifier": {"kind": "logistic-regression", "C": C, "standardised": True, "class_weight": "balanced",
                           **({"C_grid": list(C_GRID), "C_selection": f"{CV_FOLDS}-fold cross-validation on the train "
                               "split, folds grouped by source_id"} if C == "auto" else {})}}


def _parse_C(value: Any) -> float | str:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        C = float(value)
    except (TypeError, ValueError):
        raise DfabenchError(f"spectrum: C must be a positive number or 'auto', not {value!r}") from None
    if not C > 0:
        raise DfabenchError(f"spectrum: C must be positive, not {C}")
    return C


def cached_model_path(fingerprint: str, size: int = DEFAULT_SIZE, C: float | str = "auto") -> Path:
    """The cache file of the model trained on the benchmark with ``fingerprint`` with these settings."""
    settings = hashlib.sha256(json.dumps([MODEL_FORMAT, _settings(size, C)], sort_keys=True).encode()).hexdigest()
    return cache_dir() / f"spectrum-{fingerprint[:24]}-{settings[:12]}.npz"


@dataclass
class SpectrumClassifier:
    """A fitted spectrum detector: standardisers and logistic-regression coefficients (numpy only)."""

    size: int
    detect_mean: np.ndarray
    detect_scale: np.ndarray
    detect_coef: np.ndarray  # (n_features,)
    detect_intercept: np.ndarray  # (1,)
    categories: tuple[str, ...]
    category_mean: np.ndarray
    category_scale: np.ndarray
    category_coef: np.ndarray  # (n_categories, n_features)
    category_intercept: np.ndarray  # (n_categories,)
    meta: dict[str, Any] = field(default_factory=dict)

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, list[dict[str, float]]]:
        """Probability of fake and category probabilities (all four keys) for each feature row."""
        features = np.atleast_2d(features)
        z = (features - self.detect_mean) / self.detect_scale
        logit = z @ self.detect_coef + self.detect_intercept[0]
        p_fake = 0.5 * (1.0 + np.tanh(logit / 2))  # the logistic function, without overflow
        out: list[dict[str, float]] = []
        if len(self.categories) == 1:
            out = [{c: float(c == self.categories[0]) for c in CATEGORIES} for _ in range(len(features))]
        else:
            zc = (features - self.category_mean) / self.category_scale
            scores = zc @ self.category_coef.T + self.category_intercept
            if len(self.categories) == 2 and scores.shape[1] == 1:  # binary: one coefficient row
                scores = np.hstack([-scores / 2, scores / 2])
            scores -= scores.max(axis=1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=1, keepdims=True)
            for row in probs:
                known = dict(zip(self.categories, (float(p) for p in row), strict=True))
                out.append({c: known.get(c, 0.0) for c in CATEGORIES})
        return p_fake, out

    def fingerprint(self) -> str:
        """SHA-256 over the settings, the coefficients and the training record: changes when the model does."""
        digest = hashlib.sha256(MODEL_FORMAT.encode())
        digest.update(json.dumps({"size": self.size, "categories": list(self.categories), "meta": self.meta},
                                 sort_keys=True).encode())
        for name in _ARRAYS:
            array = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            digest.update(f"{name}{array.shape}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write the model as one ``.npz`` (arrays + a JSON string; no pickle), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {"format": MODEL_FORMAT, "size": self.size, "categories": list(self.categories), "meta": self.meta}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.savez(handle, header=np.array(json.dumps(header, sort_keys=True)),
                     **{name: np.asarray(getattr(self, name), dtype=np.float64) for name in _ARRAYS})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SpectrumClassifier:
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "no such model file")
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                arrays = {name: np.array(data[name], dtype=np.float64) for name in _ARRAYS}
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(path, f"not a dfabench-baselines spectrum model ({exc})") from None
        found = header.get("format") if isinstance(header, dict) else None
        if found != MODEL_FORMAT:
            raise InputError(path, f"not a {MODEL_FORMAT} model (format {found!r})")
        size = int(header["size"])
        if arrays["detect_coef"].shape != (n_features(size),):
            raise InputError(path, f"coefficients of shape {arrays['detect_coef'].shape} do not match "
                                   f"image size {size} ({n_features(size)} features)")
        return cls(size=size, categories=tuple(header["categories"]), meta=header.get("meta", {}), **arrays)


# --------------------------------------------------------------------------- training


def _decode(benchmark: Benchmark, relative: str):
    path = benchmark.path_of(relative)
    try:
        return open_rgb(path)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot decode the image ({exc})") from None


def features_of(benchmark: Benchmark, samples, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Feature matrix of benchmark samples (decoding each image)."""
    return np.stack([spectrum_features(_decode(benchmark, s.image), size) for s in samples])


def _choose_C(features: np.ndarray, targets: list, groups: list[str], scoring: str) -> float:
    """The C of :data:`C_GRID` with the best mean cross-validated score (folds grouped by source)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_folds = min(CV_FOLDS, len(set(groups)))
    if n_folds < 2:
        return 0.1  # too few sources to cross-validate: a moderate regularisation
    best, best_score = C_GRID[0], -np.inf
    for C in C_GRID:
        pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, class_weight="balanced"))
        try:
            score = float(np.mean(cross_val_score(pipeline, features, targets, groups=groups,
                                                  cv=GroupKFold(n_splits=n_folds), scoring=scoring)))
        except ValueError:  # a fold with one class only
            continue
        if score > best_score + 1e-9:
            best, best_score = C, score
    return best


def train_spectrum(benchmark: Benchmark, *, size: int = DEFAULT_SIZE, C: float | str = "auto",
                   split: str = "train") -> SpectrumClassifier:
    """Fit the detector on one split (``train``) of ``benchmark``.

    ``C="auto"`` picks the regularisation from :data:`C_GRID` by cross-validation on the same
    split (folds grouped by ``source_id``; DF-D by AUC, DF-C by accuracy); the test split is
    never looked at. Raises :class:`~dfabench.errors.DfabenchError` when the split is missing or
    has a single class. If the benchmark has a ``val`` split, its DF-D AUC and DF-C accuracy are
    recorded in ``meta["validation"]`` (for information: nothing is tuned on it).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    C = _parse_C(C)

    splits = benchmark.splits()
    if split not in splits:
        raise DfabenchError(f"spectrum: benchmark {benchmark.root} has no {split!r} split to train on "
                            f"(splits: {', '.join(sorted(splits))}); train on another benchmark with "
                            "`dfabench-baselines train --bench DIR --out MODEL.npz` and pass "
                            "--model-arg weights=MODEL.npz")
    samples = benchmark.select(split)
    labels = np.array([s.label == "fake" for s in samples])
    if labels.all() or not labels.any():
        raise DfabenchError(f"spectrum: the {split!r} split of {benchmark.root} has only "
                            f"{'fake' if labels.all() else 'real'} images; DF-D needs both")
    features = features_of(benchmark, samples, size)
    groups = [s.cluster for s in samples]
    detect_C = _choose_C(features, list(labels), groups, "roc_auc") if C == "auto" else C
    detect_scaler = StandardScaler().fit(features)
    detector = LogisticRegression(C=detect_C, max_iter=5000, class_weight="balanced").fit(
        detect_scaler.transform(features), labels)
    category_C = None

    fakes = [i for i, s in enumerate(samples) if s.label == "fake" and s.category in CATEGORIES]
    if fakes:
        fake_features = features[fakes]
        fake_categories = [samples[i].category for i in fakes]
        category_scaler = StandardScaler().fit(fake_features)
        present = sorted(set(fake_categories), key=CATEGORIES.index)
        if len(present) > 1:
            category_C = (_choose_C(fake_features, fake_categories, [groups[i] for i in fakes], "accuracy")
                          if C == "auto" else C)
            categoriser = LogisticRegression(C=category_C, max_iter=5000, class_weight="balanced").fit(
                category_scaler.transform(fake_features), fake_categories)
            categories = tuple(str(c) for c in categoriser.classes_)
            category_coef, category_intercept = categoriser.coef_, categoriser.intercept_
        else:
            categories = tuple(present)
            category_coef = np.zeros((1, features.shape[1]))
            category_intercept = np.zeros(1)
        category_mean, category_scale = category_scaler.mean_, category_scaler.scale_
    else:
        categories = ("FS",)  # no categorised fakes: DF-C scores carry no information
        category_mean, category_scale = np.zeros(features.shape[1]), np.ones(features.shape[1])
        category_coef, category_intercept = np.zeros((1, features.shape[1])), np.zeros(1)

    counts: dict[str, int] = {}
    for s in samples:
        key = s.category if s.label == "fake" and s.category else s.label
        counts[key] = counts.get(key, 0) + 1
    model = SpectrumClassifier(
        size=size,
        detect_mean=detect_scaler.mean_, detect_scale=_safe_scale(detect_scaler.scale_),
        detect_coef=detector.coef_[0], detect_intercept=detector.intercept_,
        categories=categories, category_mean=category_mean, category_scale=_safe_scale(category_scale),
        category_coef=category_coef, category_intercept=category_intercept,
        meta={"trained_on": {"benchmark": benchmark.name, "fingerprint": benchmark.fingerprint(), "split": split,
                             "n": len(samples), "counts": dict(sorted(counts.items()))},
              "settings": _settings(size, C), "C": {"DF-D": detect_C, "DF-C": category_C}},
    )
    if "val" in splits and split != "val":
        model.meta["validation"] = _validate(model, benchmark, size)
    return model


def _safe_scale(scale: np.ndarray) -> np.ndarray:
    scale = np.asarray(scale, dtype=np.float64).copy()
    scale[scale == 0] = 1.0
    return scale


def _validate(model: SpectrumClassifier, benchmark: Benchmark, size: int) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    samples = benchmark.select("val")
    p_fake, categories = model.predict(features_of(benchmark, samples, size))
    labels = [s.label == "fake" for s in samples]
    result: dict[str, Any] = {"n": len(samples)}
    result["dfd_auc"] = round(float(roc_auc_score(labels, p_fake)), 4) if 0 < sum(labels) < len(labels) else None
    fakes = [(c, s.category) for c, s in zip(categories, samples, strict=True) if s.label == "fake" and s.category]
    if fakes:
        correct = sum(max(c, key=c.get) == truth for c, truth in fakes)
        result["dfc_accuracy"] = round(correct / len(fakes), 4)
    return result


# --------------------------------------------------------------------------- the dfabench model


class SpectrumDetector(Model):
    """dfabench model ``spectrum``: score-capable (DF-D probability of fake, DF-C category probabilities)."""

    capabilities = frozenset({"score"})
    deterministic = True
    default_batch_size = 64

    def __init__(self, weights: str | None = None, size: int = DEFAULT_SIZE, C: float | str = "auto"):
        try:
            self.size = int(size)
        except (TypeError, ValueError):
            raise DfabenchError(f"spectrum: size must be an integer, not {size!r}") from None
        if not 16 <= self.size <= 4096:
            raise DfabenchError(f"spectrum: size must be between 16 and 4096, not {self.size}")
        self.C = _parse_C(C)
        self.weights = Path(weights).expanduser() if weights else None
        self.model: SpectrumClassifier | None = None
        self.source: str | None = None
        if self.weights is not None:
            self.model = SpectrumClassifier.load(self.weights)
            self.size = self.model.size
            self.source = str(self.weights)

    def prepare(self, benchmark: Benchmark) -> None:
        """Use the given weights, else the model cached for this benchmark, else train on its train split."""
        if self.model is not None:
            return
        path = cached_model_path(benchmark.fingerprint(), self.size, self.C)
        self.model, kept = load_or_train(path, SpectrumClassifier.load,
                                         lambda: train_spectrum(benchmark, size=self.size, C=self.C))
        self.source = str(kept) if kept else None

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {"settings": _settings(self.size, self.C)}
        if self.model is not None:
            identity["settings"] = self.model.meta.get("settings", identity["settings"])
            identity["trained_on"] = self.model.meta.get("trained_on")
            identity["weights_sha256"] = self.model.fingerprint()
        return identity

    def score(self, requests: list[ScoreRequest]) -> list[Scores]:
        if self.model is None:
            raise DfabenchError("spectrum: no trained model; prepare(benchmark) must run first or weights be given")
        out: list[Scores | None] = [None] * len(requests)
        rows, where = [], []
        for i, request in enumerate(requests):
            try:
                rows.append(spectrum_features(request.image, self.model.size))
                where.append(i)
            except Exception as exc:  # noqa: BLE001 - one bad image fails that sample only
                out[i] = Scores(error=f"spectrum features failed: {type(exc).__name__}: {exc}")
        if rows:
            p_fake, categories = self.model.predict(np.stack(rows))
            for i, p, cats in zip(where, p_fake, categories, strict=True):
                out[i] = Scores(fake=float(p), categories=cats)
        return [s if s is not None else Scores(error="not scored") for s in out]
