"""What a model needs to know to give the same answer on a tile as on the whole image.

Convolutions only need enough context around a tile (the model's ``halo``). Two
things need more, and read the active :class:`TileContext`:

* layers that depend on absolute position (procedural paper grain, pixel grids)
  ask for the tile's global pixel coordinates;
* normalisation over the whole feature map (GroupNorm, InstanceNorm) uses
  :class:`GlobalNorm`, whose statistics the engine gathers over every tile's core
  and then feeds back, so each tile is normalised with whole-image statistics.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TileContext:
    origin_y: int  # global row of the tile's first input row (negative in wrap mode)
    origin_x: int
    full_h: int  # size of the canvas the tile is cut from
    full_w: int
    core: tuple[int, int, int, int]  # y0, y1, x0, x1 inside the tile, in input pixels
    tile_h: int
    tile_w: int
    wrap: bool  # coordinates wrap around (seamless textures)


_ACTIVE: contextvars.ContextVar[TileContext | None] = contextvars.ContextVar("restyle_tile", default=None)
_CALL_ORDER: contextvars.ContextVar[list | None] = contextvars.ContextVar("restyle_norm_order", default=None)


class StopForward(Exception):
    """Raised by a GlobalNorm told to stop: the rest of the network need not run."""


@contextlib.contextmanager
def recording_norm_order() -> Iterator[list]:
    """Collect the GlobalNorm layers in the order a forward pass calls them."""
    order: list = []
    token = _CALL_ORDER.set(order)
    try:
        yield order
    finally:
        _CALL_ORDER.reset(token)


@contextlib.contextmanager
def active_tile(ctx: TileContext) -> Iterator[None]:
    token = _ACTIVE.set(ctx)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def current_tile(x: torch.Tensor) -> TileContext:
    """The active tile, or a context describing ``x`` as a whole image when none is set."""
    ctx = _ACTIVE.get()
    if ctx is not None:
        return ctx
    h, w = x.shape[-2:]
    return TileContext(0, 0, h, w, (0, h, 0, w), h, w, wrap=False)


def global_coords(x: torch.Tensor, scale: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer global (row, column) of each pixel of ``x``, shapes (H, 1) and (1, W).

    ``scale`` is how many input pixels one pixel of ``x`` spans. Coordinates wrap in
    seamless mode so that procedural patterns tile with the texture.
    """
    ctx = current_tile(x)
    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device) + ctx.origin_y // scale
    cols = torch.arange(w, device=x.device) + ctx.origin_x // scale
    if ctx.wrap:
        rows = rows % max(ctx.full_h // scale, 1)
        cols = cols % max(ctx.full_w // scale, 1)
    return rows[:, None], cols[None, :]


class GlobalNorm(nn.Module):
    """GroupNorm whose statistics can span the whole image while running on tiles.

    ``GlobalNorm(1, C)`` is GroupNorm(1, C) (AnimeGANv2); ``GlobalNorm(C, C, affine=False)``
    is InstanceNorm2d (CycleGAN). Parameter names match torch's norms, so published
    state dicts load unchanged. Used alone it behaves exactly like those layers.
    """

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, unbiased: bool = False
    ) -> None:
        super().__init__()
        self.unbiased = unbiased  # AdaIN's statistics use the unbiased variance
        if num_channels % num_groups:
            raise ValueError(f"{num_channels} channels do not split into {num_groups} groups")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        # Engine-controlled state (not part of the state dict).
        self.frozen: tuple[torch.Tensor, torch.Tensor] | None = None  # (mean, var), shape (N, G)
        self.collecting = False
        self.stop_after = False  # end the forward pass once this layer has been measured
        self._moments: torch.Tensor | None = None  # (N, G, 3): count, mean, M2 (float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        order = _CALL_ORDER.get()
        if order is not None:
            order.append(self)
        if self.collecting:
            self._accumulate(x)
            if self.stop_after:
                raise StopForward()
        if self.frozen is None:
            if not self.unbiased:  # torch's fused kernel (fp32 statistics also for bf16 input)
                return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
            var, mean = self._statistics(x.float())
        else:
            mean, var = (t.to(x.device) for t in self.frozen)
        per_group = self.num_channels // self.num_groups
        if n == 1:
            # With known statistics this is a per-channel affine map: eval-mode batch_norm
            # applies it in one fused pass, in fp32 even for bf16 input, rounding once.
            return F.batch_norm(x, mean[0].repeat_interleave(per_group).float(),
                                var[0].repeat_interleave(per_group).float(), self.weight, self.bias,
                                False, 0.0, self.eps).to(x.dtype)
        scale, shift = self.affine(mean, var)
        # Under bf16 the product is formed in fp32 (type promotion) and rounded once.
        return torch.addcmul(shift[..., None, None], x, scale[..., None, None]).to(x.dtype)

    def affine(self, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (scale, shift), shape (N, C) in fp32, that this norm applies for
        per-group statistics (N, G)."""
        per_group = self.num_channels // self.num_groups
        scale = torch.rsqrt(var.float() + self.eps).repeat_interleave(per_group, dim=1)
        shift = -mean.float().repeat_interleave(per_group, dim=1) * scale
        if self.weight is not None:
            scale = scale * self.weight.float()
            shift = shift * self.weight.float() + self.bias.float()
        return scale, shift

    def _statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(var, mean), shape (N, G). One group per channel reduces over the spatial
        dimensions directly: a reshape would copy a channels_last feature map first."""
        n = x.shape[0]
        if self.num_groups == self.num_channels:
            return torch.var_mean(x, dim=(2, 3), unbiased=self.unbiased)
        return torch.var_mean(x.reshape(n, self.num_groups, -1), dim=2, unbiased=self.unbiased)

    # -- statistics gathering -------------------------------------------------------
    def _accumulate(self, x: torch.Tensor) -> None:
        """Add this tile's core to the running (count, mean, M2) of each group.

        Per-channel ``var_mean`` over the spatial dimensions reads a channels_last slice in
        place (a reshape to groups would copy it, and a float64 copy doubles that: those two
        copies were most of a statistics sweep). Channels merge into groups, and tiles into
        the image, with the pairwise mean/M2 update in float64."""
        ctx = current_tile(x)
        n, c, h, w = x.shape
        sy, sx = ctx.tile_h // h, ctx.tile_w // w
        if sy * h != ctx.tile_h or sx * w != ctx.tile_w:
            raise RuntimeError(f"feature map {h}x{w} is not an integer fraction of the tile {ctx.tile_h}x{ctx.tile_w}")
        y0, y1, x0, x1 = ctx.core
        region = x[:, :, y0 // sy : -(-y1 // sy), x0 // sx : -(-x1 // sx)]
        var, mean = torch.var_mean(region.float(), dim=(2, 3), unbiased=False)
        var = var.double().cpu().view(n, self.num_groups, -1)
        mean = mean.double().cpu().view(n, self.num_groups, -1)
        group_mean = mean.mean(-1)
        pixels = region.shape[2] * region.shape[3]
        group_m2 = (var + (mean - group_mean[..., None]) ** 2).sum(-1) * pixels
        count = torch.full_like(group_mean, pixels * mean.shape[-1])
        if self._moments is None:
            self._moments = torch.stack([count, group_mean, group_m2], dim=-1)
            return
        old_count, old_mean, old_m2 = self._moments.unbind(-1)
        total = old_count + count
        delta = group_mean - old_mean
        self._moments = torch.stack(
            [total, old_mean + delta * count / total, old_m2 + group_m2 + delta * delta * old_count * count / total],
            dim=-1,
        )

    def start_collecting(self) -> None:
        self.collecting = True
        self._moments = None

    def finish_collecting(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole-image (mean, var) from what the tiles contributed since ``start_collecting``."""
        self.collecting = False
        if self._moments is None:
            raise RuntimeError("no tile reached this normalisation layer")
        count, mean, m2 = self._moments.unbind(-1)
        var = m2 / ((count - 1).clamp_min(1) if self.unbiased else count)
        self._moments = None
        return mean.float(), var.float()


def global_norms(model: nn.Module) -> list[GlobalNorm]:
    return [m for m in model.modules() if isinstance(m, GlobalNorm)]


def _source_positions(size_out: int, scale: int, start: int, full_in: int) -> torch.Tensor:
    """Where each output pixel of a tile samples its input along one axis for an
    align-corners upsampling of the whole image: global positions (float64) shifted to the
    tile, whose first input pixel is global ``start``."""
    out_index = torch.arange(size_out, dtype=torch.float64) + start * scale
    return out_index * (full_in - 1) / max(full_in * scale - 1, 1) - start


def resize_bilinear_global(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bilinear upsampling by ``scale`` equal to ``F.interpolate(..., align_corners=True)``
    applied to the WHOLE image, evaluated on this tile only (exact when tiled).

    Where torch's own kernel computes the same mapping it runs (a whole image; any tile in
    wrap mode, whose half-pixel mapping is the same on every tile). A tile of a non-wrapping
    image samples at global positions that drift against its own pixel grid, so it goes
    through ``grid_sample`` with those positions. Both are vectorised over channels_last
    maps; gathering rows and columns by index and blending them took 6-8x as long."""
    ctx = current_tile(x)
    h, w = x.shape[-2:]
    sy, sx = ctx.tile_h // h, ctx.tile_w // w
    whole = ctx.origin_y == 0 and ctx.origin_x == 0 and (ctx.tile_h, ctx.tile_w) == (ctx.full_h, ctx.full_w)
    if ctx.wrap or whole:
        return F.interpolate(x, size=(h * scale, w * scale), mode="bilinear", align_corners=not ctx.wrap)
    rows = _source_positions(h * scale, scale, ctx.origin_y // sy, ctx.full_h // sy)
    cols = _source_positions(w * scale, scale, ctx.origin_x // sx, ctx.full_w // sx)
    # grid_sample's normalised coordinates with align_corners=True: -1 and 1 are the centres
    # of the first and last pixel; positions past them clamp to the edge (the halo's job).
    gy = (rows * 2 / max(h - 1, 1) - 1).to(torch.float32)
    gx = (cols * 2 / max(w - 1, 1) - 1).to(torch.float32)
    grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), dim=-1)[None].to(x.device)
    # In fp32 whatever the map's dtype: a bf16 grid would misplace samples by up to 1/256
    # of the tile's width.
    out = F.grid_sample(x.float(), grid.expand(x.shape[0], -1, -1, -1), mode="bilinear",
                        padding_mode="border", align_corners=True).to(x.dtype)
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out
