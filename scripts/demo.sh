#!/usr/bin/env bash
# Set up dfabench (core + spectrum baseline, no torch) and run the main job on the smoke benchmark:
# the spectrum detector and the reference models (constant, random) on DF-D and DF-C, then the
# leaderboard of the three. Results land in demo-out/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh demo
dfabench=".venv/bin/dfabench"
out="${DEMO_OUT:-demo-out}"
mkdir -p "$out"
"$dfabench" bench smoke --out "$out/smoke"
for model in spectrum random constant; do
    echo
    echo "=== $model on DF-D, DF-C (smoke benchmark, test split) ==="
    "$dfabench" run --model "$model" --tasks DF-D,DF-C --bench "$out/smoke" --out "$out/runs/$model"
done
rm -rf "$out/entries"
for model in spectrum random constant; do
    "$dfabench" leaderboard submit "$out/runs/$model" --entries "$out/entries" --name "$model" >/dev/null
done
"$dfabench" leaderboard build --entries "$out/entries" --out "$out/leaderboard"
echo
sed -n '/^### DF-D/,/^### DF-C/p' "$out/leaderboard/README.md" | head -n -1
echo "(full leaderboard: $out/leaderboard/README.md)"
