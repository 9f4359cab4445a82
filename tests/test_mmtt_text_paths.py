"""The fast paths of the caption metrics give exactly the numbers of the plain ones: n-grams as joined strings
(when no token holds a space) against n-grams as tuples, on varied token lists."""

from __future__ import annotations

import random

from dfabench.metrics import caption_metrics as cm


def _texts(rng: random.Random, n: int) -> list[list[str]]:
    words = ["the", "eye", "eyes", "blur", "mouth", "edge", ",", ".", "-", "a", "of", "skin", "15", "%", "u.s."]
    return [[rng.choice(words) for _ in range(rng.randint(0, 30))] for _ in range(n)]


def test_joined_ngrams_give_the_same_counts_in_the_same_order_as_tuples():
    rng = random.Random(1)
    for tokens in _texts(rng, 200):
        joined, tuples = cm._joined_ngram_counts(tokens), cm.ngram_counts(tokens)
        for k in range(4):
            assert list(joined[k].values()) == list(tuples[k].values())
            assert list(joined[k]) == [" ".join(g) for g in tuples[k]]


def test_the_scores_are_bit_identical_with_either_ngram_form(monkeypatch):
    rng = random.Random(2)
    candidates = _texts(rng, 300)
    references = [[text] for text in _texts(rng, 300)]
    references[5].append(_texts(rng, 1)[0])  # several references for one sample
    fast = cm.score_token_lists(candidates, references)
    monkeypatch.setattr(cm, "_counter", lambda texts: cm.ngram_counts)
    plain = cm.score_token_lists(candidates, references)
    assert fast == plain


def test_a_token_with_a_space_keeps_the_tuple_form():
    assert cm._counter([["a", "b"], ["c"]]) is cm._joined_ngram_counts
    assert cm._counter([["a b", "c"], ["d"]]) is cm.ngram_counts
    # "a b" + "c" and "a" + "b c" share no n-gram (joined strings would make them equal)
    assert cm.score_token_lists([["a b", "c"]], [[["a", "b c"]]])["corpus"]["rouge_l"] == 0.0
