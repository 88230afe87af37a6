"""A guess at which accelerators exist, made without importing torch (Blender's process
never imports torch). The worker's own answer replaces the guess once it has started."""

from __future__ import annotations

import ctypes.util
import functools
import platform
import sys


@functools.cache
def guess_devices() -> dict[str, bool]:
    """Computed once per session, on first use (never at register time): on Linux
    ``find_library`` runs ``ldconfig`` and maybe ``gcc``, far too slow for a menu that
    Blender redraws many times a second. Callers must not change the returned dict."""
    return {
        "cpu": True,
        "cuda": sys.platform != "darwin" and ctypes.util.find_library("cuda") is not None,
        "mps": sys.platform == "darwin" and platform.machine() == "arm64",
    }
