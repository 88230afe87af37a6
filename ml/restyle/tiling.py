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
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..networks.padding import ReflectionPad


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
_RESUMING: contextvars.ContextVar[ResumeCache | None] = contextvars.ContextVar("restyle_resume", default=None)
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
        # Normalise with the statistics of the active tile's core instead of the whole input: a lone
        # tile of a seamless texture, whose halo repeats pixels of the opposite edges.
        self.core_statistics = False
        self.stop_after = False  # end the forward pass once this layer has been measured
        self.on_measured: Callable[[torch.Tensor], None] | None = None  # given what was measured (ResumeCache)
        self._moments: torch.Tensor | None = None  # (N, G, 3): count, mean, M2 (float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        order = _CALL_ORDER.get()
        if order is not None:
            order.append(self)
        if self.collecting:
            self._accumulate(x)
            if self.on_measured is not None:
                self.on_measured(x)
            if self.stop_after:
                raise StopForward()
        if self.frozen is None and (self.core_statistics or _one_pass_statistics_cancel(x)):
            self._moments = None
            self._accumulate(x)
            mean, var = self._moments_to_statistics()
        elif self.frozen is None:
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
        return self._moments_to_statistics()

    def _moments_to_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, var) of what was accumulated, in fp32; the accumulator starts afresh."""
        assert self._moments is not None
        count, mean, m2 = self._moments.unbind(-1)
        var = m2 / ((count - 1).clamp_min(1) if self.unbiased else count)
        self._moments = None
        return mean.float(), var.float()


# Elements per image from which a whole-image norm on the CPU computes its statistics itself: the
# full-resolution maps of 1024² images and up, where the cancellation shows; below it the fused
# kernel's drift stays far under an 8-bit step and its speed is kept.
ACCURATE_STATISTICS_FROM = 1 << 26


def _one_pass_statistics_cancel(x: torch.Tensor) -> bool:
    """Whether torch's own group_norm would lose the variance of ``x``.

    Its CPU kernel for channels_last maps sums x and x² in fp32 in one pass; on a map of
    millions of pixels whose mean is large against its spread, the variance cancels and a
    whole image drifts visibly from the exact result while its tiles, whose statistics are
    per-channel ``var_mean`` merged in float64, do not (``tools/bench/bench_tiled_cost.py
    --reference``). Large fp32 maps take the tiles' statistics instead (reduced precision keeps the
    kernel: its own rounding is larger, and a float copy of the map would exceed the memory plan)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x[0].numel() >= ACCURATE_STATISTICS_FROM
            and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last))


def global_norms(model: nn.Module) -> list[GlobalNorm]:
    return [m for m in model.modules() if isinstance(m, GlobalNorm)]


def _source_positions(size_out: int, scale: int, start: int, full_in: int) -> torch.Tensor:
    """Where each output pixel of a tile samples its input along one axis for an
    align-corners upsampling of the whole image: global positions (float64) shifted to the
    tile, whose first input pixel is global ``start``."""
    out_index = torch.arange(size_out, dtype=torch.float64) + start * scale
    return out_index * (full_in - 1) / max(full_in * scale - 1, 1) - start


def resize_bilinear_global(x: torch.Tensor, scale: int) -> torch.Tensor:
    """See :func:`_resize_bilinear_global`; during an exact tiled run, a map the resume cache
    handed out again (the same tensor as in the last pass) is upsampled only once."""
    cache = _RESUMING.get()
    if cache is None:
        return _resize_bilinear_global(x, scale)
    return cache.derived(x, ("bilinear", scale), lambda: _resize_bilinear_global(x, scale))


