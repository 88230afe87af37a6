"""Depth Anything V2 resizes exactly as the reference implementation does.

Expected values are worked out here from the reference's published recipe, independently of
ml/depth/anything.py and ml/networks/depth_anything.py:
- input size: scale = 518 / short side; each side -> round(side * scale / 14) * 14 (numpy rounding,
  ties to even), and ceil instead when that falls below 518;
- image resize: OpenCV INTER_CUBIC on the float64 RGB image in [0, 1] (Keys cubic, a = -0.75,
  pixel centres src = (dst + 0.5) * in / out - 0.5, edge pixels repeated), no clamping;
- positional grid: DINOv2 resizes the 37 x 37 grid bicubically by the SCALE FACTOR
  (patches + 0.1) / 37 per axis, so output pixel i samples src = (i + 0.5) / factor - 0.5; a
  square input of exactly 37 x 37 patches keeps the table untouched;
- output: bilinear with aligned corners back to the photo's size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ml.depth.anything import estimate_depth, network_input, network_input_size, resize_cubic
from ml.networks.depth_anything import DepthAnythingV2, DepthConfig
from tests.ml.checkpoints import seeded
from tests.ml.synthetic import photo_like

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def reference_input_size(height: int, width: int, target: int = 518) -> tuple[int, int]:
    """The lower-bound, keep-aspect, multiple-of-14 resize, as numpy evaluates it."""
    scale = max(target / height, target / width)

    def side(x: float) -> int:
        y = int(np.round(x / 14) * 14)
        return int(np.ceil(x / 14) * 14) if y < target else y

    return side(scale * height), side(scale * width)


# (photo height, width) -> network (rows, cols), worked by hand:
PINNED_SIZES = {
    (768, 1024): (518, 686),  # 1024 * 518/768 = 690.67; /14 = 49.33 -> 49 -> 686 (rounding up gave 700)
    (480, 640): (518, 686),  # the same 4:3 aspect
    (3000, 4000): (518, 686),  # a 12 MP photo is scaled DOWN to the same input
    (200, 300): (518, 784),  # below 518: scaled up; 300 * 2.59 = 777.0, /14 = 55.5 -> ties to even: 56
    (518, 763): (518, 756),  # 763 / 14 = 54.5 -> ties to even: 54 (half-up would give 770)
    (300, 2000): (518, 3458),  # very wide: 2000 * 518/300 = 3453.33, /14 = 246.67 -> 247
    (1024, 768): (686, 518),  # portrait: rows and columns are not swapped
    (518, 518): (518, 518),  # the training size is kept
}


@pytest.mark.parametrize(("photo", "expected"), PINNED_SIZES.items(), ids=lambda v: f"{v[1]}x{v[0]}")
def test_network_input_size_is_the_nearest_multiple_of_14(photo, expected):
    assert reference_input_size(*photo) == expected  # the hand computation agrees with the recipe
    assert network_input_size(*photo) == expected


def test_network_input_size_agrees_with_the_recipe_on_many_sizes():
    rng = np.random.default_rng(0)
    sizes = [(int(h), int(w)) for h, w in rng.integers(20, 5000, size=(400, 2))]
    sizes += [(518, w) for w in range(500, 1200)]  # every tie and near-tie along one side
    mismatches = [(h, w) for h, w in sizes if network_input_size(h, w) != reference_input_size(h, w)]
    assert mismatches == []


# Token grid (rows, cols) = network input // 14, and the per-axis factor applied to the 37 x 37 grid.
PINNED_GRIDS = {(518, 686): (37, 49), (518, 784): (37, 56), (518, 3458): (37, 247), (686, 518): (49, 37)}


@pytest.mark.parametrize(("pixels", "grid"), PINNED_GRIDS.items(), ids=str)
def test_positional_grid_matches_the_token_grid(pixels, grid):
    net = _tiny()
    positions = net.pretrained.positions(*pixels, torch.float32)
    assert positions.shape == (1, 1 + grid[0] * grid[1], net.config.dim)
    assert math.floor(37 * ((grid[0] + 0.1) / 37)) == grid[0]  # the offset keeps the floor on the grid
    assert math.floor(37 * ((grid[1] + 0.1) / 37)) == grid[1]


def _keys(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _resample(values: np.ndarray, axis: int, positions: np.ndarray) -> np.ndarray:
    """Cubic convolution of ``values`` along ``axis`` at fractional source ``positions``, edges repeated."""
    values = np.moveaxis(values, axis, 0).astype(np.float64)
    out = np.zeros((len(positions),) + values.shape[1:])
    for i, p in enumerate(positions):
        first = math.floor(p)
        for tap in range(first - 1, first + 3):
            out[i] += _keys(np.array(p - tap)) * values[min(max(tap, 0), len(values) - 1)]
    return np.moveaxis(out, 0, axis)


def opencv_positions(source: int, target: int) -> np.ndarray:
    """Source pixel positions of OpenCV's resize: computed in double, stored as float32."""
    return ((np.arange(target) + 0.5) * (1.0 / (target / source)) - 0.5).astype(np.float32).astype(np.float64)


