#!/usr/bin/env bash
# Refresh the lock files constraints/dev.txt and constraints/lmms.txt (see constraints/README.md).
#
# Each environment is resolved anew, in a throw-away virtualenv, under the hand-written pins of
# constraints/base.txt only; its exact versions are then written to the lock file. .venv and
# .venv-lmms are not touched. Afterwards run `bash scripts/test.sh` and review `git diff constraints/`.
#
#   bash scripts/lock.sh [dev|lmms|detectors|all]     (default all)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
which="${1:-all}"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# pip freeze of a virtualenv -> a lock file (local editables left out; torch's local "+cpu" label dropped,
# since the pin must match the same build wherever it comes from)
write_lock() {
    local venv="$1" target="$2" what="$3"
    {
        echo "# Lock file for $what, written by scripts/lock.sh on $(date -u +%Y-%m-%d) with $("$venv/bin/python" --version)."
        echo "# Do not edit by hand: change constraints/base.txt and run scripts/lock.sh (constraints/README.md)."
        "$venv/bin/python" -m pip freeze --all --exclude-editable --disable-pip-version-check \
            | grep -v -E '^(-e |#)' | grep -v ' @ ' | sed -E 's/^(torch==[0-9.]+)\+[a-z0-9]+$/\1/' | LC_ALL=C sort -f
    } > "$target.new"
    mv "$target.new" "$target"
    echo "wrote $target ($(grep -vc '^#' "$target") pins)"
}

if [ "$which" = dev ] || [ "$which" = all ]; then
    venv="$work/dev"
    "$python" -m venv "$venv"
    PIP_CONSTRAINT="$root/constraints/base.txt" DFABENCH_CONSTRAINTS=none VENV="$venv" \
        bash "$root/scripts/setup.sh" dev
    write_lock "$venv" "$root/constraints/dev.txt" ".venv (scripts/setup.sh demo|dev)"
fi
if [ "$which" = lmms ] || [ "$which" = all ]; then
    venv="$work/lmms"
    PIP_CONSTRAINT="$root/constraints/base.txt" DFABENCH_CONSTRAINTS=none bash "$root/.ci/lmms-env.sh" "$venv"
    write_lock "$venv" "$root/constraints/lmms.txt" ".venv-lmms (.ci/lmms-env.sh)"
fi
if [ "$which" = detectors ] || [ "$which" = all ]; then
    venv="$work/detectors"
    # not under base.txt: it pins the CPU torch 2.13.0, and this environment needs torch 2.14.1 + torchvision 0.29.1
    DFABENCH_CONSTRAINTS=none bash "$root/.ci/detectors-env.sh" "$venv"
    write_lock "$venv" "$root/constraints/detectors.txt" ".venv-detectors (.ci/detectors-env.sh)"
fi
