"""``painterly animate FOLDER -o run.gif``: the images of ``--save-every`` as an animation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..plot import animate, step_frames
from .common import EXIT_OK
from .options import UsageError

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``animate`` command's arguments."""
    an = sub.add_parser("animate", help="turn the images of --save-every into an animation")
    an.add_argument("folder", type=Path, help="the folder of step_NNNNN.png images")
    an.add_argument("-o", "--output", type=Path, required=True, help="run.gif, .webp or .png")
    an.add_argument("--fps", type=float, default=10.0, help="frames per second (default: 10)")


def run(args: argparse.Namespace) -> int:
    """Write the animation."""
    frames = step_frames(args.folder)
    try:
        animate(frames, args.output, fps=args.fps)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"painterly: wrote {args.output} from {len(frames)} images", file=sys.stderr)
    return EXIT_OK
