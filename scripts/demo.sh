#!/usr/bin/env bash
# Set up dfabench (core + the baselines, CPU torch for the learned one) and run the main job on the smoke
# benchmark: the learned baseline (a MobileNetV2 fine-tuned on the train split, ~1.5 min of CPU training, cached),
# the spectrum detector, the noise-inconsistency localizer and the reference models (constant, random) on DF-D
# and DF-C, the localizer on FL too, then the leaderboard of the five. Results land in demo-out/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh demo
dfabench=".venv/bin/dfabench"
out="${DEMO_OUT:-demo-out}"
mkdir -p "$out"
"$dfabench" bench smoke --out "$out/smoke"
for model in learned-mobilenet spectrum noise-inconsistency random constant; do
    echo
    echo "=== $model on DF-D, DF-C (smoke benchmark, test split) ==="
    "$dfabench" run --model "$model" --tasks DF-D,DF-C --bench "$out/smoke" --out "$out/runs/$model"
done
echo
echo "=== noise-inconsistency on FL: forgery masks + reports (MMTT-style) ==="
"$dfabench" run --model noise-inconsistency --tasks FL --bench "$out/smoke" --out "$out/runs/noise-inconsistency"
rm -rf "$out/entries"
for model in learned-mobilenet spectrum noise-inconsistency random constant; do
    "$dfabench" leaderboard submit "$out/runs/$model" --entries "$out/entries" --name "$model" >/dev/null
done
"$dfabench" leaderboard build --entries "$out/entries" --out "$out/leaderboard" --bench "$out/smoke"
echo
sed -n '/^### DF-D/,/^### DF-C/p' "$out/leaderboard/README.md" | head -n -1
echo "(full leaderboard: $out/leaderboard/README.md)"
