"""COCO caption metrics on token lists: BLEU-1..4, ROUGE-L and CIDEr-D, as pycocoevalcap computes them.

Pure Python functions (no numpy), used by the ``text`` provider of :mod:`dfabench.metrics.text` (which
documents the corpus values and their confidence intervals) and by the benchmark against pycocoevalcap.
:func:`score_token_lists` computes all of them at once; the others are its parts.
"""

from __future__ import annotations

import gc
import math
from collections import Counter, _count_elements
from collections.abc import Sequence
from contextlib import contextmanager
from itertools import repeat
from operator import mul
from typing import Any

__all__ = [
    "BLEU_MAX_N",
    "BLEU_SMALL",
    "BLEU_TINY",
    "CIDER_N",
    "CIDER_SIGMA",
    "ROUGE_BETA",
    "bleu_from_statistics",
    "bleu_statistics",
    "cider_d",
    "corpus_bleu",
    "lcs_length",
    "ngram_counts",
    "rouge_l",
    "rouge_l_prf",
    "score_token_lists",
]

BLEU_MAX_N = 4
CIDER_N = 4
CIDER_SIGMA = 6.0
ROUGE_BETA = 1.2

# pycocoevalcap's BleuScorer smoothing constants
BLEU_TINY = 1e-15
BLEU_SMALL = 1e-9


def ngram_counts(tokens: Sequence[str], max_n: int = 4) -> list[Counter]:
    """``[Counter of 1-grams, ..., Counter of max_n-grams]`` (n-grams as tuples)."""
    tokens = list(tokens)
    return [Counter(zip(*(tokens[i:] for i in range(n)), strict=False)) for n in range(1, max_n + 1)]


def _joined_ngram_counts(tokens: Sequence[str], max_n: int = 4) -> list[Counter]:
    """:func:`ngram_counts` with each n-gram as its tokens joined by one space instead of a tuple: the same
    counts, in the same order, when no token holds a space (the caller checks). A string caches its hash and a
    tuple does not, so every later lookup of an n-gram (BLEU's clipping, CIDEr's document frequencies, idf and
    dot products) is cheaper."""
    tokens = list(tokens)
    counts = [Counter(tokens)]
    for n in range(2, max_n + 1):
        counts.append(Counter(map(" ".join, zip(*(tokens[i:] for i in range(n)), strict=False))))
    return counts


def _counter(texts: Sequence[Sequence[str]]):
    """The n-gram counting of :func:`score_token_lists`: joined n-grams when no token holds a space, else tuples."""
    if any(" " in "\0".join(text) for text in texts):  # the tokens of a text joined by a character not a space
        return ngram_counts
    return _joined_ngram_counts


def bleu_statistics(candidate: Sequence[str], references: Sequence[Sequence[str]],
                    cand_counts: list[Counter] | None = None,
                    ref_counts: list[list[Counter]] | None = None, max_n: int = BLEU_MAX_N) -> list[int]:
    """Sufficient statistics of one sample: ``[testlen, reflen, guess_1..n, correct_1..n]``.

    ``reflen`` is the closest reference length (ties: the shorter), as pycocoevalcap's ``closest``.
    """
    cand_counts = cand_counts if cand_counts is not None else ngram_counts(candidate, max_n)
    ref_counts = ref_counts if ref_counts is not None else [ngram_counts(r, max_n) for r in references]
    testlen = len(candidate)
    reflen = min((abs(len(r) - testlen), len(r)) for r in references)[1]
    guess = [max(0, testlen - k) for k in range(max_n)]
    correct = []
    for k in range(max_n):
        if len(ref_counts) == 1:
            ref_max = ref_counts[0][k]
        else:
            ref_max = Counter()
            for counts in ref_counts:
                ref_max |= counts[k]
        # the clipped counts of the n-grams the references have (integers: any order gives the same sum)
        counts = cand_counts[k]
        common = list(filter(ref_max.__contains__, counts))
        correct.append(sum(map(min, map(counts.__getitem__, common), map(ref_max.__getitem__, common))))
    return [testlen, reflen, *guess, *correct]


