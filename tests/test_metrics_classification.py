"""Classification metrics against scikit-learn, and the detection / ranking / classification providers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from dfabench.errors import InputError
from dfabench.metrics import MetricContext
from dfabench.metrics.classification import (
    CATEGORIES,
    UNPARSED_COLUMN,
    _ScoreLevels,
    accuracy,
    average_precision,
    balanced_accuracy,
    category_metrics,
    confusion_matrix,
    detection_metrics,
    eer,
    macro_f1,
    ranking_metrics,
    ranking_replicates,
    roc_auc,
)

NONE = "__none__"  # how a None prediction is written for scikit-learn: a class of its own, in no label list


def _random_scores(rng: np.random.Generator, n: int, tied: bool) -> np.ndarray:
    if tied:  # few distinct values: many ties, across and within classes
        return rng.integers(0, rng.integers(1, 6), size=n) / 4.0
    return rng.random(n)


def _deepfakebench_eer(y: np.ndarray, s: np.ndarray) -> float:
    fpr, tpr, _ = skm.roc_curve(y, s, pos_label=1)
    return float(fpr[np.nanargmin(np.absolute((1 - tpr) - fpr))])


@pytest.mark.parametrize("tied", [False, True])
def test_ranking_metrics_equal_scikit_learn_and_deepfakebench(tied: bool) -> None:
    rng = np.random.default_rng(11 + tied)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(2, 80))
        y = rng.integers(0, 2, size=n)
        if y.min() == y.max():
            continue
        s = _random_scores(rng, n, tied)
        assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
        assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
        assert eer(y, s) == pytest.approx(_deepfakebench_eer(y, s), abs=1e-12)
        checked += 1
    assert checked > 250


@pytest.mark.parametrize("shape", ["separated", "reversed", "shifted", "coarse"])
def test_eer_on_long_straight_stretches_of_the_roc_curve(shape: str) -> None:
    """Long runs of collinear ROC points (dropped by drop_intermediate) around the FNR = FPR crossing."""
    rng = np.random.default_rng(len(shape))
    for _ in range(20):
        n = int(rng.integers(100, 1500))
        y = rng.integers(0, 2, size=n)
        base = rng.random(n)
        s = {"separated": base + 2 * y, "reversed": base - 2 * y, "shifted": base + 0.3 * y,
             "coarse": np.round(base + 0.2 * y, 1)}[shape]
        assert eer(y, s) == pytest.approx(_deepfakebench_eer(y, s), abs=1e-12)
        assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_auc_is_the_mann_whitney_statistic_with_half_credit_for_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=200)
    s = rng.integers(0, 5, size=200).astype(float)
    pos, neg = s[y == 1], s[y == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(y, s) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_ranking_metrics_known_values() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.8333333333)
    assert roc_auc([0, 1], [0.2, 0.9]) == 1.0 and eer([0, 1], [0.2, 0.9]) == 0.0
    assert roc_auc([0, 1], [0.9, 0.2]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5] * 4) == 0.5


@pytest.mark.parametrize("y", [[1, 1, 1], [0, 0], []])
def test_ranking_metrics_undefined_with_one_class(y: list[int]) -> None:
    s = [0.3] * len(y)
    assert roc_auc(y, s) is None and average_precision(y, s) is None and eer(y, s) is None


def test_ranking_metrics_refuse_bad_input() -> None:
    with pytest.raises(ValueError):
        roc_auc([0, 1], [0.5, float("nan")])
    with pytest.raises(ValueError):
        roc_auc([0, 2], [0.5, 0.6])
    with pytest.raises(ValueError):
        roc_auc([0, 1, 1], [0.5, 0.6])


def test_weighted_levels_equal_the_materialised_resample() -> None:
    """The ranking bootstrap weights samples instead of copying them: same numbers."""
    rng = np.random.default_rng(9)
    for tied in (False, True):
        y = rng.integers(0, 2, size=150).astype(bool)
        s = _random_scores(rng, 150, tied)
        levels = _ScoreLevels(y, s)
        for _ in range(30):
            weights = rng.integers(0, 3, size=150).astype(float)
            idx = np.repeat(np.arange(150), weights.astype(int))
            if y[idx].min() == y[idx].max():
                continue
            got = levels.metrics(weights)
            assert got == pytest.approx((roc_auc(y[idx], s[idx]), average_precision(y[idx], s[idx]),
                                         eer(y[idx], s[idx])), abs=1e-12)


def _with_none(rng: np.random.Generator, labels: list[str], n: int) -> tuple[list[str], list[str | None]]:
    y_true = [labels[i] for i in rng.integers(0, len(labels), size=n)]
    y_pred: list[str | None] = [labels[i] for i in rng.integers(0, len(labels), size=n)]
    for i in np.flatnonzero(rng.random(n) < 0.15):
        y_pred[i] = None
    return y_true, y_pred


def test_label_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(5)
    for trial in range(100):
        labels = list(CATEGORIES) if trial % 2 else ["real", "fake"]
        y_true, y_pred = _with_none(rng, labels, int(rng.integers(5, 120)))
        present = [c for c in labels if c in set(y_true)]
        sk_pred = [NONE if p is None else p for p in y_pred]
        assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, sk_pred))
        assert macro_f1(y_true, y_pred, present) == pytest.approx(
            skm.f1_score(y_true, sk_pred, labels=present, average="macro", zero_division=0))
        matrix = confusion_matrix(y_true, y_pred, labels)
        sk_matrix = skm.confusion_matrix(y_true, sk_pred, labels=[*labels, NONE])[: len(labels)]
        assert matrix.tolist() == sk_matrix.tolist()
        if len(present) >= 2:
            with warnings.catch_warnings():  # "y_pred contains classes not in y_true": the None class
                warnings.simplefilter("ignore")
                expected = skm.balanced_accuracy_score(y_true, sk_pred)
            assert balanced_accuracy(y_true, y_pred, labels) == pytest.approx(expected)


def test_label_metrics_edge_cases() -> None:
    assert accuracy([], []) is None
    assert balanced_accuracy(["fake", "fake"], ["fake", None]) is None  # one class: undefined
    assert macro_f1(["FS", "FS"], [None, None], ["FS"]) == 0.0
    assert macro_f1([], [], ["FS"]) is None
    # a label with neither references nor predictions is left out, not scored 0
    assert macro_f1(["FS", "FR"], ["FS", "FR"], ["FS", "FR", "FE"]) == 1.0
    # unparsed predictions and predictions outside the labels go to the last column
    assert confusion_matrix(["FS", "FR", "FR"], [None, "EFS", "FR"], ["FS", "FR"]).tolist() == [[0, 0, 1],
                                                                                             [0, 1, 1]]
    with pytest.raises(ValueError):
        accuracy(["a"], [])


# --------------------------------------------------------------------------- providers


def _detection_records(n: int = 100, n_fake: int = 37, answer: str | None = "fake") -> list[dict]:
    records = []
    for i in range(n):
        fake = i < n_fake
        records.append({
            "id": f"s{i:03d}", "reference": "fake" if fake else "real", "parsed": answer, "error": None,
            "unparsed": answer is None, "score": None, "category": CATEGORIES[i % 4] if fake else None,
            "technique": ["simswap", "fomm", "e4e", "stylegan2"][i % 4] if fake else None,
            "source_id": f"src{i // 2}",
        })
    return records


def test_constant_fake_answer_scores_the_class_prior_exactly() -> None:
    records = _detection_records()
    context = MetricContext(task="DF-D", seed=0, n_boot=500)
    out = detection_metrics(records, context)
    assert out.metrics["accuracy"].value == 0.37
    assert out.metrics["accuracy"].n == 100
    assert out.metrics["balanced_accuracy"].value == 0.5
    assert out.metrics["accuracy_real"].value == 0.0 and out.metrics["accuracy_real"].n == 63
    assert {out.metrics[f"accuracy_{c}"].value for c in CATEGORIES} == {1.0}
    low, high = out.metrics["accuracy"].ci_low, out.metrics["accuracy"].ci_high
    assert low < 0.37 < high
    # re-running gives identical numbers and identical intervals
    again = detection_metrics(records, MetricContext(task="DF-D", seed=0, n_boot=500))
    assert {k: v.to_dict() for k, v in again.metrics.items()} == {k: v.to_dict() for k, v in out.metrics.items()}
    other_seed = detection_metrics(records, MetricContext(task="DF-D", seed=1, n_boot=500))
    assert other_seed.metrics["accuracy"].value == 0.37
    assert (other_seed.metrics["accuracy"].ci_low, other_seed.metrics["accuracy"].ci_high) != (low, high)


def test_detection_counts_failed_and_unparsed_as_wrong() -> None:
    records = _detection_records(n=10, n_fake=5)
    for r in records:
        r["parsed"] = r["reference"]  # all right ...
    records[0].update(parsed=None, unparsed=True)  # ... but one unparsed
    records[1].update(parsed="fake", error="model raised RuntimeError")  # and one failed
    records[7].update(parsed="maybe")  # a value outside the vocabulary is not an answer
    out = detection_metrics(records, MetricContext(task="DF-D", n_boot=50))
    assert out.metrics["accuracy"].value == pytest.approx(0.7)
    assert out.metrics["accuracy"].n == 10
    assert out.metrics["balanced_accuracy"].value == pytest.approx((3 / 5 + 4 / 5) / 2)
    assert out.per_sample["s000"] == {"correct": False}
    assert out.per_sample["s001"] == {"correct": False}
    assert out.per_sample["s002"] == {"correct": True}
    confusion = out.breakdowns["confusion_matrix"]
    assert confusion["labels"] == ["real", "fake"]
    assert confusion["columns"] == ["real", "fake", UNPARSED_COLUMN]
    assert confusion["matrix"] == [[4, 0, 1], [0, 3, 2]]


def test_detection_breakdowns_and_one_class() -> None:
    records = [r for r in _detection_records() if r["reference"] == "fake"]
    records[0]["parsed"] = "real"
    out = detection_metrics(records, MetricContext(task="DF-D", n_boot=50))
    assert out.metrics["balanced_accuracy"].value is None
    assert out.metrics["balanced_accuracy"].reason == "only one class present"
    assert "accuracy_real" not in out.metrics
    assert out.breakdowns["per_technique"]["simswap"] == {"value": pytest.approx(9 / 10), "n": 10}
    assert out.breakdowns["per_technique"]["fomm"] == {"value": 1.0, "n": 9}
    assert out.breakdowns["confusion_matrix"]["labels"] == ["fake"]


def test_detection_bad_reference_names_the_file_and_record(tmp_path) -> None:
    records = _detection_records(n=3)
    records[2]["reference"] = "FS"
    with pytest.raises(InputError, match=r"samples-DF-D\.jsonl: sample 's002'"):
        detection_metrics(records, MetricContext(task="DF-D", run_dir=str(tmp_path)))


def test_balanced_accuracy_interval_comes_from_per_class_recalls() -> None:
    rng = np.random.default_rng(2)
    records = _detection_records(n=400, n_fake=100)
    for r in records:
        right = rng.random() < (0.9 if r["reference"] == "fake" else 0.6)
        r["parsed"] = r["reference"] if right else ("real" if r["reference"] == "fake" else "fake")
    out = detection_metrics(records, MetricContext(task="DF-D", n_boot=1000))
    ba = out.metrics["balanced_accuracy"]
    assert ba.value == pytest.approx((out.metrics["accuracy_real"].value + np.mean(
        [r["parsed"] == "fake" for r in records if r["reference"] == "fake"])) / 2)
    assert ba.ci_low < ba.value < ba.ci_high
    # its interval is not that of plain accuracy (which weighs the 300 reals three times as much)
    assert (ba.ci_low, ba.ci_high) != (out.metrics["accuracy"].ci_low, out.metrics["accuracy"].ci_high)


def _scored_records(n: int = 300, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = _detection_records(n=n, n_fake=n // 2)
    for r in records:
        r["score"] = float(np.clip(rng.normal(0.65 if r["reference"] == "fake" else 0.4, 0.2), 0, 1))
    return records


def test_ranking_metrics_from_scores() -> None:
    records = _scored_records()
    records[0]["score"] = None  # no score: left out
    records[1]["error"] = "timeout"  # failed: left out even with a score
    records[2]["score"] = float("nan")  # not a number: left out
    context = MetricContext(task="DF-D", seed=0, n_boot=400)
    out = ranking_metrics(records, context)
    kept = [r for r in records[3:]]
    y = [r["reference"] == "fake" for r in kept]
    s = [r["score"] for r in kept]
    assert out.metrics["auc"].value == pytest.approx(skm.roc_auc_score(y, s))
    assert out.metrics["ap"].value == pytest.approx(skm.average_precision_score(y, s))
    assert out.metrics["eer"].value == pytest.approx(_deepfakebench_eer(np.array(y, dtype=int), np.array(s)))
    for name in ("auc", "ap", "eer"):
        result = out.metrics[name]
        assert result.n == len(kept)
        assert result.ci_low < result.value < result.ci_high
    assert out.breakdowns["ranking"] == {"n_scored": len(kept), "n_without_score": 3, "replicates": 400}
    again = ranking_metrics(records, MetricContext(task="DF-D", seed=0, n_boot=400))
    assert {k: v.to_dict() for k, v in again.metrics.items()} == {k: v.to_dict() for k, v in out.metrics.items()}


def test_ranking_metrics_undefined() -> None:
    out = ranking_metrics(_detection_records(), MetricContext(task="DF-D"))
    for name in ("auc", "ap", "eer"):
        assert out.metrics[name].value is None
        assert out.metrics[name].reason == "the model gave no scores"
    only_fakes = [r for r in _scored_records() if r["reference"] == "fake"]
    out = ranking_metrics(only_fakes, MetricContext(task="DF-D"))
    for name in ("auc", "ap", "eer"):
        assert out.metrics[name].value is None
        assert out.metrics[name].reason == "only one class present"
        assert out.metrics[name].n == len(only_fakes)


def test_ranking_replicates_cap_the_work_on_large_sets() -> None:
    assert ranking_replicates(1_000, 1000) == 1000
    assert ranking_replicates(100_000, 1000) == 1000
    assert ranking_replicates(1_000_000, 1000) == 200
    assert ranking_replicates(50, 10) == 10
    assert ranking_replicates(0, 1000) == 0


def _category_records(n: int = 120, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        truth = CATEGORIES[int(rng.integers(0, 4))] if i % 10 else "FS"
        guess = truth if rng.random() < 0.6 else CATEGORIES[int(rng.integers(0, 4))]
        records.append({"id": f"c{i}", "reference": truth, "parsed": guess, "error": None, "unparsed": False,
                        "category": truth, "technique": f"{truth.lower()}-tech", "source_id": f"v{i // 3}"})
    records[5].update(parsed=None, unparsed=True)
    records[6].update(error="CUDA out of memory")
    return records


def test_category_metrics_equal_scikit_learn() -> None:
    records = _category_records()
    out = category_metrics(records, MetricContext(task="DF-C", seed=0, n_boot=500))
    y = [r["reference"] for r in records]
    pred = [NONE if (r["error"] or r["unparsed"]) else r["parsed"] for r in records]
    present = [c for c in CATEGORIES if c in set(y)]
    assert out.metrics["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred))
    assert out.metrics["macro_f1"].value == pytest.approx(
        skm.f1_score(y, pred, labels=present, average="macro", zero_division=0))
    recalls = skm.recall_score(y, pred, labels=present, average=None, zero_division=0)
    for category, recall in zip(present, recalls, strict=True):
        assert out.metrics[f"accuracy_{category}"].value == pytest.approx(recall)
    for name in ("accuracy", "macro_f1"):
        assert out.metrics[name].n == len(records)
        assert out.metrics[name].ci_low < out.metrics[name].value < out.metrics[name].ci_high
    confusion = out.breakdowns["confusion_matrix"]
    assert confusion["columns"] == [*CATEGORIES, UNPARSED_COLUMN]
    assert confusion["matrix"] == skm.confusion_matrix(y, pred, labels=[*present, NONE])[: len(present)].tolist()
    assert out.per_sample["c5"] == {"correct": False} and out.per_sample["c6"] == {"correct": False}
    assert sum(v["n"] for v in out.breakdowns["per_technique"].values()) == len(records)
    again = category_metrics(records, MetricContext(task="DF-C", seed=0, n_boot=500))
    assert {k: v.to_dict() for k, v in again.metrics.items()} == {k: v.to_dict() for k, v in out.metrics.items()}


def test_category_metrics_leave_out_samples_without_a_category() -> None:
    records = _category_records(n=20)
    records[0]["reference"] = None
    out = category_metrics(records, MetricContext(task="DF-C", n_boot=50))
    assert out.metrics["accuracy"].n == 19
    assert out.breakdowns["classification"] == {"n_without_reference": 1}
    assert "c0" not in out.per_sample
    records[1]["reference"] = "XYZ"
    with pytest.raises(InputError, match="sample 'c1'"):
        category_metrics(records, MetricContext(task="DF-C"))


def test_category_metrics_only_present_categories() -> None:
    records = [r for r in _category_records() if r["reference"] in ("FS", "FR")]
    out = category_metrics(records, MetricContext(task="DF-C", n_boot=50))
    assert {k for k in out.metrics if k.startswith("accuracy_")} == {"accuracy_FS", "accuracy_FR"}
    assert out.breakdowns["confusion_matrix"]["labels"] == ["FS", "FR"]


def test_no_records() -> None:
    out = detection_metrics([], MetricContext(task="DF-D"))
    assert out.metrics["accuracy"].value is None and out.metrics["accuracy"].reason
    out = category_metrics([], MetricContext(task="DF-C"))
    assert out.metrics["macro_f1"].value is None


def test_providers_are_registered() -> None:
    from dfabench.plugins import get_manager

    registry = get_manager().metrics
    assert registry.get("detection").load() is detection_metrics
    assert registry.get("ranking").load() is ranking_metrics
    assert registry.get("classification").load() is category_metrics