def reference_positions(table: np.ndarray, height: int, width: int) -> np.ndarray:
    """(1, 1 + 37*37, dim) -> (1, 1 + rows*cols, dim), from the DINOv2 recipe, in float64."""
    rows, cols = height // 14, width // 14
    side = int(math.sqrt(table.shape[1] - 1))
    if rows * cols == side * side and height == width:
        return table
    grid = table[0, 1:].reshape(side, side, -1)
    for axis, count in ((0, rows), (1, cols)):
        factor = (count + 0.1) / side
        # src = (i + 0.5) / factor - 0.5; PyTorch's kernel evaluates it in float32 (the rest here is
        # float64), and at 37 px a float32 coordinate is good to ~4e-6 px, which is visible at 1e-6.
        step = np.float32(1.0 / factor)
        positions = (step * (np.arange(count, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5))
        grid = _resample(grid, axis, positions.astype(np.float64))
    return np.concatenate([table[:, :1], grid.reshape(1, rows * cols, -1)], axis=1)


def _tiny(seed: int = 0) -> DepthAnythingV2:
    """The Small architecture's code path at a fraction of its width and depth; a smooth, unit-sized
    positional table like a trained one (seeded() makes it tiny, which would hide a resize error)."""
    net = seeded(DepthAnythingV2(DepthConfig(48, 4, 2, 16, (8, 16, 32, 48), (0, 1, 2, 3))), seed)
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 48, 6, 6, generator=generator)
    smooth = F.interpolate(coarse, size=(37, 37), mode="bilinear", align_corners=True)
    with torch.no_grad():
        net.pretrained.pos_embed[:, 1:] = smooth.flatten(2).transpose(1, 2)
        net.pretrained.pos_embed[:, :1] = torch.randn(1, 1, 48, generator=generator)
    return net