def bleu_from_statistics(testlen: float, reflen: float, guess: Sequence[float],
                         correct: Sequence[float]) -> list[float]:
    """BLEU-1..n from (summed) statistics with pycocoevalcap's smoothing and brevity penalty."""
    scores = []
    product = 1.0
    for k in range(len(guess)):
        product *= (correct[k] + BLEU_TINY) / (guess[k] + BLEU_SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (testlen + BLEU_TINY) / (reflen + BLEU_SMALL)
    if ratio < 1:
        penalty = math.exp(1 - 1 / ratio)
        scores = [s * penalty for s in scores]
    return scores


def corpus_bleu(statistics: Sequence[Sequence[int]], max_n: int = BLEU_MAX_N) -> list[float]:
    """Corpus BLEU-1..n from per-sample :func:`bleu_statistics` (pycocoevalcap's corpus value)."""
    totals = [0] * (2 + 2 * max_n)
    for row in statistics:
        for i, value in enumerate(row):
            totals[i] += value
    return bleu_from_statistics(totals[0], totals[1], totals[2:2 + max_n], totals[2 + max_n:])


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (bit-parallel, Hyyrö 2004): O(len(a) * len(b) / 64)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(candidate: Sequence[str], references: Sequence[Sequence[str]], beta: float = ROUGE_BETA) -> float:
    """ROUGE-L F-measure as pycocoevalcap: best precision and best recall over the references.

    Like pycocoevalcap (which splits on one space), an empty text counts as one empty token.
    """
    cand_len = max(len(candidate), 1)
    precision = recall = 0.0
    for reference in references:
        lcs = lcs_length(reference, candidate)
        precision = max(precision, lcs / cand_len)
        recall = max(recall, lcs / max(len(reference), 1))
    if precision == 0 or recall == 0:
        return 0.0
    return ((1 + beta ** 2) * precision * recall) / (recall + beta ** 2 * precision)


def rouge_l_prf(candidate: Sequence[str], reference: Sequence[str], beta: float = 1.0) -> tuple[float, float, float]:
    """LCS precision, recall and F-measure against one reference (rouge-score's ``rougeL`` with ``beta=1``)."""
    lcs = lcs_length(reference, candidate)
    precision = lcs / len(candidate) if candidate else 0.0
    recall = lcs / len(reference) if reference else 0.0
    if precision + recall == 0:
        return precision, recall, 0.0
    return precision, recall, (1 + beta ** 2) * precision * recall / (recall + beta ** 2 * precision)


def cider_d(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
            n: int = CIDER_N, sigma: float = CIDER_SIGMA,
            cand_counts: Sequence[list[Counter]] | None = None,
            ref_counts: Sequence[list[list[Counter]]] | None = None) -> tuple[float, list[float]]:
    """CIDEr-D of each candidate and their mean, as pycocoevalcap's ``Cider`` (document frequencies
    from the references given, log of the number of samples as the reference length)."""
    if len(candidates) != len(references):
        raise ValueError("as many reference lists as candidates are needed")
    if not candidates:
        return 0.0, []
    cand_counts = cand_counts if cand_counts is not None else [ngram_counts(c, n) for c in candidates]
    ref_counts = ref_counts if ref_counts is not None else [[ngram_counts(r, n) for r in refs] for refs in references]
    document_frequency: Counter = Counter()
    for refs in ref_counts:
        if len(refs) == 1:  # one reference: its n-grams of different n are distinct, each counts once
            for k in range(n):
                _count_elements(document_frequency, refs[0][k])
            continue
        grams: set = set()
        for counts in refs:
            for k in range(n):
                grams.update(counts[k])
        _count_elements(document_frequency, grams)
    ref_len = math.log(float(len(candidates)))
    idf = {gram: ref_len - math.log(max(1.0, df)) for gram, df in document_frequency.items()}
    idf_get = idf.get

    # A text's vector has the weight tf * idf for each of its n-grams (ref_len for an n-gram no reference has);
    # only the norms need every weight (math.hypot of them, computed in C through map), the dot products only
    # the n-grams both texts have: no vector is built.
    def norms_and_length(counts: list[Counter]) -> tuple[list[float], int]:
        norms = [math.hypot(*map(mul, counts[k].values(), map(idf_get, counts[k], repeat(ref_len))))
                 for k in range(n)]
        # pycocoevalcap counts the bigrams as the "length" of a text (its n == 1 is the bigram index)
        return norms, (sum(counts[1].values()) if n > 1 else 0)

    two_sigma2 = 2 * sigma ** 2
    scores = []
    for counts, refs in zip(cand_counts, ref_counts, strict=True):
        norm, length = norms_and_length(counts)
        total = 0.0
        for ref in refs:
            norm_ref, length_ref = norms_and_length(ref)
            penalty = math.exp(-((length - length_ref) ** 2) / two_sigma2)
            for k in range(n):
                cand_k, ref_k = counts[k], ref[k]
                value = 0.0
                # the n-grams both have, in the candidate's order (the order of pycocoevalcap's sum)
                for gram in filter(ref_k.__contains__, cand_k):
                    weight = idf[gram]
                    ref_weight = ref_k[gram] * weight
                    value += min(cand_k[gram] * weight, ref_weight) * ref_weight
                if norm[k] != 0 and norm_ref[k] != 0:
                    value /= norm[k] * norm_ref[k]
                total += value * penalty
        scores.append(total / n / len(refs) * 10.0)
    return sum(scores) / len(scores), scores


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector: the n-gram tables are millions of small acyclic objects, and
    the collector's repeated scans of them cost more than the metrics (reference counting frees them)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def score_token_lists(candidates: Sequence[Sequence[str]],
                      references: Sequence[Sequence[Sequence[str]]]) -> dict[str, Any]:
    """BLEU-1..4, ROUGE-L and CIDEr-D of tokenised candidates against their reference lists.

    Returns ``{"corpus": {metric: value}, "per_sample": [{metric: value}, ...], "bleu_statistics": [...]}``.
    """
    with _gc_paused():
        return _score_token_lists(candidates, references)


