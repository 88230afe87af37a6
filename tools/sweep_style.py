"""Train several variants of a procedural style side by side, evaluate each on the held-out
content and keep the one that meets the targets with the largest margin.

    python3 tools/sweep_style.py --style woodcut --out OUT --device cuda --steps 2000 \
        --variant base= --variant lum8 content_weight=0.5,luminance_weight=8

Each variant is ``NAME`` followed by comma-separated LearnOptions overrides (``--set`` fields
of tools/train_style.py); all variants share --steps, --crop, --batch and --seed. Variants
run as parallel processes (meant for a GPU, where one small generator leaves most of the
chip idle), then tools/eval_style.py scores each on the held-out HDRI crops. The winner is
the variant whose worse target ratio (style-distance drop / 50 %, content SSIM / 0.5) is
highest; its .safetensors and .json are copied to OUT, and OUT/<style>-sweep.json records
every variant's options, training seconds and figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DROP_TARGET, SSIM_TARGET = 50.0, 0.5


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, overrides = text.partition(" ")
    name = name.rstrip("=")
    return name, [item for item in overrides.replace(" ", "").split(",") if item]


def margin(figures: dict) -> float:
    return min(figures["swd_drop_percent"] / DROP_TARGET, figures["ssim_result"] / SSIM_TARGET)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/neural-restyle-sweep"))
    parser.add_argument("--variant", action="append", required=True, help="'NAME field=value,field=value'")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=0,
                        help="each run stops after this long with its best state so far (0: no limit)")
    args = parser.parse_args(argv)
    python = sys.executable
    variants = dict(parse_variant(v) for v in args.variant)
    running = {}
    for name, overrides in variants.items():
        folder = args.work / args.style / name
        folder.mkdir(parents=True, exist_ok=True)
        command = [python, str(ROOT / "tools/train_style.py"), "--style", args.style, "--out", str(folder),
                   "--work", str(folder / "work"), "--steps", str(args.steps), "--crop", str(args.crop),
                   "--batch", str(args.batch), "--seed", str(args.seed), "--device", args.device,
                   "--threads", str(args.threads), "--max-seconds", str(args.max_seconds),
                   "--set", "preview_every=100", *overrides]
        log = (folder / "train.log").open("w")
        running[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), time.perf_counter(),
                         command, log)
    records = {}
    for name, (process, started, command, log) in running.items():
        code = process.wait()
        log.close()
        records[name] = {"overrides": variants[name], "exit": code, "seconds": round(time.perf_counter() - started, 1),
                         "command": " ".join(command[1:])}
        print(f"{args.style}/{name}: trained, exit {code}, {records[name]['seconds']} s", flush=True)
    for name, record in records.items():
        folder = args.work / args.style / name
        model = folder / f"{args.style}.safetensors"
        if record["exit"] != 0 or not model.exists():
            print(f"{args.style}/{name}: no model; log tail:\n" +
                  "\n".join((folder / "train.log").read_text(errors="replace").splitlines()[-8:]))
            continue
        figures_path = folder / "eval.json"
        subprocess.run([python, str(ROOT / "tools/eval_style.py"), "--model", str(model), "--style", args.style,
                        "--seed", str(args.seed), "--json", str(figures_path)], check=False,
                       stdout=subprocess.DEVNULL)
        if figures_path.exists():
            record["figures"] = json.loads(figures_path.read_text())
            record["margin"] = round(margin(record["figures"]), 4)
            f = record["figures"]
            print(f"{args.style}/{name}: SWD drop {f['swd_drop_percent']:.1f}%  SSIM {f['ssim_result']:.3f}  "
                  f"margin {record['margin']:.3f}  ({' '.join(record['overrides']) or 'defaults'})", flush=True)
    scored = {name: r for name, r in records.items() if "margin" in r}
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"style": args.style, "steps": args.steps, "crop": args.crop, "batch": args.batch,
               "seed": args.seed, "device": args.device, "variants": records}
    if scored:
        best = max(scored, key=lambda name: scored[name]["margin"])
        summary["winner"] = best
        folder = args.work / args.style / best
        for suffix in (".safetensors", ".json"):
            shutil.copy2(folder / f"{args.style}{suffix}", args.out / f"{args.style}{suffix}")
        print(f"{args.style}: kept '{best}' (margin {scored[best]['margin']:.3f}; "
              f"{'meets both targets' if scored[best]['margin'] >= 1 else 'MISSES a target'})")
    (args.out / f"{args.style}-sweep.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0 if scored else 1


if __name__ == "__main__":
    sys.exit(main())
