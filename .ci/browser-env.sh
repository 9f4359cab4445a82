#!/usr/bin/env bash
# Headless Chromium and its driver for the browser tests (tests/test_browser_*.py): installs the Debian packages
# `chromium` and `chromium-driver` when they are missing. Quiet: prints only when something fails.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
sudo_cmd=""
if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
if ! { $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
        --no-install-recommends chromium chromium-driver; } >"$log" 2>&1; then
    echo "browser-env: installing chromium and chromium-driver failed:" >&2
    cat "$log" >&2
    exit 1
fi
