"""A guess at which accelerators exist, made without importing torch (Blender's process
never imports torch). The worker's own answer replaces the guess once it has started."""

from __future__ import annotations

import ctypes.util
import platform
import sys


def guess_devices() -> dict[str, bool]:
    return {
        "cpu": True,
        "cuda": sys.platform != "darwin" and ctypes.util.find_library("cuda") is not None,
        "mps": sys.platform == "darwin" and platform.machine() == "arm64",
    }
