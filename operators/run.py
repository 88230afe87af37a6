"""One Stylize Textures run, in steps a modal operator (or a blocking loop) can drive:
collect and read the textures, hand them to the worker, then build the results.

Nothing touches the scene until every texture is back; building the results is
undone as a whole if any step of it fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field

import bpy

from .. import preferences
from ..bridge import images, materials
from ..ml.client import Job, shared_client
from ..ml.custom import find_style
from ..ml.errors import RestyleError
from ..properties import RestyleSettings, settings_of


class NothingToRestyle(RestyleError):
    pass


def scene_has_camera(operator: type[bpy.types.Operator], context: bpy.types.Context) -> bool:
    """poll() for operators that render: says why the button is greyed out."""
    if context.scene is None or context.scene.camera is None:
        operator.poll_message_set("The scene needs an active camera")
        return False
    return True


def package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def engine_options(settings: RestyleSettings) -> dict[str, object]:
    return {
        "strength": float(settings.strength),
        "device": str(settings.device).lower(),
        "precision": str(settings.precision).lower(),
        "tile_size": int(settings.tile_size),
        "seamless": str(settings.seamless).lower(),
        "preserve_colors": bool(settings.preserve_colors),
    }


@dataclass
class Outcome:
    textures: int = 0
    materials: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self, style: str) -> str:
        text = f"Restyled {self.textures} texture(s) in {self.materials} material(s) as '{style}'"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} data map(s): " + ", ".join(
                f"{name} ({why})" for name, why in self.skipped.items()
            )
        if self.failed:
            text += f"; {len(self.failed)} failed: " + ", ".join(f"{name} ({why})" for name, why in self.failed.items())
        return text


class StylizeRun:
    def __init__(self, context: bpy.types.Context) -> None:
        settings = settings_of(context)
        self.style = str(settings.style)
        self.entry = find_style(self.style, preferences.model_root(context, create=False))
        files: dict[str, str] = {}
        if self.entry.files:
            store = preferences.model_store(context)
            if not store.is_installed(self.entry):
                size = f" (about {self.entry.download_size / 1e6:.0f} MB)" if self.entry.download_size else ""
                raise NothingToRestyle(
                    f"'{self.entry.name}' is not downloaded yet: click Download{size} in the Restyle panel, "
                    "or add the file with Add Custom Style from File"
                )
            files = {role: str(path) for role, path in store.paths(self.entry).items()}
        style_image = None
        if self.entry.family == "arbitrary":
            if settings.style_image is None:
                raise NothingToRestyle("Pick a style image for the arbitrary style")
            try:
                style_image = images.read_sources(settings.style_image)[0].pixels
            except images.ImageReadError as exc:
                raise NothingToRestyle(f"The style image cannot be read: {exc}") from exc
        self.pack = settings.output == "PACK"
        self.folder = str(settings.output_folder)
        self.plan = materials.collect(context.selected_objects)
        self.outcome = Outcome(skipped=dict(self.plan.skipped))
        self.sources: dict[str, images.TextureSource] = {}
        for image in self.plan.images():
            try:
                for source in images.read_sources(image):
                    self.sources[source.key] = source
            except images.ImageReadError as exc:
                self.outcome.failed[image.name] = str(exc)
        if not self.sources:
            raise NothingToRestyle(self._nothing_message())
        prefs = preferences.get(context)
        client = shared_client(package_root(), threads=prefs.worker_threads if prefs else 0)
        self.job: Job = client.submit(
            self.style, engine_options(settings), [(key, source.pixels) for key, source in self.sources.items()],
            files=files, style_image=style_image, style_weight=float(settings.style_weight),
        )

    def _nothing_message(self) -> str:
        if not self.plan.objects:
            return "Select one or more mesh objects to restyle"
        if self.outcome.failed:
            return "No texture could be read: " + "; ".join(f"{n}: {w}" for n, w in self.outcome.failed.items())
        if self.outcome.skipped:
            return "The selected meshes only have data maps (skipped: " + ", ".join(self.outcome.skipped) + ")"
        return "The selected meshes have no image textures"

    def poll(self) -> bool:
        return self.job.poll()

    def cancel(self) -> None:
        self.job.cancel()

    def finish(self) -> Outcome:
        """Build the new images and materials from the finished job (all or nothing)."""
        results = self.job.results
        per_image: dict[str, dict[int | None, object]] = {}
        for key, source in self.sources.items():
            result = results.get(key)
            if result is None or result.array is None:
                self.outcome.failed[source.image.name] = (result.error if result else None) or "no result"
                per_image.pop(source.image.name, None)
                continue
            if source.image.name in self.outcome.failed:
                continue
            per_image.setdefault(source.image.name, {})[source.tile] = images.decode(source, result.array)
        self.outcome.warnings = list(self.job.warnings)
        created_images: dict[str, bpy.types.Image] = {}
        copies: dict[str, bpy.types.Material] = {}
        scratch = tempfile.mkdtemp(prefix="neural-restyle-out-")
        try:
            for name, tiles in per_image.items():
                source_image = bpy.data.images[name]
                image = images.create_image(
                    materials.restyled_name(name, self.style), source_image, tiles, self.pack, scratch,  # type: ignore[arg-type]
                    self.folder,
                )
                image[materials.SOURCE_KEY] = name
                created_images[name] = image
            copies = materials.make_copies(self.plan, created_images, self.style)
            replaced = materials.assign(self.plan, copies, self.style)
        except BaseException:
            for copy in copies.values():
                bpy.data.materials.remove(copy)
            for image in created_images.values():
                bpy.data.images.remove(image)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        materials.remove_unused(replaced)
        materials.rename_results(copies, created_images, self.style)
        self.outcome.textures = len(created_images)
        self.outcome.materials = len(copies)
        return self.outcome
