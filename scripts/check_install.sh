#!/usr/bin/env bash
# Installs the project with plain `pip install .` into a fresh virtual environment that already
# holds a numpy other than the pinned one (but in the declared range), the way a user installs it
# beside their own packages, and checks that pip kept that numpy and that a short training runs.
# Run by CI after the tests; takes a minute or two (pip's cache holds most wheels).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
user_numpy="2.3.5"  # in pyproject.toml's range (>=1.26,<3), not constraints.txt's pin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3.11 -m venv "$work/venv" 2>/dev/null || python3 -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip install -q)
"${pip[@]}" "numpy==$user_numpy" "torch==2.13.0"  # the user's own (torch: the CPU wheel)
"${pip[@]}" "$root"
kept=$("$work/venv/bin/python" -c "import numpy; print(numpy.__version__)")
if [ "$kept" != "$user_numpy" ]; then
    echo "check_install: pip install . replaced the user's numpy $user_numpy with $kept" >&2
    exit 1
fi
cd "$work"
"$work/venv/bin/tprog" --version
OMP_NUM_THREADS=1 "$work/venv/bin/tprog" train hist --epochs 1 --n-examples 200 --quiet --out "$work/run"
echo "check_install: installed beside numpy $user_numpy, which pip kept; a training ran"
