# Sourced by scripts/setup.sh, .ci/detectors-env.sh and .ci/lmms-env.sh: one quiet pip.
#
# pip_install ARGS...  installs into the virtualenv "$venv" with the lock files in the array "constraints"
# (empty: resolve freely). Quiet when it works: pip's warnings (local index folders that lack a package,
# setuptools' notes on editable builds) are shown only when it fails, together with its error.
pip_install() {
    local log
    log="$(mktemp)"
    if ! "$venv/bin/python" -m pip --disable-pip-version-check -q install "${constraints[@]}" "$@" 2>"$log"; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}
