"""``painterly video INPUT… STYLE… -o OUTPUT``: videos, frame by frame, without flicker.

The work is :class:`painterly.video.VideoRun`'s (each frame a job of the job runner, with
Ruder et al.'s warped start and temporal loss); this face parses the options, installs
Ctrl-C/SIGTERM as the frames' stop request, draws one bar over the frames with an ETA, and
says how it ended. Several inputs, ``--chunks``, ``--workers`` or ``--ray`` go through
:func:`painterly.video.run_videos` (the scheduling of :mod:`painterly.workers`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..batch import IMAGE_SUFFIXES
from ..media import ENCODERS
from ..plot import plot_losses
from ..transfer import StyleTransfer
from ..video import (
    FrameEvent,
    FrameResult,
    VideoOptions,
    VideoResult,
    VideoRun,
    from_state,
    run_videos,
)
from . import common
from .options import UsageError, add_transfer_options, config_from_args

__all__ = ["add_parser", "outputs", "resume", "run", "split_paths"]

#: What ends the inputs of ``INPUT… STYLE…``: a still picture (a ``.gif`` counts as a video).
STYLE_SUFFIXES = tuple(s for s in IMAGE_SUFFIXES if s != ".gif")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``video`` command's arguments."""
    p = sub.add_parser(
        "video",
        help="repaint a video (or a folder of frames) in the style of STYLE, without flicker",
        description="INPUT… STYLE…: the first argument and those after it up to the first "
        "picture file are the inputs (video files or folders of frames), the picture files "
        "from there on the styles (several are blended).",
    )
    p.add_argument("paths", type=Path, nargs="+", metavar="INPUT… STYLE…",
                   help="video files or folders of frames, then the painting(s)")  # fmt: skip
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="a video file (.mp4 .mkv .mov .webm .avi), or a folder for PNG frames; with "
        "several inputs a folder: each video as INPUT's name (its container, else .mp4), "
        "each folder of frames as a folder",
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
    v.add_argument("--chunks", type=int, default=1, metavar="K",
                   help="cut each video into K chunks of consecutive frames, painted side by "
                   "side (with --workers or --ray)")  # fmt: skip
    v.add_argument("--overlap", type=int, default=3, metavar="M",
                   help="each chunk after the first starts M frames early, paints them as "
                   "warm-up and drops them (default: 3)")  # fmt: skip
    v.add_argument("--workers", type=int, default=1, metavar="N",
                   help="videos or chunks at once on this machine (default: 1)")  # fmt: skip
    v.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="each video or chunk a Ray task: a local Ray, or the cluster at "
                   "ADDRESS sharing the files' filesystem (painterly[ray])")  # fmt: skip
    v.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def split_paths(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """The inputs and the styles of ``INPUT… STYLE…``: the first path is an input, and so is
    every later one up to the first picture file (:data:`STYLE_SUFFIXES`, not a folder); the
    rest are the styles.

    Raises:
        UsageError: no style after the inputs.
    """
    for k, path in enumerate(paths[1:], start=1):
        if path.suffix.lower() in STYLE_SUFFIXES and not path.is_dir():
            return paths[:k], paths[k:]
    raise UsageError("give INPUT… then STYLE… (a picture file: .jpg, .png …)")


def outputs(inputs: list[Path], output: Path) -> list[Path]:
    """Each input's output: ``output`` itself for one input; for several, in the folder
    ``output``: a video file as its name with its container (``.mp4`` when painterly does
    not write that one), a folder of frames as a folder of PNG frames of its name.

    Raises:
        UsageError: several inputs and ``output`` names a file.
    """
    if len(inputs) == 1:
        return [output]
    if output.suffix or output.is_file():
        raise UsageError(f"-o {output}: with {len(inputs)} inputs, -o names a folder")
    named = []
    for path in inputs:
        suffix = path.suffix.lower() if path.suffix.lower() in ENCODERS else ".mp4"
        named.append(output / path.name if path.is_dir() else output / (path.stem + suffix))
    return named


def run(args: argparse.Namespace) -> int:
    """Check everything cheap, load the model, paint the frames, encode."""
    inputs, styles = split_paths(args.paths)
    if args.workers < 1:
        raise UsageError(f"--workers must be a positive integer, got {args.workers}")
    if args.ray is not None and args.workers > 1:
        raise UsageError("give --workers (this machine) or --ray (Ray's scheduling), not both")
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
        chunks=args.chunks,
        overlap=args.overlap,
    )
    config.check_styles(len(styles))
    videos = [
        VideoRun(config, path, styles, out, options)
        for path, out in zip(inputs, outputs(inputs, args.output), strict=True)
    ]
    if len(videos) > 1 or args.chunks > 1 or args.workers > 1 or args.ray is not None:
        if args.plot:
            raise UsageError("--plot draws one video's frames: not with several or with chunks")
        if args.ray is not None:
            _need_ray()
        return _paint_many(videos, args.workers, args.ray, args.quiet)
    plot = _plot_path(args) if args.plot else None
    return _paint(videos[0], args.quiet, plot)


