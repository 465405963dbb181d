#!/usr/bin/env bash
# Quick start, main job: set up .venv, build blkit, and run the `blkit` command.
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
blkit "$@"
