#!/usr/bin/env bash
# Create .venv-lmms/: a separate virtualenv with lmms-eval 0.7.3 for the dfabench-lmms plugin.
#
# lmms-eval depends on torchvision without a pin. Beside the CPU torch 2.13.0 pip picks
# torchvision 0.28.0, which fails at import ("operator torchvision::nms does not exist") and
# breaks transformers' image code; without torchvision (and with decord for video decoding)
# lmms-eval's llava_hf / qwen2_vl model classes work. So: torch 2.13.0 pinned, lmms-eval,
# then torchvision removed. This keeps lmms-eval's dependency set out of the main .venv.
#
# Usage: bash .ci/lmms-env.sh [VENV_DIR]   (default .venv-lmms; re-running it is cheap)
# Then:  .venv-lmms/bin/python -m pytest plugins/dfabench-lmms -q
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-lmms}"
python="${PYTHON:-python3}"
stamp="$venv/.dfabench-lmms-env"
lock="$root/constraints/lmms.txt"
constraints=(-c "$lock" -c "$root/constraints/base.txt")
want="lmms-eval==0.7.3 torch==2.13.0 lock $(sha256sum "$lock" | cut -c1-16)"
if [ "${DFABENCH_CONSTRAINTS:-}" = "none" ]; then
    # scripts/lock.sh: resolve anew (under PIP_CONSTRAINT=constraints/base.txt)
    constraints=()
    want="unlocked"
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# shellcheck source=../scripts/pip.sh
source "$root/scripts/pip.sh"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    pip_install "torch==2.13.0" "lmms-eval==0.7.3" decord pytest "setuptools>=77"
    # torchvision 0.28.0 does not work with the CPU torch 2.13.0 (see above): remove it.
    "${pip[@]}" uninstall -y torchvision >/dev/null 2>&1 || true
    echo "$want" > "$stamp"
fi

# dfabench core and the plugins the lmms tests use, editable (fast when already installed).
editable=(-e "$root")
for plugin in dfabench-hf dfabench-lmms; do
    if [ -f "$root/plugins/$plugin/pyproject.toml" ]; then
        editable+=(-e "$root/plugins/$plugin")
    fi
done
pip_install --no-build-isolation "${editable[@]}"
"${pip[@]}" uninstall -y torchvision >/dev/null 2>&1 || true

"$venv/bin/python" - <<'PY'
import importlib.metadata as md
import lmms_eval.models  # noqa: F401  (fails loudly when the environment is broken)
print(f"lmms env ready: lmms-eval {md.version('lmms-eval')}, torch {md.version('torch')}")
PY
