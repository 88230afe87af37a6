"""Validate and build the extension zip with Blender's own extension tool.

    python tools/build_extension.py [--output-dir dist]

Uses blender_ext.py from the installed bpy module (or $BLENDER_EXT_TOOL), so the zip is
exactly what ``blender --command extension build`` would make. Prints the zip's path.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def blender_ext_tool() -> Path:
    override = os.environ.get("BLENDER_EXT_TOOL")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the bpy module is not installed: pip install bpy==5.0.1")
    bpy_dir = Path(next(iter(spec.submodule_search_locations)))
    candidates = sorted(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not candidates:
        raise SystemExit(f"blender_ext.py not found under {bpy_dir}")
    return candidates[-1]


def manifest_version() -> tuple[str, str]:
    import tomllib

    data = tomllib.loads((ROOT / "blender_manifest.toml").read_text(encoding="utf-8"))
    return data["id"], data["version"]


def build(output_dir: Path) -> Path:
    tool = blender_ext_tool()
    subprocess.run([sys.executable, str(tool), "validate", str(ROOT)], check=True, capture_output=True, text=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    ext_id, version = manifest_version()
    zip_path = output_dir / f"{ext_id}-{version}.zip"
    zip_path.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, str(tool), "build", "--source-dir", str(ROOT), "--output-dir", str(output_dir)],
        check=True, capture_output=True, text=True,
    )
    if not zip_path.exists():
        raise SystemExit(f"the build did not produce {zip_path}")
    return zip_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    try:
        print(build(args.output_dir))
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(exc.stdout + exc.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
