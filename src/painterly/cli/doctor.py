"""``painterly doctor``: this machine's CPU flags, the kernels' timings and the choice."""

from __future__ import annotations

import argparse

from ..kernels import cache_path, choose_kernels, doctor_report
from ..transfer import default_threads, resolve_device, threads_set
from .common import EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``doctor`` command's arguments."""
    d = sub.add_parser(
        "doctor", help="show the CPU's flags, the kernels' timings and which ones runs use"
    )
    d.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]")
    d.add_argument("--threads", type=int, metavar="N", help="as for stylize (default: cores)")
    d.add_argument(
        "--measure", action="store_true", help="time the kernels again instead of reading the cache"
    )


def run(args: argparse.Namespace) -> int:
    """Print the report on standard output."""
    device = resolve_device(args.device)
    threads = args.threads or default_threads()
    with threads_set(threads):
        if args.measure:  # every machine's entry goes: the file is small and remade at once
            cache_path().unlink(missing_ok=True)
        plan = choose_kernels(device, threads=threads)
        print(doctor_report(device, threads, plan=plan))
    return EXIT_OK
