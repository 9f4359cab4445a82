"""Statistical ties: the paired cluster bootstrap behind the leaderboard's ranks (dfabench.leaderboard.ties)."""

from __future__ import annotations

from dfabench.leaderboard.ties import POINT, Contender, TieSettings, rank_task

SETTINGS = TieSettings(replicates=500, seed=0)


def _samples(correct: list[bool], clusters: list[str] | None = None) -> list[dict]:
    return [{"id": f"s{i:04d}", "source_id": clusters[i] if clusters else None, "metrics": {"correct": c}}
            for i, c in enumerate(correct)]


def _contender(name: str, correct: list[bool], clusters: list[str] | None = None) -> Contender:
    samples = _samples(correct, clusters)
    return Contender(name, sum(correct) / len(correct), lambda: iter(samples))


def test_identical_entries_share_the_first_rank():
    correct = [i % 3 != 0 for i in range(300)]
    ranks, ranking = rank_task("accuracy", [_contender("a", correct), _contender("b", correct)], False, SETTINGS)
    assert ranks == {"a": 1, "b": 1}
    assert ranking["method"] == "paired cluster bootstrap" and ranking["n_samples"] == 300


def test_rank_is_one_plus_the_number_of_entries_significantly_better():
    strong = [True] * 270 + [False] * 30
    weak = [i % 2 == 0 for i in range(300)]
    weak_too = [i % 2 == 1 for i in range(300)]
    ranks, _ = rank_task("accuracy", [_contender("weak", weak), _contender("strong", strong),
                                      _contender("weak_too", weak_too)], False, SETTINGS)
    assert ranks == {"strong": 1, "weak": 2, "weak_too": 2}


def test_pairing_finds_a_small_consistent_difference_that_the_separate_intervals_miss():
    from dfabench.metrics.statistics import bootstrap_mean

    base = [i % 10 < 7 for i in range(400)]  # 70% right
    worse = list(base)
    flipped = [i for i, c in enumerate(base) if c][:12]  # wrong on 12 samples the other gets right, nowhere better
    for i in flipped:
        worse[i] = False
    ids = [f"s{i:04d}" for i in range(400)]
    low_a, high_a = bootstrap_mean([float(c) for c in base], ids, n_boot=500, seed=0)
    low_b, high_b = bootstrap_mean([float(c) for c in worse], ids, n_boot=500, seed=0)
    assert low_a < high_b  # the two 95% intervals overlap ...
    ranks, _ = rank_task("accuracy", [_contender("base", base), _contender("worse", worse)], False, SETTINGS)
    assert ranks == {"base": 1, "worse": 2}  # ... yet on the same samples the difference is significant


def test_clusters_widen_the_test_a_correlated_difference_is_not_significant():
    # 20 sources of 20 samples each; the two entries differ on every sample of 3 sources, in opposite directions
    # for two of them: per sample the difference looks solid, per source it is 3 against 2 of 20
    clusters = [f"src{i // 20}" for i in range(400)]
    a = [i % 2 == 0 for i in range(400)]
    b = list(a)
    for i in range(400):
        source = i // 20
        if source in (0, 1, 2):
            b[i] = False
            a[i] = True
        elif source in (3, 4):
            b[i] = True
            a[i] = False
    clustered, _ = rank_task("accuracy", [_contender("a", a, clusters), _contender("b", b, clusters)], False,
                             SETTINGS)
    unclustered, _ = rank_task("accuracy", [_contender("a", a), _contender("b", b)], False, SETTINGS)
    assert unclustered == {"a": 1, "b": 2}
    assert clustered == {"a": 1, "b": 1}


def test_lower_is_better_reverses_the_order():
    low = [{"id": f"s{i}", "metrics": {"eer": 0.1}} for i in range(50)]
    high = [{"id": f"s{i}", "metrics": {"eer": 0.4 + 0.001 * i}} for i in range(50)]
    contenders = [Contender("low", 0.1, lambda: iter(low)),
                  Contender("high", sum(0.4 + 0.001 * i for i in range(50)) / 50, lambda: iter(high))]
    ranks, ranking = rank_task("eer", contenders, True, SETTINGS)
    assert ranks == {"low": 1, "high": 2} and ranking["method"] == "paired cluster bootstrap"


def test_a_metric_that_is_no_mean_of_its_per_sample_values_is_ranked_by_its_point_value_and_says_so():
    # corpus BLEU is not the mean of the per-sample BLEU: the recorded values disagree with the sums
    samples = [{"id": f"s{i}", "metrics": {"bleu_4": 0.2}} for i in range(30)]
    contenders = [Contender("a", 0.31, lambda: iter(samples)), Contender("b", 0.25, lambda: iter(samples))]
    ranks, ranking = rank_task("bleu_4", contenders, False, SETTINGS)
    assert ranks == {"a": 1, "b": 2}
    assert ranking["method"] == POINT and "not a function of per-sample sums" in ranking["reason"]


def test_the_draws_are_seeded_and_the_balanced_accuracy_matches_the_metric():
    from dfabench.metrics.classification import balanced_accuracy

    refs = ["fake" if i % 3 else "real" for i in range(240)]
    preds_a = [r if i % 5 else "real" for i, r in enumerate(refs)]
    preds_b = [r if i % 4 else "fake" for i, r in enumerate(refs)]

    def contender(name, preds):
        samples = [{"id": f"s{i}", "reference": r, "metrics": {"correct": p == r}, "source_id": f"v{i // 4}"}
                   for i, (r, p) in enumerate(zip(refs, preds, strict=True))]
        return Contender(name, balanced_accuracy(refs, preds, ("real", "fake")), lambda: iter(samples))

    first = rank_task("balanced_accuracy", [contender("a", preds_a), contender("b", preds_b)], False, SETTINGS)
    again = rank_task("balanced_accuracy", [contender("a", preds_a), contender("b", preds_b)], False, SETTINGS)
    assert first == again and first[1]["method"] == "paired cluster bootstrap"
