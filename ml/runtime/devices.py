"""Device and precision choice for inference (runs in the worker, imports torch)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..options import Device, Precision, choice

log = logging.getLogger(__name__)

def available_devices() -> dict[str, bool]:
    mps = getattr(torch.backends, "mps", None)
    return {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(mps is not None and mps.is_available()),
    }


def resolve_device(name: Device | str) -> tuple[torch.device, str | None]:
    """The torch device for a user's choice, and a warning when it had to fall back."""
    wanted = choice(Device, str(name).strip())
    available = available_devices()
    if wanted == Device.AUTO:
        for candidate in (Device.CUDA, Device.MPS):
            if available[candidate]:
                return torch.device(candidate.value), None
        return torch.device("cpu"), None
    name = wanted.value
    if available[name]:
        return torch.device(name), None
    return torch.device("cpu"), f"{name.upper()} is not available on this machine: running on the CPU instead"


# The /proc/cpuinfo flags that decide which number format is fast on a CPU.
CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none: macOS, Windows)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_supports_bf16() -> bool:
    """Whether bf16 convolutions beat fp32 on this CPU: only with native bf16 arithmetic
    (AMX or AVX-512 BF16). On an AVX2 CPU torch emulates bf16 by converting every operand
    to fp32 and back, which is slower than fp32 itself."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def cpu_features() -> str:
    """One line naming the CPU and what it offers for inference, for benchmark headers and logs."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    capability = torch.backends.cpu.get_cpu_capability()
    flags = cpu_flags()
    present = [flag for flag in CPU_FLAGS_OF_INTEREST if flag in flags]
    reduced = reduced_dtype(torch.device("cpu"), "reduced", True)
    chosen = "bf16" if reduced == torch.bfloat16 else "fp32 (no native bf16: reduced precision would be slower)"
    return (f"CPU {model or 'unknown'}; torch kernels {capability}; flags {' '.join(present) or 'n/a'}; "
            f"{torch.get_num_threads()} threads; Reduced precision runs {chosen}")


def reduced_dtype(device: torch.device, precision: Precision | str, model_allows: bool) -> torch.dtype | None:
    """The autocast dtype to use, or None for full fp32.

    "auto" only lowers precision for models whose error against fp32 was measured
    small enough (``model_allows``); "full" always keeps fp32; "reduced" lowers it
    wherever the device supports it.
    """
    chosen = choice(Precision, str(precision).strip())
    if chosen == Precision.FULL or (chosen == Precision.AUTO and not model_allows):
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None
