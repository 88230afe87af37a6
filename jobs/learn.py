"""Learn Style from Images: train a custom style from a few example images, in the worker.

The result becomes a custom style (safetensors + its JSON card), removable like any other. While
it trains, a preview image ("Learn Style Preview") shows the current result; it is removed again
unless the style is kept.
"""

from __future__ import annotations

import glob
import logging
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import bpy
import numpy as np

from ..bridge import images, materials
from ..ml.errors import RestyleError
from ..ml.models import registry
from ..ml.models.custom import add_custom
from ..ml.models.store import ModelStore
from ..ml.options import LEARN_IMAGES, Device, LearnStyleOptions, choice
from ..ml.training.remote import LearnJob, submit_learn
from .base import Services, checked, run_to_end, wait_by_polling

log = logging.getLogger(__name__)

PREVIEW_IMAGE = "Learn Style Preview"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr", ".tga")
MAX_STYLE_IMAGES = int(LEARN_IMAGES.max)
MAX_SIDE = 1024  # style and content images are cut into small crops: larger adds only time


class LearnInputError(RestyleError):
    pass


def style_image_paths(spec: str) -> list[Path]:
    """Files and the images inside folders, from a ';'-separated list (a folder's images in name order)."""
    found: list[Path] = []
    for item in (part.strip() for part in spec.split(";")):
        if not item:
            continue
        path = Path(bpy.path.abspath(item))
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise LearnInputError(f"Style image not found: {path}")
    return found


def read_image_file(path: Path) -> np.ndarray:
    """An image file's pixels, sRGB-encoded, through Blender's own readers (no datablock is left)."""
    try:
        image = bpy.data.images.load(str(path), check_existing=False)
    except RuntimeError as exc:
        raise LearnInputError(f"{path.name} cannot be read as an image ({exc})") from None
    try:
        pixels = images.read_sources(image)[0].pixels
    except images.ImageReadError as exc:
        raise LearnInputError(f"{path.name}: {exc}") from None
    finally:
        bpy.data.images.remove(image)
    return _smaller(pixels)


def read_datablock(name: str) -> np.ndarray:
    """The pixels of an image datablock of this file (a style image picked in Blender)."""
    image = bpy.data.images.get(name)
    if image is None:
        raise LearnInputError(f"There is no image '{name}' in this file")
    try:
        return _smaller(images.read_sources(image)[0].pixels)
    except images.ImageReadError as exc:
        raise LearnInputError(f"The image '{name}' cannot be read: {exc}") from None


