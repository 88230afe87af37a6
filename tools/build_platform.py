"""Build one self-contained extension zip per platform: the wheels the worker needs ship
inside it, so users install one file with no pip, git or terminal.

    .venv/bin/python tools/build_platform.py [--platform linux-x64] [--torch-index URL]

Fills wheels/ (torch, its pure-Python dependencies, safetensors, OpenEXR; numpy comes with
Blender), stages the tracked sources with a manifest listing those wheels and the platform,
and builds with Blender's builder using --split-platforms. For a CUDA build on Linux or
Windows, point --torch-index at PyTorch's CUDA wheel index (e.g. .../whl/cu128).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.build_extension import blender_ext_tool  # noqa: E402

TORCH = "torch==2.13.0"
# torch's own requirements, all pure Python, plus what the extension imports beside torch.
PURE = ["filelock", "typing_extensions", "sympy", "mpmath", "networkx", "jinja2", "fsspec"]
BINARY = ["MarkupSafe", "safetensors", "openexr"]
PLATFORMS = {
    # Blender platform name: (pip platform tags, ...)
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_11_0_arm64", "macosx_14_0_arm64"],
}


def pip_download(packages: list[str], folder: Path, platform: str, index: str | None) -> None:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.11", "--dest", str(folder)]
    for tag in PLATFORMS[platform]:
        command += ["--platform", tag]
    if index:
        command += ["--extra-index-url", index]
    subprocess.run(command + packages, check=True)


def fill_wheels(platform: str, index: str | None) -> list[Path]:
    folder = ROOT / "wheels"
    for old in folder.glob("*.whl"):
        old.unlink()
    folder.mkdir(exist_ok=True)
    pip_download([TORCH], folder, platform, index)
    pip_download(BINARY, folder, platform, None)
    pip_download(PURE, folder, platform, None)
    return sorted(folder.glob("*.whl"))


def stage(platform: str, wheels: list[Path], staging: Path) -> Path:
    if staging.exists():
        shutil.rmtree(staging)
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    (staging / "wheels").mkdir(exist_ok=True)
    for wheel in wheels:
        shutil.copy2(wheel, staging / "wheels" / wheel.name)
    manifest = (staging / "blender_manifest.toml").read_text(encoding="utf-8")
    listing = ",\n".join(f'  "./wheels/{w.name}"' for w in wheels)
    extra = f'\nplatforms = ["{platform}"]\n\nwheels = [\n{listing},\n]\n'
    manifest = re.sub(r"(license = \[[^\]]*\]\n)", lambda m: m.group(1) + extra, manifest, count=1)
    manifest = manifest.replace('  "/wheels/",\n', "")  # the plain build leaves wheels out; this one needs them
    (staging / "blender_manifest.toml").write_text(manifest, encoding="utf-8")
    return staging


def build(platform: str, index: str | None = None, output: Path = ROOT / "dist") -> Path:
    wheels = fill_wheels(platform, index)
    staging = stage(platform, wheels, ROOT / "build" / f"stage-{platform}")
    tool = blender_ext_tool()
    output.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(tool), "build", "--source-dir", str(staging), "--output-dir", str(output),
                    "--split-platforms"], check=True, capture_output=True, text=True)
    suffix = platform.replace("-", "_")
    built = sorted(output.glob(f"*-{suffix}.zip"))
    if not built:
        raise SystemExit(f"the build made no zip for {platform}")
    return built[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", choices=sorted(PLATFORMS), default="linux-x64")
    parser.add_argument("--torch-index", help="extra package index for torch (CUDA builds)")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    print(build(args.platform, args.torch_index, args.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
