"""Confidence intervals by the cluster bootstrap.

Samples of one source (an identity, a source video: ``source_id``) are not independent, so the
bootstrap resamples whole **clusters** with replacement: each replicate draws as many clusters as
there are, uniformly, and every sample of a drawn cluster comes along (as often as its cluster was
drawn). The interval is the percentile interval of the replicates (``numpy.percentile``, linear
interpolation). Replicates where the statistic is undefined (``None``/NaN, e.g. a recall of a class
that the replicate does not contain) are dropped; when more than half are undefined the interval is
undefined, ``(None, None)``.

Everything is seeded with a :class:`numpy.random.Generator` (``numpy.random.default_rng(seed)``), so
the same inputs and seed give the same interval, bit for bit.

Speed. :func:`cluster_bootstrap` calls a Python statistic once per replicate. Statistics that are
functions of per-sample **sums** (means, accuracies, recalls, F1 from tp/fp/fn) go through
:func:`resampled_cluster_sums`, which never materialises a resample: it sums each cluster once and
draws the number of times each cluster is taken. Clusters with identical sums (e.g. one sample
that is right, one that is wrong) are interchangeable, so when they are few the draw is one
multinomial over those kinds of cluster — exactly the same distribution, a few microseconds per
replicate; otherwise cluster indices are drawn for each replicate and the drawn rows summed.
Sums never go through BLAS (``einsum``, ``sum``), so they are the same on every machine.
:func:`bootstrap_mean` on 100,000 samples with 1,000 replicates takes well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence

import numpy as np

__all__ = [
    "Clusters",
    "bootstrap_mean",
    "cluster_bootstrap",
    "factorize_clusters",
    "iter_sample_weights",
    "percentile_interval",
    "resampled_cluster_sums",
]

class Clusters:
    """Cluster ids already factorized: ``codes`` (``0..n_clusters-1``, in order of first appearance), as
    :func:`factorize_clusters` gives them. Every function here that takes ``clusters`` accepts one, so
    that a million samples need no list of a million ids (see :class:`dfabench.records.sample.SampleColumns`).
    """

    __slots__ = ("codes", "n_clusters")

    def __init__(self, codes: np.ndarray, n_clusters: int):
        self.codes = np.asarray(codes, dtype=np.int64)
        self.n_clusters = int(n_clusters)

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def take(self, rows: np.ndarray) -> Clusters:
        """The clusters of the samples at ``rows`` (indices, or a boolean mask), in that order, factorized
        again: the same codes as :func:`factorize_clusters` of the ids of those samples."""
        rows = np.asarray(rows)
        picked = self.codes[rows]
        if picked.size == 0:
            return Clusters(picked, 0)
        present, first, inverse = np.unique(picked, return_index=True, return_inverse=True)
        rank = np.empty(len(present), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(present))
        return Clusters(rank[inverse.reshape(-1)], len(present))


def factorize_clusters(clusters: Sequence[Hashable | None] | Clusters) -> tuple[np.ndarray, int]:
    """Cluster ids -> ``(codes, n_clusters)`` with codes ``0..n_clusters-1`` in order of first appearance.

    A ``None`` id is a cluster of its own (callers pass the sample id where ``source_id`` is missing).
    A :class:`Clusters` is returned as it is.
    """
    if isinstance(clusters, Clusters):
        return clusters.codes, clusters.n_clusters
    mapping: dict[Hashable, int] = {}
    codes = np.empty(len(clusters), dtype=np.int64)
    n_clusters = 0
    for i, cluster in enumerate(clusters):
        if cluster is None:
            code = n_clusters
            n_clusters += 1
        else:
            code = mapping.get(cluster)
            if code is None:
                code = mapping[cluster] = n_clusters
                n_clusters += 1
        codes[i] = code
    return codes, n_clusters


def percentile_interval(replicates: np.ndarray | Sequence[float | None],
                        confidence: float = 0.95) -> tuple[float | None, float | None]:
    """The percentile interval of bootstrap replicates; ``(None, None)`` when more than half are
    undefined (``None``/NaN/inf) or there are none."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    values = np.array([np.nan if v is None else v for v in replicates], dtype=float) \
        if not isinstance(replicates, np.ndarray) else replicates.astype(float, copy=False)
    if values.size == 0:
        return None, None
    valid = values[np.isfinite(values)]
    if valid.size * 2 < values.size or valid.size == 0:
        return None, None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(valid, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


def _check(n_boot: int, confidence: float) -> None:
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, not {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")


def _cluster_sums(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per-cluster sums of the columns of ``values`` (shape ``(n, d)``) -> ``(n_clusters, d)``."""
    return np.stack([np.bincount(codes, weights=values[:, j], minlength=n_clusters)
                     for j in range(values.shape[1])], axis=1)


def _resample_cluster_rows(per_cluster: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, d)``: for each replicate, the sum of the rows of ``n_clusters`` clusters drawn with
    replacement."""
    n_clusters, width = per_cluster.shape
    kinds, counts = np.unique(per_cluster, axis=0, return_counts=True)
    if len(kinds) <= max(64, n_clusters // 32):
        # clusters with the same row are interchangeable: draw how many of each kind are taken
        taken = rng.multinomial(n_clusters, counts / n_clusters, size=n_boot)
        return np.einsum("bk,kd->bd", taken.astype(float), kinds)
    out = np.empty((n_boot, width))
    # a column equal in every cluster (the ones of a mean over equal-sized clusters) sums to a constant
    constant = np.all(per_cluster == per_cluster[0], axis=0)
    out[:, constant] = n_clusters * per_cluster[0, constant]
    varying = np.flatnonzero(~constant)
    index_dtype = np.int32 if n_clusters < 2**31 else np.int64  # int32 draws are several times faster
    if len(varying) <= 2:
        # gather the drawn clusters' rows and add them up (two columns packed into one complex number)
        packed = per_cluster[:, varying[0]].copy()
        if len(varying) == 2:
            packed = packed + 1j * per_cluster[:, varying[1]]
        for b in range(n_boot):
            total = packed[rng.integers(0, n_clusters, size=n_clusters, dtype=index_dtype)].sum()
            out[b, varying[0]] = total.real
            if len(varying) == 2:
                out[b, varying[1]] = total.imag
        return out
    rows = per_cluster[:, varying]
    for b in range(n_boot):
        times = np.bincount(rng.integers(0, n_clusters, size=n_clusters, dtype=index_dtype), minlength=n_clusters)
        out[b, varying] = np.einsum("k,kd->d", times.astype(float), rows)
    return out


def resampled_cluster_sums(values: np.ndarray | Sequence[float], clusters: Sequence[Hashable | None] | Clusters, *,
                           n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Column sums of ``values`` over ``n_boot`` cluster-bootstrap resamples.

    ``values`` has shape ``(n,)`` or ``(n, d)`` (one row per sample, finite); the result has shape
    ``(n_boot, d)``. Any statistic that is a function of sums (a mean = sum of values / sum of ones, a
    recall, macro-F1 from per-class tp/fp/fn) is then computed on all replicates at once.
    """
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.shape[0] != len(clusters):
        raise ValueError(f"{array.shape[0]} values but {len(clusters)} cluster ids")
    if not np.all(np.isfinite(array)):
        raise ValueError("values must be finite numbers (drop undefined samples first)")
    if array.shape[0] == 0:
        return np.zeros((int(n_boot), array.shape[1]))
    codes, n_clusters = factorize_clusters(clusters)
    rng = np.random.default_rng(seed)
    return _resample_cluster_rows(_cluster_sums(array, codes, n_clusters), int(n_boot), rng)


def bootstrap_mean(values: np.ndarray | Sequence[float], clusters: Sequence[Hashable | None] | Clusters, *,
                   n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Cluster-bootstrap percentile interval of the mean of ``values`` (one finite value per sample).

    Vectorised: the replicate mean is (resampled sum of values) / (resampled number of samples).
    ``(None, None)`` for no samples.
    """
    _check(n_boot, confidence)
    array = np.asarray(values, dtype=float).reshape(-1)
    if array.size == 0:
        return None, None
    sums = resampled_cluster_sums(np.stack([array, np.ones_like(array)], axis=1), clusters,
                                  n_boot=n_boot, seed=seed)
    return percentile_interval(sums[:, 0] / sums[:, 1], confidence)


def _resample_indices(codes: np.ndarray, n_clusters: int) -> Callable[[np.ndarray], np.ndarray]:
    """A function: drawn clusters -> the sample indices of those clusters (with repetition)."""
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=n_clusters)
    starts = np.cumsum(sizes) - sizes

    def indices(chosen: np.ndarray) -> np.ndarray:
        lengths = sizes[chosen]
        total = int(lengths.sum())
        # position j of the output belongs to the k-th chosen cluster: start_k + (j - first output of k)
        first = np.cumsum(lengths) - lengths
        positions = np.repeat(starts[chosen] - first, lengths) + np.arange(total)
        return order[positions]

    return indices


def cluster_bootstrap(statistic: Callable[[np.ndarray], float | None],
                      clusters: Sequence[Hashable | None] | Clusters, *,
                      n_boot: int = 1000, seed: int = 0,
                      confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Cluster-bootstrap percentile interval of any statistic.

    ``statistic(indices)`` computes the metric on the samples at ``indices`` (an ``int64`` array, with
    repetitions, in cluster order); it returns ``None`` (or NaN) where the metric is undefined.
    ``clusters`` holds one cluster id per sample (``source_id``, or the sample id where it is missing).
    """
    _check(n_boot, confidence)
    if len(clusters) == 0:
        return None, None
    codes, n_clusters = factorize_clusters(clusters)
    indices = _resample_indices(codes, n_clusters)
    rng = np.random.default_rng(seed)
    replicates = np.empty(int(n_boot))
    for b in range(int(n_boot)):
        value = statistic(indices(rng.integers(0, n_clusters, size=n_clusters)))
        replicates[b] = np.nan if value is None else float(value)
    return percentile_interval(replicates, confidence)


def iter_sample_weights(clusters: Sequence[Hashable | None] | Clusters, *, n_boot: int = 1000,
                        seed: int = 0) -> Iterator[np.ndarray]:
    """For each of ``n_boot`` cluster-bootstrap replicates, how many times each sample is taken
    (a ``float`` array of length ``n``: the number of times its cluster was drawn).

    For statistics that accept sample weights (AUC, AP and EER from weighted score histograms), this
    is the resample without building index arrays.
    """
    codes, n_clusters = factorize_clusters(clusters)
    rng = np.random.default_rng(seed)
    index_dtype = np.int32 if n_clusters < 2**31 else np.int64
    for _ in range(int(n_boot)):
        times = np.bincount(rng.integers(0, n_clusters, size=n_clusters, dtype=index_dtype),
                            minlength=n_clusters).astype(float)
        yield times.take(codes)
