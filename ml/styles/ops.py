"""Image operators the built-in styles are made of. All work on (N, C, H, W) tensors,
replicate the border (so a tile touching the image edge sees what the whole image
sees), and have a known radius so styles can declare their exact halo."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..restyle.tiling import global_coords

LUMA = (0.2126, 0.7152, 0.0722)


def luma(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


def gaussian_radius(sigma: float) -> int:
    return int(math.ceil(3.0 * sigma))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, radius ``gaussian_radius(sigma)``."""
    r = gaussian_radius(sigma)
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def shifted_views(x: torch.Tensor, radius: int):
    """Yield (dy, dx, view of x shifted by (dy, dx)) over the square window of ``radius``."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            yield dy, dx, padded[..., radius + dy : radius + dy + h, radius + dx : radius + dx + w]


def bilateral(x: torch.Tensor, radius: int, sigma_space: float, sigma_range: float) -> torch.Tensor:
    """Edge-preserving smoothing: neighbours weighted by distance and colour similarity."""
    total = torch.zeros_like(x)
    norm = torch.zeros_like(x[:, :1])
    inv_range = 1.0 / (2.0 * sigma_range**2)
    for dy, dx, view in shifted_views(x, radius):
        spatial = math.exp(-(dy * dy + dx * dx) / (2.0 * sigma_space**2))
        weight = spatial * torch.exp(-((view - x) ** 2).sum(1, keepdim=True) * inv_range)
        total += weight * view
        norm += weight
    return total / norm


def sobel(gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical derivatives, radius 1."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=gray.dtype, device=gray.device) / 8
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, kx.view(1, 1, 3, 3))
    gy = F.conv2d(padded, kx.t().contiguous().view(1, 1, 3, 3))
    return gx, gy


def xdog(gray: torch.Tensor, sigma: float, k: float = 1.6, p: float = 20.0, eps: float = 0.0, phi: float = 12.0):
    """Extended difference of Gaussians line drawing: 1 on paper, falling to 0 on lines.
    Radius ``gaussian_radius(k * sigma)``."""
    sharpened = (1 + p) * gaussian_blur(gray, sigma) - p * gaussian_blur(gray, k * sigma)
    below = 1.0 + torch.tanh(phi * (sharpened - eps))
    return torch.where(sharpened >= eps, torch.ones_like(sharpened), below).clamp(0, 1)


def hash_noise(x: torch.Tensor, seed: int, scale: int = 1) -> torch.Tensor:
    """Deterministic white noise in [0, 1) keyed on global pixel coordinates: the same at
    every pixel whether the image is processed whole or in tiles. Shape (1, 1, H, W)."""
    rows, cols = global_coords(x, scale)
    h = rows.long() * 374761393 + cols.long() * 668265263 + seed * 2147483647
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return ((h & 0xFFFFFF).to(x.dtype) / float(0x1000000))[None, None]


def rgb_to_ycc(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    y = luma(x)
    return y, x - y


def saturate(x: torch.Tensor, amount: float) -> torch.Tensor:
    y = luma(x)
    return (y + (x - y) * amount).clamp(0, 1)