def _resize_bilinear_global(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bilinear upsampling by ``scale`` equal to ``F.interpolate(..., align_corners=True)``
    applied to the WHOLE image, evaluated on this tile only (exact when tiled).

    Where torch's own kernel computes the same mapping it runs (a whole image; any tile in
    wrap mode, whose half-pixel mapping is the same on every tile). A tile of a non-wrapping
    image samples at global positions that drift against its own pixel grid, so it goes
    through ``grid_sample`` with those positions. Both are vectorised over channels_last
    maps, unlike a gather of rows and columns by index and a blend, which is far slower."""
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


_DONE = 1 << 30  # the position of a module whose whole output is stored


class ResumeCache:
    """Per-tile resume points that let each statistics pass start where the last one stopped.

    The exact tiled scheme runs the network once per norm (each pass stopping at the norm it
    measures, with every earlier norm frozen). Everything a pass computed before it stopped
    used only frozen norms, so it is final: the next pass over the same tile would compute
    it again, bit for bit. This cache keeps it instead, per tile:

    * an ``nn.Sequential`` that contains norms runs group by group (a group is one
      ``[pad] conv [norm] [activation]`` unit, or one other child); the input of the group
      that holds the norm being measured is stored, and later passes resume there;
    * the convolution output a norm measured is stored too: the next pass applies the now
      frozen norm and the activation to it (an element-wise map) instead of convolving
      again, so each convolution runs once over each tile in the statistics passes;
    * any module that contains norms and finished within a pass stores its output, and later
      calls return it without running (the points inside it are let go).

    Stored tensors are the feature maps themselves, not copies: the networks never change a
    module's input in place (tests/ml/test_engine.py compares every architecture with and
    without the cache). They are kept within ``budget`` bytes; past it a point is not stored
    and a pass recomputes from an earlier one (slower, still exact). In the final pass each
    point is used once and let go.
    """

    def __init__(self, model: nn.Module, budget: int, tiles: int = 1) -> None:
        self.model, self.budget = model, budget
        # Each tile gets an equal share, so that with a short budget every tile keeps its
        # first, low-resolution points (they spare most recomputation) rather than the first
        # tile keeping everything down to its full-resolution maps.
        self.share = budget // max(tiles, 1)
        self._tile_bytes: dict[int, int] = {}
        self.tile = 0  # the engine sets the tile before each forward
        self.measuring = True  # False for the final pass
        self.stored_bytes = 0
        self.peak_bytes = 0
        self._entries: dict[tuple[int, nn.Module], tuple[int, torch.Tensor]] = {}
        self._norms: dict[nn.Module, list[GlobalNorm]] = {}
        self._groups: dict[nn.Module, list[nn.Module]] = {}  # Sequential -> its groups as sub-sequences
        self._group_norms: dict[nn.Module, list[list[GlobalNorm]]] = {}
        self._finish: dict[tuple[nn.Module, int], tuple[GlobalNorm, nn.Module | None]] = {}
        self._measured_in: dict[GlobalNorm, tuple[nn.Module, int]] = {}
        self._inner: dict[nn.Module, list[nn.Module]] = {}  # wrapped modules below a module
        self._wrapped: list[nn.Module] = []
        # Results of functions of a stored map, per tile: (the map, the result), by what was done.
        self._derived: dict[tuple[int, object, int], tuple[torch.Tensor, torch.Tensor]] = {}

    # -- installation ----------------------------------------------------------------
    def _plan(self) -> None:
        for module in self.model.modules():
            if module is self.model or isinstance(module, GlobalNorm):
                continue
            norms = [m for m in module.modules() if isinstance(m, GlobalNorm)]
            if norms:
                self._norms[module] = norms
                self._wrapped.append(module)
        wrapped = set(self._wrapped)
        for module in self._wrapped:
            self._inner[module] = [m for m in module.modules() if m is not module and m in wrapped]
            if not isinstance(module, nn.Sequential):
                continue
            children = list(module)
            spans = _group_spans(children)
            self._groups[module] = [_sub_sequence(module, a, b) for a, b in spans]
            self._group_norms[module] = []
            for index, (a, b) in enumerate(spans):
                inside = {m for child in children[a:b] for m in child.modules()}
                self._group_norms[module].append([n for n in self._norms[module] if n in inside])
                for k in range(a + 1, b):
                    norm = children[k]
                    if isinstance(norm, GlobalNorm) and isinstance(children[k - 1], (nn.Conv2d, nn.ConvTranspose2d)):
                        act = children[k + 1] if k + 1 < b else None
                        self._finish[(module, index)] = (norm, act)
                        self._measured_in[norm] = (module, index)

    @contextlib.contextmanager
    def installed(self) -> Iterator[ResumeCache]:
        """Route the calls of every module that contains norms through the cache, for a run."""
        self._plan()
        for module in self._wrapped:
            if isinstance(module, nn.Sequential):
                module.forward = self._sequential_forward(module)  # type: ignore[method-assign]
            else:
                module.forward = self._module_forward(module, module.forward)  # type: ignore[method-assign]
        for norm in self._measured_in:
            norm.on_measured = functools.partial(self._keep_measured, norm)
        token = _RESUMING.set(self)
        try:
            yield self
        finally:
            _RESUMING.reset(token)
            for module in self._wrapped:
                del module.forward  # the class's own forward again
            for norm in self._measured_in:
                norm.on_measured = None
            self._entries.clear()
            self._derived.clear()
            self._tile_bytes.clear()
            self.stored_bytes = 0

    def derived(self, x: torch.Tensor, what: object, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``compute()``, a function of ``x`` alone; when ``x`` is a stored map (handed out
        again in every later pass), its result is kept too, so it runs once, not per pass."""
        key = (self.tile, what, id(x))
        old = self._derived.get(key)
        if old is not None and old[0] is x:
            if not self.measuring:
                del self._derived[key]
                self._account(-_nbytes(old[1]))
            return old[1]
        out = compute()
        stored = any(t is x for _, t in self._entries.values())
        if self.measuring and stored and self._fits(_nbytes(out)):
            self._derived[key] = (x, out)
            self._account(_nbytes(out))
        return out

    def _fits(self, extra: int) -> bool:
        return (self.stored_bytes + extra <= self.budget
                and self._tile_bytes.get(self.tile, 0) + extra <= self.share)

    def _account(self, change: int) -> None:
        """Bytes stored for the current tile (every entry added or dropped belongs to it)."""
        self.stored_bytes += change
        self._tile_bytes[self.tile] = self._tile_bytes.get(self.tile, 0) + change
        self.peak_bytes = max(self.peak_bytes, self.stored_bytes)

    # -- the stored points ---------------------------------------------------------------
    def _take(self, module: nn.Module) -> tuple[int, torch.Tensor] | None:
        key = (self.tile, module)
        entry = self._entries.get(key)
        if entry is not None and not self.measuring:
            del self._entries[key]  # the final pass uses each point once
            self._account(-_nbytes(entry[1]))
        return entry

    def _store(self, module: nn.Module, position: int, x: torch.Tensor, dropping: list[nn.Module]) -> None:
        """Keep ``x`` as ``module``'s resume point at ``position``; ``dropping`` are the
        modules whose points it makes useless (they lie before it)."""
        for inner in dropping:
            old = self._entries.pop((self.tile, inner), None)
            if old is not None:
                self._account(-_nbytes(old[1]))
        key = (self.tile, module)
        old = self._entries.get(key)
        if old is not None and old[0] >= position:
            return
        freed = _nbytes(old[1]) if old is not None else 0
        if not self._fits(_nbytes(x) - freed):
            return  # over budget: the earlier point (if any) still holds and is still right
        self._entries[key] = (position, x)
        self._account(_nbytes(x) - freed)

    def _keep_measured(self, norm: GlobalNorm, x: torch.Tensor) -> None:
        """Called by a norm with the feature map it is measuring (its convolution's output)."""
        module, index = self._measured_in[norm]
        self._store(module, 2 * index + 1, x, self._inner_of(self._groups[module][: index + 1]))

    # -- the wrapped forwards ----------------------------------------------------------------
    def _sequential_forward(self, module: nn.Sequential):
        groups, group_norms = self._groups[module], self._group_norms[module]

        def forward(x: torch.Tensor) -> torch.Tensor:
            position, first = 0, 0
            entry = self._take(module)
            if entry is not None:
                position, x = entry
                if position == _DONE:
                    return x
                first = position // 2
                if position % 2:  # a measured convolution's output: apply its norm and activation
                    norm, act = self._finish[(module, first)]
                    x = norm(x)
                    x = act(x) if act is not None else x
                    first += 1
            for index in range(first, len(groups)):
                if self.measuring and 2 * index > position and any(n.collecting for n in group_norms[index]):
                    self._store(module, 2 * index, x, self._inner_of(groups[:index]))
                x = groups[index](x)
            if self.measuring:
                self._store(module, _DONE, x, self._inner[module])
            return x

        return forward

    def _module_forward(self, module: nn.Module, original):
        def forward(*args, **kwargs):
            entry = self._take(module)
            if entry is not None:
                return entry[1]
            out = original(*args, **kwargs)
            if self.measuring and isinstance(out, torch.Tensor):
                self._store(module, _DONE, out, self._inner[module])
            return out

        return forward

    def _inner_of(self, groups: list[nn.Module]) -> list[nn.Module]:
        wrapped = set(self._wrapped)
        return [m for group in groups for m in group.modules() if m in wrapped]


def _sub_sequence(module: nn.Sequential, start: int, stop: int) -> nn.Sequential:
    """Children ``start:stop`` as a sequence of the same class, run by that class's forward
    (built without its ``__init__``, which may take other arguments than modules)."""
    part = type(module).__new__(type(module))
    nn.Module.__init__(part)
    for name, child in list(module.named_children())[start:stop]:
        part.add_module(name, child)
    return part


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _group_spans(children: list[nn.Module]) -> list[tuple[int, int]]:
    """Children indices grouped the way a fused sequence runs them: a reflection pad, the
    convolution after it, and the norm and activation that follow form one group (splitting
    them would change which fused kernel runs); every other child is a group of its own."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(children):
        j = i + 1
        if isinstance(children[i], ReflectionPad) and j < len(children) and isinstance(children[j], nn.Conv2d):
            j += 1
        if isinstance(children[j - 1], (nn.Conv2d, nn.ConvTranspose2d)):
            if j < len(children) and isinstance(children[j], GlobalNorm):
                j += 1
            if j < len(children) and isinstance(children[j], (nn.ReLU, nn.LeakyReLU)):
                j += 1
        spans.append((i, j))
        i = j
    return spans
