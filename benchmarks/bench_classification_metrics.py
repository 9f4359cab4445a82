"""Speed of the DF-D / DF-C metric providers and of the cluster bootstrap on large runs.

Prints times and ratios against references measured in the same run:

- scoring 100,000 per-sample records (1,000 bootstrap replicates, clusters of 5 samples) against
  reading the same records from JSON lines (what any re-score must do anyway);
- the vectorised ``bootstrap_mean`` against the generic ``cluster_bootstrap`` (index resamples and a
  Python statistic per replicate; measured on 50 replicates and scaled to 1,000);
- parsing free-text answers (``parse_detection`` / ``parse_category``) against ``json.loads`` of the
  same strings.

Usage: ``python benchmarks/bench_classification_metrics.py [--n 100000] [--n-boot 1000]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from dfabench.metrics import MetricContext
from dfabench.metrics.classification import category_metrics, detection_metrics, ranking_metrics, ranking_replicates
from dfabench.metrics.statistics import bootstrap_mean, cluster_bootstrap
from dfabench.parsing import parse_category, parse_detection

CATEGORIES = ("FS", "FR", "FE", "EFS")


def make_records(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        fake = bool(rng.random() < 0.6)
        score = float(np.clip(rng.normal(0.6 if fake else 0.45, 0.2), 0, 1))
        parsed = None if rng.random() < 0.03 else ("fake" if score >= 0.5 else "real")
        records.append({
            "id": f"s{i:07d}", "reference": "fake" if fake else "real", "parsed": parsed, "error": None,
            "unparsed": parsed is None, "score": score, "category": CATEGORIES[i % 4] if fake else None,
            "technique": f"technique-{i % 40}" if fake else None, "source_id": f"video-{i // 5}",
        })
    return records


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()

    records = make_records(args.n)
    lines = [json.dumps(r) for r in records]
    t_json, _ = timed(lambda: [json.loads(line) for line in lines])
    context = MetricContext(task="DF-D", seed=0, n_boot=args.n_boot)
    t_detection, _ = timed(detection_metrics, records, context)
    t_ranking, _ = timed(ranking_metrics, records, context)
    fakes = [dict(r, reference=r["category"], parsed=CATEGORIES[int(r["score"] * 7) % 4] if r["parsed"] else None)
             for r in records if r["reference"] == "fake"]
    t_category, _ = timed(category_metrics, fakes, MetricContext(task="DF-C", seed=0, n_boot=args.n_boot))

    print(f"{args.n} records, {args.n_boot} bootstrap replicates, clusters of 5 samples")
    print(f"  reference: json.loads of the records           {t_json:8.3f} s")
    print(f"  detection (accuracy, balanced, per category)   {t_detection:8.3f} s  = {t_detection / t_json:5.2f}x json")
    print(f"  ranking (AUC, AP, EER; {ranking_replicates(args.n, args.n_boot)} replicates)"
          f"{'':10}{t_ranking:8.3f} s  = {t_ranking / t_json:5.2f}x json")
    print(f"  classification ({len(fakes)} fakes: accuracy, macro-F1)  {t_category:8.3f} s"
          f"  = {t_category / t_json:5.2f}x json")

    rng = np.random.default_rng(1)
    values = rng.random(args.n)  # continuous values, one cluster per sample: the slowest case
    clusters = [f"s{i}" for i in range(args.n)]
    t_fast, _ = timed(bootstrap_mean, values, clusters, n_boot=args.n_boot)
    probe = 50
    t_generic, _ = timed(cluster_bootstrap, lambda idx: float(values[idx].mean()), clusters, n_boot=probe)
    t_generic *= args.n_boot / probe
    print(f"bootstrap_mean, {args.n} continuous values x {args.n_boot} replicates {t_fast:8.3f} s")
    print(f"  generic cluster_bootstrap (scaled from {probe} replicates) {t_generic:8.3f} s"
          f"  -> bootstrap_mean is {t_generic / t_fast:5.1f}x faster")

    answers = ["Yes, this face has been forged.", "No, this face is real.",
               "The skin around the jawline is blurred and the lighting is inconsistent, which indicates that the "
               "face has been manipulated.", "There are no signs of manipulation."] * (args.n // 40)
    kinds = ["Face swapping is used: the face was replaced with another identity.",
             "The technique is face reenactment: the expression of a driving video was transferred.",
             "Entire face synthesis is used: the whole face was generated."] * (args.n // 30)
    encoded = [json.dumps(a) for a in answers + kinds]
    t_ref, _ = timed(lambda: [json.loads(e) for e in encoded])
    t_det, _ = timed(lambda: [parse_detection(a) for a in answers])
    t_cat, _ = timed(lambda: [parse_category(a) for a in kinds])
    per_answer = (t_det + t_cat) / len(encoded) * 1e6
    print(f"parsing {len(encoded)} answers: {t_det + t_cat:.3f} s ({per_answer:.0f} us per answer)"
          f" = {(t_det + t_cat) / t_ref:5.1f}x json.loads of the same strings")


if __name__ == "__main__":
    main()
