"""The one place that names and writes the files the extension makes.

Two promises: a file the extension did not write for this very result is never
overwritten (a distinct result always gets a distinct, free name), and a write
that did not really happen (Blender writes an empty PNG on a full disk and
raises nothing) is an error, never a success.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Collection, Iterable, Sequence

import bpy

from ..ml.errors import RestyleError

MAX_STEM = 96  # keeps whole paths well inside every file system's limits


class OutputWriteError(RestyleError):
    """A file could not be written, or what was written is not the image (full disk, no permission)."""


def safe_file_name(name: str, limit: int = MAX_STEM) -> str:
    """``name`` as a portable file name part: no separators, no spaces, bounded length."""
    cleaned = re.sub(r"[^\w.\-]+", "_", name).strip("._") or "image"
    return cleaned[:limit]


def stable_tag(*parts: str) -> str:
    """A short hash that tells apart names a file system would otherwise merge
    ("Brick Wall" and "Brick_Wall", the same image name in two libraries or two .blend files)."""
    digest = hashlib.sha1("\0".join(parts).encode("utf-8"), usedforsecurity=False)
    return digest.hexdigest()[:8]


def texture_stem(name: str, library: str, style: str) -> str:
    """The file name (no extension) of image ``name`` of ``library`` restyled as ``style``: one no other
    image, library, .blend file or style can share (the tag tells apart what the readable part merges)."""
    blend = os.path.splitext(os.path.basename(bpy.data.filepath))[0] or "untitled"
    tag = stable_tag(blend, library, name, style)
    return f"{safe_file_name(blend, 40)}-{safe_file_name(name, 60)}.{style}-{tag}"


def _normal(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def _paths_for(folder: str, stem: str, extension: str, tiles: Collection[int]) -> list[str]:
    if not tiles:
        return [os.path.join(folder, stem + extension)]
    return [os.path.join(folder, f"{stem}.{number}{extension}") for number in sorted(tiles)]


def _first_free(
    stem: str, paths_of: Callable[[str], list[str]], replaceable: Iterable[str]
) -> tuple[str, list[str]]:
    """The first of ``stem``, ``stem-2``, ``stem-3`` ... whose every path is free (no file
    there, or one of ``replaceable``: the caller's own earlier result for the same thing)."""
    own = {_normal(o) for o in replaceable}  # a set: a long sequence against a long record stays fast
    for attempt in range(1, 10_000):
        candidate = stem if attempt == 1 else f"{stem}-{attempt}"
        paths = paths_of(candidate)
        if all(not os.path.lexists(p) or _normal(p) in own for p in paths):
            return candidate, paths
    raise OutputWriteError(f"no free file name for '{stem}' in {os.path.dirname(paths_of(stem)[0])}")


def output_path(
    folder: str,
    stem: str,
    extension: str,
    tiles: Collection[int] = (),
    replaceable: Iterable[str] = (),
) -> str:
    """A path in ``folder`` for ``stem`` + ``extension`` that overwrites nothing.

    With ``tiles`` (UDIM numbers) the result holds the ``<UDIM>`` token and every tile's
    file must be free.
    """
    candidate, paths = _first_free(safe_file_name(stem), lambda c: _paths_for(folder, c, extension, tiles),
                                   replaceable)
    return os.path.join(folder, f"{candidate}.<UDIM>{extension}") if tiles else paths[0]


def frame_paths(
    folder: str, stem: str, extension: str, frames: Sequence[int], replaceable: Iterable[str] = ()
) -> dict[int, str]:
    """One path per frame, ``<stem>.<frame:04d><extension>``, all with the same free stem, so
    that a sequence stays one sequence (``shot.toon-2.0001.png`` ... when ``shot.toon.0001.png``
    belongs to someone else) and overwrites nothing."""
    def paths_of(candidate: str) -> list[str]:
        return [os.path.join(folder, f"{candidate}.{frame:04d}{extension}") for frame in frames]

    _, paths = _first_free(safe_file_name(stem), paths_of, replaceable)
    return dict(zip(frames, paths, strict=True))


def ensure_folder(folder: str) -> None:
    """Create ``folder`` (and parents), as a clear error when that is not allowed."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK):
        raise OutputWriteError(f"the output folder {folder} is not writable")


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def save_verified(image: bpy.types.Image, path: str, file_format: str | None = None) -> None:
    """Save ``image`` to the absolute ``path`` and prove the file holds it.

    The image is written beside ``path`` under a temporary name, read back, and only then
    moved onto ``path``: a failed write (a full disk writes empty files without an error)
    never leaves a broken file, nor damages the earlier file at ``path`` that a re-run
    replaces. Raises OutputWriteError when Blender's save fails, or when the file is
    missing, empty or reads back at another size. Never call it on a path that holds a
    file the caller may not overwrite: pick the path with output_path().
    """
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".{name}.partial")
    if file_format is not None:
        image.file_format = file_format  # type: ignore[assignment]
    image.filepath_raw = partial
    expected = (int(image.size[0]), int(image.size[1]))
    try:
        try:
            image.save()
        except RuntimeError as exc:
            raise OutputWriteError(f"could not write {path}: {str(exc).strip()}") from exc
        problem = verify_file(partial, expected)
        if problem is not None:
            raise OutputWriteError(f"could not write {path}: {problem} (is the disk full?)")
        try:
            os.replace(partial, path)
        except OSError as exc:
            raise OutputWriteError(f"could not write {path}: {exc.strerror or exc}") from exc
    finally:
        image.filepath_raw = path
        _remove_quietly(partial)


def verify_file(path: str, expected_size: tuple[int, int] | None = None) -> str | None:
    """Why the image file at ``path`` is not a complete image of ``expected_size``, or None."""
    try:
        if os.path.getsize(path) == 0:
            return "the file is empty"
    except OSError:
        return "the file was not created"
    try:
        check = bpy.data.images.load(path, check_existing=False)
    except RuntimeError as exc:
        return f"the file cannot be read back ({str(exc).strip()})"
    try:
        size = (int(check.size[0]), int(check.size[1]))
    finally:
        bpy.data.images.remove(check)
    if size == (0, 0):
        return "the file cannot be read back"
    if expected_size is not None and size != expected_size:
        return f"the file reads back as {size[0]}x{size[1]}, expected {expected_size[0]}x{expected_size[1]}"
    return None


class WrittenFiles:
    """The files (and folders) one job created, so that a failed job removes exactly those."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.folders: list[str] = []

    def add(self, path: str) -> None:
        """Record ``path`` before writing it (a write that fails half-way still leaves a file)."""
        self.paths.append(path)

    def make_folder(self, folder: str) -> None:
        """ensure_folder(), remembering each folder level this call created."""
        missing = []
        probe = os.path.abspath(folder)
        while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
            missing.append(probe)
            probe = os.path.dirname(probe)
        ensure_folder(folder)
        self.folders.extend(missing)  # deepest first: the order they can be removed in

    def new_path(self, folder: str, stem: str, extension: str, tiles: Collection[int] = ()) -> str:
        """output_path() in ``folder``, making the folder first (recorded, as make_folder does)."""
        self.make_folder(folder)
        return output_path(folder, stem, extension, tiles)

    def save(self, image: bpy.types.Image, path: str, file_format: str | None = None) -> None:
        """save_verified() to ``path``, recorded before the write."""
        self.add(path)
        save_verified(image, path, file_format)

    def remove_all(self) -> list[str]:
        """Delete every recorded file and created folder left empty; returns what could not be deleted."""
        left: list[str] = []
        for path in reversed(self.paths):
            try:
                _remove_quietly(path)
            except OSError:
                left.append(path)
        for folder in self.folders:
            try:
                os.rmdir(folder)
            except OSError:
                pass  # not empty: another result (or the user) put a file there meanwhile
        self.paths.clear()
        self.folders.clear()
        return left
