"""What a benchmark ran on, printed at the top of its output (figures mean little without it)."""

from __future__ import annotations

import platform

import torch

from ml.runtime.devices import cpu_features


def describe(device: str = "cpu") -> str:
    """The CPU's features and, for CUDA, the GPU's name, memory and reduced dtype."""
    lines = [f"torch {torch.__version__}, Python {platform.python_version()}", cpu_features()]
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        reduced = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        lines.append(f"GPU {props.name}, {props.total_memory / 2**30:.1f} GiB, compute {props.major}.{props.minor}, "
                     f"reduced precision {reduced}")
    return "\n".join(lines)
