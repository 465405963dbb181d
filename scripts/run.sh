#!/usr/bin/env bash
# Quick start, main job: set up .venv, build blkit and run `blkit ARGS` (the README main job is
# `bash scripts/run.sh sample --num 64 --seed 0 --out samples.png`: digits from the shipped demo model).
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
blkit "$@"
