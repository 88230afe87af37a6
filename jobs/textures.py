"""Stylize Textures: collect and read the colour textures of some meshes, hand them to the
worker, then build new images and material copies that use them (the originals are kept).

Nothing touches the scene until every texture is back; building the results is undone as
a whole if any step of it fails, files included. Between the steps the job holds names
(with their library), never RNA references: the user keeps working, and may delete, edit
or undo anything meanwhile.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field

import bpy
import numpy as np

from ..bridge import compat, images, materials, outputs
from ..bridge.materials import IdKey, id_label
from ..ml.errors import RestyleError
from ..ml.models import registry
from ..ml.options import ModelFamily, OutputMode, StylizeTexturesOptions
from ..ml.runtime.client import Job as WorkerJob
from .base import Services, checked, run_to_end


class NothingToRestyle(RestyleError):
    pass


@dataclass
class Outcome:
    textures: int = 0
    materials: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # The files the kept images were written to: a caller whose save fails removes them.
    written: list[outputs.WrittenFiles] = field(default_factory=list)

    def summary(self, style: str) -> str:
        text = f"Restyled {self.textures} texture(s) in {self.materials} material(s) as '{style}'"
        if self.skipped:
            text += f"; skipped {len(self.skipped)}: " + ", ".join(
                f"{name} ({why})" for name, why in self.skipped.items()
            )
        if self.failed:
            text += f"; {len(self.failed)} failed: " + ", ".join(f"{name} ({why})" for name, why in self.failed.items())
        return text


class TexturesJob:
    """A steppable Stylize Textures (see jobs.base.Job)."""

    def __init__(self, objects: Iterable[bpy.types.Object], options: StylizeTexturesOptions, services: Services,
                 style_image: str | None = None) -> None:
        """``style_image``: the name of an image of this file, for the arbitrary (style image) styles."""
        self.options = options = checked(options)
        self.style = options.style
        self.model = registry.style(self.style, services.model_root)
        entry = self.model.entry  # what the store knows the files by
        files: dict[str, str] = {}
        if self.model.files:
            store = services.store
            if not store.is_installed(entry):
                size = f" (about {entry.download_size / 1e6:.0f} MB)" if entry.download_size else ""
                raise NothingToRestyle(
                    f"'{self.model.name}' is not downloaded yet: click Download{size} in the Restyle panel, "
                    "or add the file with Add Custom Style from File (from the command line: restyle models "
                    f"download {self.model.id}, or restyle models install FILE)"
                )
            files = {role: str(path) for role, path in store.paths(entry).items()}
        style_pixels = None
        if self.model.family == ModelFamily.ARBITRARY:
            image = bpy.data.images.get(style_image) if style_image else None
            if image is None:
                raise NothingToRestyle("Pick a style image for the arbitrary style")
            try:
                style_pixels = images.read_sources(image)[0].pixels
            except images.ImageReadError as exc:
                raise NothingToRestyle(f"The style image cannot be read: {exc}") from exc
        self.plan = materials.collect(objects)
        self.sources, failed = images.read_textures(self.plan.images())
        self.outcome = Outcome(skipped=dict(self.plan.skipped), failed=failed)
        if not self.sources:
            raise NothingToRestyle(self._nothing_message())
        try:
            self.worker_job: WorkerJob = services.client().submit(
                self.style, options.restyle,
                [(key, source.pixels) for key, source in self.sources.items()],
                files=files, style_image=style_pixels, style_weight=float(options.style_weight),
            )
        except OSError as exc:  # the job's arrays go through the temporary folder
            raise outputs.OutputWriteError(
                f"Cannot hand the textures to the worker: {exc.strerror or exc} "
                f"(temporary folder {tempfile.gettempdir()}; is the disk full?)") from exc

    def _nothing_message(self) -> str:
        if not self.plan.objects:
            if self.outcome.skipped:
                return "Nothing to restyle: " + "; ".join(f"{n}: {w}" for n, w in self.outcome.skipped.items())
            return "Select one or more mesh objects to restyle"
        if self.outcome.failed:
            return "No texture could be read: " + "; ".join(f"{n}: {w}" for n, w in self.outcome.failed.items())
        if self.outcome.skipped:
            return "The selected meshes only have data maps (skipped: " + ", ".join(
                f"{n} ({w})" for n, w in self.outcome.skipped.items()) + ")"
        return "The selected meshes have no image textures"

    # -- Job ----------------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        return self.worker_job.fraction

    @property
    def text(self) -> str:
        return self.worker_job.text

    def poll(self) -> bool:
        return self.worker_job.poll()

    def wait(self) -> None:
        self.worker_job.wait()

    def cancel(self) -> None:
        self.worker_job.cancel()

    def close(self) -> None:
        """Nothing is made before finish(), which undoes its own work: only the worker job is let go."""
        if not self.worker_job.finished:
            self.worker_job.cancel()
        self.worker_job.close()

    # -- building the results ---------------------------------------------------------------
    def _collect_results(self) -> dict[IdKey, dict[int | None, np.ndarray]]:
        results = self.worker_job.results
        per_image: dict[IdKey, dict[int | None, np.ndarray]] = {}
        broken: set[IdKey] = set()
        for key, source in self.sources.items():
            result = results.get(key)
            if result is None or result.array is None:
                self.outcome.failed[id_label(source.image)] = (result.error if result else None) or "no result"
                broken.add(source.image)
                continue
            per_image.setdefault(source.image, {})[source.tile] = images.decode(source, result.array)
        return {key: tiles for key, tiles in per_image.items() if key not in broken}

    def finish(self) -> Outcome:
        """Build the new images and materials from the finished job (all or nothing)."""
        per_image = self._collect_results()
        self.outcome.warnings = list(self.worker_job.warnings)
        pack = self.options.output == OutputMode.PACK
        folder = None if pack else images.output_folder(self.options.output_dir)
        created: dict[IdKey, bpy.types.Image] = {}
        files: dict[IdKey, outputs.WrittenFiles] = {}
        copies = materials.Copies()
        slot_changes: list[materials.SlotChange] = []
        try:
            for key, tiles in per_image.items():
                source_image = materials.find_image(key)
                if source_image is None:
                    self.outcome.failed[id_label(key)] = "the image was deleted while restyling"
                    continue
                files[key] = outputs.WrittenFiles()
                image = images.create_image(
                    materials.restyled_name(key[0], self.style), source_image, tiles, folder,
                    outputs.texture_stem(key[0], key[1], self.style), files[key],
                )
                image[materials.SOURCE_KEY] = source_image
                created[key] = image
            materials.make_copies(self.plan, created, self.style, copies)
            replaced, gone = materials.assign(self.plan, copies.materials, self.style, slot_changes)
            if created and not any(copy.users for copy in copies.materials.values()):
                raise NothingToRestyle("The selected objects or their materials were deleted while restyling")
        except BaseException:
            materials.undo_slots(slot_changes)
            made = compat.CreatedData()  # images, material copies and group copies: removed in one batch
            for block in [*created.values(), *copies.blocks()]:
                made.add(block)
            made.discard()
            for written in reversed(list(files.values())):  # the first one made the folder
                written.remove_all()
            raise
        for label in gone:
            self.outcome.skipped[label] = "deleted while restyling"
        for key in self.plan.materials:
            if materials.find_material(key) is None:
                self.outcome.skipped[id_label(key)] = "material deleted while restyling"
        self._drop_unused(created, files, copies)
        materials.remove_unused(replaced)
        materials.rename_results(copies, created, self.style)
        self.outcome.textures = len(created)
        self.outcome.materials = len(copies.materials)
        self.outcome.written = [files[key] for key in created]
        return self.outcome

    @staticmethod
    def _drop_unused(created: dict[IdKey, bpy.types.Image], files: dict[IdKey, outputs.WrittenFiles],
                     copies: materials.Copies) -> None:
        """Results nothing ended up using (their objects were deleted meanwhile) leave no trace."""
        for key, copy in list(copies.materials.items()):
            if copy.users == 0:
                del copies.materials[key]
                bpy.data.materials.remove(copy)
        kept = []
        for original, group in copies.groups:  # outer groups come first: removing one frees the next
            if group.users == 0:
                bpy.data.node_groups.remove(group)
            else:
                kept.append((original, group))
        copies.groups[:] = kept
        for key in list(created):
            if created[key].users == 0:
                bpy.data.images.remove(created.pop(key))
                files[key].remove_all()


def stylize_textures(objects: Iterable[bpy.types.Object], options: StylizeTexturesOptions, services: Services,
                     style_image: str | None = None) -> Outcome:
    """Blocking Stylize Textures (command line, scripts): the same steps the panel's operator drives."""
    return run_to_end(TexturesJob(objects, options, services, style_image))
