"""``painterly video INPUT STYLE… -o OUTPUT``: a video, frame by frame, without flicker.

The work is :class:`painterly.video.VideoRun`'s (each frame a job of the job runner, with
Ruder et al.'s warped start and temporal loss); this face parses the options, installs
Ctrl-C/SIGTERM as the frames' stop request, draws one bar over the frames with an ETA, and
says how it ended.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..plot import plot_losses
from ..transfer import StyleTransfer
from ..video import FrameEvent, FrameResult, VideoOptions, VideoRun, from_state
from . import common
from .options import add_transfer_options, config_from_args

__all__ = ["add_parser", "resume", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``video`` command's arguments."""
    p = sub.add_parser(
        "video",
        help="repaint a video (or a folder of frames) in the style of STYLE, without flicker",
    )
    p.add_argument("input", type=Path, help="a video file, or a folder of frames")
    p.add_argument("style", type=Path, nargs="+", help="the painting, or several to blend")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="a video file (.mp4 .mkv .mov .webm .avi), or a folder for PNG frames",
    )
    add_transfer_options(p)
    v = p.add_argument_group("video")
    v.add_argument("--first-frame-iterations", type=int, metavar="N",
                   help="steps of the first frame (default: --iterations)")  # fmt: skip
    v.add_argument("--frame-iterations", type=int, default=50, metavar="N",
                   help="steps of each later frame, started from the warped previous one "
                   "(default: 50)")  # fmt: skip
    v.add_argument("--max-frames", type=int, metavar="N", help="stylise at most N frames")
    v.add_argument("--start", type=float, default=0.0, metavar="S",
                   help="first second of the clip to stylise (default: 0)")  # fmt: skip
    v.add_argument("--end", type=float, metavar="S", help="stop at this second (default: end)")
    v.add_argument("--fps", type=float, metavar="F",
                   help="frame rate of a folder of frames (default: 24)")  # fmt: skip
    v.add_argument("--independent", action="store_true",
                   help="stylise every frame on its own (no warped start, no temporal loss): "
                   "the flickering baseline")  # fmt: skip
    v.add_argument("--checkpoint-every", type=int, default=20, metavar="N",
                   help="write a frame's checkpoint every N steps (default: 20)")  # fmt: skip
    v.add_argument("--plot", nargs="?", const=True, metavar="FILE",
                   help="draw every frame's losses (default: OUT + _losses.png)")  # fmt: skip
    v.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Check everything cheap, load the model, paint the frames, encode."""
    config = config_from_args(args, **({} if args.seed is not None else {"seed": 0}))
    options = VideoOptions(
        first_frame_iterations=args.first_frame_iterations,
        frame_iterations=args.frame_iterations,
        max_frames=args.max_frames,
        start=args.start,
        end=args.end,
        fps=args.fps,
        independent=args.independent,
        checkpoint_every=args.checkpoint_every,
    )
    config.check_styles(len(args.style))
    video = VideoRun(config, args.input, args.style, args.output, options)
    plot = _plot_path(args) if args.plot else None
    return _paint(video, args.quiet, plot)


def resume(state: Path, quiet: bool) -> int:
    """``painterly resume`` of a video: the same command again, from its state file."""
    video = from_state(state)
    common.say(quiet, f"painterly: resuming the video {video.output}")
    return _paint(video, quiet, None)


def _plot_path(args: argparse.Namespace) -> Path:
    from .stylize import plot_path

    stem = args.output if args.output.suffix else args.output / "video"
    return plot_path(argparse.Namespace(output=stem.with_suffix(".png"), plot=args.plot))


def _paint(video: VideoRun, quiet: bool, plot: Path | None) -> int:
    clip = video.check()
    runner = common.load_runner(video.config)
    common.say(quiet, f"painterly: {clip.describe()}")
    common.say(quiet, _header(video, runner))
    bar = FrameBar(video.expected_frames(), quiet)
    began = time.perf_counter()
    with common.Signals(video.stop) as signals:
        try:
            results = video.run(runner, bar)
        finally:
            bar.close()
    if plot is not None and bar.records:
        plot_losses(bar.records, plot, f"{video.output.name}: losses of every frame")
        common.say(False, f"painterly: drew the losses in {plot}")
    last = results[-1]
    if last.outcome is not None and last.outcome.stopped:
        common.say(
            False,
            f"painterly: stopped at frame {last.frame}, step {last.outcome.result.steps} — "
            f"{last.frame - 1} frames done in {video.frames_dir}, this frame's checkpoint kept; "
            f"continue with the same command, or: painterly resume {video.output}",
        )
        return signals.exit_code()
    common.say(False, _summary(video, results, time.perf_counter() - began))
    return common.EXIT_OK


def _header(video: VideoRun, runner: StyleTransfer) -> str:
    c, o = video.config, video.options
    first = o.first_frame_iterations or c.iterations
    how = "independent frames" if o.independent else f"temporal weight {c.temporal_weight:g}"
    return (
        f"painterly: video, preset {c.preset}, seed {c.seed}, size {c.size} px, {how}, "
        f"{first} steps on the first frame, {o.frame_iterations} on each later one; device "
        f"{runner.device}, precision {runner.precision}, {runner.threads} threads"
    )


def _summary(video: VideoRun, results: list[FrameResult], seconds: float) -> str:
    painted = [r for r in results if r.outcome is not None]
    later = [r.seconds for r in painted if r.frame > 1]
    per = f"; {sum(later) / len(later):.1f} s per later frame" if later else ""
    skipped = len(results) - len(painted)
    done = f", {skipped} already done" if skipped else ""
    target = video.output if video.is_file else video.frames_dir
    sound = " with its audio" if video.audio_copied else ""
    return (
        f"painterly: wrote {target}{sound}: {len(results)} frames ({len(painted)} painted"
        f"{done}) in {seconds:.1f} s{per}; seed {video.config.seed}"
    )


class FrameBar:
    """One tqdm bar over the frames (ETA from the frames done), the current frame's step in
    its text; a :class:`~painterly.video.FrameEvent` listener that also keeps every step's
    losses for ``--plot`` (steps counted over all frames, ``"frame"`` the frame's index)."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.bar = tqdm(total=total or None, disable=quiet, unit="frame", desc="video",
                        dynamic_ncols=True, file=sys.stderr)  # fmt: skip
        self.records: list[dict[str, float]] = []
        self._offset = 0
        self._last = 0

    def __call__(self, event: FrameEvent) -> None:
        if event.done:
            self.bar.update(1)
            self._offset += self._last
            self._last = 0
            return
        step = event.step
        assert step is not None
        self._last = step.step
        record = step.losses()
        record.update(step=self._offset + step.step, frame=event.frame - 1)
        self.records.append(record)
        self.bar.set_postfix_str(
            f"frame {event.frame}: step {step.step}/{step.total_steps}, loss {step.loss:.3g}"
            + (f", temporal {step.temporal_loss:.3g}" if step.temporal_loss else ""),
            refresh=True,
        )

    def close(self) -> None:
        self.bar.close()
