"""The cluster bootstrap: clusters move together, seeded reproducibility, undefined replicates."""

from __future__ import annotations

import numpy as np
import pytest

from dfabench.metrics import statistics
from dfabench.metrics.statistics import (
    bootstrap_mean,
    cluster_bootstrap,
    factorize_clusters,
    iter_sample_weights,
    percentile_interval,
    resampled_cluster_sums,
)


def _clustered(n_clusters: int, size: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Values that are identical inside a cluster (maximal correlation)."""
    rng = np.random.default_rng(seed)
    values = np.repeat(rng.random(n_clusters), size)
    clusters = [f"c{i // size}" for i in range(n_clusters * size)]
    return values, clusters


def test_factorize_clusters_keeps_first_appearance_order_and_none_alone() -> None:
    codes, n = factorize_clusters(["b", "a", "b", None, None, "a"])
    assert n == 4
    assert codes.tolist()[:3] == [0, 1, 0]
    assert codes[3] != codes[4]
    assert codes[5] == 1


def test_cluster_bootstrap_resamples_whole_clusters() -> None:
    clusters = ["a"] * 3 + ["b"] * 1 + ["c"] * 5 + ["d"] * 2
    members = {c: {i for i, x in enumerate(clusters) if x == c} for c in set(clusters)}
    seen: list[np.ndarray] = []

    def statistic(indices: np.ndarray) -> float:
        seen.append(indices.copy())
        return float(len(indices))

    cluster_bootstrap(statistic, clusters, n_boot=50, seed=3)
    assert len(seen) == 50
    for indices in seen:
        counts = np.bincount(indices, minlength=len(clusters))
        for cluster, idx in members.items():
            # every sample of a cluster is taken exactly as often as the cluster was drawn
            assert len({int(counts[i]) for i in idx}) == 1, cluster
        # as many clusters are drawn as there are
        assert sum(int(counts[min(idx)]) for idx in members.values()) == len(members)


def test_seeded_and_reproducible() -> None:
    values, clusters = _clustered(60, 3)
    first = bootstrap_mean(values, clusters, n_boot=300, seed=7)
    assert bootstrap_mean(values, clusters, n_boot=300, seed=7) == first
    assert bootstrap_mean(values, clusters, n_boot=300, seed=8) != first
    stat = lambda idx: float(values[idx].mean())  # noqa: E731
    assert cluster_bootstrap(stat, clusters, n_boot=200, seed=7) == cluster_bootstrap(stat, clusters, n_boot=200,
                                                                                         seed=7)


def test_interval_contains_the_mean_and_shrinks_with_more_data() -> None:
    small_values, small_clusters = _clustered(50, 1, seed=1)
    large_values, large_clusters = _clustered(5000, 1, seed=1)
    low, high = bootstrap_mean(small_values, small_clusters, n_boot=500)
    assert low < small_values.mean() < high
    low2, high2 = bootstrap_mean(large_values, large_clusters, n_boot=500)
    assert low2 < large_values.mean() < high2
    assert (high2 - low2) < (high - low) / 4


def test_correlated_clusters_widen_the_interval() -> None:
    # 200 clusters of 10 identical values behave like 200 samples, not 2000: resampling samples one by
    # one would give an interval about sqrt(10) narrower
    values, clusters = _clustered(200, 10, seed=2)
    clustered = bootstrap_mean(values, clusters, n_boot=1000, seed=0)
    independent = bootstrap_mean(values, [str(i) for i in range(len(values))], n_boot=1000, seed=0)
    ratio = (clustered[1] - clustered[0]) / (independent[1] - independent[0])
    assert 2.0 < ratio < 5.0


def test_bootstrap_mean_agrees_with_the_generic_bootstrap() -> None:
    rng = np.random.default_rng(4)
    values = rng.random(3000)
    clusters = [f"s{i // 4}" for i in range(3000)]
    fast = bootstrap_mean(values, clusters, n_boot=1000, seed=0)
    slow = cluster_bootstrap(lambda idx: float(values[idx].mean()), clusters, n_boot=1000, seed=1)
    width = fast[1] - fast[0]
    assert abs(fast[0] - slow[0]) < 0.15 * width
    assert abs(fast[1] - slow[1]) < 0.15 * width


def test_kinds_of_cluster_and_explicit_draws_give_the_same_distribution(monkeypatch) -> None:
    """Two ways of drawing: one multinomial over kinds of identical clusters, or cluster by cluster."""
    rng = np.random.default_rng(5)
    correct = (rng.random(4000) < 0.3).astype(float)  # 0/1 singletons: two kinds of cluster
    clusters = [str(i) for i in range(4000)]
    by_kind = resampled_cluster_sums(correct, clusters, n_boot=4000, seed=0)[:, 0]
    monkeypatch.setattr(statistics, "_resample_cluster_rows", _draw_explicitly)
    explicit = resampled_cluster_sums(correct, clusters, n_boot=4000, seed=0)[:, 0]
    assert abs(by_kind.mean() - explicit.mean()) < 2.0
    assert abs(by_kind.std() / explicit.std() - 1) < 0.06


def _draw_explicitly(per_cluster: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = per_cluster.shape[0]
    return np.stack([per_cluster[rng.integers(0, n, size=n)].sum(axis=0) for _ in range(n_boot)])


@pytest.mark.parametrize("width", [1, 2, 3])
def test_resampled_cluster_sums_match_materialised_resamples(width: int) -> None:
    """Every path (kinds, gathered columns, weighted counts) sums what the drawn clusters hold."""
    rng = np.random.default_rng(6)
    values = rng.random((500, width))
    clusters = [f"c{i % 97}" for i in range(500)]
    sums = resampled_cluster_sums(values, clusters, n_boot=20, seed=0)
    assert sums.shape == (20, width)
    codes, n_clusters = factorize_clusters(clusters)
    totals = np.stack([np.bincount(codes, weights=values[:, j], minlength=n_clusters) for j in range(width)], 1)
    # each replicate is a sum of n_clusters cluster totals: within the range of such sums
    assert np.all(sums >= n_clusters * totals.min(axis=0) - 1e-9)
    assert np.all(sums <= n_clusters * totals.max(axis=0) + 1e-9)
    # and the mean replicate is the sum over all clusters (the bootstrap is unbiased for sums)
    many = resampled_cluster_sums(values, clusters, n_boot=3000, seed=1)
    assert np.allclose(many.mean(axis=0), totals.sum(axis=0), rtol=0.01)


def test_constant_values_give_a_degenerate_interval() -> None:
    assert bootstrap_mean([0.25] * 40, [str(i % 7) for i in range(40)], n_boot=100) == (0.25, 0.25)


def test_undefined_replicates_are_dropped_until_half() -> None:
    clusters = [str(i) for i in range(20)]
    calls = iter(range(10_000))

    def sometimes(idx: np.ndarray) -> float | None:
        return None if next(calls) % 4 == 0 else float(len(set(idx.tolist())))

    low, high = cluster_bootstrap(sometimes, clusters, n_boot=400)
    assert low is not None and high is not None and low <= high

    def mostly_undefined(idx: np.ndarray) -> float | None:
        return float("nan") if next(calls) % 3 else 1.0

    assert cluster_bootstrap(mostly_undefined, clusters, n_boot=300) == (None, None)


def test_percentile_interval() -> None:
    assert percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    assert percentile_interval([None, 1.0, 2.0, 3.0], 0.5) == pytest.approx((1.5, 2.5))
    assert percentile_interval([None, None, 1.0], 0.95) == (None, None)
    assert percentile_interval([], 0.95) == (None, None)
    with pytest.raises(ValueError):
        percentile_interval([1.0], 1.5)


def test_no_samples_and_bad_input() -> None:
    assert bootstrap_mean([], []) == (None, None)
    assert cluster_bootstrap(lambda idx: 1.0, []) == (None, None)
    with pytest.raises(ValueError):
        bootstrap_mean([1.0, float("nan")], ["a", "b"])
    with pytest.raises(ValueError):
        bootstrap_mean([1.0, 2.0], ["a"])
    with pytest.raises(ValueError):
        bootstrap_mean([1.0], ["a"], n_boot=0)


def test_iter_sample_weights_counts_draws_of_clusters() -> None:
    clusters = ["a", "a", "b", "c", "c", "c"]
    for weights in iter_sample_weights(clusters, n_boot=30, seed=2):
        assert weights[0] == weights[1] and weights[3] == weights[4] == weights[5]
        assert weights[0] + weights[2] + weights[3] == 3  # three clusters drawn
    assert [w.tolist() for w in iter_sample_weights(clusters, n_boot=5, seed=2)] == \
        [w.tolist() for w in iter_sample_weights(clusters, n_boot=5, seed=2)]
