"""Image datablocks <-> numpy arrays.

Arrays are H x W x C float32, top-down, in the sRGB encoding the style networks
expect. Byte images already hold encoded values; float images (EXR, HDR, 16-bit PNG)
hold scene-linear values, which are encoded on the way in and decoded on the way
out, with anything brighter than 1.0 carried past the network unchanged.

Between steps an image is known by its materials.IdKey (name and library), never by reference.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

import bpy
import numpy as np

from ..ml.errors import RestyleError
from ..ml.restyle import color
from ..ml.runtime.scratch import make_folder
from . import outputs
from .materials import IdKey, id_key, id_label


class ImageReadError(RestyleError):
    """An image whose pixels cannot be read (missing file, unsupported kind)."""


@dataclass
class TextureSource:
    """One array to restyle: a whole image, or one UDIM tile of it."""

    image: IdKey  # the image's name and library, never a reference that can go stale
    tile: int | None  # UDIM tile number, None for ordinary images
    pixels: np.ndarray  # H x W x C, sRGB-encoded
    highlights: np.ndarray | None  # linear excess above 1.0 for float images

    @property
    def key(self) -> str:
        name = self.image[0] if not self.image[1] else f"{self.image[1]}/{self.image[0]}"
        return name if self.tile is None else f"{name}#{self.tile}"


def image_size(image: bpy.types.Image) -> tuple[int, int]:
    """(width, height); (0, 0) when Blender cannot decode the file."""
    return int(image.size[0]), int(image.size[1])


def _pixels_of(image: bpy.types.Image) -> np.ndarray:
    width, height = image_size(image)
    channels = image.channels
    if width == 0 or height == 0 or not image.has_data:
        raise ImageReadError(_missing_reason(image))
    flat = np.empty(width * height * channels, dtype=np.float32)
    image.pixels.foreach_get(flat)
    return np.ascontiguousarray(flat.reshape(height, width, channels)[::-1])


def _missing_reason(image: bpy.types.Image) -> str:
    if image.source == "FILE" and image.packed_file is None:
        path = bpy.path.abspath(image.filepath, library=image.library)
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


def uv_tile(tile: int) -> str:
    """A UDIM number as Mari's <UVTILE> token spells it: 1001 is u1_v1, 1012 is u2_v2."""
    offset = tile - 1001
    return f"u{offset % 10 + 1}_v{offset // 10 + 1}"


def udim_tile_path(image: bpy.types.Image, tile: int) -> str:
    path = bpy.path.abspath(image.filepath_raw, library=image.library)
    if "<UDIM>" in path:
        return path.replace("<UDIM>", str(tile))
    if "<UVTILE>" in path:
        return path.replace("<UVTILE>", uv_tile(tile))
    # A tiled image whose path names one tile (name.1001.png or name.u1_v1.png): swap it.
    if re.search(r"(?<=[._])u\d+_v\d+(?=\.[^.]+$)", path):
        return re.sub(r"(?<=[._])u\d+_v\d+(?=\.[^.]+$)", uv_tile(tile), path)
    return re.sub(r"(?<=[._])1\d{3}(?=\.[^.]+$)", str(tile), path)


def read_sources(image: bpy.types.Image, key: IdKey | None = None) -> list[TextureSource]:
    """Every array of an image (one, or one per UDIM tile). Raises ImageReadError.
    ``key``: the image's id_key, when the caller has it already."""
    key = key or id_key(image)
    if image.source == "TILED":
        return [_read_tile(image, key, tile.number) for tile in image.tiles]
    if image.source not in ("FILE", "GENERATED"):
        raise ImageReadError(f"source '{image.source.lower()}' (movie or sequence) is not supported")
    pixels, highlights = _encode(image, _pixels_of(image))
    return [TextureSource(key, None, pixels, highlights)]


def read_textures(found: Iterable[tuple[IdKey, bpy.types.Image]]) -> tuple[dict[str, TextureSource], dict[str, str]]:
    """The arrays of several images (a plan's textures), by their job key, and why each image that
    could not be read failed (by its label): one unreadable image does not stop the others."""
    sources: dict[str, TextureSource] = {}
    failed: dict[str, str] = {}
    for key, image in found:
        try:
            for source in read_sources(image, key):
                sources[source.key] = source
        except ImageReadError as exc:
            failed[id_label(key)] = str(exc)
    return sources, failed


