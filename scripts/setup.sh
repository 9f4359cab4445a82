#!/usr/bin/env bash
# Create (or update) the project's virtualenv .venv and install dfabench into it.
#
#   bash scripts/setup.sh demo   core + the smoke benchmark + the spectrum baseline (no torch)
#   bash scripts/setup.sh dev    everything the tests need: all plugins, torch (CPU), text metrics,
#                                WordNet for METEOR, pytest
#
# Re-running it is cheap. PYTHON picks the interpreter (default python3, >= 3.10).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile="${1:-dev}"
venv="$root/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade "pip>=24" setuptools wheel >/dev/null

case "$profile" in
demo)
    "${pip[@]}" install -e "$root[smoke]" -e "$root/plugins/dfabench-baselines"
    ;;
dev)
    # torch is pinned to the CPU build on this kind of machine; the plugins only ask for torch>=2.2.
    "${pip[@]}" install "torch==2.13.0"
    plugins=()
    for plugin in dfabench-baselines dfabench-hf dfabench-dfagpt dfabench-openai dfabench-lmms; do
        plugins+=(-e "$root/plugins/$plugin")
    done
    "${pip[@]}" install -e "$root[smoke,text,embeddings,judge,test]" "${plugins[@]}"
    # WordNet for METEOR, installed once into dfabench's data folder (offline afterwards).
    if ! "$venv/bin/dfabench" resources status | grep -q "^wordnet: WordNet"; then
        "$venv/bin/dfabench" resources wordnet \
            || echo "warning: WordNet not installed; METEOR will be reported unavailable" >&2
    fi
    ;;
*)
    echo "usage: bash scripts/setup.sh demo|dev" >&2
    exit 2
    ;;
esac
