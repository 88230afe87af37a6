#!/usr/bin/env bash
# Type-checks the extension against fake-bpy-module, under its Blender package name.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$root" "$work/neural_restyle"
cd "$work"
"$root/.venv/bin/mypy" --config-file "$root/pyproject.toml" --cache-dir "$work/.mypy_cache" -p neural_restyle
