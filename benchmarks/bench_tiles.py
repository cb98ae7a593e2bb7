"""Tiled against whole-picture evaluation (painterly.tiles): peak memory and time per step.

Each case runs in its own process (its peak resident memory is the whole process's,
``ru_maxrss``): a single-scale run of tubingen.jpg (4:3) in the style of starry_night.jpg at
the given size, fp32 (``--precision`` to change), the kernels this machine chooses, L-BFGS
without line search (one evaluation per step), for a few steps. Printed per case: the seconds
the targets took (the content's and the style's features, tiled or whole), the seconds per step
after the first, the peak memory, the estimate of :mod:`painterly.memory` for it, and the size
of the state a checkpoint would write (the image, the best image and L-BFGS's vectors) after
these steps and with a full history (20 pairs).

    python benchmarks/bench_tiles.py 1024:none:4 1024:512:4     # SIZE:TILE:STEPS ...
    python benchmarks/bench_tiles.py --precision auto 2048:none:3 2048:1024:3   # bf16 with AMX
    python benchmarks/bench_tiles.py --header                   # the CPU line only

The ratios tiled / whole are of cases measured in the same invocation.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "examples" / "content" / "tubingen.jpg"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"
GIB = 2**30


def _state_bytes(value: Any) -> int:
    """Bytes of the tensors in a (nested) state: what a checkpoint writes, less its header."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_state_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_state_bytes(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return sum(_state_bytes(getattr(value, f)) for f in value.__dataclass_fields__)
    return 0


def worker(size: int, tile: int | None, steps: int, precision: str) -> dict[str, Any]:
    """One case, in this process."""
    from painterly import Config, StyleTransfer, ladder, memory

    cfg = Config(size=size, scales=1, iterations=steps, precision=precision, tile=tile, seed=0,
                 patience=None)  # fmt: skip
    runner = StyleTransfer(cfg)
    made: list[float] = []
    real = ladder.make_objective

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        objective = real(*args, **kwargs)
        made.extend([time.perf_counter() - start, time.perf_counter()])
        return objective

    ladder.make_objective = timed  # type: ignore[assignment]
    stamps: list[float] = []
    states: list[int] = []

    def on_step(event: Any) -> None:
        stamps.append(time.perf_counter())
        states.append(_state_bytes(event.state(copy=False)))

    result = runner.run(CONTENT, STYLE, on_step)
    h, w = result.image.shape[-2:]
    vector = 3 * h * w * 4
    pairs = min(steps - 1, cfg.lbfgs_history)
    full = states[-1] + 2 * (cfg.lbfgs_history - pairs) * vector
    p = runner.precision
    estimate = (memory.estimate_peak_memory(cfg, h, w, p) if tile is None
                else memory.estimate_tiled_peak(cfg, h, w, p, tile))  # fmt: skip
    return {
        "size": f"{w}x{h}",
        "tile": tile,
        "kernels": f"{p} {runner.kernels.convolution}",
        "targets_s": made[0],
        "step_s": (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1) if len(stamps) > 1 else None,
        "first_step_s": stamps[0] - made[1],
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB,
        "estimate_gib": estimate / GIB,
        "state_gb": states[-1] / 1e9,
        "state_full_gb": full / 1e9,
        "loss": result.loss,
    }


def header() -> str:
    """The CPU line: model, flags, threads, torch."""
    from painterly.kernels import cpu_flags, cpu_model

    flags = " ".join(f"{k}={'yes' if v else 'no'}" for k, v in cpu_flags().items())
    return (
        f"painterly tiles benchmark, {datetime.date.today()}, {cpu_model()} ({flags}), "
        f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="SIZE:TILE:STEPS, TILE a number or none")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--header", action="store_true", help="print the CPU line and stop")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"))
    args = parser.parse_args()
    if args.worker:
        size, tile, steps = args.worker.split(":")
        tile_px = None if tile == "none" else int(tile)
        print(json.dumps(worker(int(size), tile_px, int(steps), args.precision)))
        return
    print(header(), flush=True)
    if args.header:
        return
    print(f"{'size':>10} {'tile':>5} {'kernels':>13} {'targets s':>9} {'1st step s':>10} "
          f"{'s/step':>7} {'peak GiB':>8} {'est GiB':>7} {'state GB':>8} {'full GB':>7}"
          "  loss")  # fmt: skip
    rows = []
    for case in args.cases:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", case, "--precision", args.precision],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            print(f"{case}: failed\n{out.stderr[-2000:]}", flush=True)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        step = "-" if r["step_s"] is None else f"{r['step_s']:.2f}"
        print(f"{r['size']:>10} {r['tile'] or '-':>5} {r['kernels']:>13} {r['targets_s']:>9.2f} "
              f"{r['first_step_s']:>10.2f} {step:>7} {r['peak_gib']:>8.2f} "
              f"{r['estimate_gib']:>7.2f} {r['state_gb']:>8.2f} {r['state_full_gb']:>7.2f}  "
              f"{r['loss']:.6g}", flush=True)  # fmt: skip
    whole = {r["size"]: r for r in rows if r["tile"] is None}
    for r in rows:
        base = whole.get(r["size"])
        if r["tile"] is not None and base is not None and r["step_s"] and base["step_s"]:
            ratio = r["step_s"] / base["step_s"]
            memory_ratio = r["peak_gib"] / base["peak_gib"]
            print(
                f"{r['size']} tile {r['tile']}: time per step {ratio:.2f}x whole, peak memory "
                f"{memory_ratio:.2f}x, loss after the same steps {r['loss'] / base['loss']:.6f}x"
            )


if __name__ == "__main__":
    main()
