#!/usr/bin/env bash
# The engine on an NVIDIA GPU in under 5 minutes: tiled equals whole for every architecture
# and precision, out-of-memory retry under a forced small limit, and the GPU benchmark table.
# Never a CI dependency. Without CUDA it says so and exits 0 (use --dry-run for a CPU run of
# the same script at tiny sizes).
#
#   bash tools/bench/gpu_check.sh             # on the GPU machine
#   bash tools/bench/gpu_check.sh --dry-run   # anywhere: the script's own test, on the CPU
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-"$root/.venv/bin/python"}
[ -x "$python" ] || python=python3
if [ "${1:-}" = "--dry-run" ]; then
    exec "$python" "$root/tools/bench/gpu_check.py" --device cpu --dry-run "${@:2}"
fi
if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA GPU is visible to $python (torch without CUDA, or no driver): nothing to check."
    exit 0
fi
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv 2>/dev/null || true
exec "$python" "$root/tools/bench/gpu_check.py" --device cuda "$@"
