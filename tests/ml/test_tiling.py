from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from ml.restyle.tiling import GlobalNorm, TileContext, active_tile, global_coords


@pytest.mark.parametrize("groups", [1, 4])
def test_global_norm_alone_matches_group_norm(groups):
    torch.manual_seed(0)
    ours, reference = GlobalNorm(groups, 8), nn.GroupNorm(groups, 8)
    reference.weight.data.normal_(), reference.bias.data.normal_()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 8, 13, 17)
    torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)


def test_global_norm_without_affine_matches_instance_norm_and_loads_its_state():
    ours = GlobalNorm(6, 6, affine=False)
    x = torch.randn(1, 6, 9, 11) * 3 + 1
    torch.testing.assert_close(ours(x), nn.InstanceNorm2d(6)(x), atol=1e-5, rtol=1e-5)
    assert list(ours.state_dict()) == list(nn.InstanceNorm2d(6).state_dict())


@pytest.mark.parametrize("groups,offset", [(1, 5.0), (3, 5.0), (1, 3000.0)])
def test_collected_statistics_equal_whole_image_statistics(groups, offset):
    # A large offset against a unit spread checks the merging of tile statistics does not cancel.
    norm = GlobalNorm(groups, 3, affine=False)
    x = torch.randn(1, 3, 32, 48) * 2 + offset + torch.arange(3.0).view(1, 3, 1, 1)
    norm.start_collecting()
    for x0 in (0, 16, 32):  # three tiles with 8 pixels of overlap on each inner side
        lo, hi = max(0, x0 - 8), min(48, x0 + 16 + 8)
        ctx = TileContext(0, lo, 32, 48, (0, 32, x0 - lo, x0 + 16 - lo), 32, hi - lo, False)
        with active_tile(ctx):
            norm(x[..., lo:hi])
    mean, var = norm.finish_collecting()
    grouped = x.double().reshape(1, groups, -1)
    torch.testing.assert_close(mean.double(), grouped.mean(-1), atol=0, rtol=1e-6)
    torch.testing.assert_close(var.double(), grouped.var(-1, unbiased=False), atol=0, rtol=1e-5)


def test_global_coords_follow_the_tile_and_wrap():
    x = torch.zeros(1, 3, 4, 5)
    ctx = TileContext(-2, 6, 10, 8, (2, 4, 0, 5), 4, 5, wrap=True)
    with active_tile(ctx):
        rows, cols = global_coords(x)
    assert rows.flatten().tolist() == [8, 9, 0, 1]
    assert cols.flatten().tolist() == [6, 7, 0, 1, 2]
    rows, cols = global_coords(x)  # no tile: the tensor is the whole image
    assert rows.flatten().tolist() == [0, 1, 2, 3] and np.array_equal(cols.flatten().numpy(), np.arange(5))


@pytest.mark.parametrize("padding", [1, 3, (0, 1, 0, 1), (2, 0, 1, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reflection_pad_matches_torch_and_keeps_bf16_under_autocast(padding, dtype):
    from ml.networks.padding import ReflectionPad

    x = torch.randn(1, 5, 9, 11).to(dtype).contiguous(memory_format=torch.channels_last)
    expected = torch.nn.ReflectionPad2d(padding)(x.float())
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = ReflectionPad(padding)(x)
    assert out.dtype == dtype
    assert torch.equal(out.float(), expected)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_global_bilinear_upsampling_matches_interpolate_whole_and_on_tiles(layout):
    from ml.restyle.tiling import resize_bilinear_global

    torch.manual_seed(0)
    x = torch.randn(1, 5, 12, 20).contiguous(memory_format=layout)
    expected = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    whole = resize_bilinear_global(x, 2)
    torch.testing.assert_close(whole, expected, atol=1e-5, rtol=1e-5)
    assert whole.is_contiguous(memory_format=layout)
    # A tile of the feature map (tile coordinates in input pixels, the map at 1/4 scale).
    y0, y1, x0, x1 = 3, 9, 6, 17
    ctx = TileContext(4 * y0, 4 * x0, 48, 80, (0, 4 * (y1 - y0), 0, 4 * (x1 - x0)), 4 * (y1 - y0), 4 * (x1 - x0), False)
    with active_tile(ctx):
        tile = resize_bilinear_global(x[..., y0:y1, x0:x1], 2)
    # Away from its edges (which read past the tile: the engine's halo) the tile is exact.
    inner = (..., slice(2, -2), slice(2, -2))
    region = expected[..., 2 * y0 : 2 * y1, 2 * x0 : 2 * x1]
    torch.testing.assert_close(tile[inner], region[inner], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_global_bilinear_upsampling_on_wrapping_tiles_matches_the_half_pixel_mapping(dtype):
    """Seamless mode samples at half-pixel centres, the same mapping on every tile; a tile
    of a non-wrapping image in bf16 still samples at fp32 positions."""
    from ml.restyle.tiling import resize_bilinear_global

    torch.manual_seed(1)
    x = torch.randn(1, 6, 16, 24).contiguous(memory_format=torch.channels_last)
    expected = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    y0, y1, x0, x1 = 4, 12, 5, 19
    ctx = TileContext(4 * y0, 4 * x0, 64, 96, (0, 4 * (y1 - y0), 0, 4 * (x1 - x0)), 4 * (y1 - y0), 4 * (x1 - x0), True)
    with active_tile(ctx):
        tile = resize_bilinear_global(x[..., y0:y1, x0:x1].to(dtype), 2)
    assert tile.dtype == dtype and tile.is_contiguous(memory_format=torch.channels_last)
    inner = (..., slice(2, -2), slice(2, -2))
    region = expected[..., 2 * y0 : 2 * y1, 2 * x0 : 2 * x1]
    tolerance = 1e-5 if dtype == torch.float32 else 0.05
    torch.testing.assert_close(tile[inner].float(), region[inner], atol=tolerance, rtol=tolerance)
    # Non-wrapping tile in bf16: within bf16 rounding of the fp32 whole-image result.
    aligned = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    ctx = replace(ctx, full_h=64, full_w=96, wrap=False)
    with active_tile(ctx):
        tile = resize_bilinear_global(x[..., y0:y1, x0:x1].to(dtype), 2)
    assert tile.dtype == dtype
    region = aligned[..., 2 * y0 : 2 * y1, 2 * x0 : 2 * x1]
    torch.testing.assert_close(tile[inner].float(), region[inner], atol=tolerance, rtol=tolerance)
