#!/usr/bin/env bash
# Create (or update) .venv-detectors/: a separate virtualenv for the DeepfakeBench Xception detector of the
# dfabench-detectors plugin (dfb-xception), which is timm's `legacy_xception`.
#
# timm needs torchvision, and PyPI's torchvision does not import beside the CPU torch 2.13.0 of .venv
# ("operator torchvision::nms does not exist"). The pair that works on this kind of machine lies on local disk:
# torch 2.14.1 + torchvision 0.29.1 (a CUDA build, ~5.5 GB, runs on the CPU). So timm lives here, with
# transformers too (dfb-efficientnet-b4 and dfb-clip), so that benchmarks/bench_detectors.py measures all three
# detectors in one environment; efficientnet_pytorch (DeepfakeBench's EfficientNet) and OpenCV (its resize) are
# the tests' references. Versions come from constraints/detectors.txt (its lock file).
#
# Usage: bash .ci/detectors-env.sh [VENV_DIR]   (default .venv-detectors; re-running it is cheap)
# Then:  .venv-detectors/bin/python -m pytest plugins/dfabench-detectors/tests/test_deepfakebench*.py -q
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-detectors}"
python="${PYTHON:-python3}"
stamp="$venv/.dfabench-detectors-env"
lock="$root/constraints/detectors.txt"
if [ "${DFABENCH_CONSTRAINTS:-}" = "none" ]; then
    # resolve anew (to refresh constraints/detectors.txt: see its header)
    constraints=()
    want="unlocked"
else
    constraints=(-c "$lock")
    want="torch==2.14.1 torchvision==0.29.1 timm==1.0.31 lock $(sha256sum "$lock" | cut -c1-16)"
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
# shellcheck source=../scripts/pip.sh
source "$root/scripts/pip.sh"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    pip_install "torch==2.14.1" "torchvision==0.29.1" "timm==1.0.31" transformers safetensors \
        efficientnet_pytorch opencv-python-headless pytest scikit-learn "setuptools>=77"
    echo "$want" > "$stamp"
fi

# dfabench core (with the smoke benchmark) and the plugin, editable (fast when already installed).
pip_install --no-build-isolation -e "$root[smoke]" -e "$root/plugins/dfabench-detectors[timm]"

"$venv/bin/python" - <<'PY'
import importlib.metadata as md

import timm
import torchvision  # noqa: F401  (fails loudly when torch and torchvision do not match)

timm.create_model("legacy_xception", pretrained=False, num_classes=2)
print(f"detectors env ready: torch {md.version('torch')}, torchvision {md.version('torchvision')}, "
      f"timm {md.version('timm')}, transformers {md.version('transformers')}")
PY