def _score_token_lists(candidates: Sequence[Sequence[str]],
                       references: Sequence[Sequence[Sequence[str]]]) -> dict[str, Any]:
    count = _counter([*candidates, *(r for refs in references for r in refs)])
    cand_counts = [count(c, max(BLEU_MAX_N, CIDER_N)) for c in candidates]
    ref_counts = [[count(r, max(BLEU_MAX_N, CIDER_N)) for r in refs] for refs in references]
    statistics = [bleu_statistics(c, refs, cc, rc) for c, refs, cc, rc in
                  zip(candidates, references, cand_counts, ref_counts, strict=True)]
    rouge = [rouge_l(c, refs) for c, refs in zip(candidates, references, strict=True)]
    cider_mean, cider = cider_d(candidates, references, cand_counts=cand_counts, ref_counts=ref_counts)
    per_sample = []
    for row, rouge_value, cider_value in zip(statistics, rouge, cider, strict=True):
        bleu = bleu_from_statistics(row[0], row[1], row[2:2 + BLEU_MAX_N], row[2 + BLEU_MAX_N:])
        values = {f"bleu_{k + 1}": bleu[k] for k in range(BLEU_MAX_N)}
        values["rouge_l"] = rouge_value
        values["cider"] = cider_value
        per_sample.append(values)
    corpus = {f"bleu_{k + 1}": value for k, value in enumerate(corpus_bleu(statistics))} if statistics else {}
    if rouge:
        corpus["rouge_l"] = sum(rouge) / len(rouge)
        corpus["cider"] = cider_mean
    return {"corpus": corpus, "per_sample": per_sample, "bleu_statistics": statistics}
