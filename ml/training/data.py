"""Images to training crops: random crops at several scales, drawn from a torch generator
whose state a checkpoint keeps (so a resumed run draws the crops an uninterrupted one would)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidImageError
from .remote import MIN_SIDE


def as_tensor(image: np.ndarray, name: str = "image") -> torch.Tensor:
    """An H x W x C image (grey, grey+alpha, RGB or RGBA; float in [0, 1] or uint8) as a
    (3, H, W) float32 tensor in [0, 1]."""
    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise InvalidImageError(f"{name}: expected an H x W x C image with 1 to 4 channels, got {array.shape}")
    if min(array.shape[:2]) < MIN_SIDE:
        raise InvalidImageError(f"{name} is {array.shape[1]}x{array.shape[0]} pixels: at least {MIN_SIDE} are needed")
    rgb = np.repeat(array[..., :1], 3, axis=2) if array.shape[2] <= 2 else array[..., :3]
    if not np.isfinite(rgb).all():
        raise InvalidImageError(f"{name} contains NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(np.clip(rgb, 0.0, 1.0))).permute(2, 0, 1).contiguous()


def read_exr_rgb(path: Path) -> np.ndarray:
    """The RGB channels of an OpenEXR file (scene-linear float32), with the OpenEXR package."""
    try:
        import OpenEXR
    except ImportError as exc:
        raise InvalidImageError(f"reading {path.name} needs the OpenEXR package") from exc
    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            channels = exr.channels()
            return np.stack([np.asarray(channels[c].pixels, dtype=np.float32) for c in "RGB"], -1)
    except (RuntimeError, KeyError, OSError) as exc:
        raise InvalidImageError(f"{path.name} is not a readable RGB OpenEXR file ({exc})") from exc


def tone_map(linear: np.ndarray) -> np.ndarray:
    """A scene-referred HDRI as a display image: exposure from the 97th percentile of
    luminance, a soft shoulder above it, then the sRGB transfer curve."""
    luminance = linear @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    exposed = np.clip(linear / max(float(np.percentile(luminance, 97)), 1e-6), 0, None)
    shoulder = np.where(exposed < 0.8, exposed, 0.8 + 0.2 * np.tanh((exposed - 0.8) / 0.2))
    srgb = np.where(shoulder <= 0.0031308, shoulder * 12.92, 1.055 * np.power(shoulder, 1 / 2.4) - 0.055)
    return np.clip(srgb, 0, 1).astype(np.float32)


def image_hash(image: np.ndarray) -> str:
    """sha256 of an image's pixels (as given), for the card and for checking a resume."""
    array = np.ascontiguousarray(image)
    digest = hashlib.sha256(str((array.shape, array.dtype.str)).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


class CropSampler:
    """Random square crops of ``size`` px from a list of images, each from a region of
    ``size / scale`` px resized to ``size`` (a scale above 1 enlarges, below 1 shrinks), with
    horizontal flips. An image smaller than a region is enlarged to fit first."""

    def __init__(self, images: Sequence[torch.Tensor], size: int, scales: Sequence[float]) -> None:
        if not images:
            raise InvalidImageError("no images to crop")
        self.images, self.size, self.scales = list(images), size, tuple(scales)

    def crop(self, generator: torch.Generator) -> torch.Tensor:
        index = int(torch.randint(len(self.images), (), generator=generator))
        scale = self.scales[int(torch.randint(len(self.scales), (), generator=generator))]
        image = self.images[index]
        region = max(8, round(self.size / scale))
        h, w = image.shape[-2:]
        if min(h, w) < region:
            grow = region / min(h, w)
            image = F.interpolate(image[None], size=(math.ceil(h * grow), math.ceil(w * grow)), mode="bilinear",
                                  align_corners=False)[0]
            h, w = image.shape[-2:]
        top = int(torch.randint(h - region + 1, (), generator=generator))
        left = int(torch.randint(w - region + 1, (), generator=generator))
        patch = image[:, top : top + region, left : left + region][None]
        if region != self.size:
            patch = F.interpolate(patch, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                  antialias=region > self.size)
        if bool(torch.rand((), generator=generator) < 0.5):
            patch = patch.flip(-1)
        return patch[0].clamp(0, 1)

    def batch(self, count: int, generator: torch.Generator) -> torch.Tensor:
        return torch.stack([self.crop(generator) for _ in range(count)])
