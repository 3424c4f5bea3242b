#!/usr/bin/env bash
# deploy/chromium.sh - Debian's headless-capable Chromium, for the console's browser tests (Playwright drives it
# through executable_path: no browser build is downloaded).
#
# Usage: deploy/chromium.sh        install `chromium` from Debian's packages if missing (root + apt), check that
#                                  it runs, and print its path on stdout (the only line on stdout).
# Idempotent: an installed chromium is only checked. Without root or apt, a missing chromium is an error that
# says what to install.
set -euo pipefail

say() { printf 'chromium: %s\n' "$*" >&2; }
die() { printf 'chromium: error: %s\n' "$*" >&2; exit 1; }

find_chromium() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

path="$(find_chromium)"
if [[ -z "$path" ]]; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "no chromium installed; installing Debian package 'chromium'"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
    else
        die "no chromium on PATH; install it as root: apt-get install chromium (Debian) - the browser tests need it"
    fi
    path="$(find_chromium)"
    [[ -n "$path" ]] || die "installing 'chromium' did not put a chromium on PATH"
fi

version="$("$path" --headless --no-sandbox --disable-gpu --version 2>/dev/null || true)"
[[ -n "$version" ]] || die "$path is installed but does not run (try: $path --headless --no-sandbox --version)"
say "$version"
printf '%s\n' "$path"
