"""Issue 16, item 1: does one process running many jobs of different sizes level off?

Each case runs in its own process: JOBS short jobs (STEPS steps, the default preset, seed 0)
of tubingen.jpg in the style of starry_night.jpg at random sizes between 48 and 160 px (the
same sizes in every case), the resident memory (``VmRSS``) read after each. Patterns:

- ``runner``: one :class:`~painterly.StyleTransfer` for every job, each a
  :class:`~painterly.job.Job` (what the web app's worker and a batch worker do);
- ``api``: :func:`painterly.stylize` per job (a new network each call).

Modes (what is done between jobs):

- ``fixed``: painterly as it is (:func:`painterly.memory.release_memory` after every run:
  glibc's ``malloc_trim(0)`` once the resident memory grew ``TRIM_ABOVE`` since the last trim);
- ``always``: ``gc.collect()`` and ``malloc_trim(0)`` after every run (the first fix tried);
- ``none``: that call removed (painterly before issue 16);
- ``gc``: ``gc.collect()`` only; ``onednn0``: none, with ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=0``;
- ``mmap``: none, with glibc's mmap threshold fixed at 1 MiB (``mallopt``), so large blocks
  always go back to the system at once;
- ``round32``: none, every size rounded to a multiple of 32 px (fewer distinct shapes).

Printed per case: RSS after the network loaded, after job 10 (the warm-up), 25, 50 and the
last; the growth after warm-up (the largest RSS of jobs 10… minus job 10's) and its slope (MB per
job, least squares over jobs 10…); seconds per job, and its ratio to ``fixed`` of the same
pattern, measured in the same invocation.

    python benchmarks/bench_memory.py                       # both patterns, fixed and none
    python benchmarks/bench_memory.py --patterns api --modes fixed,none,gc,onednn0,mmap,round32
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "examples" / "content" / "tubingen.jpg"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"
MODES = ("fixed", "always", "none", "gc", "onednn0", "mmap", "round32")
WARM_UP = 10


def _rss_mb() -> float:
    from painterly.memory import resident_memory

    return (resident_memory() or 0) / 2**20


def _sizes(jobs: int, rounded: bool) -> list[int]:
    rng = random.Random(0)
    sizes = [rng.randint(48, 160) for _ in range(jobs)]
    return [max(64, 32 * round(s / 32)) for s in sizes] if rounded else sizes


def _prepare(mode: str) -> None:
    """Switch this process to ``mode`` before any job runs."""
    import gc

    import painterly.transfer

    if mode == "mmap":
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: fixed, no longer raised by frees
    if mode == "gc":
        painterly.transfer.release_memory = gc.collect  # type: ignore[assignment]
    elif mode == "always":
        release = painterly.transfer.release_memory

        def always() -> None:
            gc.collect()
            release(force=True)

        painterly.transfer.release_memory = always  # type: ignore[assignment]
    elif mode != "fixed":
        painterly.transfer.release_memory = lambda: None  # type: ignore[assignment]


def worker(pattern: str, mode: str, jobs: int, steps: int) -> dict[str, Any]:
    """One case, in this process."""
    _prepare(mode)
    from painterly import Config, StyleTransfer, stylize
    from painterly.job import Job

    config = Config(iterations=steps, seed=0, patience=None)
    runner = StyleTransfer(config) if pattern == "runner" else None
    loaded = _rss_mb()
    rss, seconds = [], []
    for size in _sizes(jobs, mode == "round32"):
        start = time.perf_counter()
        if runner is not None:
            Job(config.replace(size=size), CONTENT, [STYLE]).run(runner)
        else:
            stylize(CONTENT, STYLE, config=config, size=size)
        seconds.append(time.perf_counter() - start)
        rss.append(_rss_mb())
    return {"loaded": loaded, "rss": rss, "seconds": seconds}


def _slope(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((k - mean_x) * (v - mean_y) for k, v in enumerate(values))
    return num / sum((k - mean_x) ** 2 for k in range(n))


def _case(pattern: str, mode: str, jobs: int, steps: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    if mode == "onednn0":
        env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = "0"
    args = [sys.executable, __file__, "--worker", pattern, mode, str(jobs), str(steps)]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


def _summary(name: str, data: dict[str, Any], base: float | None) -> str:
    rss, seconds = data["rss"], data["seconds"]
    after = rss[WARM_UP - 1 :]
    marks = "  ".join(f"#{k}: {rss[k - 1]:.0f}" for k in (WARM_UP, 25, 50) if k <= len(rss))
    per_job = sum(seconds) / len(seconds)
    ratio = f" ({per_job / base:.2f}x fixed)" if base else ""
    return (
        f"{name:16s} loaded {data['loaded']:.0f} MB  {marks}  #{len(rss)}: {rss[-1]:.0f}  "
        f"growth after #{WARM_UP} {max(after) - after[0]:+.0f} MB, slope "
        f"{_slope(after):+.2f} MB/job; {per_job:.2f} s/job{ratio}"
    )


def _header() -> str:
    import torch

    from painterly.kernels import cpu_flags, cpu_model

    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in cpu_flags().items())
    return (
        f"CPU: {cpu_model()} ({os.cpu_count()} cores; {flags}); torch {torch.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--patterns", default="runner,api")
    parser.add_argument("--modes", default="fixed,none")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        pattern, mode, jobs, steps = args.worker
        print(json.dumps(worker(pattern, mode, int(jobs), int(steps))))
        return
    sys.path.insert(0, str(ROOT / "src"))
    print(_header())
    print(f"{args.jobs} jobs of {args.steps} steps at 48-160 px (seed 0 sizes); RSS in MB")
    for pattern in args.patterns.split(","):
        modes = args.modes.split(",")
        base = None
        for mode in sorted(modes, key=lambda m: m != "fixed"):
            if mode not in MODES:
                parser.error(f"unknown mode {mode!r} ({', '.join(MODES)})")
            data = _case(pattern, mode, args.jobs, args.steps)
            per_job = sum(data["seconds"]) / len(data["seconds"])
            base = per_job if mode == "fixed" else base
            print(_summary(f"{pattern}/{mode}", data, base if mode != "fixed" else None))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
