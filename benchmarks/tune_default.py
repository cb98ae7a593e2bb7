"""How the default preset was chosen: loss reached per CPU-second at 512 px, by recipe.

Not a test. Runs each recipe on the same content/style pair and prints, at fixed step counts,
the seconds spent and the total loss of the best image so far *re-evaluated in float32 with the
default preset's loss* (so bf16 and fp32 runs, and recipes with other weights, are compared on
one scale). Usage:

    python benchmarks/tune_default.py [--size 512] [--steps 200] [--only NAME ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from painterly import Config, StyleTransfer
from painterly.transfer import StepEvent

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "examples" / "content" / "tubingen.jpg"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"

RECIPES: dict[str, dict[str, object]] = {
    "default (L-BFGS, content init, bf16)": {},
    "L-BFGS, content init, fp32": {"precision": "fp32"},
    "L-BFGS, noise init, bf16": {"init": "noise"},
    "Adam lr 0.02, content init, bf16": {"optimizer": "adam", "learning_rate": 0.02},
    "L-BFGS + line search, content init, bf16": {"line_search": True},
}


def _record(
    event: StepEvent, into: dict[int, tuple[float, torch.Tensor]], marks: list[int]
) -> None:
    if event.step in marks:
        into[event.step] = (event.elapsed, event.best_image())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--only", nargs="*", default=None, help="substrings of recipe names")
    args = parser.parse_args()
    marks = sorted({s for s in (25, 50, 100, 150, 200, 300, args.steps) if s <= args.steps})

    judge = StyleTransfer(Config(size=args.size, precision="fp32", seed=0))
    content, style = judge.prepare(CONTENT, STYLE)
    p, a = judge.targets(content, style)

    def fp32_loss(image: torch.Tensor) -> float:
        with torch.no_grad():
            return judge._loss(image, p, a)[0].item()

    print(f"{args.size} px, {CONTENT.name} + {STYLE.name}; loss = default preset's, fp32")
    print(f"{'recipe':44} " + " ".join(f"{'step ' + str(m):>18}" for m in marks))
    for name, changes in RECIPES.items():
        if args.only and not any(o in name for o in args.only):
            continue
        cfg = Config(size=args.size, iterations=args.steps, patience=None, seed=0, **changes)  # type: ignore[arg-type]
        snapshots: dict[int, tuple[float, torch.Tensor]] = {}
        StyleTransfer(cfg).run(CONTENT, STYLE, lambda e, s=snapshots: _record(e, s, marks))
        cells = [f"{snapshots[m][0]:6.0f}s {fp32_loss(snapshots[m][1]):9.3e}" for m in marks]
        print(f"{name:44} " + " ".join(f"{c:>18}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
