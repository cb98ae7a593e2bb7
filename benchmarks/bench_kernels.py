"""Kernel benchmark (not a test): one 512 px step, plain float32 NCHW against the measured plan.

Issue 17. In this one run, on this machine as it is and in its "AVX2 laptop" configuration
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``, a subprocess each), prints:

- the CPU model and the flags avx2, avx512f, avx512_bf16, amx;
- :func:`painterly.kernels.choose_kernels`' choice, measured afresh (its wall time too);
- seconds per step at 512 px (Tübingen 512 × 384 + The Starry Night, the default layers): a
  step is one L-BFGS iteration without line search, i.e. one forward + backward of VGG19 to
  relu5_1, the Grams and losses, and the optimiser's update; for the *baseline* (float32, NCHW,
  direct, today's ``precision fp32``) and for the *chosen* plan, with their ratio;
- the chosen plan's loss relative to the baseline's on the same image (the precision gap).

    python benchmarks/bench_kernels.py            # both configurations (about 2 minutes)
    python benchmarks/bench_kernels.py --steps 3
"""

from __future__ import annotations

import argparse
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
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _step_seconds(runner: object, x0: torch.Tensor, p: object, a: object, steps: int) -> float:
    """Median seconds of one L-BFGS iteration (one evaluation, no line search), after two."""
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=20, line_search_fn=None)

    def closure() -> float:
        opt.zero_grad()
        loss = runner._loss(x, p, a)[0] / 1e10  # type: ignore[attr-defined]
        loss.backward()
        return float(loss)

    times = []
    for i in range(steps + 2):
        started = time.perf_counter()
        opt.step(closure)
        if i >= 2:
            times.append(time.perf_counter() - started)
        with torch.no_grad():
            x.clamp_(0, 1)
    return statistics.median(times)


def worker(steps: int) -> dict[str, object]:
    """Both paths in this process: the baseline, then the same runner with the chosen plan."""
    from painterly import Config, StyleTransfer
    from painterly.kernels import apply_plan, choose_kernels, cpu_flags, cpu_model
    from painterly.vgg import VGG19Features

    runner = StyleTransfer(Config(size=512, precision="fp32", convolution="direct", seed=0))
    content, style = runner.prepare(CONTENT, STYLE)
    p, a = runner.targets(content, style)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        plan = choose_kernels(torch.device("cpu"), cache_dir=Path(cache))
    choose_s = time.perf_counter() - started
    baseline_vgg = runner.vgg
    fast_vgg = VGG19Features(runner.config.weights, runner.config.pooling, up_to=runner.layers)
    apply_plan(fast_vgg, plan)
    results = {}
    for kind, vgg in (
        ("baseline", baseline_vgg),
        ("chosen", fast_vgg),
        ("baseline2", baseline_vgg),
    ):
        runner.vgg = vgg
        results[kind] = _step_seconds(runner, content, p, a, steps)
    with torch.no_grad():
        runner.vgg = baseline_vgg
        exact = runner._loss(content, p, a)[0].item()
        runner.vgg = fast_vgg
        fast = runner._loss(content, p, a)[0].item()
    return {
        "cpu": cpu_model(),
        "flags": cpu_flags(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "plan": plan.describe(),
        "choose_s": choose_s,
        "baseline_s": min(results["baseline"], results["baseline2"]),
        "chosen_s": results["chosen"],
        "loss_gap": fast / exact - 1,
    }


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
    parser.add_argument("--steps", type=int, default=5, help="timed steps per path")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker)))
        return
    print(f"painterly kernel benchmark, {datetime.date.today()}, torch {torch.__version__}")
    for label, env in (("this machine", {}), ("AVX2 laptop configuration", AVX2)):
        r = _run(args.steps, env)
        flags = " ".join(f"{k}={'yes' if v else 'no'}" for k, v in r["flags"].items())  # type: ignore[attr-defined]
        base, chosen = float(r["baseline_s"]), float(r["chosen_s"])  # type: ignore[arg-type]
        print(f"\n{label}: {r['cpu']}, {flags}, capability {r['capability']}, "
              f"{r['threads']} threads")  # fmt: skip
        print(f"  choice: {r['plan']} (measured in {float(r['choose_s']):.1f} s)")  # type: ignore[arg-type]
        print(f"  512 px step: baseline fp32 NCHW direct {base:.3f} s, chosen {chosen:.3f} s, "
              f"{base / chosen:.2f}x; loss gap {float(r['loss_gap']):+.1e}", flush=True)  # type: ignore[arg-type]  # fmt: skip


if __name__ == "__main__":
    main()
