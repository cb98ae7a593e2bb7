"""``painterly resume OUT.ckpt``: continue a stopped ``stylize`` run from its checkpoint; or
``painterly resume OUT.mp4`` (a video's output, frames folder or state file): continue a
stopped ``video`` at its next frame."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..job import Job
from ..video import find_state
from . import common, video

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``resume`` command's arguments."""
    r = sub.add_parser(
        "resume", help="continue a stopped stylize run (OUT.ckpt) or video (its OUTPUT)"
    )
    r.add_argument(
        "checkpoint",
        type=Path,
        help="the .ckpt file next to the output; for a video, its output (file or folder)",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Verify the checkpoint and its inputs, then go on where it stopped."""
    state = find_state(args.checkpoint)
    if state is not None:
        return video.resume(state, args.quiet)
    job = Job.from_checkpoint(args.checkpoint)
    job.check_files()
    runner = common.load_runner(job.config)
    job.check_memory(runner)
    assert job.resume is not None
    common.say(args.quiet, f"painterly: resuming {job.output} at step {job.resume.steps}")
    code, _ = common.paint(runner, job, args.quiet)
    return code
