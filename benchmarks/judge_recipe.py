"""Issue 12's measure: does a recipe give the painting's palette and strokes, without speckle,
the same look at every size? Per pair, recipe and size it prints:

- ``palette``: the per-channel 1-D Wasserstein distance of the picture's RGB values to the
  painting's (mean over R, G, B), as a fraction of the photo's own distance (1 = the photo's
  colours, 0 = the painting's);
- ``pal256``: the same of the picture shrunk to 256 px (against the painting at 256 px);
- ``speckle``: colour (CbCr) high-frequency energy, mean (c − blur(c))² over Cb and Cr with a
  5 × 5 binomial blur, as a multiple of the painting's own at the same size;
- ``content``: ‖F(x) − F(photo)‖ at relu4_2 as a fraction of ‖F(painting) − F(photo)‖
  (the painting stretched to the photo's shape);
- ``style256``: the Gram distance of the picture shrunk to 256 px to the painting at 256 px,
  mean over relu1_1 … relu5_1 of ‖G − A‖²_F / ‖A‖²_F (G = F Fᵀ / M);
- ``loss``: the old default preset's loss in float32 at the picture's size (:mod:`judge`);
- ``s``: seconds of the run (model loading excluded).

The judge is the embedded Caffe VGG19 in float32 with direct convolutions, whatever the run
used. Usage (from the repository root, under the CPU lock on a shared machine)::

    python benchmarks/judge_recipe.py --size 256 --pairs search --recipes old new
    python benchmarks/judge_recipe.py --size 512 --pairs held --save out/judge
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from judge import fp32_judge

from painterly import Config, StyleTransfer
from painterly.color import rgb_to_ycbcr
from painterly.images import load_image, resize_longest, resize_to, save_image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared" / "images"

#: name → (photo, painting). "search" chooses the recipe; "held" is kept aside for the check.
PAIRS: dict[str, dict[str, tuple[Path, Path]]] = {
    "search": {
        "tubingen+starry": (
            EXAMPLES / "content/tubingen.jpg",
            EXAMPLES / "style/starry_night.jpg",
        ),
        "chelsea+wave": (EXAMPLES / "content/chelsea_cat.jpg", EXAMPLES / "style/great_wave.jpg"),
        "astronaut+hat": (
            EXAMPLES / "content/astronaut.jpg",
            EXAMPLES / "style/woman_with_hat.jpg",
        ),
        "hopper+wheat": (
            SHARED / "content/grace_hopper.jpg",
            SHARED / "style/wheat_field_cypresses.jpg",
        ),
    },
    "held": {
        "boston+shipwreck": (SHARED / "content/boston.jpg", SHARED / "style/shipwreck.jpg"),
        "flower+udnie": (SHARED / "content/flower.jpg", SHARED / "style/udnie.jpg"),
    },
}

#: The old default (before issue 12) spelled out, so that it stays measurable.
OLD_DEFAULT: dict[str, Any] = {
    "scales": 1,
    "iterations": 150,
    "init_colors": "content",
    "style_loss": "gram",
    "tv_weight": 0.0,
    "tv_per_pixel": False,
    "style_weight": 1e3,
}

#: name → Config overrides on top of the current default preset.
_C2F: dict[str, Any] = {**OLD_DEFAULT, "scales": None, "iterations": 100}
RECIPES: dict[str, dict[str, Any]] = {
    "old": OLD_DEFAULT,
    "new": {},
    "c2f": {**_C2F},
    "c2f+col": {**_C2F, "init_colors": "style"},
    "c2f+col+hist": {**_C2F, "init_colors": "style", "style_loss": "gram+hist"},
    "c2f+col+tv": {**_C2F, "init_colors": "style", "tv_per_pixel": True, "tv_weight": 1e12},
    "hist-b300": {**_C2F, "init_colors": "style", "style_loss": "gram+hist", "style_weight": 3e2},
    "hist-b100": {**_C2F, "init_colors": "style", "style_loss": "gram+hist", "style_weight": 1e2},
    "col-b300": {**_C2F, "init_colors": "style", "style_weight": 3e2},
    "col-b100": {**_C2F, "init_colors": "style", "style_weight": 1e2},
    "paper500": {"preset": "paper", "iterations": 500, "pooling": "max"},
    "paper500-avg": {"preset": "paper", "iterations": 500, "pooling": "avg"},
}

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def wasserstein_1d(a: torch.Tensor, b: torch.Tensor, quantiles: int = 1024) -> float:
    """Mean over channels of the 1-D Wasserstein-1 distance of two images' values.

    a: (1, C, H, W), b: (1, C, H', W'), values in [0, 1]; each channel's distance is
    ∫₀¹ |Q_a(t) − Q_b(t)| dt, taken at ``quantiles`` midpoints (the quantile functions Q
    read off the sorted values)."""
    t = (torch.arange(quantiles, dtype=torch.float64) + 0.5) / quantiles

    def q(x: torch.Tensor) -> torch.Tensor:
        v = x[0].flatten(1).double().sort(dim=1).values
        return v[:, (t * v.shape[1]).long().clamp_max(v.shape[1] - 1)]

    return float((q(a) - q(b)).abs().mean())


def chroma_energy(image: torch.Tensor) -> float:
    """Mean (c − blur(c))² over the Cb and Cr planes of (1, 3, H, W) in [0, 1]; blur: the
    5 × 5 binomial kernel (1 4 6 4 1)/16 in each direction, replicate padding."""
    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    kernel = (k1[:, None] * k1[None, :]).expand(2, 1, 5, 5)
    c = rgb_to_ycbcr(image.float())[:, 1:]
    blurred = F.conv2d(F.pad(c, (2, 2, 2, 2), mode="replicate"), kernel, groups=2)
    return float((c - blurred).square().mean())


class Judge:
    """The measures of one pair at one size (see the module's docstring)."""

    def __init__(self, photo: Path, painting: Path, size: int) -> None:
        self.net = StyleTransfer(Config(size=size, precision="fp32", convolution="direct"))
        self.photo = resize_longest(load_image(photo), size)
        self.painting = resize_longest(load_image(painting), size)
        self.photo256 = resize_longest(self.photo, 256)
        self.painting256 = resize_longest(load_image(painting), 256)
        h, w = self.photo.shape[-2:]
        self.features = self.net.network.features
        with torch.no_grad():
            p = self.features(self.photo)["relu4_2"]
            s = self.features(resize_to(self.painting, h, w))["relu4_2"]
            self.p_content, self.s_content = p, float((s - p).norm())
            self.grams = self._grams(self.painting256)
        self.photo_palette = wasserstein_1d(self.photo, self.painting)
        self.photo_palette256 = wasserstein_1d(self.photo256, self.painting256)
        self.painting_speckle = chroma_energy(self.painting)
        self.loss = fp32_judge(photo, painting, size)

    def _grams(self, image: torch.Tensor) -> list[torch.Tensor]:
        feats = self.features(image)
        out = []
        for name in STYLE_LAYERS:
            f = feats[name][0].flatten(1).float()
            out.append(f @ f.T / f.shape[1])
        return out

    def measure(self, image: torch.Tensor) -> dict[str, float]:
        """The measures of a picture (1, 3, H, W) in [0, 1] at the photo's size."""
        x = resize_to(image.float(), *self.photo.shape[-2:])
        x256 = resize_longest(x, 256)
        with torch.no_grad():
            content = float((self.features(x)["relu4_2"] - self.p_content).norm())
            grams = self._grams(x256)
        style = sum(
            float((g - a).square().sum() / a.square().sum())
            for g, a in zip(grams, self.grams, strict=True)
        )
        return {
            "palette": wasserstein_1d(x, self.painting) / self.photo_palette,
            "pal256": wasserstein_1d(x256, self.painting256) / self.photo_palette256,
            "speckle": chroma_energy(x) / self.painting_speckle,
            "content": content / self.s_content,
            "style256": style / len(STYLE_LAYERS),
            "loss": self.loss(x),
        }


def run_recipe(
    photo: Path, painting: Path, size: int, overrides: dict[str, Any]
) -> tuple[torch.Tensor, float]:
    """The picture of one recipe (seed 0) and the seconds its run took."""
    options = dict(overrides)
    preset = options.pop("preset", "default")
    runner = StyleTransfer(Config.from_preset(preset, size=size, seed=0, **options))
    start = time.perf_counter()
    result = runner.run(photo, painting)
    return result.image, time.perf_counter() - start


def cpu_line() -> str:
    """The CPU model and the flags that matter for the kernels."""
    model, flags = platform.processor() or "?", ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = next(
            ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")
        )
        have = set(next(ln for ln in text.splitlines() if ln.startswith("flags")).split())
        flags = " ".join(
            f"{f}={'yes' if f in have else 'no'}"
            for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile")
        )
    except (OSError, StopIteration):
        pass
    return f"{model}; {flags}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--pairs", default="search", help="search, held, all, or pair names")
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES))
    parser.add_argument("--save", type=Path, default=None, help="folder for the pictures")
    parser.add_argument("--judge", nargs="*", type=Path, default=[], help="judge these files")
    args = parser.parse_args()
    every = {**PAIRS["search"], **PAIRS["held"]}
    chosen = (
        every
        if args.pairs == "all"
        else PAIRS.get(args.pairs) or {n: every[n] for n in args.pairs.split(",")}
    )
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} UTC, {args.size} px, seed 0; {cpu_line()}")
    print(f"{'pair':18} {'recipe':14} palette pal256 speckle content style256     loss      s")
    for pair, (photo, painting) in chosen.items():
        judge = Judge(photo, painting, args.size)
        for path in args.judge:
            report(pair, path.name, judge.measure(load_image(path)), float("nan"))
        for name in [] if args.judge else args.recipes:
            image, seconds = run_recipe(photo, painting, args.size, RECIPES[name])
            report(pair, name, judge.measure(image), seconds)
            if args.save is not None:
                save_image(image, args.save / f"{pair}_{name}_{args.size}.png")


def report(pair: str, name: str, m: dict[str, float], seconds: float) -> None:
    """One line of the table."""
    print(
        f"{pair:18} {name:14} {m['palette']:7.3f} {m['pal256']:6.3f} {m['speckle']:7.2f} "
        f"{m['content']:7.3f} {m['style256']:8.4f} {m['loss']:9.3e} {seconds:6.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
