"""Edges benchmark (not a test): the line along a picture's edges, with and without the margin.

VGG19 pads each convolution's input with zeros, so the positions along a picture's border see a
frame the interior does not, and the optimisation paints a thin bright or speckled line there
(issue 16, item 6). ``Config.edge_margin`` reflection-pads the image the network sees and
crops the features back (:class:`painterly.vgg.VGG19Features`). For a few pairs and sizes this
runs the default preset in float32 with each margin and prints, per side, the edge statistics
of :func:`painterly.images.edge_statistics` (the outermost line's brightness against the 8
lines inside it, and its energy along the edge against the interior's: 1 is the interior's),
the photo's own, the mean gap between the picture's edge brightness and the photo's,
and the seconds per step, with each margin's ratio to margin 0 measured in the same run.

    python benchmarks/bench_edges.py                 # 128 and 256 px, 3 pairs (~12 minutes)
    python benchmarks/bench_edges.py --sizes 128 --steps 60 --pairs 1
    python benchmarks/bench_edges.py --sizes 512 --steps 100 --margins 0,4 --pairs 2 \
        --figure docs/edges.png      # the README's figure (~5 minutes)
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [
    ("chelsea_cat", "great_wave"),
    ("tubingen", "great_wave"),
    ("astronaut", "starry_night"),
]
SIDES = ("top", "bottom", "left", "right")


def machine() -> str:
    """CPU model and the flags that matter here."""
    from painterly.kernels import cpu_flags, cpu_model

    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in cpu_flags().items())
    return f"{cpu_model()} ({flags}); {torch.get_num_threads()} threads; torch {torch.__version__}"


def run(content: str, style: str, size: int, steps: int, margin: int) -> tuple[torch.Tensor, float]:
    """One default-preset float32 run; its image and seconds per step."""
    from painterly import Config, StyleTransfer

    cfg = Config.from_preset(
        "default", size=size, iterations=steps, seed=0, precision="fp32", edge_margin=margin
    )
    runner = StyleTransfer(cfg)
    c = ROOT / "examples" / "content" / f"{content}.jpg"
    s = ROOT / "examples" / "style" / f"{style}.jpg"
    start = time.perf_counter()
    result = runner.run(c, s)
    return result.image, (time.perf_counter() - start) / max(result.steps, 1)


def line(label: str, stats: dict[str, float]) -> str:
    """One row: brightness and energy of each side."""
    b = " ".join(f"{stats[f'{s}_brightness']:+.3f}" for s in SIDES)
    e = " ".join(f"{stats[f'{s}_energy']:.2f}" for s in SIDES)
    return f"  {label:10s} brightness T B L R {b}   energy T B L R {e}"


def brightness_gap(stats: dict[str, float], photo: dict[str, float]) -> float:
    """The mean over the four sides of |edge brightness − the photo's edge brightness|."""
    return statistics.mean(abs(stats[f"{s}_brightness"] - photo[f"{s}_brightness"]) for s in SIDES)


def edge_strips(image: torch.Tensor, rows: int = 24) -> torch.Tensor:
    """The top and bottom ``rows`` lines of a (1, 3, H, W) picture, one above the other with
    a white gap: the place where the line along the edge shows."""
    x = image[0].clamp(0, 1)
    gap = torch.ones(3, 4, x.shape[-1])
    return torch.cat([x[:, :rows], gap, x[:, -rows:]], dim=1)


def save_strips(strips: list[torch.Tensor], path: Path, zoom: int = 2) -> None:
    """Every run's strips (in the order run: per pair, each margin) one under the other, at
    ``zoom``× without smoothing, as a PNG."""
    from painterly.images import save_image

    width = max(s.shape[-1] for s in strips)
    pad = torch.nn.functional.pad
    padded = [pad(s, (0, width - s.shape[-1], 0, 10), value=1.0) for s in strips]
    sheet = torch.cat(padded, dim=1)[None]
    save_image(torch.nn.functional.interpolate(sheet, scale_factor=zoom, mode="nearest"), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--margins", default="0,4,16")
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    parser.add_argument("--first-pair", type=int, default=0, help="skip the pairs before it")
    parser.add_argument("--save", type=Path, help="folder for the images (.pt)")
    parser.add_argument(
        "--figure", type=Path, help="write the top and bottom strips of every run here (PNG)"
    )
    args = parser.parse_args()
    from painterly.images import edge_statistics, load_image, resize_longest

    print(f"bench_edges {datetime.date.today()} on {machine()}; python {platform.python_version()}")
    margins = [int(m) for m in args.margins.split(",")]
    strips: list[torch.Tensor] = []
    summary: dict[int, list[float]] = {m: [] for m in margins}
    times: dict[int, list[float]] = {m: [] for m in margins}
    for size in (int(s) for s in args.sizes.split(",")):
        for content, style in PAIRS[args.first_pair : args.first_pair + args.pairs]:
            photo = resize_longest(
                load_image(ROOT / "examples" / "content" / f"{content}.jpg"), size
            )
            print(f"{size} px, {content} x {style}, {args.steps} steps:")
            own = edge_statistics(photo)
            print(line("photo", own))
            for margin in margins:
                image, per_step = run(content, style, size, args.steps, margin)
                stats = edge_statistics(image)
                summary[margin].append(brightness_gap(stats, own))
                times[margin].append(per_step)
                gap = brightness_gap(stats, own)
                print(
                    line(f"margin {margin}", stats)
                    + f"   gap {gap:.3f}  {per_step * 1e3:.0f} ms/step"
                )
                strips.append(edge_strips(image))
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    torch.save(image, args.save / f"{size}_{content}_{style}_m{margin}.pt")
    if args.figure:
        save_strips(strips, args.figure)
    print("summary (median over runs): edge brightness gap to the photo's, step time vs margin 0")
    for margin in margins:
        pairs = zip(times[margin], times[margins[0]], strict=True)
        ratio = statistics.median(t / b for t, b in pairs)
        worst = statistics.median(summary[margin])
        print(f"  margin {margin:2d}: gap {worst:.3f}   step time x{ratio:.3f}")


if __name__ == "__main__":
    sys.exit(main())
