"""Re-make the pictures in docs/ from the bundled examples (a few minutes on a laptop CPU).

    python docs/make_figures.py [--skip-sweep]

before_after.png: photo | painting | painterly's default preset at 512 px (seed 0).
sweep.png:        the blog's α/β experiment (`painterly sweep`, blog-fast preset, 256 px).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from painterly import Config, StyleTransfer, cli, load_image, save_image
from painterly.images import to_pil
from painterly.sheet import contact_sheet

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONTENT = ROOT / "examples" / "content" / "tubingen.jpg"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def before_after() -> None:
    result = StyleTransfer(Config(seed=0)).run(CONTENT, STYLE)
    save_image(result.image, DOCS / "tubingen_starry_night.png")
    out = to_pil(result.image)
    tiles = [to_pil(load_image(p)) for p in (CONTENT, STYLE)] + [out]
    labels = ["photo", "painting", f"painterly, default preset\n{result.elapsed:.0f} s on this CPU"]
    save_image(contact_sheet(tiles, labels, height=out.height), DOCS / "before_after.png")
    print(
        f"before_after.png: {result.steps} steps in {result.elapsed:.0f} s, loss {result.loss:.4g}"
    )


def sweep() -> None:
    started = time.perf_counter()
    code = cli.main(
        [
            "sweep",
            str(CONTENT),
            str(STYLE),
            "--content-weights",
            "1e1,1e2,1e3,1e4",
            "--style-weight",
            "1e-2",
            "--size",
            "256",
            "--seed",
            "0",
            "-q",
            "-o",
            str(DOCS / "sweep.png"),
        ]
    )
    print(f"sweep.png: exit {code} in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    if not args.skip_demo:
        before_after()
    if not args.skip_sweep:
        sweep()


if __name__ == "__main__":
    main()
