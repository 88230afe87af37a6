"""Image datablocks <-> numpy arrays.

Arrays are H x W x C float32, top-down, in the sRGB encoding the style networks
expect. Byte images already hold encoded values; float images (EXR, HDR, 16-bit PNG)
hold scene-linear values, which are encoded on the way in and decoded on the way
out, with anything brighter than 1.0 carried past the network unchanged.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import bpy
import numpy as np

from ..ml import color

UDIM_TOKENS = ("<UDIM>", "<UVTILE>")


class ImageReadError(Exception):
    """An image whose pixels cannot be read (missing file, unsupported kind)."""


@dataclass
class TextureSource:
    """One array to restyle: a whole image, or one UDIM tile of it."""

    image: bpy.types.Image
    tile: int | None  # UDIM tile number, None for ordinary images
    pixels: np.ndarray  # H x W x C, sRGB-encoded
    highlights: np.ndarray | None  # linear excess above 1.0 for float images

    @property
    def key(self) -> str:
        return self.image.name if self.tile is None else f"{self.image.name}#{self.tile}"


def _pixels_of(image: bpy.types.Image) -> np.ndarray:
    width, height = int(image.size[0]), int(image.size[1])
    channels = image.channels
    if width == 0 or height == 0 or not image.has_data:
        raise ImageReadError(_missing_reason(image))
    flat = np.empty(width * height * channels, dtype=np.float32)
    image.pixels.foreach_get(flat)
    return np.ascontiguousarray(flat.reshape(height, width, channels)[::-1])


def _missing_reason(image: bpy.types.Image) -> str:
    if image.source == "FILE" and image.packed_file is None:
        path = bpy.path.abspath(image.filepath)
        if not os.path.exists(path):
            return f"file not found: {path}"
        return f"could not be read: {path}"
    return "has no pixels"


def _encode(image: bpy.types.Image, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if not image.is_float:
        return np.clip(pixels, 0.0, 1.0), None
    rgb = pixels[..., :3] if pixels.shape[2] >= 3 else pixels[..., :1]
    encoded = pixels.copy()
    encoded[..., : rgb.shape[2]] = color.linear_to_srgb(rgb)
    if pixels.shape[2] in (2, 4):  # alpha is not colour: keep it as it is
        encoded[..., -1] = np.clip(pixels[..., -1], 0.0, 1.0)
    return encoded, np.maximum(rgb - 1.0, 0.0)


def decode(source: TextureSource, styled: np.ndarray) -> np.ndarray:
    """Styled sRGB-encoded array back to what the new image's buffer holds."""
    if source.highlights is None:
        return styled
    out = styled.copy()
    n = source.highlights.shape[2]
    out[..., :n] = color.srgb_to_linear(styled[..., :n]) + source.highlights
    return out


def udim_tile_path(image: bpy.types.Image, tile: int) -> str:
    path = bpy.path.abspath(image.filepath_raw)
    for token in UDIM_TOKENS:
        if token in path:
            return path.replace(token, str(tile))
    # A tiled image whose path names one tile (name.1001.png): swap the number.
    return re.sub(r"(?<=[._])1\d{3}(?=\.[^.]+$)", str(tile), path)


def read_sources(image: bpy.types.Image) -> list[TextureSource]:
    """Every array of an image (one, or one per UDIM tile). Raises ImageReadError."""
    if image.source == "TILED":
        return [_read_tile(image, tile.number) for tile in image.tiles]
    if image.source not in ("FILE", "GENERATED"):
        raise ImageReadError(f"source '{image.source.lower()}' (movie or sequence) is not supported")
    pixels, highlights = _encode(image, _pixels_of(image))
    return [TextureSource(image, None, pixels, highlights)]


def _read_tile(image: bpy.types.Image, tile: int) -> TextureSource:
    if image.packed_file is not None or len(image.packed_files) > 0:
        raise ImageReadError("packed UDIM images are not supported: unpack them to files first")
    path = udim_tile_path(image, tile)
    if not os.path.exists(path):
        raise ImageReadError(f"UDIM tile {tile} not found: {path}")
    temporary = bpy.data.images.load(path, check_existing=False)
    try:
        temporary.colorspace_settings.name = image.colorspace_settings.name
        pixels, highlights = _encode(temporary, _pixels_of(temporary))
    finally:
        bpy.data.images.remove(temporary)
    return TextureSource(image, tile, pixels, highlights)


