"""Learn Style from Images: train a custom style from a few example images, in the worker.

The result becomes a custom style (safetensors + its JSON card), removable like any other. While
it trains, a preview image of its own shows the current result. A job that fails or is cancelled
removes that image (never an earlier run's); one that finishes keeps it as "Learn Style Preview"
and removes earlier previews nothing uses (keep_preview).
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
from ..ml.models.custom import add_custom, check_name
from ..ml.models.store import ModelStore
from ..ml.options import LEARN_IMAGES, Device, LearnStyleOptions, choice
from ..ml.training.remote import MIN_SIDE, LearnJob, submit_learn
from .base import Services, checked, run_to_end, wait_by_polling

log = logging.getLogger(__name__)

PREVIEW_IMAGE = "Learn Style Preview"
PREVIEW_KEY = "restyle_learn_preview"  # on a preview image: when its job made it (the panel names the newest)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr", ".tga")
MAX_STYLE_IMAGES = int(LEARN_IMAGES.max)
MAX_SIDE = 1024  # style and content images are cut into small crops: larger adds only time


class LearnInputError(RestyleError):
    pass


def folder_images(folder: Path) -> list[Path]:
    """The image files in a folder, in name order (subfolders and other files are left out)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def no_images_in(folder: Path | str, what: str) -> str:
    """The message for a folder that holds no image file (shared with the command line's check)."""
    return f"The {what} folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})"


def style_image_paths(spec: str) -> list[Path]:
    """Files and the images inside folders, from a ';'-separated list (a folder's images in name order).
    A folder without images is an error naming it (it was picked by mistake, or is the wrong one)."""
    found: list[Path] = []
    for item in (part.strip() for part in spec.split(";")):
        if not item:
            continue
        path = Path(bpy.path.abspath(item))
        if path.is_dir():
            inside = folder_images(path)
            if not inside:
                raise LearnInputError(no_images_in(path, "style image"))
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise LearnInputError(f"Style image not found: {path}")
    return found


def _large_enough(pixels: np.ndarray, name: str) -> None:
    """Refuse an image too small to cut training crops from, at its real size (before _smaller)."""
    h, w = pixels.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise LearnInputError(f"{name} is {w}x{h} pixels: at least {MIN_SIDE} are needed on each side")


def read_image_file(path: Path, what: str = "style image") -> np.ndarray:
    """An image file's pixels, sRGB-encoded, through Blender's own readers (no datablock is left);
    ``what`` names its role in a size error ("content image")."""
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
    _large_enough(pixels, f"The {what} {path}")
    return _smaller(pixels)


def read_datablock(name: str) -> np.ndarray:
    """The pixels of an image datablock of this file (a style image picked in Blender)."""
    image = bpy.data.images.get(name)
    if image is None:
        raise LearnInputError(f"There is no image '{name}' in this file")
    try:
        pixels = images.read_sources(image)[0].pixels
    except images.ImageReadError as exc:
        raise LearnInputError(f"The image '{name}' cannot be read: {exc}") from None
    _large_enough(pixels, f"The image '{name}'")
    return _smaller(pixels)


def _smaller(pixels: np.ndarray) -> np.ndarray:
    """At most MAX_SIDE px on the longer side (nearest-neighbour strides: training crops resample anyway),
    but never below MIN_SIDE on the shorter one: a wide panorama (8192 x 64) stays usable, only longer."""
    longer, shorter = max(pixels.shape[:2]), min(pixels.shape[:2])
    step = max(1, min(-(-longer // MAX_SIDE), shorter // MIN_SIDE))
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
    return [a for a in arrays if min(a.shape[:2]) >= MIN_SIDE]


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
        try:  # a name the style cannot be added under is refused now, not after the training
            name = check_name(options.name)
        except RestyleError as exc:
            raise LearnInputError(str(exc)) from None
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
            if folder.is_file():
                raise LearnInputError(f"The content folder {folder} is a file, not a folder: give the folder "
                                      "that holds the content images")
            if not folder.is_dir():
                raise LearnInputError(f"Content folder not found: {folder}")
            files = folder_images(folder)
            if not files:
                raise LearnInputError(no_images_in(folder, "content"))
            content = [read_image_file(p, "content image") for p in files]
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
        self.preview_name = ""  # the preview image this job made: the only one it may remove
        self.images = len(style)
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
            self.preview_name = show_preview(self.job.preview, self.preview_name)
        return done

    def wait(self) -> None:
        wait_by_polling(self)

    def cancel(self) -> None:
        self.job.cancel()

    def close(self) -> None:
        self.job.close()
        if not self.succeeded:
            remove_preview(self.preview_name)
            self.preview_name = ""

    def finish(self) -> tuple[str, dict]:
        """Add the learned style to the user's custom styles; returns its id and card."""
        card = self.job.card or {}
        learned = f"learned from {self.images} image{'s' if self.images != 1 else ''}"
        entry = add_custom(self.root, Path(self.job.output), "transformer_net", self.name, origin=learned)
        self.name = entry.name  # "Stripes 2" when a style of that name was there: what the menu shows
        model = self.root / entry.files[0].filename
        card_path = model.with_suffix(".json")
        shutil.copyfile(Path(self.job.output).with_suffix(".json"), card_path)  # the card travels with it
        self.succeeded = True
        self.preview_name = keep_preview(self.preview_name)
        return entry.id, card


def show_preview(pixels: np.ndarray, current: str = "") -> str:
    """Show the preview in the image named ``current`` when this job made it, else in a new image
    (an earlier run's "Learn Style Preview" is left as it is: a material may show it); returns the
    name of the image now showing it (recreated when its size changes)."""
    h, w = pixels.shape[:2]
    image = bpy.data.images.get(current) if current else None
    if image is not None and tuple(image.size) != (w, h):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(PREVIEW_IMAGE, w, h, alpha=False)
        image[PREVIEW_KEY] = time.time()
    rgba = np.concatenate([pixels[..., :3], np.ones((h, w, 1), np.float32)], axis=2)[::-1]
    image.pixels.foreach_set(np.ascontiguousarray(rgba, dtype=np.float32).ravel())  # type: ignore[arg-type]
    image.update()
    return image.name


def keep_preview(name: str) -> str:
    """A finished job's preview stays; earlier previews nothing uses go, so runs do not pile them up
    (one a material shows stays), and the kept one takes the plain name when that is free.
    Returns its name."""
    image = bpy.data.images.get(name) if name else None
    if image is None:
        return ""
    stale = [old for old in bpy.data.images if old != image and PREVIEW_KEY in old.keys() and old.users == 0]
    if stale:
        bpy.data.batch_remove(stale)
    if bpy.data.images.get(PREVIEW_IMAGE) is None:
        image.name = PREVIEW_IMAGE
    return image.name


def newest_preview() -> bpy.types.Image | None:
    """The preview image of the latest Learn Style run, if any is left."""
    previews = [image for image in bpy.data.images if PREVIEW_KEY in image.keys()]
    return max(previews, key=lambda image: float(image[PREVIEW_KEY]), default=None)


def remove_preview(name: str) -> None:
    """Remove the preview image a job made, by the name it got (nothing when it made none)."""
    image = bpy.data.images.get(name) if name else None
    if image is not None:
        bpy.data.images.remove(image)


def learn_style(objects: Iterable[bpy.types.Object], options: LearnStyleOptions, services: Services,
                device: Device | str = Device.AUTO) -> tuple[str, dict]:
    """Blocking Learn Style from Images (command line, scripts); returns the new style's id and card."""
    return run_to_end(LearnStyleJob(objects, options, services, device=device))
