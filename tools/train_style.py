"""Learn a style from example images with ml.training (the same pipeline the extension runs).

    nice .venv/bin/python tools/train_style.py --style halftone --out ml/weights/styles --threads 1
    nice .venv/bin/python tools/train_style.py --images my_refs/ --name "Studio Look" --out out/

``--style`` trains one of the project's procedural styles (exemplars from tools/style_data.py);
``--images`` takes files or folders of style images. Content: by default the five training
HDRIs bundled with Blender (tools/style_data.py TRAIN_HDRIS; the other three stay held out
for tools/eval_style.py), or ``--content DIR``. Writes <id>.safetensors (fp16) and <id>.json
(the card), a checkpoint to resume from (--resume) and preview PNGs in --work.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import style_data  # noqa: E402
import torch  # noqa: E402

from ml.runtime.devices import cpu_features  # noqa: E402
from ml.training.learn import PRESETS, LearnOptions, LearnProgress, learn_style, save_style  # noqa: E402

log = logging.getLogger("train_style")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--style", choices=sorted(style_data.STYLES), help="a procedural style of the project")
    source.add_argument("--images", nargs="+", help="style image files or folders")
    parser.add_argument("--name", help="the style's name (default: the procedural style's name)")
    parser.add_argument("--content", nargs="+", help="content image files or folders (default: training HDRIs)")
    parser.add_argument("--out", type=Path, required=True, help="folder for <id>.safetensors and <id>.json")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "neural-restyle-learn",
                        help="checkpoints and previews")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--crop", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--features", default="auto", choices=("auto", "vgg", "random"))
    parser.add_argument("--vgg", type=Path, help="the AdaIN download's vgg_normalised.pth")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=0,
                        help="stop after this long, keeping the best state so far (a safety net on a lent "
                             "machine; the card then says cancelled)")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="other LearnOptions fields")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.style:
        name = args.name or style_data.STYLES[args.style][0]
        exemplars = style_data.exemplars(args.style)
        names, styles = list(exemplars), list(exemplars.values())
    else:
        paths = style_data.image_paths(args.images)
        name = args.name or paths[0].stem
        names, styles = [p.name for p in paths], [style_data.load_image(p) for p in paths]
    if args.content:
        content = [style_data.load_image(p) for p in style_data.image_paths(args.content)]
    else:
        content = list(style_data.hdri_images(style_data.TRAIN_HDRIS).values())
    style_id = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")

    fields = dict(PRESETS[args.preset])
    fields.update({k: v for k, v in (("steps", args.steps), ("crop", args.crop), ("batch", args.batch)) if v})
    options = LearnOptions(**fields, seed=args.seed, threads=args.threads, device=args.device,
                           precision=args.precision, feature_source=args.features)
    for item in args.set:
        key, _, value = item.partition("=")
        current = getattr(options, key)
        options = replace(options, **{key: type(current)(value) if not isinstance(current, tuple)
                                      else tuple(float(v) for v in value.split(","))})
    work = args.work / style_id
    work.mkdir(parents=True, exist_ok=True)
    log.info("%s", cpu_features())
    log.info("learning '%s' from %d style and %d content images: %s", name, len(styles), len(content), options)

    def progress(p: LearnProgress) -> None:
        if p.step % 10 == 0 or p.preview is not None:
            losses = " ".join(f"{k} {v:.4f}" for k, v in p.losses.items() if k != "step")
            log.info("step %d/%d  %s  (%.0f s, ETA %.0f s)", p.step, p.steps, losses, p.elapsed, p.eta)
        if p.preview is not None:
            style_data.save_png(work / f"preview_{p.step:05d}.png", p.preview)

    started = time.perf_counter()

    def out_of_time() -> bool:
        return bool(args.max_seconds) and time.perf_counter() - started > args.max_seconds

    result = learn_style(styles, content, options, style_names=names, vgg_path=args.vgg,
                         checkpoint=work / "checkpoint.pt", resume=args.resume, progress=progress,
                         cancelled=out_of_time)
    card = save_style(result, args.out / f"{style_id}.safetensors", name)
    log.info("wrote %s and %s in %.0f s (feature source %s, best step %d, torch %s)",
             args.out / f"{style_id}.safetensors", card, time.perf_counter() - started,
             result.card["feature_source"], result.card["best_step"], torch.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
