"""Which face regions a report names, and per-region precision and recall (the ``regions`` provider of FL).

MMTT annotates every image with ``multilabel``: the 21 face regions (:data:`dfabench.vocab.FACE_REGIONS`) its
reference caption names, found by whole-word matching of each region's words in any case
(:data:`dfabench.vocab.FACE_REGION_WORDS`). :func:`regions_named` is that rule, for any text: applied to a
reference caption it gives the release's ``multilabel`` (the importer checks it), applied to an answer it gives
the regions the model names (a chat model's text answer included).

The provider compares, per sample, the regions of the answer with those of the reference and reports the
breakdown ``regions``: for each region, ``tp`` / ``n_reference`` / ``n_answer`` and precision (of the answers
that name it, the share whose reference does; ``None`` when no answer names it) and recall (of the references
that name it, the share whose answer does; ``None`` when none does), plus the micro-averaged precision and
recall over all regions. A failed sample names no region.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from dfabench.metrics import MetricContext, MetricOutput
from dfabench.vocab import FACE_REGION_WORDS, FACE_REGIONS


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, re.Pattern], ...]:
    return tuple((region, re.compile("|".join(rf"\b{re.escape(word)}\b" for word in words), re.IGNORECASE))
                 for region, words in FACE_REGION_WORDS.items())


def regions_named(text: str | None) -> list[str]:
    """The face regions ``text`` names, in :data:`~dfabench.vocab.FACE_REGIONS` order."""
    if not text:
        return []
    return [region for region, pattern in _patterns() if pattern.search(text)]


def multilabel(text: str | None) -> list[int]:
    """MMTT's 21-dimensional ``multilabel`` vector of ``text``."""
    named = set(regions_named(text))
    return [int(region in named) for region in FACE_REGIONS]


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def region_metrics(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """The ``regions`` provider: the per-region breakdown of the module docstring."""
    output = MetricOutput()
    tp = dict.fromkeys(FACE_REGIONS, 0)
    n_reference = dict.fromkeys(FACE_REGIONS, 0)
    n_answer = dict.fromkeys(FACE_REGIONS, 0)
    for record in records:
        reference = record.get("reference")
        truth = set(regions_named(reference.get("text") if isinstance(reference, dict) else reference))
        parsed = record.get("parsed")
        answer_text = parsed.get("text") if isinstance(parsed, dict) else parsed
        answer = set() if record.get("error") else set(regions_named(answer_text if isinstance(answer_text, str)
                                                                     else None))
        for region in truth:
            n_reference[region] += 1
        for region in answer:
            n_answer[region] += 1
            tp[region] += region in truth
        output.per_sample[record["id"]] = {"regions_named": sorted(answer, key=FACE_REGIONS.index)}
    output.breakdowns["regions"] = {
        "per_region": {region: {"tp": tp[region], "n_reference": n_reference[region], "n_answer": n_answer[region],
                                "precision": _ratio(tp[region], n_answer[region]),
                                "recall": _ratio(tp[region], n_reference[region])} for region in FACE_REGIONS},
        "micro_precision": _ratio(sum(tp.values()), sum(n_answer.values())),
        "micro_recall": _ratio(sum(tp.values()), sum(n_reference.values())),
    }
    return output
