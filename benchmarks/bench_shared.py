"""Issue 16, item 2: two `painterly stylize` runs started at once on one computer.

Three cases, each timed by wall clock from the start of the first process to the end of the
last: one run alone; two runs at once taking turns on the cores (painterly's default,
:mod:`painterly.turns`); two at once with ``PAINTERLY_TURNS=off`` (each with all the threads:
the situation before issue 16). Every run: tubingen.jpg as starry_night.jpg, seed 0, the
default preset at SIZE px with STEPS steps, its own kernel cache and lock folder shared by the
two runs of a case.

    python benchmarks/bench_shared.py --size 192 --steps 60
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "examples" / "content" / "tubingen.jpg"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def _runs(count: int, size: int, steps: int, turns: bool, folder: Path) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PAINTERLY_LOCK_DIR=str(folder / "locks"))
    env["PAINTERLY_TURNS"] = "on" if turns else "off"
    args = [sys.executable, "-m", "painterly", "stylize", str(CONTENT), str(STYLE), "--size",
            str(size), "--iterations", str(steps), "--seed", "0", "-q"]  # fmt: skip
    start = time.perf_counter()
    children = [
        subprocess.Popen(
            [*args, "-o", str(folder / f"out{k}.png")], env=env, stderr=subprocess.PIPE, text=True
        )
        for k in range(count)
    ]
    errors = [child.communicate()[1] for child in children]
    waited = sum("waiting for another painterly run" in e for e in errors)
    return time.perf_counter() - start, f"{waited} of {count} waited"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from painterly.kernels import cpu_flags, cpu_model

    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in cpu_flags().items())
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores; {flags}); {time.strftime('%F %H:%M')}")
    print(f"stylize --size {args.size} --iterations {args.steps}, wall time of all runs")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        alone, _ = _runs(1, args.size, args.steps, True, folder)
        print(f"one run alone:            {alone:6.1f} s")
        turns, said = _runs(2, args.size, args.steps, True, folder)
        print(f"two at once, taking turns: {turns:6.1f} s ({turns / alone:.2f}x one; {said})")
        fight, _ = _runs(2, args.size, args.steps, False, folder)
        print(f"two at once, turns off:    {fight:6.1f} s ({fight / alone:.2f}x one)")


if __name__ == "__main__":
    main()
