"""Typed options of the jobs in this package (frozen: a job reads them, never changes them).

Values are the engine's (lower-case device/precision/seamless). The panel's properties and
the command line's arguments are both turned into these, so a job never reads scene settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EngineOptions:
    """How the worker's engine restyles an image."""

    strength: float = 1.0
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "auto"  # auto | full | reduced
    tile_size: int = 0  # 0: Auto; else 64..8192
    seamless: str = "auto"  # auto | on | off
    preserve_colors: bool = False

    def as_request(self) -> dict[str, object]:
        """The engine options as the worker request carries them."""
        return asdict(self)


@dataclass(frozen=True)
class TextureOptions:
    style: str
    engine: EngineOptions = EngineOptions()
    style_image: str | None = None  # name of an image of this file (arbitrary styles)
    style_weight: float = 1.0
    pack: bool = False  # pack the results into the .blend instead of writing files
    output_folder: str = ""  # "" : //restyled/ next to the .blend


@dataclass(frozen=True)
class RenderOptions:
    style: str
    frame_start: int
    frame_end: int
    output_dir: str = ""  # "": the result image only, no files
    engine: EngineOptions = EngineOptions()
    outlines: float = 0.0
    depth_falloff: float = 0.0
    temporal: float = 0.0


@dataclass(frozen=True)
class PhotoOptions:
    depth_model: str = "AUTO"  # AUTO | FLAT | a depth model id
    near: float = 2.0
    depth_range: float = 6.0
    max_side: int = 512
    cut_threshold: float = 0.08
    focal_35mm: float = 35.0
    simplify: bool = False


@dataclass(frozen=True)
class DepthPassOptions:
    exr_path: str = ""  # "": render the scene now
    max_side: int = 512
    cut_threshold: float = 0.05
