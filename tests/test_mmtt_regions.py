"""Face regions named by a report (MMTT's multilabel rule) and the FL per-region breakdown."""

from __future__ import annotations

import random
import re

import pytest

from dfabench.metrics import MetricContext
from dfabench.metrics.regions import multilabel, region_metrics, regions_named
from dfabench.vocab import FACE_REGION_WORDS, FACE_REGIONS


def release_multilabel(caption):
    """The release's rule (scripts/data_preparation/to_mutilabel.py), written after its description."""
    found = []
    for feature, synonyms in FACE_REGION_WORDS.items():
        for synonym in synonyms:
            if re.search(r"\b" + re.escape(synonym) + r"\b", caption, re.IGNORECASE):
                found.append(feature)
                break
    return [1 if region in found else 0 for region in FACE_REGIONS]


def test_the_vocabulary_has_mmtt_s_21_regions_in_order():
    assert len(FACE_REGIONS) == 21 and FACE_REGIONS[:3] == ("eye", "pupil", "lip") and FACE_REGIONS[-1] == "dimple"


def test_multilabel_equals_the_release_rule_on_varied_captions():
    rng = random.Random(5)
    words = [w for ws in FACE_REGION_WORDS.values() for w in ws] + ["eyelid", "noses-like", "Teeth's", "EARS",
                                                                    "lineage", "hairline", "cheekbone", "blur"]
    for _ in range(2000):
        caption = " ".join(rng.choice(words) + rng.choice(["", ",", ".", "'s", "-"]) for _ in range(rng.randint(1, 8)))
        assert multilabel(caption) == release_multilabel(caption), caption


def test_regions_named_reads_whole_words_in_any_case():
    assert regions_named("The EYES and the left cheek; teeth.") == ["eye", "cheek", "tooth"]
    assert regions_named("the eyelid and the hairline") == []  # not whole words
    assert regions_named("the buccal area") == ["mouth", "cheek"]  # a word of two regions names both
    assert regions_named(None) == [] and multilabel("") == [0] * 21


def test_per_region_precision_and_recall():
    records = [
        {"id": "a", "reference": {"text": "The eyes and the nose."}, "parsed": {"text": "The eyes look fake."}},
        {"id": "b", "reference": {"text": "The nose is blurred."}, "parsed": {"text": "The nose and the lips."}},
        {"id": "c", "reference": {"text": "The eyes."}, "parsed": None, "error": "the model failed"},
    ]
    output = region_metrics(records, MetricContext(task="FL"))
    per = output.breakdowns["regions"]["per_region"]
    assert per["eye"] == {"tp": 1, "n_reference": 2, "n_answer": 1, "precision": 1.0, "recall": 0.5}
    assert per["nose"] == {"tp": 1, "n_reference": 2, "n_answer": 1, "precision": 1.0, "recall": 0.5}
    assert per["lip"]["precision"] == 0.0 and per["lip"]["recall"] is None
    assert per["chin"] == {"tp": 0, "n_reference": 0, "n_answer": 0, "precision": None, "recall": None}
    assert output.breakdowns["regions"]["micro_precision"] == pytest.approx(2 / 3)
    assert output.breakdowns["regions"]["micro_recall"] == pytest.approx(2 / 4)
    assert output.per_sample["b"] == {"regions_named": ["lip", "nose"]}
