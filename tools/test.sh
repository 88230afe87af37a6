#!/usr/bin/env bash
# Sets up the environments if needed, then runs every test on the main line (.venv, bpy 5.0.1:
# tests/ml and tests/blender), then tests/blender on each Blender LTS line (.venv/lts/bpy4.2,
# .venv/lts/bpy4.5). Arguments go to the main-line pytest only. Fails if any run fails; a run
# that collects no tests (pytest's exit 5) counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh || exit 1

failed=()
run_line() {
  local name=$1 python=$2
  shift 2
  echo "== tests on Blender $name ($("$python" -c 'import bpy; print(bpy.app.version_string)' 2>/dev/null || echo '?'))"
  "$python" -m pytest "$@"
  local status=$?
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests on Blender $name: treating that as a failure" >&2
  fi
  if [ "$status" -ne 0 ]; then
    failed+=("Blender $name (exit $status)")
  fi
}

run_line 5.0 .venv/bin/python "$@"
for line in 4.2 4.5; do
  run_line "$line LTS" ".venv/lts/bpy$line/bin/python" tests/blender
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "== all Blender lines passed"
