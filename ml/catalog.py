"""The list of styles the extension offers. Plain data: importing it never imports torch.

Each entry names the module and class that build the style's torch module, so the
catalog can feed Blender's UI while the heavy code stays in the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownStyleError


@dataclass(frozen=True)
class ModelFile:
    """One file a model needs. ``sha256`` None means upstream publishes no hash: the store
    records the hash it sees on first download and refuses a later file that differs."""

    role: str  # "model", or "decoder"/"vgg" for AdaIN
    filename: str
    url: str
    size: int | None = None
    sha256: str | None = None
    hash_source: str = ""  # "upstream", "third-party" (pinned, provenance noted) or ""
    archive_member: str | None = None  # the file sits inside the zip at ``url``


@dataclass(frozen=True)
class StyleEntry:
    id: str
    name: str
    description: str
    family: str  # "builtin", "gan" (downloaded generator), "arbitrary" (style image), "custom"
    module: str  # built-in styles: module inside ml.styles ("" for file-based models)
    factory: str  # built-in styles: class name in that module
    license: str = "GPL-3.0-or-later (part of Neural Restyle)"
    non_commercial: bool = False
    files: tuple[ModelFile, ...] = ()
    max_depth: float | None = None  # depth models: metric output range in metres (None: relative)

    @property
    def needs_download(self) -> bool:
        return bool(self.files)

    @property
    def download_size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if not sizes or None in sizes else sum(s for s in sizes if s)


BUILTIN_STYLES: tuple[StyleEntry, ...] = (
    StyleEntry(
        "toon", "Toon",
        "Flat colour regions with ink outlines (edge-preserving smoothing, quantised tones, XDoG lines)",
        "builtin", "toon", "ToonStyle",
    ),
    StyleEntry(
        "oil", "Oil Paint",
        "Brush strokes that follow the image's structure (anisotropic Kuwahara filter)",
        "builtin", "oil", "OilStyle",
    ),
    StyleEntry(
        "watercolor", "Watercolor",
        "Soft washes with darkened wet edges, pigment granulation and paper grain",
        "builtin", "watercolor", "WatercolorStyle",
    ),
    StyleEntry(
        "pencil", "Pencil Sketch",
        "Graphite sketch: dodge-blended outlines with hatching in the shadows",
        "builtin", "pencil", "PencilStyle",
    ),
    StyleEntry(
        "pixel", "Pixel Art",
        "Large square pixels snapped to a limited 16-colour palette",
        "builtin", "pixel", "PixelStyle",
    ),
)

ANIMEGAN_BASE = "https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/"
CYCLEGAN_BASE = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/"
FAST_STYLE_ZIP = "https://www.dropbox.com/s/lrvwfehqdcxoza8/saved_models.zip?dl=1"
ADAIN_BASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/"
MIT = "MIT (code and weights)"


def _animegan(suffix: str, name: str, file: str, description: str, sha: str | None = None,
              size: int | None = 8_601_086, license: str = MIT, nc: bool = False) -> StyleEntry:
    return StyleEntry(
        f"animegan2-{suffix}", name, description, "gan", "", "", license, nc,
        (ModelFile("model", file, ANIMEGAN_BASE + file, size, sha, "third-party" if sha else ""),),
    )


def _cyclegan(painter: str, name: str) -> StyleEntry:
    file = f"style_{painter}.pth"
    return StyleEntry(
        f"cyclegan-{painter}", name, f"Paints the texture in the manner of {name.split(' (')[0]} (CycleGAN)", "gan",
        "", "", "BSD-style code; the weights' license is not stated upstream", False,
        (ModelFile("model", file, CYCLEGAN_BASE + file, 45_510_000),),
    )


def _fast_style(name: str, label: str) -> StyleEntry:
    return StyleEntry(
        f"fast-style-{name.replace('_', '-')}", label, f"The '{label}' painting style (fast neural style)", "gan",
        "", "", "BSD-3-Clause", False,
        (ModelFile("model", f"{name}.pth", FAST_STYLE_ZIP, 6_700_000, archive_member=f"saved_models/{name}.pth"),),
    )


GAN_STYLES: tuple[StyleEntry, ...] = (
    _animegan("face-paint-v2", "Anime (Face Paint v2)", "face_paint_512_v2.pt",
              "AnimeGANv2 trained on portraits at 512 px: soft anime shading",
              sha="06b88a204eb230889444ad868ee5608f4fce5d4ff7b7738acaa4209c2b8fdca7"),
    _animegan("face-paint-v1", "Anime (Face Paint v1)", "face_paint_512_v1.pt",
              "AnimeGANv2 portraits, first version: stronger outlines", size=8_600_000),
    _animegan("celeba-distill", "Anime (CelebA Distill)", "celeba_distill.pt",
              "AnimeGANv2 distilled at 256 px: light, fast anime look", size=8_600_000),
    _animegan("paprika", "Anime (Paprika)", "paprika.pt", "AnimeGANv2 in the colours of the film Paprika",
              size=8_600_000, nc=True,
              license="Converted from AnimeGANv2, whose weights are for non-commercial use only"),
    _cyclegan("monet", "Monet (CycleGAN)"),
    _cyclegan("cezanne", "Cezanne (CycleGAN)"),
    _cyclegan("ukiyoe", "Ukiyo-e (CycleGAN)"),
    _cyclegan("vangogh", "Van Gogh (CycleGAN)"),
    _fast_style("candy", "Candy"),
    _fast_style("mosaic", "Mosaic"),
    _fast_style("rain_princess", "Rain Princess"),
    _fast_style("udnie", "Udnie"),
)

ARBITRARY_STYLES: tuple[StyleEntry, ...] = (
    StyleEntry(
        "adain", "Any Style Image (AdaIN)", "Transfers the look of a style image you pick (AdaIN)", "arbitrary",
        "", "", MIT, False,
        (
            ModelFile("decoder", "decoder.pth", ADAIN_BASE + "decoder.pth", 14_000_000,
                      "379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472", "third-party"),
            ModelFile("vgg", "vgg_normalised.pth", ADAIN_BASE + "vgg_normalised.pth", 80_100_000,
                      "804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a", "third-party"),
        ),
    ),
)

HF = "https://huggingface.co/depth-anything/"
APACHE = "Apache-2.0"
DEPTH_MODELS: tuple[StyleEntry, ...] = (
    StyleEntry(
        "depth-anything-v2-small", "Depth Anything V2 Small", "Relative depth from one photo (24.8 M parameters)",
        "depth", "", "", APACHE, False,
        (ModelFile("model", "depth_anything_v2_vits.pth", HF + "Depth-Anything-V2-Small/resolve/main/"
                   "depth_anything_v2_vits.pth", 99_218_434,
                   "715fade13be8f229f8a70cc02066f656f2423a59effd0579197bbf57860e1378", "upstream"),),
    ),
    StyleEntry(
        "depth-anything-v2-metric-vkitti-small", "Depth Anything V2 Small (metric, outdoor)",
        "Depth in metres up to 80 m, trained on driving scenes", "depth", "", "", APACHE, False,
        (ModelFile("model", "depth_anything_v2_metric_vkitti_vits.pth", HF + "Depth-Anything-V2-Metric-VKITTI-Small/"
                   "resolve/main/depth_anything_v2_metric_vkitti_vits.pth", 99_200_000,
                   "9203e538d35255c90dda4b7fedb47ff33fe725497bcca3b1e53b3a65ee63f0cb", "upstream"),),
        max_depth=80.0,
    ),
    StyleEntry(
        "depth-builtin-fast", "Built-in (fast)",
        "The project's own compact depth network, trained on its synthetic renders; needs no download",
        "depth", "", "", "GPL-3.0-or-later (part of Neural Restyle; see ml/weights/MODEL_CARD.md)", False,
    ),
    StyleEntry(
        "depth-anything-v2-base", "Depth Anything V2 Base", "Finer relative depth (97.5 M parameters)", "depth",
        "", "", "CC-BY-NC-4.0 (non-commercial use only)", True,
        (ModelFile("model", "depth_anything_v2_vitb.pth", HF + "Depth-Anything-V2-Base/resolve/main/"
                   "depth_anything_v2_vitb.pth", 389_961_218,
                   "0d2b7002e62d39d655571c371333340bd88f67ab95050c03591555aa05645328", "upstream"),),
    ),
)

ALL_STYLES = BUILTIN_STYLES + GAN_STYLES + ARBITRARY_STYLES
FAMILY_TITLES = {
    "builtin": "Built-in",
    "gan": "Downloaded GAN styles",
    "arbitrary": "Arbitrary (style image)",
    "custom": "Custom",
}
_BY_ID = {entry.id: entry for entry in ALL_STYLES + DEPTH_MODELS}


def style_ids() -> list[str]:
    """The built-in styles (no download needed)."""
    return [entry.id for entry in BUILTIN_STYLES]


def get_style(style_id: str) -> StyleEntry:
    try:
        return _BY_ID[style_id]
    except KeyError:
        known = ", ".join(_BY_ID)
        raise UnknownStyleError(f"Unknown style '{style_id}' (known styles: {known})") from None
