#!/usr/bin/env bash
# Regenerate the committed leaderboard (leaderboard/entries/*-smoke and the tables) from scratch: the
# reference models, the classical baselines and the learned baseline on the smoke benchmark, run, submitted and built exactly as a
# submitter would. Needs the dev environment (bash scripts/setup.sh dev). Run it after a change that alters
# the run record or a task spec, then `git diff leaderboard/` and commit.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dfabench="$root/.venv/bin/dfabench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
run() { "$dfabench" run --bench smoke --no-progress "$@" >/dev/null; }

run --model constant --tasks DF-D,DF-C --out "$work/constant"
run --model constant --tasks AD,FC --out "$work/constant"
run --model noise-inconsistency --tasks DF-D,DF-C,AD --out "$work/noise-inconsistency"
run --model random --tasks DF-D,DF-C --out "$work/random"
run --model spectrum --tasks DF-D,DF-C --out "$work/spectrum"
run --model learned-mobilenet --tasks DF-D,DF-C --out "$work/learned-mobilenet"   # trains once (~1.5 min), cached
for model in constant noise-inconsistency random spectrum learned-mobilenet; do
    "$dfabench" leaderboard submit "$work/$model" --entries leaderboard/entries --name "$model-smoke" --force >/dev/null
done
"$dfabench" leaderboard build --entries leaderboard/entries --out leaderboard
echo "regenerated leaderboard/ (review: git diff --stat leaderboard/)"