def _to_rgba(array: np.ndarray) -> np.ndarray:
    h, w, c = array.shape
    if c == 4:
        return array
    rgb = np.repeat(array[..., :1], 3, axis=2) if c <= 2 else array[..., :3]
    alpha = array[..., 1:2] if c == 2 else np.ones((h, w, 1), dtype=np.float32)
    return np.concatenate([rgb, alpha], axis=2)


def _fill(image: bpy.types.Image, array: np.ndarray) -> None:
    rgba = _to_rgba(array)[::-1]
    if image.channels != 4:
        raise ImageReadError(f"new image has {image.channels} channels, expected 4")
    image.pixels.foreach_set(np.ascontiguousarray(rgba, dtype=np.float32).ravel())  # type: ignore[arg-type]


def output_folder(override: str = "") -> str | None:
    """Absolute folder for restyled files: the override, //restyled beside a saved .blend,
    or None when neither exists (results are packed then)."""
    if override:
        return bpy.path.abspath(override)
    if not bpy.data.filepath:
        return None
    return bpy.path.abspath("//restyled")


def _safe_file_name(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", name)


def create_image(
    name: str,
    like: bpy.types.Image,
    tiles: dict[int | None, np.ndarray],
    pack: bool,
    scratch_folder: str,
    folder_override: str = "",
) -> bpy.types.Image:
    """A new image holding the restyled arrays, saved under //restyled/ or packed.

    ``tiles`` maps a UDIM tile number (or None for an ordinary image) to its array.
    """
    is_float = like.is_float
    extension, file_format = (".exr", "OPEN_EXR") if is_float else (".png", "PNG")
    folder = None if pack else output_folder(folder_override)
    target_folder = folder or scratch_folder
    os.makedirs(target_folder, exist_ok=True)
    stem = _safe_file_name(name)
    if None in tiles:
        array = tiles[None]
        image = bpy.data.images.new(name, array.shape[1], array.shape[0], alpha=True, float_buffer=is_float)
        try:
            if not is_float:
                image.colorspace_settings.name = like.colorspace_settings.name
            _fill(image, array)
            image.file_format = file_format  # type: ignore[assignment]
            if folder is not None:
                target = os.path.join(folder, stem + extension)
                image.filepath_raw = bpy.path.relpath(target) if bpy.data.filepath else target
                image.save()
            else:
                image.pack()
        except BaseException:
            bpy.data.images.remove(image)
            raise
        return image
    return _create_tiled(name, like, tiles, target_folder, stem, extension, file_format, pack=folder is None)


def _create_tiled(name, like, tiles, folder, stem, extension, file_format, pack) -> bpy.types.Image:
    paths = []
    for number, array in sorted(tiles.items()):
        writer = bpy.data.images.new(f"{name}.{number}", array.shape[1], array.shape[0], alpha=True,
                                     float_buffer=like.is_float)
        try:
            _fill(writer, array)
            writer.file_format = file_format
            writer.filepath_raw = os.path.join(folder, f"{stem}.{number}{extension}")
            writer.save()
            paths.append(writer.filepath_raw)
        finally:
            bpy.data.images.remove(writer)
    image = bpy.data.images.load(paths[0], check_existing=False)
    try:
        image.name = name
        image.source = "TILED"
        image.filepath_raw = os.path.join(folder, f"{stem}.<UDIM>{extension}")
        for number in sorted(tiles)[1:]:
            if image.tiles.get(number) is None:
                image.tiles.new(tile_number=number)
        if not like.is_float:
            image.colorspace_settings.name = like.colorspace_settings.name
        image.reload()
        if pack:
            image.pack()
        elif bpy.data.filepath:
            image.filepath_raw = bpy.path.relpath(image.filepath_raw)
    except BaseException:
        bpy.data.images.remove(image)
        raise
    return image
