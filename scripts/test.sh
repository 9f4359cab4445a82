#!/usr/bin/env bash
# Set up everything the tests need and run them: the core and plugin tests in .venv, then the
# lmms-eval bridge tests in their own virtualenv .venv-lmms (lmms-eval's dependencies clash with
# the CPU torch of .venv). Extra arguments go to the first pytest run (e.g. -m "not slow").
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
exit $status
