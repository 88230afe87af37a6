"""Device and precision choice for inference (runs in the worker, imports torch)."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> dict[str, bool]:
    mps = getattr(torch.backends, "mps", None)
    return {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(mps is not None and mps.is_available()),
    }


def resolve_device(name: str) -> tuple[torch.device, str | None]:
    """The torch device for a user's choice, and a warning when it had to fall back."""
    name = name.strip().lower()  # the panel's enum says "CUDA", the CLI "cuda"
    if name not in DEVICE_CHOICES:
        raise ValueError(f"unknown device '{name}' (choose one of {', '.join(DEVICE_CHOICES)})")
    available = available_devices()
    if name == "auto":
        for candidate in ("cuda", "mps"):
            if available[candidate]:
                return torch.device(candidate), None
        return torch.device("cpu"), None
    if available[name]:
        return torch.device(name), None
    return torch.device("cpu"), f"{name.upper()} is not available on this machine: running on the CPU instead"


def cpu_supports_bf16() -> bool:
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def reduced_dtype(device: torch.device, precision: str, model_allows: bool) -> torch.dtype | None:
    """The autocast dtype to use, or None for full fp32.

    "auto" only lowers precision for models whose error against fp32 was measured
    small enough (``model_allows``); "full" always keeps fp32; "reduced" lowers it
    wherever the device supports it.
    """
    precision = precision.strip().lower()
    if precision not in ("auto", "full", "reduced"):
        raise ValueError(f"unknown precision '{precision}' (choose auto, full or reduced)")
    if precision == "full" or (precision == "auto" and not model_allows):
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None
