"""The models the extension offers, styles and depth models. Plain data: importing it never imports torch.

A built-in entry names the module (under ml) and factory that build its torch module, so the
catalog can feed Blender's UI while the heavy code stays in the worker. Look models up through
ml.models.registry, which also knows the user's custom models and returns a typed descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnknownStyleError
from ..options import KIND_OF_FAMILY, ModelFamily, ModelKind, choice, label


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
    arch: str = ""  # the architecture the file must hold (a key of ARCH_SIGNATURES; "" for any)
    size_exact: bool = False  # size is the published byte count, not an estimate
    archive_size: int | None = None  # bytes of the zip at ``url`` when the file sits inside one

    @property
    def transfer_size(self) -> int | None:
        """Bytes that travel over the network for this file (the whole archive for a member)."""
        return self.archive_size if self.archive_member else self.size

    @property
    def transfer_exact(self) -> bool:
        return self.size_exact and not self.archive_member

    def byte_limit(self, size: int | None) -> int | None:
        """The most bytes accepted for ``size``: a published size gets a small margin, an estimate a
        quarter more. A server that sends past it is not sending this file (an endless or hostile body)."""
        if size is None:
            return None
        if self.size_exact and size == self.size:
            return size + max(1 << 16, size // 100)
        return int(size * 1.25) + (1 << 20)


@dataclass(frozen=True)
class ModelEntry:
    """One model of the catalog (or one the user added): a style or a depth model."""

    id: str
    name: str
    description: str
    family: ModelFamily
    module: str = ""  # models built by name: their module under ml ("styles.toon"); "" for file-based models
    factory: str = ""  # the class or function in that module that builds the network
    license: str = "GPL-3.0-or-later (part of Neural Restyle)"
    non_commercial: bool = False
    files: tuple[ModelFile, ...] = ()
    max_depth: float | None = None  # depth models: metric output range in metres (None: relative)

    def __post_init__(self) -> None:
        object.__setattr__(self, "family", choice(ModelFamily, self.family))

    @property
    def kind(self) -> ModelKind:
        return KIND_OF_FAMILY[self.family]

    @property
    def needs_download(self) -> bool:
        return bool(self.files)

    @property
    def download_size(self) -> int | None:
        """Bytes to download (a shared archive counted once); None when any size is unknown."""
        sizes: dict[str, int | None] = {f.url: f.transfer_size for f in self.files}
        values = list(sizes.values())
        return None if not values or None in values else sum(v for v in values if v)

    @property
    def size_is_estimate(self) -> bool:
        return not all(f.transfer_exact for f in self.files)


BUILTIN_STYLES: tuple[ModelEntry, ...] = (
    ModelEntry(
        "toon", "Toon",
        "Flat colour regions with ink outlines (edge-preserving smoothing, quantised tones, XDoG lines)",
        ModelFamily.BUILTIN, "styles.toon", "ToonStyle",
    ),
    ModelEntry(
        "oil", "Oil Paint",
        "Brush strokes that follow the image's structure (anisotropic Kuwahara filter)",
        ModelFamily.BUILTIN, "styles.oil", "OilStyle",
    ),
    ModelEntry(
        "watercolor", "Watercolor",
        "Soft washes with darkened wet edges, pigment granulation and paper grain",
        ModelFamily.BUILTIN, "styles.watercolor", "WatercolorStyle",
    ),
    ModelEntry(
        "pencil", "Pencil Sketch",
        "Graphite sketch: dodge-blended outlines with hatching in the shadows",
        ModelFamily.BUILTIN, "styles.pencil", "PencilStyle",
    ),
    ModelEntry(
        "pixel", "Pixel Art",
        "Large square pixels snapped to a limited 16-colour palette",
        ModelFamily.BUILTIN, "styles.pixel", "PixelStyle",
    ),
)

# What each architecture's state dict must hold: a few key names with their shapes (None: any
# shape). Torch-free, so the store can check a download in Blender's process before trusting it;
# ml.models.loading builds its registry from the same table.
Signature = tuple[tuple[str, tuple[int, ...] | None], ...]
ARCH_SIGNATURES: dict[str, tuple[str, Signature]] = {
    "animegan2": ("AnimeGANv2", (("block_a.0.1.weight", (32, 3, 7, 7)), ("out_layer.0.weight", (3, 32, 1, 1)))),
    "cyclegan": ("CycleGAN ResNet generator",
                 (("model.1.weight", (64, 3, 7, 7)), ("model.10.conv_block.1.weight", None))),
    "transformer_net": ("fast-neural-style TransformerNet",
                        (("conv1.conv2d.weight", (32, 3, 9, 9)), ("deconv3.conv2d.weight", (3, 32, 9, 9)))),
    "adain_decoder": ("AdaIN decoder", (("1.weight", (256, 512, 3, 3)), ("28.weight", (3, 64, 3, 3)))),
    "adain_vgg": ("AdaIN normalised VGG-19", (("0.weight", (3, 3, 1, 1)), ("29.weight", (512, 256, 3, 3)))),
    # Depth Anything V2: the encoder's width (patch embedding) and the head's first projection tell
    # Small, Base and Large apart. Relative and metric heads hold the same keys and shapes (the metric
    # one only swaps the last ReLU, which has no weights, for a sigmoid): that is the user's choice.
    "depth_anything_v2_vits": ("Depth Anything V2 Small", (("pretrained.patch_embed.proj.weight", (384, 3, 14, 14)),
                                                           ("depth_head.projects.0.weight", (48, 384, 1, 1)))),
    "depth_anything_v2_vitb": ("Depth Anything V2 Base", (("pretrained.patch_embed.proj.weight", (768, 3, 14, 14)),
                                                          ("depth_head.projects.0.weight", (96, 768, 1, 1)))),
    "depth_anything_v2_vitl": ("Depth Anything V2 Large", (("pretrained.patch_embed.proj.weight", (1024, 3, 14, 14)),
                                                           ("depth_head.projects.0.weight", (256, 1024, 1, 1)))),
}
DEPTH_ARCHS = frozenset({"depth_anything_v2_vits", "depth_anything_v2_vitb", "depth_anything_v2_vitl"})
# Metric heads: the range the published metric checkpoints were trained for, in metres.
METRIC_RANGES = {"indoor": 20.0, "outdoor": 80.0}
ADAIN_HALVES = {"adain_decoder": ("decoder", "vgg_normalised.pth (the VGG encoder)"),
                "adain_vgg": ("VGG encoder", "decoder.pth (the decoder)")}

ANIMEGAN_BASE = "https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/"
CYCLEGAN_BASE = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/"
FAST_STYLE_ZIP = "https://www.dropbox.com/s/lrvwfehqdcxoza8/saved_models.zip?dl=1"
FAST_STYLE_ZIP_BYTES = 25_000_000  # about 25 MB: four models of about 6.7 MB, compressed
ADAIN_BASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/"
MIT = "MIT (code and weights)"


# Sizes: exact where upstream publishes them (CHECKPOINTS.md), else estimated from the parameter
# count (4 bytes each) plus the pickle's overhead and marked as estimates: the UI says "about", the
# progress never passes 100% and the download limit allows a margin above the estimate.
ANIMEGAN_BYTES = 8_601_086  # face_paint_512_v2.pt; the other three hold the same tensors


def _animegan(suffix: str, name: str, file: str, description: str, sha: str | None = None,
              exact: bool = False, license: str = MIT, nc: bool = False) -> ModelEntry:
    return ModelEntry(
        f"animegan2-{suffix}", name, description, ModelFamily.GAN, "", "", license, nc,
        (ModelFile("model", file, ANIMEGAN_BASE + file, ANIMEGAN_BYTES, sha, "third-party" if sha else "",
                   arch="animegan2", size_exact=exact),),
    )


def _cyclegan(painter: str, name: str) -> ModelEntry:
    file = f"style_{painter}.pth"
    return ModelEntry(
        f"cyclegan-{painter}", name, f"Paints the texture in the manner of {name.split(' (')[0]} (CycleGAN)",
        ModelFamily.GAN,
        "", "", "BSD-style code; the weights' license is not stated upstream", False,
        (ModelFile("model", file, CYCLEGAN_BASE + file, 45_600_000, arch="cyclegan"),),  # 11,378,179 params
    )


def _fast_style(name: str, label: str) -> ModelEntry:
    return ModelEntry(
        f"fast-style-{name.replace('_', '-')}", label, f"The '{label}' painting style (fast neural style)",
        ModelFamily.GAN,
        "", "", "BSD-3-Clause", False,
        (ModelFile("model", f"{name}.pth", FAST_STYLE_ZIP, 6_740_000, archive_member=f"saved_models/{name}.pth",
                   arch="transformer_net", archive_size=FAST_STYLE_ZIP_BYTES),),  # 1,679,235 params + stats
    )


GAN_STYLES: tuple[ModelEntry, ...] = (
    _animegan("face-paint-v2", "Anime (Face Paint v2)", "face_paint_512_v2.pt",
              "AnimeGANv2 trained on portraits at 512 px: soft anime shading",
              sha="06b88a204eb230889444ad868ee5608f4fce5d4ff7b7738acaa4209c2b8fdca7", exact=True),
    _animegan("face-paint-v1", "Anime (Face Paint v1)", "face_paint_512_v1.pt",
              "AnimeGANv2 portraits, first version: stronger outlines"),
    _animegan("celeba-distill", "Anime (CelebA Distill)", "celeba_distill.pt",
              "AnimeGANv2 distilled at 256 px: light, fast anime look"),
    _animegan("paprika", "Anime (Paprika)", "paprika.pt", "AnimeGANv2 in the colours of the film Paprika",
              nc=True,
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

ARBITRARY_STYLES: tuple[ModelEntry, ...] = (
    ModelEntry(
        "adain", "Any Style Image (AdaIN)", "Transfers the look of a style image you pick (AdaIN)",
        ModelFamily.ARBITRARY,
        "", "", MIT, False,
        (
            ModelFile("decoder", "decoder.pth", ADAIN_BASE + "decoder.pth", 14_030_000,  # 3,505,219 params
                      "379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472", "third-party",
                      arch="adain_decoder"),
            ModelFile("vgg", "vgg_normalised.pth", ADAIN_BASE + "vgg_normalised.pth", 80_110_000,  # 20,024,396
                      "804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a", "third-party",
                      arch="adain_vgg"),
        ),
    ),
)

HF = "https://huggingface.co/depth-anything/"
APACHE = "Apache-2.0"
DEPTH_MODELS: tuple[ModelEntry, ...] = (
    ModelEntry(
        "depth-anything-v2-small", "Depth Anything V2 Small", "Relative depth from one photo (24.8 M parameters)",
        ModelFamily.DEPTH, "", "", APACHE, False,
        (ModelFile("model", "depth_anything_v2_vits.pth", HF + "Depth-Anything-V2-Small/resolve/main/"
                   "depth_anything_v2_vits.pth", 99_218_434,
                   "715fade13be8f229f8a70cc02066f656f2423a59effd0579197bbf57860e1378", "upstream",
                   arch="depth_anything_v2_vits", size_exact=True),),
    ),
    ModelEntry(
        "depth-anything-v2-metric-vkitti-small", "Depth Anything V2 Small (metric, outdoor)",
        "Depth in metres up to 80 m, trained on driving scenes", ModelFamily.DEPTH, "", "", APACHE, False,
        (ModelFile("model", "depth_anything_v2_metric_vkitti_vits.pth", HF + "Depth-Anything-V2-Metric-VKITTI-Small/"
                   "resolve/main/depth_anything_v2_metric_vkitti_vits.pth", 99_220_000,  # the Small's tensors
                   "9203e538d35255c90dda4b7fedb47ff33fe725497bcca3b1e53b3a65ee63f0cb", "upstream",
                   arch="depth_anything_v2_vits"),),
        max_depth=80.0,
    ),
    ModelEntry(
        "depth-builtin-fast", "Built-in (fast)",
        "The project's own compact depth network, trained on its synthetic renders; needs no download",
        ModelFamily.DEPTH, "depth.builtin", "load_fast_depth",
        "GPL-3.0-or-later (part of Neural Restyle; see ml/weights/MODEL_CARD.md)", False,
    ),
    ModelEntry(
        "depth-anything-v2-base", "Depth Anything V2 Base", "Finer relative depth (97.5 M parameters)",
        ModelFamily.DEPTH,
        "", "", "CC-BY-NC-4.0 (non-commercial use only)", True,
        (ModelFile("model", "depth_anything_v2_vitb.pth", HF + "Depth-Anything-V2-Base/resolve/main/"
                   "depth_anything_v2_vitb.pth", 389_961_218,
                   "0d2b7002e62d39d655571c371333340bd88f67ab95050c03591555aa05645328", "upstream",
                   arch="depth_anything_v2_vitb", size_exact=True),),
    ),
)

# Built-in styles this project LEARNED with its own training pipeline (ml.training) from its own
# procedural exemplars: fp16 weights in ml/weights/styles/ (MODEL_CARD.md there). They come after
# every other style so that the numbers saved .blend files hold for the older styles never change.
# Their module is named under ml, as for every built-in.
LEARNED = "GPL-3.0-or-later (trained by Neural Restyle; see ml/weights/styles/MODEL_CARD.md)"
LEARNED_STYLES: tuple[ModelEntry, ...] = (
    ModelEntry("learned-stained-glass", "Stained Glass (learned)",
               "Panes of saturated glass between dark lead lines, learned from the project's own exemplars",
               ModelFamily.LEARNED, "training.builtin", "stained_glass", LEARNED),
    ModelEntry("learned-halftone", "Halftone Print (learned)",
               "Four-colour dot screens on paper, learned from the project's own exemplars",
               ModelFamily.LEARNED, "training.builtin", "halftone", LEARNED),
    ModelEntry("learned-woodcut", "Woodcut (learned)",
               "Black gouge lines on warm paper, learned from the project's own exemplars",
               ModelFamily.LEARNED, "training.builtin", "woodcut", LEARNED),
)

ALL_STYLES = BUILTIN_STYLES + GAN_STYLES + ARBITRARY_STYLES + LEARNED_STYLES
# The style menu's headings, in menu order (ml.options holds their text).
FAMILY_TITLES = {family.value: label(family) for family in ModelFamily if family != ModelFamily.DEPTH}
_BY_ID = {entry.id: entry for entry in ALL_STYLES + DEPTH_MODELS}  # read through entry_by_id (ml.models.registry)


def style_ids() -> list[str]:
    """The built-in styles (no download needed)."""
    return [entry.id for entry in BUILTIN_STYLES]


def entry_by_id(model_id: str) -> ModelEntry | None:
    """The catalog's entry for ``model_id`` (a style or a depth model), or None."""
    return _BY_ID.get(model_id)


def get_style(style_id: str) -> ModelEntry:
    """A catalog model by id (transitional: ml.models.registry.describe also knows custom models)."""
    entry = entry_by_id(style_id)
    if entry is None:
        known = ", ".join(_BY_ID)
        raise UnknownStyleError(f"Unknown style '{style_id}' (known styles: {known})")
    return entry