def _read_tile(image: bpy.types.Image, key: IdKey, tile: int) -> TextureSource:
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
    return TextureSource(key, tile, pixels, highlights)


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
    or None when neither exists (results are packed then). A blend-relative override
    ("//textures") in an unsaved file has no folder yet either: without this it would
    resolve against the working directory, wherever Blender was started."""
    if override and not (override.startswith("//") and not bpy.data.filepath):
        return os.path.abspath(bpy.path.abspath(override))
    if not bpy.data.filepath:
        return None
    return bpy.path.abspath("//restyled")


def create_image(
    name: str,
    like: bpy.types.Image,
    tiles: dict[int | None, np.ndarray],
    folder: str | None,
    stem: str,
    written: outputs.WrittenFiles,
) -> bpy.types.Image:
    """A new image holding the restyled arrays: saved as ``folder``/``stem``.png (.exr for
    float images), or packed when ``folder`` is None.

    ``tiles`` maps a UDIM tile number (or None for an ordinary image) to its array. Every
    file is written through outputs (a free name, verified) and recorded in ``written``
    so that a failed job can take back exactly what it wrote.
    """
    is_float = like.is_float
    extension, file_format = (".exr", "OPEN_EXR") if is_float else (".png", "PNG")
    if None not in tiles:
        return _create_tiled(name, like, tiles, folder, stem, extension, file_format, written)
    array = tiles[None]
    image = bpy.data.images.new(name, array.shape[1], array.shape[0], alpha=True, float_buffer=is_float)
    try:
        if not is_float:
            image.colorspace_settings.name = like.colorspace_settings.name
        _fill(image, array)
        image.file_format = file_format  # type: ignore[assignment]
        if folder is not None:
            target = written.new_path(folder, stem, extension)
            written.save(image, target, file_format)
            image.filepath_raw = bpy.path.relpath(target) if bpy.data.filepath else target
        else:
            image.pack()
    except BaseException:
        bpy.data.images.remove(image)
        raise
    return image


def _create_tiled(
    name: str,
    like: bpy.types.Image,
    tiles: dict[int | None, np.ndarray],
    folder: str | None,
    stem: str,
    extension: str,
    file_format: str,
    written: outputs.WrittenFiles,
) -> bpy.types.Image:
    numbers = sorted(number for number in tiles if number is not None)
    scratch = None
    if folder is None:  # packed: the tiles go through a private folder, removed afterwards
        try:
            scratch = make_folder("out")
        except OSError as exc:
            raise outputs.OutputWriteError(
                f"cannot create a temporary folder in {tempfile.gettempdir()}: {exc.strerror or exc}") from exc
    try:
        if scratch is not None:
            pattern = outputs.output_path(scratch, stem, extension, tiles=numbers)
        else:
            pattern = written.new_path(folder or "", stem, extension, tiles=numbers)
        paths = []
        for number in numbers:
            array = tiles[number]
            writer = bpy.data.images.new(f"{name}.{number}", array.shape[1], array.shape[0], alpha=True,
                                         float_buffer=like.is_float)
            try:
                _fill(writer, array)
                path = pattern.replace("<UDIM>", str(number))
                if scratch is None:
                    written.save(writer, path, file_format)
                else:
                    outputs.save_verified(writer, path, file_format)
                paths.append(path)
            finally:
                bpy.data.images.remove(writer)
        image = bpy.data.images.load(paths[0], check_existing=False)
        try:
            image.name = name
            image.source = "TILED"
            image.filepath_raw = pattern
            for number in numbers[1:]:
                if image.tiles.get(number) is None:
                    image.tiles.new(tile_number=number)
            if not like.is_float:
                image.colorspace_settings.name = like.colorspace_settings.name
            image.reload()
            if scratch is not None:
                image.pack()
            elif bpy.data.filepath:
                image.filepath_raw = bpy.path.relpath(image.filepath_raw)
        except BaseException:
            bpy.data.images.remove(image)
            raise
        return image
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