def _need_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("--ray needs ray: pip install 'painterly[ray]'") from None


def resume(state: Path, quiet: bool) -> int:
    """``painterly resume`` of a video: the same command again, from its state file (a
    chunked video's chunks one after another in this process: the same frames)."""
    video = from_state(state)
    common.say(quiet, f"painterly: resuming the video {video.output}")
    if video.options.chunks > 1:
        return _paint_many([video], 1, None, quiet)
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


def _paint_many(videos: list[VideoRun], workers: int, ray: str | None, quiet: bool) -> int:
    """Several videos, or chunks of them, through :func:`painterly.video.run_videos`: one bar
    over every video's frames, a line per video as it ends."""
    for video in videos:
        common.say(quiet, f"painterly: {video.check().describe()}")
    o, c = videos[0].options, videos[0].config
    where = f"Ray {ray or 'local'}" if ray is not None else f"{workers} worker(s)"
    cut = f"{o.chunks} chunks each, overlap {o.overlap}" if o.chunks > 1 else "whole"
    common.say(quiet, f"painterly: {len(videos)} video(s), {cut}, on {where}; seed {c.seed}")
    bar = tqdm(total=sum(v.expected_frames() for v in videos) or None, disable=quiet,
               unit="frame", desc="video", dynamic_ncols=True, file=sys.stderr)  # fmt: skip
    seen: dict[str, int] = {}

    def progress(name: str, done: int, total: int) -> None:
        bar.update(done - seen.get(name, 0))
        seen[name] = done
        bar.set_postfix_str(f"{name}: frame {done}/{total or '?'}", refresh=True)

    results: list[VideoResult] = []
    began = time.perf_counter()
    with common.Signals() as signals:
        try:
            for result in run_videos(
                videos, workers=workers, ray=ray, stop=signals.stop, progress=progress
            ):
                results.append(result)
                common.say(False, _ended(result))
        finally:
            bar.close()
    painted = sum(r.painted for r in results)
    per = f", {(time.perf_counter() - began) / painted:.1f} s per frame" if painted else ""
    common.say(False, f"painterly: {len(results)} video(s), {painted} frames painted{per}")
    if signals.stop.requested or any(r.state == "stopped" for r in results):
        return signals.exit_code()
    return common.EXIT_ERROR if any(r.state == "failed" for r in results) else common.EXIT_OK


def _ended(result: VideoResult) -> str:
    video = result.video
    if result.state == "done":
        target = video.output if video.is_file else video.frames_dir
        sound = " with its audio" if video.audio_copied else ""
        return (
            f"painterly: wrote {target}{sound}: {result.frames} frames ({result.painted} "
            f"painted) in {result.seconds:.1f} s of painting"
        )
    if result.state == "stopped":
        return (
            f"painterly: stopped {video.output}: its frames and checkpoints are kept; continue "
            f"with the same command, or: painterly resume {video.output}"
        )
    return f"painterly: failed {video.output}: {result.error}"


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
