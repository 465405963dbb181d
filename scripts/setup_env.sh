#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv, install the pinned dependencies and build blkit
# (CMake + Ninja via setup.py) in editable mode. Sourced by the other scripts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BLKIT_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[blkit] creating virtual environment $VENV"
  python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
echo "[blkit] installing dependencies (torch==2.13.0, triton, build tools)"
# (this machine's pip configuration warns about absent local index folders: filter that noise only)
pip_quiet() { python -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2); }
pip_quiet -r "$ROOT/requirements-dev.txt"
echo "[blkit] building blkit (native module via CMake + Ninja)"
pip_quiet --no-build-isolation --no-deps -e "$ROOT"
