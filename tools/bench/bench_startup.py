"""Extension enable time (in a fresh Blender, checking torch stays unimported), the worker's
cold start and its warm round trip.

    .venv/bin/python tools/bench/bench_startup.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ml.runtime.client import WorkerClient  # noqa: E402
from tools.build_extension import build  # noqa: E402

ENABLE_SCRIPT = """
import json, os, sys, time
os.environ["BLENDER_USER_RESOURCES"] = {user!r}
t0 = time.perf_counter()
import bpy, addon_utils
t1 = time.perf_counter()
bpy.ops.extensions.package_install_files(filepath={zip!r}, repo="user_default", enable_on_install=False)
name = "bl_ext.user_default.neural_restyle"
t2 = time.perf_counter()
addon_utils.enable(name, default_set=True)
t3 = time.perf_counter()
print("RESULT" + json.dumps({{"import_bpy_s": t1 - t0, "enable_s": t3 - t2,
      "enabled": name in bpy.context.preferences.addons, "torch_imported": "torch" in sys.modules}}))
"""


def main() -> None:
    zip_path = build(Path(tempfile.mkdtemp()) / "dist")
    runs = []
    for _ in range(3):
        script = textwrap.dedent(ENABLE_SCRIPT.format(user=tempfile.mkdtemp(), zip=str(zip_path)))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
        runs.append(json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[6:]))
    enable = statistics.median(r["enable_s"] for r in runs) * 1000
    print(f"extension enable: {enable:.1f} ms median of 3 (import bpy itself: "
          f"{statistics.median(r['import_bpy_s'] for r in runs):.2f} s); "
          f"enabled={all(r['enabled'] for r in runs)}, torch imported={any(r['torch_imported'] for r in runs)}")

    client = WorkerClient(str(ROOT))
    started = time.perf_counter()
    client.start()
    cold = time.perf_counter() - started
    pings = sorted(client.ping() for _ in range(50))
    client.shutdown()
    print(f"worker cold start (process + torch import): {cold:.2f} s")
    print(f"worker warm round trip: median {pings[25] * 1000:.2f} ms, worst {pings[-1] * 1000:.2f} ms (50 pings)")


if __name__ == "__main__":
    main()
