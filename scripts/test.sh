#!/usr/bin/env bash
# Set up everything the tests need and run them: the core and plugin tests in .venv, then the
# lmms-eval bridge tests in their own virtualenv .venv-lmms (lmms-eval's dependencies clash with
# the CPU torch of .venv), then the detectors plugin's tests in .venv-detectors (timm needs torchvision). Extra arguments go to the first pytest run (e.g. -m "not slow").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh dev
status=0
.venv/bin/python -m pytest tests plugins -q -p no:cacheprovider "$@" || status=$?
if [ -f plugins/dfabench-lmms/pyproject.toml ] && [ "${DFABENCH_SKIP_LMMS:-0}" != "1" ]; then
    bash .ci/lmms-env.sh
    .venv-lmms/bin/python -m pytest plugins/dfabench-lmms -p no:cacheprovider || status=$?
fi
# dfb-xception (timm) and the torchvision cross-checks run in .venv-detectors (torch 2.14.1 + torchvision 0.29.1)
if [ -f .ci/detectors-env.sh ] && [ "${DFABENCH_SKIP_DETECTORS:-0}" != "1" ]; then
    bash .ci/detectors-env.sh
    .venv-detectors/bin/python -m pytest plugins/dfabench-detectors -p no:cacheprovider || status=$?  # -q: its addopts
fi
exit $status
