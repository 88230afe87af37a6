#!/usr/bin/env bash
# Sets up .venv if needed, then runs the headless demo (writes demo_out/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
exec .venv/bin/python tools/demo.py "$@"
