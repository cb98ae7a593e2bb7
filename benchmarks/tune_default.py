"""How the default preset was chosen: loss reached per CPU-second at 512 px, by recipe.

Not a test. Runs each recipe on the same content/style pair and prints, every 50 steps and at
the end, the seconds spent and the total loss of the best image so far, *re-evaluated in float32
at the full size with the default preset's loss* (so bf16 and fp32 runs, coarse-to-fine and
single-scale runs are compared on one scale). Usage:

    python benchmarks/tune_default.py [--size 512] [--only SUBSTRING ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from judge import fp32_judge

from painterly import Config, StyleTransfer
from painterly.transfer import StepEvent

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "examples" / "content" / "tubingen.jpg"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"

RECIPES: dict[str, dict[str, Any]] = {
    "1 scale x 200, L-BFGS, content init, bf16": {"iterations": 200},
    "1 scale x 200, L-BFGS, content init, fp32": {"iterations": 200, "precision": "fp32"},
    "1 scale x 200, L-BFGS, noise init, bf16": {"iterations": 200, "init": "noise"},
    "1 scale x 200, Adam lr 0.02, content init": {
        "iterations": 200,
        "optimizer": "adam",
        "learning_rate": 0.02,
    },
    "2 scales 150+100, L-BFGS, content init": {"scales": 2, "scale_iterations": (150, 100)},
    "2 scales 200+50, L-BFGS, content init": {"scales": 2, "scale_iterations": (200, 50)},
    "3 scales 150+100+50, L-BFGS, content init": {"scales": 3, "scale_iterations": (150, 100, 50)},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--only", nargs="*", default=None, help="substrings of recipe names")
    args = parser.parse_args()

    fp32_loss = fp32_judge(CONTENT, STYLE, args.size)

    print(f"{args.size} px, {CONTENT.name} + {STYLE.name}; loss: default preset's, fp32, full size")
    for name, changes in RECIPES.items():
        if args.only and not any(o in name for o in args.only):
            continue
        cfg = Config(size=args.size, patience=None, seed=0, **changes)
        snaps: list[tuple[int, float, torch.Tensor]] = []

        def record(e: StepEvent, snaps: list[tuple[int, float, torch.Tensor]] = snaps) -> None:
            if e.step % 50 == 0 or e.step == e.total_steps:
                snaps.append((e.step, e.elapsed, e.best_image()))

        StyleTransfer(cfg).run(CONTENT, STYLE, record)
        cells = "  ".join(f"{step}: {t:.0f}s {fp32_loss(img):.3e}" for step, t, img in snaps)
        print(f"{name:44} {cells}", flush=True)


if __name__ == "__main__":
    main()
