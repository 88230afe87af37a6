"""Restyles an H x W x C float32 image of any size with a style network.

The image is cut into tiles whose cores cover it exactly once; each tile carries a
halo of context on every side so that convolution borders never reach the core,
and neighbouring tiles cross-fade over a thin feather band. Models whose layers
normalise over the whole image (:class:`~.tiling.GlobalNorm`) are run in passes:
statistics gathered over all tiles of one pass normalise the next, until they stop
changing, which gives the whole-image result within rounding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from . import color
from .devices import reduced_dtype, resolve_device
from .errors import InvalidImageError, JobCancelled
from .styles.base import StyleNet
from .tiling import GlobalNorm, StopForward, TileContext, active_tile, global_norms, recording_norm_order

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]


@dataclass(frozen=True)
class RestyleOptions:
    strength: float = 1.0
    device: str = "auto"
    precision: str = "auto"
    tile_size: int = 1024
    seamless: str = "auto"  # auto | on | off
    preserve_colors: bool = False
    feather: int = 8

    def validated(self) -> RestyleOptions:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be within 0..1, got {self.strength}")
        if self.seamless not in ("auto", "on", "off"):
            raise ValueError(f"seamless must be auto, on or off, got '{self.seamless}'")
        if self.tile_size < 64:
            raise ValueError(f"tile size must be at least 64 pixels, got {self.tile_size}")
        return self


@dataclass
class RestyleReport:
    tiles: int = 0
    passes: int = 0
    seamless: bool = False
    device: str = "cpu"
    dtype: str = "float32"
    warning: str | None = None


def is_tileable(rgb: np.ndarray) -> bool:
    """Whether opposite edges continue each other about as smoothly as neighbouring pixels do."""
    if rgb.shape[0] < 8 or rgb.shape[1] < 8:
        return False
    for axis in (0, 1):
        seam = np.abs(np.take(rgb, 0, axis) - np.take(rgb, -1, axis)).mean()
        inner = np.abs(np.diff(rgb, axis=axis)).mean()
        if seam > 1.5 * inner + 0.5 / 255:
            return False
    return True


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _split_channels(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(rgb, alpha or None, was_grey) from an H x W x C array with C in 1..4."""
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise InvalidImageError(f"expected an H x W x C image with 1 to 4 channels, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InvalidImageError("the image is empty (0 pixels)")
    channels = image.shape[2]
    grey = channels <= 2
    rgb = np.repeat(image[..., :1], 3, axis=2) if grey else image[..., :3]
    alpha = image[..., channels - 1 :] if channels in (2, 4) else None
    if not np.isfinite(rgb).all():
        raise InvalidImageError("the image contains NaN or infinite values")
    return np.clip(rgb, 0.0, 1.0).astype(np.float32), alpha, grey


def _luminance_only(styled: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Keep the original's chroma and take the styled image's luma (YCbCr-style swap)."""
    return np.clip(original + (color.luma(styled) - color.luma(original)), 0.0, 1.0)


def restyle(
    model: StyleNet,
    image: np.ndarray,
    options: RestyleOptions = RestyleOptions(),
    progress: ProgressFn | None = None,
    cancelled: CancelFn | None = None,
    report: RestyleReport | None = None,
) -> np.ndarray:
    """Restyle an sRGB-encoded image in [0, 1] (H x W x C, C = 1..4); returns the same shape.

    When the GPU runs out of memory the run is repeated with half the tile size."""
    options = options.validated()
    report = report if report is not None else RestyleReport()
    first_size = options.tile_size
    while True:
        try:
            result = _restyle_once(model, image, options, progress, cancelled, report)
        except torch.cuda.OutOfMemoryError:
            if options.tile_size <= 128:
                raise
            torch.cuda.empty_cache()
            smaller = max(128, options.tile_size // 2)
            log.warning("out of GPU memory with %d px tiles: retrying with %d px", options.tile_size, smaller)
            options = replace(options, tile_size=smaller)
            continue
        if options.tile_size != first_size:
            report.warning = f"The GPU ran out of memory with {first_size} px tiles: used {options.tile_size} px tiles"
        return result


def _restyle_once(
    model: StyleNet,
    image: np.ndarray,
    options: RestyleOptions,
    progress: ProgressFn | None,
    cancelled: CancelFn | None,
    report: RestyleReport,
) -> np.ndarray:
    source = np.asarray(image, dtype=np.float32)
    rgb, alpha, grey = _split_channels(source)
    wrap = options.seamless == "on" or (options.seamless == "auto" and is_tileable(rgb))
    device, warning = resolve_device(options.device)
    dtype = reduced_dtype(device, options.precision, model.reduced_precision_ok)
    report.seamless, report.device, report.warning = wrap, str(device), warning
    report.dtype = str(dtype or torch.float32).replace("torch.", "")
    model = model.to(device).eval()
    if model.channels_last and device.type in ("cpu", "cuda"):
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # accepted at run time
    runner = _TiledRun(model, rgb, wrap, options, device, dtype, progress, cancelled)
    styled = runner.run()
    report.tiles, report.passes = runner.tile_count, runner.passes
    if options.preserve_colors:
        styled = _luminance_only(styled, rgb)
    if options.strength < 1.0:
        styled = rgb + options.strength * (styled - rgb)
    if grey:
        styled = color.luma(styled)
    out = styled if alpha is None else np.concatenate([styled, alpha], axis=2)
    return out.reshape(source.shape).astype(np.float32)


class _TiledRun:
    def __init__(
        self,
        model: StyleNet,
        rgb: np.ndarray,
        wrap: bool,
        options: RestyleOptions,
        device: torch.device,
        dtype: torch.dtype | None,
        progress: ProgressFn | None,
        cancelled: CancelFn | None,
    ) -> None:
        self.model, self.wrap, self.device, self.dtype = model, wrap, device, dtype
        self.progress, self.cancelled = progress, cancelled
        self.h, self.w = rgb.shape[:2]
        align = max(1, model.align)
        self.hp, self.wp = _round_up(self.h, align), _round_up(self.w, align)
        # The canvas is the image padded to a multiple of the model's alignment. In wrap
        # mode tiles read it with wrapped indices, so the padding is never seen there.
        self.canvas = rgb if wrap else np.pad(rgb, ((0, self.hp - self.h), (0, self.wp - self.w), (0, 0)), mode="edge")
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

    # -- public --------------------------------------------------------------------
    def run(self) -> np.ndarray:
        # A lone tile without wrap-around sees exactly the whole image, so its norms can use
        # their own statistics; with wrap-around its halo repeats pixels and must not count.
        norms = global_norms(self.model)
        if not norms or (self.tile_count == 1 and not self.wrap):
            self.passes = 1
            return self._pass(0, 1)
        order = self._norm_order()
        sweeps = len(order) + 1
        try:
            # Norm k is measured over every tile with all earlier norms already exact, and
            # the pass stops right after it; a final pass then produces the image.
            for index, norm in enumerate(order):
                norm.start_collecting()
                norm.stop_after = True
                self._measure(index, sweeps)
                norm.frozen = norm.finish_collecting()
                norm.stop_after = False
            self.passes = sweeps
            return self._pass(len(order), sweeps)
        finally:
            for norm in norms:
                norm.frozen, norm.collecting, norm.stop_after = None, False, False

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

    # -- passes --------------------------------------------------------------------
    def _measure(self, index: int, total_passes: int) -> None:
        """A sweep that only runs each tile up to the norm being measured."""
        for number, core in enumerate(self.tiles):
            self._check_cancel()
            try:
                self._run_tile(core)
            except StopForward:
                pass
            self._report(index, total_passes, number)

    def _pass(self, index: int, total_passes: int) -> np.ndarray:
        """A full sweep producing the image."""
        out = np.zeros((self.hp, self.wp, 3), dtype=np.float32)
        weight = np.zeros((self.hp, self.wp, 1), dtype=np.float32)
        for number, core in enumerate(self.tiles):
            self._check_cancel()
            tile_out, region = self._run_tile(core)
            self._accumulate(out, weight, tile_out, region, core)
            self._report(index, total_passes, number)
        return (out / weight)[: self.h, : self.w]

    def _check_cancel(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise JobCancelled()

    def _report(self, index: int, total_passes: int, number: int) -> None:
        if self.progress is not None:
            done = (index * self.tile_count + number + 1) / (total_passes * self.tile_count)
            self.progress(done, f"tile {number + 1}/{self.tile_count}, pass {index + 1}/{total_passes}")

    def _input_window(self, start: int, stop: int, size: int) -> tuple[int, int]:
        if self.wrap:
            return start - self.halo, stop + self.halo
        return max(0, start - self.halo), min(size, stop + self.halo)

    def _run_tile(self, core: tuple[int, int, int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        y0, y1, x0, x1 = core
        iy0, iy1 = self._input_window(y0, y1, self.hp)
        ix0, ix1 = self._input_window(x0, x1, self.wp)
        rows = np.arange(iy0, iy1) % self.h if self.wrap else slice(iy0, iy1)
        cols = np.arange(ix0, ix1) % self.w if self.wrap else slice(ix0, ix1)
        patch = self.canvas[rows][:, cols] if self.wrap else self.canvas[rows, cols]
        ctx = TileContext(
            origin_y=iy0, origin_x=ix0,
            full_h=self.h if self.wrap else self.hp, full_w=self.w if self.wrap else self.wp,
            core=(y0 - iy0, y1 - iy0, x0 - ix0, x1 - ix0), tile_h=iy1 - iy0, tile_w=ix1 - ix0, wrap=self.wrap,
        )
        x = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1)[None].to(self.device)
        if self.model.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), active_tile(ctx), self._autocast():
            y = self.model(x)
        if y.shape != x.shape:
            raise RuntimeError(f"style network changed the tile shape from {tuple(x.shape)} to {tuple(y.shape)}")
        return y[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy(), (iy0, iy1, ix0, ix1)

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

    def _accumulate(self, out: np.ndarray, weight: np.ndarray, tile: np.ndarray, region, core) -> None:
        iy0, _, ix0, _ = region
        y0, y1, x0, x1 = core
        f = self.feather
        # This tile writes its core plus a feather band on each side (clipped at the
        # canvas border unless the canvas wraps around).
        wy0, wy1, wx0, wx1 = y0 - f, y1 + f, x0 - f, x1 + f
        if not self.wrap:
            wy0, wy1, wx0, wx1 = max(wy0, 0), min(wy1, self.hp), max(wx0, 0), min(wx1, self.wp)
        ry = self._ramp(wy0, wy1, y0, y1, self.hp)
        rx = self._ramp(wx0, wx1, x0, x1, self.wp)
        w = (ry[:, None] * rx[None, :])[..., None]
        piece = tile[wy0 - iy0 : wy1 - iy0, wx0 - ix0 : wx1 - ix0] * w
        for dy, sy, ny in _wrapped_segments(wy0, wy1 - wy0, self.hp):
            for dx, sx, nx in _wrapped_segments(wx0, wx1 - wx0, self.wp):
                out[dy : dy + ny, dx : dx + nx] += piece[sy : sy + ny, sx : sx + nx]
                weight[dy : dy + ny, dx : dx + nx] += w[sy : sy + ny, sx : sx + nx]


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
