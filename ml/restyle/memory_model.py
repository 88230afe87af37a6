"""How much memory a style network needs, and the tile size that fits (Tile Size: Auto).

A network's peak working set grows with the pixels it is given: the table below holds
the measured bytes per input pixel of each architecture's whole-image forward at fp32 and
at reduced precision (bf16/fp16 activations), measured by

    nice .venv/bin/python tools/bench/bench_memory_model.py --sizes 512 1024

(peak resident growth between two large sizes less the result array; smaller sizes give
higher figures per pixel, from kernels' scratch, which the fixed part and the safety share cover).
Auto takes the free memory of the device the job runs on, keeps a safety share of it,
and picks the largest tile whose working set fits: the whole image in one pass when it
fits, otherwise the fewest equal tiles per side. CUDA out-of-memory still retries with
half the tile (``engine.restyle``).
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..options import AUTO_TILE

log = logging.getLogger(__name__)

GIB = 1024**3
MIN_AUTO_TILE = 256  # below this the halo costs more than the core: never chosen by Auto
AUTO = AUTO_TILE  # RestyleOptions.tile_size for "choose for me"

# Bytes per input pixel of the peak working set, (fp32, reduced), whole image; see the module
# docstring for the command. Unknown networks use the largest row (safe, maybe slow).
BYTES_PER_PIXEL: dict[str, tuple[int, int]] = {
    "AnimeGAN2": (1322, 821),
    "CycleGANGenerator": (635, 409),
    "TransformerNet": (609, 426),
    "AdaIN": (548, 340),
    "ToonStyle": (213, 182),
    "OilStyle": (514, 506),
    "WatercolorStyle": (264, 187),
    "PencilStyle": (124, 106),
    "PixelStyle": (32, 54),  # tiny either way; bf16 adds conversion copies
}
# Weights, reordered kernels, scratch: above the largest that bench_memory_model.py measured.
FIXED_BYTES = 256 * 1024**2

# The share of the free memory Auto plans to use: the rest is for other programs, Blender
# itself, and the error of the model (allocator fragmentation, convolution workspaces).
SAFE_SHARE = {"cpu": 0.5, "cuda": 0.8, "mps": 0.5}
UNKNOWN_FREE_BYTES = 4 * GIB  # where the free memory cannot be read (not Linux, old torch)


def bytes_per_pixel(model: torch.nn.Module, reduced: bool) -> int:
    name = type(model).__name__
    row = BYTES_PER_PIXEL.get(name)
    if row is None:
        row = max(BYTES_PER_PIXEL.values())
        log.info("no memory figures for %s: planning with the largest known (%d B/px)", name, row[0])
    return row[1] if reduced else row[0]


# The table above is measured on the CPU. On CUDA the peak per pixel is higher (cuDNN's
# workspaces and the caching allocator's rounding): the factor covers the largest ratio to the
# table's fp32 figures that tools/bench/gpu_check.sh measured.
DEVICE_FACTOR = {"cuda": 2.1}


def _meminfo_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_bytes(device: torch.device) -> int:
    """Memory the job may still use on ``device``, before the safety share."""
    if device.type == "cuda":
        if device.index is None:  # torch's per-process fraction call refuses a device without an index
            # Until CUDA is initialised the current device is 0; asking torch would initialise it here.
            device = torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_initialized() else 0)
        free, total = torch.cuda.mem_get_info(device)
        reserved = torch.cuda.memory_reserved(device)
        # A per-process limit (set_per_process_memory_fraction) caps what this process may
        # reserve, whatever the device has free.
        fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
        if fraction is not None:
            free = min(free, max(int(fraction(device) * total) - reserved, 0))
        # Blocks torch's caching allocator holds but no tensor uses are free for this job too.
        return int(free + max(reserved - torch.cuda.memory_allocated(device), 0))
    if device.type == "mps":
        mps = getattr(torch, "mps", None)
        recommended = getattr(mps, "recommended_max_memory", None)
        allocated = getattr(mps, "driver_allocated_memory", None)
        if recommended is not None and allocated is not None:
            return max(int(recommended()) - int(allocated()), 0)
    available = _meminfo_available() if sys.platform.startswith("linux") else None
    return available if available is not None else UNKNOWN_FREE_BYTES


@dataclass(frozen=True)
class TilePlan:
    tile_size: int  # the core size handed to the engine
    whole: bool  # the image runs in one pass
    budget: int  # bytes the plan may use
    needed: int  # bytes the chosen tile and the result array need by the model


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tile_bytes(core: int, height: int, width: int, halo: int, wrap: bool, per_pixel: int) -> int:
    """Working set of one tile with a ``core``-pixel core (its halo included) of an image."""
    def side(size: int) -> int:
        if core >= size and not wrap:
            return size  # one tile covers this axis: no halo to read
        return min(core, size) + 2 * halo
    return side(height) * side(width) * per_pixel + FIXED_BYTES


def choose_tile(height: int, width: int, *, halo: int, align: int, per_pixel: int, budget: int,
                wrap: bool = False, result_bytes: int = 0) -> TilePlan:
    """The largest tile that fits ``budget`` beside the ``result_bytes`` of the output array:
    the whole image when it fits, otherwise the fewest equal tiles per side (balanced tiles
    waste less on halos than one big and one thin), never smaller than MIN_AUTO_TILE."""
    align = max(1, align)
    budget -= result_bytes
    longest = max(_round_up(height, align), _round_up(width, align))
    for per_side in range(1, max(1, math.ceil(longest / MIN_AUTO_TILE)) + 1):
        core = _round_up(math.ceil(longest / per_side), align)
        if core < MIN_AUTO_TILE and per_side > 1:  # a whole image smaller than that is fine
            break
        needed = tile_bytes(core, height, width, halo, wrap, per_pixel)
        if needed <= budget:
            return TilePlan(core, per_side == 1, budget + result_bytes, needed + result_bytes)
    core = _round_up(min(MIN_AUTO_TILE, longest), align)
    needed = tile_bytes(core, height, width, halo, wrap, per_pixel)
    log.warning("even %d px tiles need %.1f GiB, more than the %.1f GiB free: trying anyway",
                core, needed / GIB, budget / GIB)
    return TilePlan(core, core >= longest, budget + result_bytes, needed + result_bytes)


def device_budget(device: torch.device) -> int:
    """The bytes a job may plan with on ``device``: a safe share of its free memory."""
    return int(free_bytes(device) * SAFE_SHARE.get(device.type, 0.5))


def plan_tiles(model: torch.nn.Module, height: int, width: int, device: torch.device, reduced: bool,
               wrap: bool = False, budget: int | None = None, tile_size: int | None = None,
               result_bytes: int = 0) -> TilePlan:
    """Auto's tile for ``model`` on ``device``; ``budget`` (bytes) replaces the safe share of
    the measured free memory. With a manual ``tile_size`` the plan says what that tile needs."""
    if budget is None:
        budget = device_budget(device)
    halo, align = int(getattr(model, "halo", 0)), int(getattr(model, "align", 1))
    per_pixel = int(bytes_per_pixel(model, reduced) * DEVICE_FACTOR.get(device.type, 1.0))
    if tile_size is not None:
        longest = max(_round_up(height, align), _round_up(width, align))
        needed = tile_bytes(tile_size, height, width, halo, wrap, per_pixel) + result_bytes
        return TilePlan(tile_size, tile_size >= longest, budget, needed)
    return choose_tile(height, width, halo=halo, align=align, per_pixel=per_pixel, budget=budget, wrap=wrap,
                       result_bytes=result_bytes)
