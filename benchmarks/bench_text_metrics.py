"""BLEU-1..4 + ROUGE-L + CIDEr-D with tokenization: dfabench.metrics.text against pycocoevalcap.

    python benchmarks/bench_text_metrics.py [--n 20000] [--seed 0]

Generates ``n`` description pairs (answer and reference, in the style of DFA-Bench / MMTT artefact
descriptions: a numbered list of regions with their artefacts, signed numbers, percentages and acronyms), then
times, in this run, what the official MMTT script does (pycocoevalcap's Java PTBTokenizer on the references and
on the answers, then its Bleu(4), Rouge and Cider scorers) and what dfabench does (its pure-Python tokenizer, then
``score_token_lists``). Prints whether the tokens are identical, the largest difference of the corpus and
per-sample values, and the speed ratios (with and without the tokenization).
"""

from __future__ import annotations

import argparse
import platform
import random
import time

REGIONS = ["forehead", "eyes", "left eye", "right eye", "eyebrows", "nose", "cheeks", "jawline", "mouth", "lips",
           "teeth", "chin", "hairline", "ears", "neck", "skin around the eyes", "face boundary"]
ARTIFACTS = ["blurring", "unnatural smoothness", "color mismatch", "inconsistent lighting", "warped edges",
             "visible blending boundaries", "asymmetric shapes", "loss of texture", "ghosting", "jagged outlines",
             "over-saturated tones", "misaligned features", "flickering details", "plastic-like skin",
             "missing reflections", "irregular shadows"]
QUALIFIERS = ["slight", "noticeable", "strong", "subtle", "high-frequency", "GAN-like", "localized", "clear"]
OPENINGS = ["The image shows signs of manipulation.", "This face appears to be forged.",
            "Several regions reveal artifacts.", "The face has been swapped, as the following regions show."]
NUMBERS = ["+15", "-10", "30%", "-5%", "2.5x", "1,024", "U.S.-style", "A.I.-generated", "e.g.", "(about 20%)"]
EVIDENCE = ["which suggests blending with a source face", "typical of generated faces",
            "that does not match the rest of the face", "especially when compared with the background",
            "as if the region had been pasted in", "which a real photograph would not show"]


def description(rng: random.Random) -> str:
    parts = [rng.choice(OPENINGS)]
    for i, region in enumerate(rng.sample(REGIONS, rng.randint(2, 6)), 1):
        artifacts = rng.sample(ARTIFACTS, rng.randint(1, 3))
        parts.append(f"{i}. {region.capitalize()}: the {region} show {rng.choice(QUALIFIERS)} {', '.join(artifacts)}"
                     f"{' around the ' + rng.choice(REGIONS) if rng.random() < 0.5 else ''}, "
                     f"{rng.choice(EVIDENCE)}{' (' + rng.choice(NUMBERS) + ')' if rng.random() < 0.3 else ''}.")
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from dfabench.metrics.text import TOKENIZER_VERSION, score_token_lists, tokenize

    rng = random.Random(args.seed)
    pairs = [(description(rng), description(rng)) for _ in range(args.n)]
    timings = {}
    started = time.perf_counter()
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": r}] for i, (_, r) in enumerate(pairs)})
    res = tokenizer.tokenize({i: [{"caption": c}] for i, (c, _) in enumerate(pairs)})
    timings["pycoco_java-tokenizer"] = time.perf_counter() - started
    started = time.perf_counter()
    candidates = [tokenize(c) for c, _ in pairs]
    references = [[tokenize(r)] for _, r in pairs]
    tokenize_s = time.perf_counter() - started
    mean_len = sum(len(c) + len(r[0]) for c, r in zip(candidates, references, strict=True)) / (2 * args.n)
    differing = sum(1 for i, c in enumerate(candidates) if " ".join(c) != res[i][0]) + sum(
        1 for i, r in enumerate(references) if " ".join(r[0]) != gts[i][0])

    started = time.perf_counter()
    bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
    timings["pycoco_bleu"] = time.perf_counter() - started
    started = time.perf_counter()
    rouge, rouge_per = Rouge().compute_score(gts, res)
    timings["pycoco_rouge"] = time.perf_counter() - started
    started = time.perf_counter()
    cider, cider_per = Cider().compute_score(gts, res)
    timings["pycoco_cider"] = time.perf_counter() - started
    reference_s = sum(timings.values())
    scoring_s = reference_s - timings["pycoco_java-tokenizer"]

    started = time.perf_counter()
    ours = score_token_lists(candidates, references)
    ours_s = time.perf_counter() - started

    expected = {f"bleu_{k + 1}": bleu[k] for k in range(4)} | {"rouge_l": rouge, "cider": float(cider)}
    corpus_diff = max(abs(ours["corpus"][name] - value) for name, value in expected.items())
    per_diff = 0.0
    for i, row in enumerate(ours["per_sample"]):
        per_diff = max(per_diff, *(abs(row[f"bleu_{k + 1}"] - bleu_per[k][i]) for k in range(4)),
                       abs(row["rouge_l"] - rouge_per[i]), abs(row["cider"] - cider_per[i]))

    print(f"python {platform.python_version()} on {platform.machine()}; {args.n} description pairs, "
          f"{mean_len:.1f} tokens per text on average (tokenizer {TOKENIZER_VERSION})")
    print(f"texts tokenized differently from the Java tool: {differing} of {2 * args.n}")
    for name, value in expected.items():
        print(f"  {name:8s} pycocoevalcap {value:.6f}  dfabench {ours['corpus'][name]:.6f}")
    print(f"largest difference: corpus {corpus_diff:.2e}, per sample {per_diff:.2e}")
    print("pycocoevalcap: " + ", ".join(f"{k.split('_')[1]} {v:.2f} s" for k, v in timings.items())
          + f"; total {reference_s:.2f} s")
    print(f"dfabench: tokenizer {tokenize_s:.2f} s, all six metrics {ours_s:.2f} s; total {tokenize_s + ours_s:.2f} s")
    print(f"speed ratio (pycocoevalcap / dfabench): with the tokenization {reference_s / (tokenize_s + ours_s):.1f}x, "
          f"the metrics alone {scoring_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