@pytest.mark.parametrize("pixels", [(518, 686), (686, 518), (518, 532), (518, 524), (700, 700), (28, 42)], ids=str)
def test_positional_embedding_is_the_scale_factor_bicubic_resize(pixels):
    net = _tiny()
    table = net.pretrained.pos_embed.detach().double().numpy()
    expected = reference_positions(table, *pixels)
    ours = net.pretrained.positions(*pixels, torch.float32).detach().double().numpy()
    assert ours.shape == expected.shape
    # float32 in both PyTorch and the reference port: a few float32 steps of the table's magnitude
    assert np.abs(ours - expected).max() < 1e-6 * np.abs(table).max()
    # The test can tell: resizing to a target size (what the port did before) is off by far more.
    rows, cols = pixels[0] // 14, pixels[1] // 14
    grid = net.pretrained.pos_embed[:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
    by_size = F.interpolate(grid, size=(rows, cols), mode="bicubic", align_corners=False)
    assert np.abs(by_size.flatten(2).transpose(1, 2).detach().numpy() - expected[:, 1:]).max() > 1e-3


def test_only_a_square_input_of_the_stored_grid_keeps_the_table():
    net = _tiny()
    table = net.pretrained.pos_embed
    assert net.pretrained.positions(518, 518, torch.float32) is table
    # 37 x 37 patches from a non-square input (524 // 14 == 37) are still resampled by 37.1 / 37.
    resampled = net.pretrained.positions(518, 524, torch.float32)
    assert resampled.shape == table.shape and not torch.equal(resampled, table)


def test_positions_are_resized_in_float32_and_cast_to_the_tokens_dtype():
    net = _tiny()
    half = net.pretrained.positions(518, 686, torch.bfloat16)
    full = net.pretrained.positions(518, 686, torch.float32)
    assert half.dtype == torch.bfloat16 and torch.equal(half, full.to(torch.bfloat16))


def test_embedding_stage_matches_a_reference_forward():
    net = _tiny(seed=1)
    x = torch.randn(1, 3, 518, 686, generator=torch.Generator().manual_seed(2))
    vit = net.pretrained
    patches = F.conv2d(x.double(), vit.patch_embed.proj.weight.double(), vit.patch_embed.proj.bias.double(),
                       stride=14)
    tokens = torch.cat([vit.cls_token.double(), patches.flatten(2).transpose(1, 2)], dim=1).detach().numpy()
    expected = tokens + reference_positions(vit.pos_embed.detach().double().numpy(), 518, 686)
    with torch.no_grad():
        ours = vit.embed(x).double().numpy()
    assert np.abs(ours - expected).max() < 1e-5 * np.abs(expected).max()


def test_cubic_resize_gives_what_opencv_gives():
    # cv2.resize(src, (7, 3), interpolation=cv2.INTER_CUBIC) with OpenCV 4.10.0 (float64 in, float64 out).
    src = (np.arange(20, dtype=np.float64).reshape(4, 5) % 7) / 6.0
    opencv = np.array([
        [0.1122662921746572, 0.2242885188589743, 0.29743778226207357, 0.27102622389793396, 0.3723625723933389,
         0.5336598043350438, 0.6393281500913234],
        [0.7629221181074779, 0.9279488151272137, 0.8148459748675425, 0.4166666666666667, 0.5738657806068659,
         0.3799806044747432, 0.015882997463146864],
        [0.19559954603513083, 0.2857963888429443, 0.4356377432059635, 0.5623071193695068, 0.6954721829265602,
         0.7376391483209374, 0.706292441701881]])
    assert np.abs(resize_cubic(src[..., None], 3, 7)[..., 0] - opencv).max() < 1e-12


@pytest.mark.parametrize(("photo", "target"), [((45, 60), (518, 686)), ((300, 200), (77, 51)), ((9, 700), (4, 350))],
                         ids=str)
def test_cubic_resize_matches_the_kernel_formula(photo, target):
    image = photo_like(*photo, seed=3).astype(np.float64)
    rows, cols = opencv_positions(photo[0], target[0]), opencv_positions(photo[1], target[1])
    expected = _resample(_resample(image, 1, cols), 0, rows)
    assert np.abs(resize_cubic(image, *target) - expected).max() < 1e-6


def test_cubic_overshoot_is_kept_not_clamped():
    edge = np.zeros((20, 20, 3))
    edge[:, 10:] = 1.0
    resized = resize_cubic(edge, 20, 57)
    assert resized.min() < -0.01 and resized.max() > 1.01


def reference_depth(net: DepthAnythingV2, rgb: np.ndarray) -> np.ndarray:
    rows, cols = reference_input_size(*rgb.shape[:2])
    image = rgb.astype(np.float64)
    row_pos, col_pos = opencv_positions(rgb.shape[0], rows), opencv_positions(rgb.shape[1], cols)
    image = (_resample(_resample(image, 1, col_pos), 0, row_pos) - MEAN) / STD
    x = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32))[None]
    with torch.no_grad():
        depth = net(x)[:, None]
    return F.interpolate(depth, size=rgb.shape[:2], mode="bilinear", align_corners=True)[0, 0].numpy()


def test_whole_photo_path_matches_the_reference_recipe():
    net = _tiny(seed=4)
    rgb = photo_like(48, 64, seed=5)
    expected = reference_depth(net, rgb)
    ours = estimate_depth(net, rgb)
    assert ours.shape == (48, 64)
    assert np.abs(ours - expected).max() <= 1e-5 * np.ptp(expected)


def test_network_input_is_normalised_after_the_resize_in_float64():
    rgb = photo_like(30, 40, seed=6)
    x = network_input(rgb)
    assert x.dtype == torch.float32 and x.shape == (1, 3, 518, 686)
    expected = (resize_cubic(rgb.astype(np.float64), 518, 686) - MEAN) / STD
    assert np.abs(x[0].numpy().transpose(1, 2, 0) - expected).max() < 1e-6
