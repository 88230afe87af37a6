"""Restyles an H x W x C float32 image of any size with a style network.

The image is cut into tiles whose cores cover it exactly once; each tile carries a
halo of context on every side so that convolution borders never reach the core,
and neighbouring tiles cross-fade over a thin feather band. Models whose layers
normalise over the whole image (:class:`~.tiling.GlobalNorm`) are run in passes: each
norm's statistics are gathered over every tile in turn, which gives the whole-image
result within rounding. The result is written straight into the output array, so the
engine itself needs no full-size copies of the image.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import InvalidImageError, JobCancelled
from ..networks.base import StyleNet
from ..options import RestyleOptions, Seamless
from ..runtime.devices import reduced_dtype, resolve_device
from . import color, memory_model
from .allocator import trim_heap
from .memory_model import AUTO, plan_tiles
from .tiling import (
    GlobalNorm,
    ResumeCache,
    StopForward,
    TileContext,
    active_tile,
    global_norms,
    recording_norm_order,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]


@dataclass
class RestyleReport:
    tiles: int = 0
    passes: int = 0
    seamless: bool = False
    device: str = "cpu"
    dtype: str = "float32"
    warning: str | None = None
    tile_size: int = 0  # the tile size the run used (what Auto chose, or the manual size)
    auto_tile: bool = False  # the tile size was chosen by Auto
    stored_peak: int = 0  # bytes of activations the exact passes kept at most (ResumeCache)


DEFAULT_OPTIONS = RestyleOptions()
CHUNK_ROWS = 256  # whole-image numpy work runs in row blocks, so no full-size temporaries


def _mean_abs_step(rgb: np.ndarray, axis: int) -> float:
    """Mean absolute difference between neighbouring pixels along an axis, in row blocks."""
    total, count = 0.0, 0
    for r0 in range(0, rgb.shape[0], CHUNK_ROWS):
        block = np.clip(rgb[r0 : r0 + CHUNK_ROWS + (axis == 0)], 0.0, 1.0)
        step = np.abs(np.diff(block, axis=axis))
        total, count = total + float(step.sum(dtype=np.float64)), count + step.size
    return total / max(count, 1)


def is_tileable(rgb: np.ndarray) -> bool:
    """Whether opposite edges continue each other about as smoothly as neighbouring pixels do."""
    if rgb.shape[0] < 8 or rgb.shape[1] < 8:
        return False
    for axis in (0, 1):
        seam = np.abs(np.clip(np.take(rgb, 0, axis), 0, 1) - np.clip(np.take(rgb, -1, axis), 0, 1)).mean()
        if seam > 1.5 * _mean_abs_step(rgb, axis) + 0.5 / 255:
            return False
    return True


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _checked_layout(image: np.ndarray) -> np.ndarray:
    """An H x W x C float32 view (C in 1..4) of the input, checked for finite colour values."""
    source = np.asarray(image, dtype=np.float32)
    if source.ndim == 2:
        source = source[..., None]
    if source.ndim != 3 or source.shape[2] not in (1, 2, 3, 4):
        raise InvalidImageError(f"expected an H x W x C image with 1 to 4 channels, got shape {np.shape(image)}")
    if source.shape[0] == 0 or source.shape[1] == 0:
        raise InvalidImageError("the image is empty (0 pixels)")
    colour = source[..., : _colour_channels(source)]
    for r0 in range(0, source.shape[0], CHUNK_ROWS):
        if not np.isfinite(colour[r0 : r0 + CHUNK_ROWS]).all():
            raise InvalidImageError("the image contains NaN or infinite values")
    return source


def _colour_channels(source: np.ndarray) -> int:
    """3 for RGB(A), 1 for grey (with or without alpha)."""
    return 3 if source.shape[2] >= 3 else 1


def restyle(
    model: StyleNet,
    image: np.ndarray,
    options: RestyleOptions = DEFAULT_OPTIONS,
    progress: ProgressFn | None = None,
    cancelled: CancelFn | None = None,
    report: RestyleReport | None = None,
) -> np.ndarray:
    """Restyle an sRGB-encoded image in [0, 1] (H x W x C, C = 1..4); returns the same shape.

    When the GPU runs out of memory the run is repeated with half the tile size."""
    options = options.validated()
    report = report if report is not None else RestyleReport()
    first_size = 0
    while True:
        try:
            result = _restyle_once(model, image, options, progress, cancelled, report)
        except torch.cuda.OutOfMemoryError:
            used = report.tile_size  # Auto's choice or the manual size, set before any tile ran
            if used <= 128:
                raise
            first_size = first_size or used
            torch.cuda.empty_cache()
            smaller = max(128, used // 2)
            log.warning("out of GPU memory with %d px tiles: retrying with %d px", used, smaller)
            options = replace(options, tile_size=smaller)
            continue
        if first_size:
            report.warning = f"The GPU ran out of memory with {first_size} px tiles: used {report.tile_size} px tiles"
        return result


@contextlib.contextmanager
def exact_fp32(device: torch.device, full: bool) -> Iterator[None]:
    """Full precision on CUDA means fp32. cuDNN runs fp32 convolutions in TF32 (a 10-bit
    mantissa) by default on Ampere and later GPUs; tiles and the whole image then round apart
    by more than one 8-bit step (tools/bench/gpu_check.sh found it)."""
    if device.type != "cuda" or not full:
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _restyle_once(
    model: StyleNet,
    image: np.ndarray,
    options: RestyleOptions,
    progress: ProgressFn | None,
    cancelled: CancelFn | None,
    report: RestyleReport,
) -> np.ndarray:
    source = _checked_layout(image)
    colour = source[..., : _colour_channels(source)]
    wrap = options.seamless == Seamless.ON or (options.seamless == Seamless.AUTO and is_tileable(colour))
    device, warning = resolve_device(options.device)
    dtype = reduced_dtype(device, options.precision, model.reduced_precision_ok)
    report.seamless, report.device, report.warning = wrap, str(device), warning
    report.dtype = str(dtype or torch.float32).replace("torch.", "")
    report.auto_tile = options.tile_size == AUTO
    budget = options.memory_budget or memory_model.device_budget(device)
    plan = plan_tiles(model, source.shape[0], source.shape[1], device, dtype is not None, wrap, budget=budget,
                      tile_size=None if report.auto_tile else options.tile_size, result_bytes=source.nbytes)
    if report.auto_tile:
        log.info("Auto tile size: %d px (%s; %.2f GiB planned of %.2f GiB)", plan.tile_size,
                 "whole image" if plan.whole else "tiled", plan.needed / 2**30, plan.budget / 2**30)
        options = replace(options, tile_size=plan.tile_size)
    report.tile_size = options.tile_size
    # What the tile itself does not need may hold the activations that spare the exact passes
    # their recomputation.
    store_budget = max(plan.budget - plan.needed, 0) if options.reuse_activations else 0
    model = model.to(device).eval()
    if model.channels_last and device.type in ("cpu", "cuda"):
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # accepted at run time
    # The result is written straight into the output array (colour channels; grey images
    # accumulate the luma of the styled tiles), so an 8K texture needs no full-size copies.
    out = np.empty(source.shape, dtype=np.float32)
    if source.shape[2] in (2, 4):
        out[..., -1] = source[..., -1]
    runner = _TiledRun(model, source, wrap, options, device, dtype, progress, cancelled, store_budget)
    with exact_fp32(device, dtype is None):
        runner.run(out[..., : _colour_channels(source)])
    report.tiles, report.passes, report.stored_peak = runner.tile_count, runner.passes, runner.stored_peak
    _finish(out, source, options)
    return out.reshape(np.shape(image)) if np.ndim(image) == 2 else out


def _finish(out: np.ndarray, source: np.ndarray, options: RestyleOptions) -> None:
    """Preserve colours and blend by strength, in place, one block of rows at a time."""
    if not options.preserve_colors and options.strength >= 1.0:
        return
    channels = _colour_channels(source)
    for r0 in range(0, source.shape[0], CHUNK_ROWS):
        styled = out[r0 : r0 + CHUNK_ROWS, :, :channels]
        original = np.clip(source[r0 : r0 + CHUNK_ROWS, :, :channels], 0.0, 1.0)
        if options.preserve_colors:
            # The styled luma on the original's chroma (for grey, the clipped styled luma).
            shift = color.luma(styled) - color.luma(original) if channels == 3 else styled - original
            styled[...] = np.clip(original + shift, 0.0, 1.0)
        if options.strength < 1.0:
            styled[...] = original + options.strength * (styled - original)


class _TiledRun:
    def __init__(
        self,
        model: StyleNet,
        source: np.ndarray,
        wrap: bool,
        options: RestyleOptions,
        device: torch.device,
        dtype: torch.dtype | None,
        progress: ProgressFn | None,
        cancelled: CancelFn | None,
        store_budget: int = 0,
    ) -> None:
        self.model, self.source, self.wrap, self.device, self.dtype = model, source, wrap, device, dtype
        self.store_budget, self.stored_peak = store_budget, 0
        self.resume: ResumeCache | None = None
        self.progress, self.cancelled = progress, cancelled
        self.h, self.w = source.shape[:2]
        align = max(1, model.align)
        # Tiles cover the image padded to a multiple of the model's alignment, and to at least
        # two alignment steps, so that the deepest feature map still has 2 pixels to reflect
        # (a 3x2 texture would otherwise reach a 1x1 map): edge pixels repeat into the
        # padding, or in wrap mode the tiles read with wrapped indices.
        self.hp = max(_round_up(self.h, align), 2 * align)
        self.wp = max(_round_up(self.w, align), 2 * align)
        core = max(align, (options.tile_size // align) * align)
        self.feather = min(options.feather, core // 4) if (self.hp > core or self.wp > core or wrap) else 0
        self.halo = _round_up(model.halo + self.feather, align)
        self.tiles = [
            (y, min(y + core, self.hp), x, min(x + core, self.wp))
            for y in range(0, self.hp, core)
            for x in range(0, self.wp, core)
        ]
        self.tile_count = len(self.tiles)
        self.passes = 0
        self.expected_passes = 1

    # -- public --------------------------------------------------------------------
    def run(self, target: np.ndarray) -> None:
        """Write the styled image into ``target`` (H x W x 3, or H x W x 1 for the luma of a grey image)."""
        # A lone tile sees the whole image, so it runs in one pass. Without wrap-around its
        # norms use their own statistics. With wrap-around its halo repeats pixels of the opposite
        # edges, so each norm counts only the core of its input: that core is the whole seamless
        # image's feature map (every earlier norm having done the same), so one pass is exact.
        norms = global_norms(self.model)
        if not norms or self.tile_count == 1:
            try:
                for norm in norms:
                    norm.core_statistics = self.wrap
                self._sweep(target)
            finally:
                for norm in norms:
                    norm.core_statistics = False
            return
        order = self._norm_order()
        try:
            self._settle(order, target)
        finally:
            for norm in norms:
                norm.frozen, norm.collecting, norm.stop_after = None, False, False

    def _settle(self, order: list[GlobalNorm], target: np.ndarray) -> None:
        """Whole-image statistics for every norm, then the image made with them.

        Norm k is measured over every tile with all earlier norms already exact, and that
        sweep stops right after it; a final sweep makes the image. (Gathering all norms at
        once and iterating does not work: with k sweeps only the first k norms are exact,
        and errors in the others grow through the network instead of settling.)"""
        self.expected_passes = len(order) + 1
        cache = ResumeCache(self.model, self.store_budget, self.tile_count)
        with cache.installed() if self.store_budget > 0 else contextlib.nullcontext(cache):
            self.resume = cache if self.store_budget > 0 else None
            try:
                for norm in order:
                    norm.start_collecting()
                    norm.stop_after = True
                    self._sweep(None)
                    norm.frozen = norm.finish_collecting()
                    norm.stop_after = False
                cache.measuring = False
                self._sweep(target)
            finally:
                self.resume = None
                self.stored_peak = cache.peak_bytes

    def _norm_order(self) -> list[GlobalNorm]:
        """The order the forward pass calls its norms, from one small forward."""
        side = max(8, self.model.align) * 8
        probe = torch.zeros(1, 3, side, side, device=self.device)
        ctx = TileContext(0, 0, side, side, (0, side, 0, side), side, side, self.wrap)
        with torch.inference_mode(), active_tile(ctx), recording_norm_order() as order:
            self.model(probe)
        unique = list(dict.fromkeys(order))
        if len(unique) != len(order):
            raise RuntimeError("a normalisation layer is used twice in one forward pass; it cannot be tiled")
        return unique

    # -- sweeps --------------------------------------------------------------------
    def _sweep(self, target: np.ndarray | None) -> None:
        """Run every tile; with a target, blend the tiles into it (without, the forward may
        stop early at a norm being measured)."""
        index = self.passes
        self.passes += 1
        if target is not None:
            target[...] = 0.0
        for number, core in enumerate(self.tiles):
            self._check_cancel()
            if self.resume is not None:
                self.resume.tile = number
            try:
                tile_out, region = self._run_tile(core)
            except StopForward:
                tile_out = None
            if target is not None and tile_out is not None:
                self._accumulate(target, tile_out, region, core)
            del tile_out
            trim_heap()  # this tile's freed feature maps go back to the system
            self._report(index, number)
        if target is not None:
            self._normalise(target)

    def _check_cancel(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise JobCancelled()

    def _report(self, index: int, number: int) -> None:
        if self.progress is not None:
            total = self.expected_passes
            done = (index * self.tile_count + number + 1) / (total * self.tile_count)
            self.progress(done, f"tile {number + 1}/{self.tile_count}, pass {index + 1}/{total}")

    def _input_window(self, start: int, stop: int, size: int) -> tuple[int, int]:
        if self.wrap:
            return start - self.halo, stop + self.halo
        return max(0, start - self.halo), min(size, stop + self.halo)

    def _run_tile(self, core: tuple[int, int, int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        y0, y1, x0, x1 = core
        iy0, iy1 = self._input_window(y0, y1, self.hp)
        ix0, ix1 = self._input_window(x0, x1, self.wp)
        rows, cols = np.arange(iy0, iy1), np.arange(ix0, ix1)
        rows = rows % self.h if self.wrap else np.minimum(rows, self.h - 1)
        cols = cols % self.w if self.wrap else np.minimum(cols, self.w - 1)
        patch = _colour_patch(self.source[np.ix_(rows, cols)])
        ctx = TileContext(
            origin_y=iy0, origin_x=ix0,
            full_h=self.h if self.wrap else self.hp, full_w=self.w if self.wrap else self.wp,
            core=(y0 - iy0, y1 - iy0, x0 - ix0, x1 - ix0), tile_h=iy1 - iy0, tile_w=ix1 - ix0, wrap=self.wrap,
        )
        x = torch.from_numpy(patch).permute(2, 0, 1)[None].to(self.device)
        if self.model.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), active_tile(ctx), self._autocast():
            y = self.model(x)
        if y.shape != x.shape:
            raise RuntimeError(f"style network changed the tile shape from {tuple(x.shape)} to {tuple(y.shape)}")
        styled = y[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        return (styled if self.source.shape[2] >= 3 else color.luma(styled)), (iy0, iy1, ix0, ix1)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def _ramp(self, lo: int, hi: int, core_lo: int, core_hi: int, size: int) -> np.ndarray:
        """Weights along one axis for positions lo..hi: 1 in the core, linear across feathers."""
        pos = np.arange(lo, hi, dtype=np.float32) + 0.5
        w = np.ones_like(pos)
        f = self.feather
        if f == 0:
            return ((pos >= core_lo) & (pos < core_hi)).astype(np.float32)
        if self.wrap or core_lo > 0:
            w = np.minimum(w, np.clip((pos - (core_lo - f)) / (2 * f), 0, 1))
        else:
            w = np.where(pos < core_lo, 0.0, w)
        if self.wrap or core_hi < size:
            w = np.minimum(w, np.clip(((core_hi + f) - pos) / (2 * f), 0, 1))
        else:
            w = np.where(pos >= core_hi, 0.0, w)
        return w.astype(np.float32)

    def _band(self, lo: int, hi: int, size: int) -> tuple[int, int]:
        """The span a tile core writes along one axis: the core plus a feather on each side."""
        f = self.feather
        return (lo - f, hi + f) if self.wrap else (max(lo - f, 0), min(hi + f, size))

    def _accumulate(self, target: np.ndarray, tile: np.ndarray, region, core) -> None:
        iy0, _, ix0, _ = region
        y0, y1, x0, x1 = core
        wy0, wy1 = self._band(y0, y1, self.hp)
        wx0, wx1 = self._band(x0, x1, self.wp)
        ry = self._ramp(wy0, wy1, y0, y1, self.hp)
        rx = self._ramp(wx0, wx1, x0, x1, self.wp)
        piece = tile[wy0 - iy0 : wy1 - iy0, wx0 - ix0 : wx1 - ix0] * (ry[:, None] * rx[None, :])[..., None]
        for dy, sy, ny in _wrapped_segments(wy0, wy1 - wy0, self.hp):
            ny = min(ny, self.h - dy)  # rows of the alignment padding are dropped
            for dx, sx, nx in _wrapped_segments(wx0, wx1 - wx0, self.wp):
                nx = min(nx, self.w - dx)
                if ny > 0 and nx > 0:
                    target[dy : dy + ny, dx : dx + nx] += piece[sy : sy + ny, sx : sx + nx]

    def _axis_weights(self, spans: list[tuple[int, int]], size: int) -> np.ndarray:
        """Sum of the tiles' ramps along one axis: tile weights are products of a row ramp
        and a column ramp, so their sum over the grid is the product of these two sums."""
        total = np.zeros(size, dtype=np.float32)
        for lo, hi in spans:
            b0, b1 = self._band(lo, hi, size)
            ramp = self._ramp(b0, b1, lo, hi, size)
            for dest, offset, length in _wrapped_segments(b0, b1 - b0, size):
                total[dest : dest + length] += ramp[offset : offset + length]
        return total

    def _normalise(self, target: np.ndarray) -> None:
        wy = self._axis_weights(sorted({(t[0], t[1]) for t in self.tiles}), self.hp)[: self.h]
        wx = self._axis_weights(sorted({(t[2], t[3]) for t in self.tiles}), self.wp)[: self.w]
        for r0 in range(0, self.h, CHUNK_ROWS):
            target[r0 : r0 + CHUNK_ROWS] /= (wy[r0 : r0 + CHUNK_ROWS, None] * wx[None, :])[..., None]


def _colour_patch(pixels: np.ndarray) -> np.ndarray:
    """Contiguous float32 RGB in [0, 1] from an H x W x C block (grey repeated, alpha dropped)."""
    rgb = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    return np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)


def _wrapped_segments(start: int, length: int, size: int) -> list[tuple[int, int, int]]:
    """(destination, source offset, length) runs covering start..start+length modulo size."""
    runs = []
    offset = 0
    while offset < length:
        dest = (start + offset) % size
        run = min(length - offset, size - dest)
        runs.append((dest, offset, run))
        offset += run
    return runs