def _smaller(pixels: np.ndarray) -> np.ndarray:
    """At most MAX_SIDE px on the longer side (nearest-neighbour strides: training crops resample anyway)."""
    step = max(1, -(-max(pixels.shape[:2]) // MAX_SIDE))
    return np.ascontiguousarray(pixels[::step, ::step, :3] if pixels.shape[2] >= 3 else pixels[::step, ::step])


def bundled_hdris() -> list[str]:
    """Blender's CC0 studio-light HDRIs: photographic content any installation has."""
    datafiles = bpy.utils.system_resource("DATAFILES")  # type: ignore[attr-defined]  # missing from fake-bpy-module
    folder = Path(datafiles) / "studiolights" / "world"
    return sorted(glob.glob(str(folder / "*.exr")))


def selected_textures(objects: Iterable[bpy.types.Object]) -> list[np.ndarray]:
    """The colour textures of the meshes the style is for."""
    plan = materials.collect(objects)
    arrays = []
    for _key, image in plan.images():
        try:
            arrays += [_smaller(source.pixels) for source in images.read_sources(image)]
        except images.ImageReadError:
            continue  # a missing texture is no reason to refuse: the HDRIs remain
    return [a for a in arrays if min(a.shape[:2]) >= 32]


def adain_vgg(store: ModelStore) -> str:
    """The AdaIN download's VGG file when it is installed (the classic perceptual features)."""
    path = store.paths(registry.describe("adain").entry).get("vgg")
    return str(path) if path is not None and path.is_file() else ""


class LearnStyleJob:
    """A steppable Learn Style from Images (see jobs.base.Job); ``objects``' textures are the
    content when no content folder is given."""

    def __init__(self, objects: Iterable[bpy.types.Object], options: LearnStyleOptions, services: Services,
                 image_names: Sequence[str] = (), device: Device | str = Device.AUTO) -> None:
        """``image_names``: style images that are images of this file (picked in Blender)."""
        name = options.name.strip()
        if not name:
            raise LearnInputError("Give the style a name")
        checked(options)
        paths = style_image_paths(";".join(options.images))
        content_folder, preset, steps, seed = options.content, options.preset, options.steps, options.seed
        if not paths and not image_names:
            raise LearnInputError("Pick 1 to 30 style images (files, a folder of images, or images in this file)")
        if len(paths) + len(image_names) > MAX_STYLE_IMAGES:
            raise LearnInputError(f"{len(paths) + len(image_names)} style images: pick at most {MAX_STYLE_IMAGES}")
        self.name = name
        self.root = services.model_root
        style = [(p.name, read_image_file(p)) for p in paths] + [(n, read_datablock(n)) for n in image_names]
        content: list[np.ndarray] = []
        content_files: list[str] = []
        if content_folder:
            folder = Path(bpy.path.abspath(content_folder))
            if not folder.is_dir():
                raise LearnInputError(f"Content folder not found: {folder}")
            content = [read_image_file(p) for p in style_image_paths(str(folder))]
            if not content:
                raise LearnInputError(f"The content folder {folder} holds no images")
        else:
            content = selected_textures(objects)
            content_files = bundled_hdris()
            if not content and not content_files:
                raise LearnInputError("No content images: select meshes with textures, or pick a content folder")
        request = {"preset": str(preset), "steps": int(steps), "seed": int(seed),
                   "device": str(choice(Device, device)), "threads": services.threads}
        self.job: LearnJob = submit_learn(services.client(), style, content, content_files, request, name,
                                          vgg=adain_vgg(services.store), preview=content[0] if content else None)
        self.preview_step = 0
        self.succeeded = False
        self.started = time.monotonic()

    # -- Job ----------------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        return self.job.fraction

    @property
    def text(self) -> str:
        return self.job.text

    def poll(self) -> bool:
        done = self.job.poll()
        if self.job.preview is not None and self.job.preview_step != self.preview_step:
            self.preview_step = self.job.preview_step
            show_preview(self.job.preview)
        return done

    def wait(self) -> None:
        wait_by_polling(self)

    def cancel(self) -> None:
        self.job.cancel()

    def close(self) -> None:
        self.job.close()
        if not self.succeeded:
            remove_preview()

    def finish(self) -> tuple[str, dict]:
        """Add the learned style to the user's custom styles; returns its id and card."""
        card = self.job.card or {}
        entry = add_custom(self.root, Path(self.job.output), "transformer_net", self.name)
        model = self.root / entry.files[0].filename
        card_path = model.with_suffix(".json")
        shutil.copyfile(Path(self.job.output).with_suffix(".json"), card_path)  # the card travels with it
        self.succeeded = True
        return entry.id, card


def show_preview(pixels: np.ndarray) -> None:
    """The preview in an image datablock of its own (recreated when its size changes)."""
    h, w = pixels.shape[:2]
    image = bpy.data.images.get(PREVIEW_IMAGE)
    if image is not None and tuple(image.size) != (w, h):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(PREVIEW_IMAGE, w, h, alpha=False)
    rgba = np.concatenate([pixels[..., :3], np.ones((h, w, 1), np.float32)], axis=2)[::-1]
    image.pixels.foreach_set(np.ascontiguousarray(rgba, dtype=np.float32).ravel())  # type: ignore[arg-type]
    image.update()


def remove_preview() -> None:
    image = bpy.data.images.get(PREVIEW_IMAGE)
    if image is not None:
        bpy.data.images.remove(image)


def learn_style(objects: Iterable[bpy.types.Object], options: LearnStyleOptions, services: Services,
                device: Device | str = Device.AUTO) -> tuple[str, dict]:
    """Blocking Learn Style from Images (command line, scripts); returns the new style's id and card."""
    return run_to_end(LearnStyleJob(objects, options, services, device=device))
