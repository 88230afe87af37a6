#!/usr/bin/env bash
# Creates the test environments with Python 3.11 and every pinned dependency (idempotent; fast
# when done): .venv for the main line (bpy 5.0.1, lint and type-check tools too) and one per
# Blender LTS line the manifest claims (.venv/lts/bpy4.2, .venv/lts/bpy4.5: bpy and what tests/blender needs;
# inside .venv/, which git, ruff, mypy, the extension build and the pre-stop checks all leave out).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "Python 3.11 is required (the bpy module on PyPI is built for it); found $("$PY" --version)" >&2
  exit 2
fi

# make_venv FOLDER REQUIREMENTS: the venv, then its requirements unless the stamp says they are in.
make_venv() {
  local folder=$1 requirements=$2
  [ -x "$folder/bin/python" ] || "$PY" -m venv "$folder"
  local stamp="$folder/.requirements-installed"
  if [ ! -f "$stamp" ] || ! cmp -s "$requirements" "$stamp"; then
    echo "== installing $requirements into $folder"
    "$folder/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
  fi
}

make_venv .venv requirements-dev.txt
for line in 4.2 4.5; do
  make_venv ".venv/lts/bpy$line" "requirements-lts$line.txt"
done
