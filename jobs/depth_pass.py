"""Mesh from Render Depth Pass: render the active camera with its Depth pass (or read a
multilayer EXR) and build the visible surfaces as a mesh, textured with the render.

Two steps run on the main thread (render or read; depth to mesh, numpy only), then finish()
makes the image, material, collection, mesh and object, all or nothing. Between steps the
job holds the scene's name and plain arrays.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import bpy

from ..bridge import compat, passes
from ..bridge.reconstruction import add_reconstruction, emission_material, image_from_pixels
from ..ml.depth.reconstruct import GridMesh, depth_to_mesh
from ..ml.errors import RestyleError
from ..ml.options import DepthPassMeshOptions
from .base import checked, run_to_end, stopping, wait_by_polling


@dataclass
class DepthMeshOutcome:
    object: str  # the mesh object's name
    vertices: int
    faces: int

    def summary(self) -> str:
        return f"Built {self.vertices:,} vertices and {self.faces:,} faces"


class DepthPassJob:
    """A steppable Mesh from Depth Pass (see jobs.base.Job)."""

    STEPS = ("rendering", "building the mesh")

    def __init__(self, scene: bpy.types.Scene, options: DepthPassMeshOptions) -> None:
        self.options = checked(options)
        self.scene_name = scene.name
        camera = passes.scene_camera(scene)  # a clear error now, before anything is rendered
        passes.measurable_camera(scene)
        self.camera_name = camera.name
        self.rendered: passes.RenderPasses | None = None
        self.grid: GridMesh | None = None
        self.step = 0
        self.cancelled = False

    def _scene(self) -> bpy.types.Scene:
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise RestyleError(f"the scene '{self.scene_name}' was deleted meanwhile")
        return scene

    def _camera(self) -> bpy.types.Object:
        """The camera the job started with, even if the user made another one active meanwhile."""
        camera = bpy.data.objects.get(self.camera_name)
        if camera is None or camera.type != "CAMERA":
            raise RestyleError(f"the camera '{self.camera_name}' was deleted meanwhile")
        return camera

    @contextmanager
    def _through_camera(self) -> Iterator[bpy.types.Scene]:
        """The scene, looking through the job's camera for one step; the user's active camera after it."""
        scene, camera = self._scene(), self._camera()
        users = scene.camera
        scene.camera = camera
        try:
            yield scene
        finally:
            scene.camera = users

    # -- Job ----------------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        return self.step / len(self.STEPS)

    @property
    def text(self) -> str:
        return self.STEPS[self.step] if self.step < len(self.STEPS) else "done"

    def poll(self) -> bool:
        stopping(self.cancelled, None)  # no worker: raises at once when cancelled
        if self.step == 0:
            if self.options.exr:
                path = bpy.path.abspath(self.options.exr)
                self.rendered = passes.read_multilayer_exr(path)
                h, w = self.rendered.depth.shape
                passes.check_frame(self._scene(), w, h, os.path.basename(path) or path)
            else:
                with self._through_camera() as scene:
                    self.rendered = passes.render_passes(scene, full_frame=True)
        elif self.step == 1:
            rendered = self.rendered
            assert rendered is not None
            h, w = rendered.depth.shape
            with self._through_camera() as scene:
                intrinsics = passes.camera_intrinsics(scene, w, h)
                far = passes.clip_end(scene)
            valid = rendered.depth < far
            if not valid.any():
                raise passes.PassError("the render shows nothing but background")
            self.grid = depth_to_mesh(rendered.depth, intrinsics, self.options.resolution, self.options.cut_threshold,
                                      valid, planar_depth=True)
        self.step = min(self.step + 1, len(self.STEPS))
        return self.step == len(self.STEPS)

    def wait(self) -> None:
        wait_by_polling(self)

    def cancel(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        """Nothing is in the file before finish(), which undoes its own work."""
        self.rendered = None

    def finish(self) -> DepthMeshOutcome:
        scene, rendered, grid = self._scene(), self.rendered, self.grid
        assert rendered is not None and grid is not None
        camera = self._camera()
        name = f"{camera.name} Depth Mesh"
        with compat.CreatedData() as created:  # all of it, or nothing if any step fails
            image = created.add(image_from_pixels(f"{name} Render", rendered.combined, is_float=True))
            material = created.add(emission_material(name, image))
            collection = created.add(bpy.data.collections.new(name))
            scene.collection.children.link(collection)
            obj = add_reconstruction(name, grid, camera.matrix_world.copy(), material, collection, created)
            created.commit()
        return DepthMeshOutcome(obj.name, len(grid.vertices), len(grid.faces))


def mesh_from_depth_pass(scene: bpy.types.Scene, options: DepthPassMeshOptions) -> DepthMeshOutcome:
    """Blocking Mesh from Depth Pass (command line, scripts): the same steps the panel's operator drives."""
    return run_to_end(DepthPassJob(scene, options))
