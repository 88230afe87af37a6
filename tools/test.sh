#!/usr/bin/env bash
# Sets up .venv if needed, then runs every test (tests/ml and tests/blender in real bpy).
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh || exit 1
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: treating that as a failure" >&2
fi
exit "$status"
