"""Train a feed-forward style generator from a few style images (the GAN style-transfer recipe).

The generator has the fast-neural-style TransformerNet layout: the engine already runs it
with exact tiling (its InstanceNorms are GlobalNorms) and the normal safe loader detects it
by its keys and shapes, so a learned style needs nothing new to load or to run.

Each step restyles a batch of content crops and minimises

* a style loss: channel means and covariances of the result's features against their
  averages over many style crops (each layer's error relative to the target's size),
* a content loss: the result's features at one layer against the content's, plus the
  blurred luminance (the picture's shapes and shading must survive the style),
* an adversarial loss (least squares) from a multi-scale PatchGAN discriminator trained at
  the same time to tell crops of the style images from results.

Everything random comes from seeded torch generators whose state a checkpoint keeps, so a
run is reproducible from its seed and a resumed run continues as the uninterrupted one would.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidImageError, RestyleError
from ..networks.transformer_net import TransformerNet
from ..runtime.devices import reduced_dtype, resolve_device
from .data import CropSampler, as_tensor, image_hash
from .discriminator import PatchDiscriminator
from .features import FeatureNet, load_features, mean_covariance

log = logging.getLogger(__name__)

GENERATOR_ARCH = "transformer_net"
MAX_STYLE_IMAGES = 30
PREVIEW_SIDE = 256
BEST_TOLERANCE = 1.25  # a later state is kept while its probe score is within 25% of the lowest
CHECKPOINT_FORMAT = 1
FEATURE_SOURCES = ("auto", "vgg", "random")


@dataclass(frozen=True)
class LearnOptions:
    steps: int = 1000
    crop: int = 256  # side of the square training crops, px
    batch: int = 2
    seed: int = 0
    style_scales: tuple[float, ...] = (0.75, 1.0, 1.33)  # style crops: region of crop / scale px, resized
    content_scales: tuple[float, ...] = (0.5, 0.75, 1.0)
    lr: float = 1e-3
    lr_discriminator: float = 2e-4
    style_weight: float = 1.0
    content_weight: float = 0.2
    luminance_weight: float = 4.0
    adversarial_weight: float = 0.5
    adversarial_start: float = 0.1  # fraction of the steps before the adversarial loss joins in
    style_target_crops: int = 16  # style crops averaged into the style loss's targets
    preview_every: int = 50  # steps between previews (and checks for the best result so far)
    checkpoint_every: int = 100  # steps between checkpoints (when a checkpoint path is given)
    device: str = "auto"
    precision: str = "auto"  # auto | full | reduced: bf16 autocast where the hardware has it
    threads: int = 0  # CPU threads for torch; 0 leaves torch's choice
    feature_source: str = "auto"  # auto (VGG when its file is given, else random) | vgg | random

    def validated(self) -> LearnOptions:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.crop < 64 or self.crop % 4:
            raise ValueError(f"the crop size must be a multiple of 4 and at least 64 px, got {self.crop}")
        if self.batch < 1:
            raise ValueError(f"the batch must hold at least one crop, got {self.batch}")
        if not self.style_scales or not self.content_scales or min(self.style_scales + self.content_scales) <= 0:
            raise ValueError("crop scales must be positive")
        if self.preview_every < 1 or self.checkpoint_every < 1:
            raise ValueError("preview and checkpoint intervals must be at least one step")
        if self.feature_source not in FEATURE_SOURCES:
            raise ValueError(f"feature source must be one of {', '.join(FEATURE_SOURCES)}, got '{self.feature_source}'")
        if not 0.0 <= self.adversarial_start <= 1.0:
            raise ValueError("adversarial_start is a fraction of the steps (0..1)")
        return self

    def to_json(self) -> dict:
        return asdict(self)


# Presets a user picks by name: time against quality on a CPU (see ml/weights/styles/MODEL_CARD.md).
PRESETS: dict[str, dict[str, int]] = {
    "draft": {"steps": 400, "crop": 128, "batch": 2},
    "default": {"steps": 1200, "crop": 128, "batch": 2},
    "high": {"steps": 2400, "crop": 192, "batch": 2},
}


@dataclass
class LearnProgress:
    step: int
    steps: int
    losses: dict[str, float]
    elapsed: float  # seconds of training in this session
    eta: float  # seconds still to go at the current pace
    preview: np.ndarray | None = None  # H x W x 3 float32 in [0, 1], every preview_every steps
    best_step: int = 0


@dataclass
class LearnResult:
    state: dict[str, torch.Tensor]  # the best generator's weights (fp32, TransformerNet keys)
    card: dict
    cancelled: bool = False
    history: list[dict[str, float]] = field(default_factory=list)

    def network(self) -> TransformerNet:
        net = TransformerNet()
        net.load_state_dict(self.state)
        return net.eval()


ProgressFn = Callable[[LearnProgress], None]
CancelFn = Callable[[], bool]


def new_generator() -> TransformerNet:
    net = TransformerNet()
    with torch.no_grad():
        # Start from mid-grey output: with the default bias half the pixels would sit in the
        # final clamp at 0, where no gradient flows.
        bias = net.deconv3.conv2d.bias
        assert bias is not None  # Conv2d's default: with a bias
        bias.fill_(127.5)
    return net


class _Trainer:
    def __init__(self, style: list[torch.Tensor], content: list[torch.Tensor], options: LearnOptions,
                 features: FeatureNet, device: torch.device, dtype: torch.dtype | None) -> None:
        self.options, self.features, self.device, self.dtype = options, features.to(device), device, dtype
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(options.seed)
            self.generator = new_generator().to(device)
            self.discriminator = PatchDiscriminator().to(device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), options.lr, betas=(0.9, 0.99))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), options.lr_discriminator, betas=(0.5, 0.99))
        self.style = CropSampler(style, options.crop, options.style_scales)
        self.content = CropSampler(content, options.crop, options.content_scales)
        self.data_rng = torch.Generator().manual_seed(options.seed)
        fixed = torch.Generator().manual_seed(options.seed + 1)  # targets and probe: never advance data_rng
        self.style_targets = self._style_targets(fixed)
        self.probe = self.content.batch(2, fixed).to(device)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_score = math.inf
        self.lowest_score = math.inf
        self.best_step = 0
        self.checks: list[tuple[int, float]] = []  # (step, probe score) of every check
        self.seconds = 0.0

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    @torch.no_grad()
    def _style_targets(self, generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per feature layer: the channels' mean and covariance over many style crops."""
        sums: list[list[torch.Tensor]] = []
        count = self.options.style_target_crops
        for _ in range(count):
            crop = self.style.crop(generator)[None].to(self.device)
            with self._autocast():
                stats = [[t[0] for t in mean_covariance(f)] for f in self.features.features(crop)]
            sums = stats if not sums else [[a + b for a, b in zip(s, t, strict=True)]
                                           for s, t in zip(sums, stats, strict=True)]
        return [(mean / count, cov / count) for mean, cov in sums]

    def _losses(self, result: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """Style and content losses (fp32 scalars) of restyled crops against their content.

        The style loss compares each layer's channel means and covariances separately, each
        relative to the target's size: in an uncentred Gram matrix the means dominate, and
        once the colours are right the texture's structure would hardly be felt."""
        out_features = self.features.features(result)
        with torch.no_grad():
            content_features = self.features.features(content)
        style = torch.zeros((), device=result.device)
        for feature, (mean, cov) in zip(out_features, self.style_targets, strict=True):
            out_mean, out_cov = mean_covariance(feature)
            style = style + ((out_mean - mean).pow(2).sum(1) / mean.pow(2).sum().clamp_min(1e-8)).mean()
            style = style + ((out_cov - cov).pow(2).sum((1, 2)) / cov.pow(2).sum().clamp_min(1e-8)).mean()
        layer = self.features.content_layer
        reference = content_features[layer].float()
        content_loss = (out_features[layer].float() - reference).pow(2).mean() / reference.pow(2).mean().clamp_min(1e-8)
        luminance = (_blurred_luma(result.float()) - _blurred_luma(content.float())).abs().mean()
        return {"style": style / (2 * len(self.style_targets)), "content": content_loss, "luminance": luminance}

    def train_step(self) -> dict[str, float]:
        options = self.options
        content = self.content.batch(options.batch, self.data_rng).to(self.device)
        real = self.style.batch(options.batch, self.data_rng).to(self.device)
        adversarial_on = self.step >= int(options.adversarial_start * options.steps)
        self.generator.train()
        with self._autocast():
            result = self.generator(content)
            losses = self._losses(result, content)
            total = (options.style_weight * losses["style"] + options.content_weight * losses["content"]
                     + options.luminance_weight * losses["luminance"])
            if adversarial_on:
                self.discriminator.requires_grad_(False)
                fooled = sum((s.float() - 1).pow(2).mean() for s in self.discriminator(result))
                self.discriminator.requires_grad_(True)
                losses["adversarial"] = torch.as_tensor(fooled)
                total = total + options.adversarial_weight * losses["adversarial"]
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        with self._autocast():
            real_scores = self.discriminator(real)
            fake_scores = self.discriminator(result.detach())
            d_loss = sum((r.float() - 1).pow(2).mean() + f.float().pow(2).mean()
                         for r, f in zip(real_scores, fake_scores, strict=True))
        self.opt_d.zero_grad(set_to_none=True)
        torch.as_tensor(d_loss).backward()
        self.opt_d.step()
        self.step += 1
        record = {name: float(value.detach()) for name, value in losses.items()}
        record["total"] = float(total.detach())
        record["discriminator"] = float(torch.as_tensor(d_loss).detach())
        record["step"] = float(self.step)
        self.history.append(record)
        return record

    @torch.no_grad()
    def score(self) -> float:
        """Style plus content loss on fixed probe crops: what "best so far" compares."""
        self.generator.eval()
        with self._autocast():
            losses = self._losses(self.generator(self.probe), self.probe)
        o = self.options
        return float(o.style_weight * losses["style"] + o.content_weight * losses["content"]
                     + o.luminance_weight * losses["luminance"])

    def check_best(self) -> None:
        """Keep this state as the result if its probe score is within BEST_TOLERANCE of the
        lowest seen. The adversarial loss makes the marks of a style that these losses barely
        see (a blurry early generator can score lowest while a later one is far closer to the
        style: ml/weights/styles/MODEL_CARD.md), so a later state wins unless it is clearly
        worse; one that collapsed or diverged is not kept."""
        value = self.score()
        self.checks.append((self.step, value))
        self.lowest_score = min(self.lowest_score, value)
        if value <= self.lowest_score * BEST_TOLERANCE:
            self.best_score, self.best_step = value, self.step
            self.best_state = {k: v.detach().float().cpu().clone() for k, v in self.generator.state_dict().items()}

    @torch.no_grad()
    def preview(self, image: torch.Tensor) -> np.ndarray:
        """The image restyled by the current generator, at the image's own size (edges are
        repeated up to the generator's 4-pixel alignment and cut off again)."""
        self.generator.eval()
        h, w = image.shape[-2:]
        padded = F.pad(image[None], (0, -w % 4, 0, -h % 4), mode="replicate")
        with self._autocast():
            out = self.generator(padded.to(self.device))[..., :h, :w]
        return out[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()

    # -- checkpoints --------------------------------------------------------------------
    def state(self, hashes: list[str]) -> dict:
        return {
            "format": CHECKPOINT_FORMAT, "step": self.step, "seconds": self.seconds,
            "generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "data_rng": self.data_rng.get_state(), "best": self.best_state or {},
            "best_score": self.best_score, "best_step": self.best_step, "history": self.history,
            "lowest_score": self.lowest_score, "checks": [list(c) for c in self.checks],
            "style_hashes": hashes, "options": json.dumps(_resume_key(self.options)),
            "feature_source": self.features.source,
        }

    def restore(self, saved: dict, hashes: list[str]) -> None:
        if saved.get("format") != CHECKPOINT_FORMAT:
            raise RestyleError("the checkpoint was written by another version of Learn Style: start again")
        if list(saved["style_hashes"]) != hashes:
            raise RestyleError("the checkpoint was made from other style images: pick the same images, or start again")
        if json.loads(saved["options"]) != _resume_key(self.options) or saved["feature_source"] != self.features.source:
            raise RestyleError("the checkpoint was made with other settings (crop size, batch, seed or features): "
                               "use the same settings, or start again")
        self.generator.load_state_dict(saved["generator"])
        self.discriminator.load_state_dict(saved["discriminator"])
        self.opt_g.load_state_dict(saved["opt_g"])
        self.opt_d.load_state_dict(saved["opt_d"])
        self.data_rng.set_state(saved["data_rng"])
        self.step, self.seconds = int(saved["step"]), float(saved["seconds"])
        self.best_state = dict(saved["best"]) or None
        self.best_score, self.best_step = float(saved["best_score"]), int(saved["best_step"])
        # (checkpoints written before the checks were recorded lack these two)
        self.lowest_score = float(saved.get("lowest_score", self.best_score))
        self.checks = [(int(step), float(value)) for step, value in saved.get("checks", [])]
        self.history = [dict(item) for item in saved["history"]]


def _resume_key(options: LearnOptions) -> dict:
    """The settings a checkpoint must share with the run that resumes it (not the step count:
    a run may be resumed to go further)."""
    keep = ("crop", "batch", "seed", "style_scales", "content_scales", "lr", "lr_discriminator", "style_weight",
            "content_weight", "luminance_weight", "adversarial_weight", "style_target_crops")
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items() if k in keep}


def _blurred_luma(x: torch.Tensor) -> torch.Tensor:
    """Luminance averaged over 8x8 blocks: the picture's shading, blind to marks finer than
    that (a 4x4 average still saw halftone dots and gouge lines, and fought them)."""
    luma = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    return F.avg_pool2d(luma, 8)


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    torch.save(state, temporary)
    os.replace(temporary, path)  # a crash while saving never leaves half a checkpoint


def _preview_tensor(image: np.ndarray) -> torch.Tensor:
    tensor = as_tensor(image, "the preview image")
    longest = max(tensor.shape[-2:])
    if longest > PREVIEW_SIDE:
        scale = PREVIEW_SIDE / longest
        size = [max(1, round(s * scale)) for s in tensor.shape[-2:]]
        tensor = F.interpolate(tensor[None], size=size, mode="area")[0]
    return tensor


def learn_style(
    style_images: Sequence[np.ndarray],
    content_images: Sequence[np.ndarray],
    options: LearnOptions = LearnOptions(),
    *,
    style_names: Sequence[str] | None = None,
    vgg_path: Path | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    preview_image: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelFn | None = None,
) -> LearnResult:
    """Train a style generator; returns the best weights found (also when cancelled).

    ``style_images`` (1 to 30) and ``content_images`` are H x W x C arrays (float in [0, 1] or
    uint8). ``vgg_path``: the AdaIN download's vgg_normalised.pth, when installed. With
    ``checkpoint`` the run saves its state there every ``checkpoint_every`` steps and on
    cancel; with ``resume`` it continues from that file when it exists."""
    options = options.validated()
    if not 1 <= len(style_images) <= MAX_STYLE_IMAGES:
        raise InvalidImageError(f"Learn Style needs 1 to {MAX_STYLE_IMAGES} style images, got {len(style_images)}")
    if not content_images:
        raise InvalidImageError("Learn Style needs at least one content image")
    names = list(style_names) if style_names is not None else [f"style {i + 1}" for i in range(len(style_images))]
    style = [as_tensor(image, name) for image, name in zip(style_images, names, strict=True)]
    content = [as_tensor(image, f"content image {i + 1}") for i, image in enumerate(content_images)]
    hashes = [image_hash(np.asarray(image)) for image in style_images]
    if options.feature_source == "vgg" and (vgg_path is None or not Path(vgg_path).is_file()):
        raise RestyleError("VGG features need the AdaIN download (vgg_normalised.pth): download 'Any Style Image "
                           "(AdaIN)', or use the random features")
    features = load_features(None if options.feature_source == "random" else vgg_path)
    device, warning = resolve_device(options.device)
    if warning:
        log.warning("%s", warning)
    dtype = reduced_dtype(device, options.precision, model_allows=True)
    if options.threads > 0:
        torch.set_num_threads(options.threads)
    trainer = _Trainer(style, content, options, features, device, dtype)
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        saved = torch.load(str(checkpoint), map_location=device, weights_only=True)
        trainer.restore(saved, hashes)
        log.info("resumed from %s at step %d", checkpoint, trainer.step)
    preview = _preview_tensor(preview_image if preview_image is not None else content_images[0])

    started = time.perf_counter()
    base_seconds = trainer.seconds  # training time of earlier sessions (a resumed run)
    first_step = trainer.step
    was_cancelled = False
    while trainer.step < options.steps:
        if cancelled is not None and cancelled():
            was_cancelled = True
            break
        record = trainer.train_step()
        elapsed = time.perf_counter() - started
        pace = elapsed / max(trainer.step - first_step, 1)
        image = None
        if trainer.step % options.preview_every == 0 or trainer.step == options.steps:
            trainer.check_best()
            image = trainer.preview(preview)
        if checkpoint is not None and trainer.step % options.checkpoint_every == 0:
            trainer.seconds = base_seconds + time.perf_counter() - started
            _save_checkpoint(Path(checkpoint), trainer.state(hashes))
        if progress is not None:
            progress(LearnProgress(trainer.step, options.steps, record, elapsed, pace * (options.steps - trainer.step),
                                   image, trainer.best_step))
    trainer.seconds = base_seconds + time.perf_counter() - started
    if trainer.best_step != trainer.step and trainer.step > first_step:
        trainer.check_best()  # the last steps since the previous check may be the best
    if trainer.best_state is None:  # cancelled before the first step: the untrained start is all there is
        trainer.check_best()
    if checkpoint is not None:
        _save_checkpoint(Path(checkpoint), trainer.state(hashes))
    assert trainer.best_state is not None
    card = {
        "generator": GENERATOR_ARCH,
        "style_images": [{"name": n, "sha256": h} for n, h in zip(names, hashes, strict=True)],
        "content_images": len(content_images),
        "steps": trainer.step,
        "best_step": trainer.best_step,
        "best_score": trainer.best_score,
        "checks": [[step, round(value, 4)] for step, value in trainer.checks],
        "losses": trainer.history[-1] if trainer.history else {},
        "feature_source": features.source,
        "seconds": round(trainer.seconds, 1),
        "seed": options.seed,
        "device": str(device),
        "precision": str(dtype or torch.float32).replace("torch.", ""),
        "options": options.to_json(),
        "cancelled": was_cancelled,
    }
    return LearnResult(copy.deepcopy(trainer.best_state), card, was_cancelled, trainer.history)


def save_style(result: LearnResult, path: Path, name: str) -> Path:
    """Write the generator as fp16 safetensors at ``path`` and its card as JSON beside it
    (same stem, .json); the card also rides in the file's metadata. Returns the card's path."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    card = {"name": name, **result.card}
    tensors = {k: v.detach().to(torch.float16).contiguous().cpu() for k, v in result.state.items()}
    temporary = path.with_name(path.name + ".partial")
    save_file(tensors, str(temporary), metadata={"format": "pt", "neural_restyle_card": json.dumps(card)})
    card_path = path.with_suffix(".json")
    card_temporary = card_path.with_name(card_path.name + ".partial")
    card_temporary.write_text(json.dumps(card, indent=1), encoding="utf-8")
    os.replace(temporary, path)
    os.replace(card_temporary, card_path)
    return card_path
