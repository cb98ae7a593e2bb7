"""A video, frame by frame, with temporal consistency (Ruder, Dosovitskiy & Brox 2016).

Stylising each frame on its own flickers: every frame's optimisation lands in another local
minimum. Following Ruder et al. ("Artistic style transfer for videos", GCPR 2016,
arXiv 1604.08610), each frame after the first starts from the previous stylised frame warped
to it by the optical flow of the *input* frames (:mod:`painterly.flow`), and a temporal loss
ties it to that warped frame where the flow is reliable
(:func:`painterly.objective.temporal_term`). Later frames start close to their result and need
far fewer steps (``frame_iterations``).

Every frame is one :class:`~painterly.job.Job` (the job runner's checks, stop request,
checkpoint and save with recipe; no copy of them here). Its inputs are files in the work
folder, so that a stopped frame resumes from its checkpoint: ``input_00002.png`` (the input
frame at the output's size), ``warped_00002.png`` (ω) and ``weight_00002.png`` (c, white where
the flow is reliable). Each finished frame is written at once, ``frame_00002.png`` with its
recipe; a video file is encoded from them at the end (audio copied). Running the same video
again skips the frames done with the same inputs and options, continues the one with a
checkpoint and paints the rest. This module prints nothing and reads no signal: the face
(:mod:`painterly.cli.video`) shows :class:`FrameEvent`\\ s.

Several videos, and chunks of one (``VideoOptions.chunks``, each after the first starting
``overlap`` warm-up frames early), are :class:`VideoTask`\\ s that :func:`run_videos` hands to
:func:`painterly.workers.schedule` (this process, local workers or Ray); each task paints its
frames in order through the same :meth:`VideoRun.paint_frames`, and the driver encodes a video
once all its tasks are done.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import checkpoint_path
from .config import Config
from .events import StepEvent, TransferInterrupted
from .files import atomic_write, file_digest
from .flow import frame_pair
from .images import load_image, resize_longest, resize_to, save_image
from .job import Job, JobError, JobOutcome, StopRequest, TurnStoppedError
from .kernels import KernelPlan
from .ladder import check_sizes
from .media import Clip, VideoError, check_video_output, open_clip, read_frames, write_video
from .recipe import RecipeError, read_recipe
from .transfer import StyleTransfer
from .workers import (
    Progress,
    Ran,
    State,
    default_threads,
    reason,
    runner_for,
    schedule,
    shared_plan,
)

__all__ = [
    "STATE_FORMAT",
    "FrameEvent",
    "FrameResult",
    "Part",
    "VideoOptions",
    "VideoResult",
    "VideoRun",
    "VideoTask",
    "find_state",
    "from_state",
    "load_state",
    "plan_parts",
    "plan_tasks",
    "run_videos",
]

#: The work folder's state file's "format".
STATE_FORMAT = "painterly-video"


@dataclass(frozen=True)
class VideoOptions:
    """The options of a video beyond one frame's :class:`~painterly.config.Config`.

    Attributes:
        first_frame_iterations: steps of the first frame (None: ``config.iterations``).
        frame_iterations: steps of every later frame (it starts from the warped previous one).
        max_frames: stylise at most this many frames (None: all).
        start, end: the part of the clip to stylise, in seconds (end None: to the end).
        fps: the frame rate of a folder of frames (None: 24); a video file keeps its own.
        independent: stylise each frame on its own (no warped start, no temporal loss, the
            first frame's steps for every frame): the flickering baseline.
        checkpoint_every: each frame's checkpoint period in steps (0: only when stopped).
        chunks: cut the frames into this many chunks of consecutive frames, each painted on its
            own (by :func:`run_videos`, in parallel workers or Ray tasks); see :class:`Part`.
        overlap: warm-up frames of every chunk after the first: it starts this many frames
            early (painted and discarded), so that its first own frame is started from and
            tied to a warped previous frame, as in an unchunked run.
    """

    first_frame_iterations: int | None = None
    frame_iterations: int = 50
    max_frames: int | None = None
    start: float = 0.0
    end: float | None = None
    fps: float | None = None
    independent: bool = False
    checkpoint_every: int = 20
    chunks: int = 1
    overlap: int = 3

    def check(self) -> None:
        """Raises JobError: a negative count, time or an empty time range."""
        for name in ("first_frame_iterations", "frame_iterations", "max_frames", "chunks"):
            value = getattr(self, name)
            if value is not None and value < (1 if name in ("max_frames", "chunks") else 0):
                flag = "--" + name.replace("_", "-")
                raise JobError(f"{flag} must be a positive integer, got {value}")
        if self.overlap < 0:
            raise JobError(f"--overlap must be 0 or a positive integer, got {self.overlap}")
        if self.start < 0 or (self.end is not None and self.end <= self.start):
            raise JobError(f"--start {self.start} / --end {self.end}: not a time range (s)")
        if self.fps is not None and not self.fps > 0:
            raise JobError(f"--fps must be > 0, got {self.fps}")
        if self.checkpoint_every < 0:
            raise JobError("--checkpoint-every must be 0 or a positive integer")


@dataclass(frozen=True)
class FrameEvent:
    """Progress of a video: frame ``frame`` (1-based) of about ``frames``, and the step event
    of its run (``None`` when the frame was skipped as done, or has just finished)."""

    frame: int
    frames: int
    step: StepEvent | None = None
    done: bool = False
    skipped: bool = False


@dataclass
class FrameResult:
    """One frame as written: its file, the job's outcome (None when skipped as done), the
    share of pixels the flow trusted (1 for the first frame), seconds of painting, and whether
    it is a chunk's warm-up frame (painted in the work folder, not part of the output)."""

    frame: int
    path: Path
    outcome: JobOutcome | None
    reliable: float = 1.0
    seconds: float = 0.0
    warmup: bool = False


@dataclass(frozen=True)
class Part:
    """One chunk of a video's frames (1-based indices over the frames to paint).

    Frames ``first - warmup`` … ``first - 1`` are the warm-up: the first of them is painted
    as a first frame (from its own start, the first frame's steps), the next ones as later
    frames (warped start, temporal loss), into the chunk's work folder, and are then left out
    of the output; frames ``first`` … ``last`` are this chunk's own, written as the output's.
    """

    number: int
    first: int
    last: int
    warmup: int = 0

    @property
    def begin(self) -> int:
        """The first frame painted (a warm-up one when ``warmup`` > 0)."""
        return self.first - self.warmup


def plan_parts(total: int, chunks: int, overlap: int) -> list[Part]:
    """``total`` frames cut into ``chunks`` chunks of consecutive frames as equal as can be,
    each after the first with ``min(overlap, first - 1)`` warm-up frames.

    Raises:
        JobError: more chunks than frames, or an unknown frame count (``total`` 0).
    """
    if total < 1:
        raise JobError(
            f"--chunks {chunks}: the number of frames is unknown (the header does not say it); "
            "give --max-frames N"
        )
    if chunks > total:
        raise JobError(f"--chunks {chunks}: more chunks than the {total} frames to paint")
    edges = [round(k * total / chunks) for k in range(chunks + 1)]
    return [
        Part(k, edges[k - 1] + 1, edges[k], min(overlap, edges[k - 1]))
        for k in range(1, chunks + 1)
    ]


def _digest_inputs(clip: Clip, styles: Sequence[Path]) -> dict[str, str]:
    files = clip.files or (clip.path,)
    content = hashlib.sha256("".join(file_digest(f) for f in files).encode()).hexdigest()
    return {"input": content, **{f"style{k}": file_digest(s) for k, s in enumerate(styles)}}


def load_state(path: Path) -> dict[str, Any]:
    """The state file of a video's work folder (what ``painterly resume`` continues).

    Raises:
        JobError: not a readable painterly video state.
    """
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise JobError(f"{path}: not a readable video state ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise JobError(f"{path}: not a painterly video state")
    return state


class VideoRun:
    """One video to paint: the clip, the styles, a :class:`Config` for every frame, the output
    (a video file by extension, else a folder of PNG frames) and the :class:`VideoOptions`.

    Args:
        stop: the stop flag every frame's job obeys (a signal handler sets it).
        part: paint only this chunk (:meth:`paint_frames`; its inputs and warm-up frames in
            ``work/chunk_NNN/``); None: every frame.

    Attributes:
        frames_dir: where the finished frames go (the output folder, or ``OUT``'s name +
            ``_frames`` beside a video file). work: the frames' inputs and the state file.
    """

    def __init__(
        self,
        config: Config,
        source: Path,
        styles: Sequence[Path],
        output: Path,
        options: VideoOptions | None = None,
        stop: StopRequest | None = None,
        part: Part | None = None,
    ) -> None:
        self.config, self.source, self.styles = config, source, list(styles)
        self.output, self.options = output, options or VideoOptions()
        self.stop = stop or StopRequest()
        self.part = part
        self.is_file = output.suffix != "" and not output.is_dir()
        self.frames_dir = output.with_name(output.stem + "_frames") if self.is_file else output
        self.work = self.frames_dir / ".painterly"
        self.clip: Clip | None = None
        self.audio_copied = False
        self._memory_checked = False

    @property
    def state_path(self) -> Path:
        """The state file: ``painterly resume`` takes it."""
        return self.work / "video.json"

    def frame_path(self, index: int) -> Path:
        """Frame ``index`` (1-based) as written: ``frame_00001.png`` (a chunk's warm-up frame:
        ``work/chunk_NNN/warmup_00001.png``)."""
        if self._is_warmup(index):
            return self._folder / f"warmup_{index:05d}.png"
        return self.frames_dir / f"frame_{index:05d}.png"

    def _is_warmup(self, index: int) -> bool:
        return self.part is not None and index < self.part.first

    @property
    def _folder(self) -> Path:
        """Where the frames' inputs go: the work folder, or the chunk's own inside it (two
        chunks paint the frames of their overlap from different histories)."""
        return self.work if self.part is None else self.work / f"chunk_{self.part.number:03d}"

    def _work_file(self, kind: str, index: int) -> Path:
        return self._folder / f"{kind}_{index:05d}.png"

    def check(self) -> Clip:
        """Everything cheap, before the model loads: the options, the clip's header, the first
        frame's size against the layers, the styles decode, the output can be written.

        Raises:
            VideoError, JobError, ConfigError, ImageError: in words, naming the file.
        """
        self.options.check()
        clip = open_clip(self.source, self.options.fps)
        h, w = clip.height, clip.width
        check_sizes(self.config, h, w)
        for style in self.styles:
            load_image(style)
        if self.is_file:
            check_video_output(self.output)
            if self.output.resolve() == self.source.resolve():
                raise JobError(f"{self.output}: the output would overwrite the input video")
        elif self.frames_dir.resolve() == self.source.resolve():
            raise JobError(f"{self.output}: the output folder is the input folder")
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JobError(f"{self.work}: cannot create this folder ({exc.strerror})") from None
        self.clip = clip
        return clip

    def expected_frames(self) -> int:
        """How many frames the run will paint, as far as the header says (0: unknown)."""
        assert self.clip is not None
        opts, clip = self.options, self.clip
        count = clip.frames
        if count:
            end = count if opts.end is None else min(count, round(opts.end * float(clip.fps)))
            count = max(0, end - round(opts.start * float(clip.fps)))
        if opts.max_frames is not None:
            count = min(count, opts.max_frames) if count else opts.max_frames
        return count

    def _key(self) -> dict[str, Any]:
        """What makes two runs the same video: inputs' digests, options, video options."""
        assert self.clip is not None
        options = {k: v for k, v in self.config.to_dict().items() if not k.startswith("temp")}
        options["temporal_weight"] = self.config.temporal_weight
        video = asdict(self.options)
        video.pop("checkpoint_every")
        video.pop("max_frames")  # painting more frames later continues the same video
        if video["chunks"] == 1:  # unchunked: the key of a video from before chunks existed
            video.pop("chunks")
            video.pop("overlap")
        return {"inputs": _digest_inputs(self.clip, self.styles), "config": options, "video": video}

    def _write_state(self, key: dict[str, Any], done: int) -> None:
        state = {
            "format": STATE_FORMAT,
            "key": key,
            "done": done,
            "command": {
                "input": str(self.source.resolve()),
                "styles": [str(s.resolve()) for s in self.styles],
                "output": str(self.output.resolve()),
                "config": self.config.to_dict(),
                "options": asdict(self.options),
            },
        }
        text = json.dumps(state, indent=1).encode()
        atomic_write(self.state_path, lambda f: f.write(text))

    def _same_video(self, key: dict[str, Any]) -> bool:
        """Whether the work folder holds frames of this very video (else they are redone)."""
        if not self.state_path.is_file():
            return False
        try:
            return bool(load_state(self.state_path).get("key") == key)
        except JobError:
            return False

    def _is_done(self, index: int) -> bool:
        path = self.frame_path(index)
        if not path.is_file() or checkpoint_path(path).is_file():
            return False
        try:
            return bool(read_recipe(path).get("run", {}).get("complete"))
        except RecipeError:
            return False

    def frame_config(self, index: int, temporal: bool) -> Config:
        """Frame ``index``'s options: the first frame's steps, or a later frame's with its
        warped start and temporal target (files of the work folder)."""
        opts = self.options
        if index == (self.part.begin if self.part else 1) or opts.independent:
            steps = opts.first_frame_iterations or self.config.iterations
            return self.config.replace(iterations=steps)
        warped = str(self._work_file("warped", index))
        changes: dict[str, Any] = {"iterations": opts.frame_iterations, "init": warped}
        if temporal:
            changes.update(
                temporal_target=warped, temporal_mask=str(self._work_file("weight", index))
            )
        return self.config.replace(**changes)

    def _prepare(
        self, index: int, frame: torch.Tensor, previous: tuple[torch.Tensor, Path] | None
    ) -> tuple[Path, float]:
        """Write frame ``index``'s input files (the frame; ω and c from ``previous``, the
        previous input frame and stylised frame's file); returns the input file and the
        trusted share."""
        content = self._work_file("input", index)
        if checkpoint_path(self.frame_path(index)).is_file() and content.is_file():
            return content, 1.0  # resumed: its files are what its checkpoint verifies
        save_image(frame, content)
        if previous is None or self.options.independent:
            return content, 1.0
        prev_input, prev_output = previous[0], load_image(previous[1])
        pair = frame_pair(prev_input, frame)
        save_image(pair.warp(resize_like(prev_output, frame)), self._work_file("warped", index))
        save_image(pair.weight.expand(1, 3, -1, -1), self._work_file("weight", index))
        return content, pair.reliable

    def _job(self, index: int, content: Path) -> Job:
        ckpt = checkpoint_path(self.frame_path(index))
        if ckpt.is_file():
            return Job.from_checkpoint(ckpt, stop=self.stop)
        temporal = not self.options.independent and self.config.temporal_weight > 0
        return Job(
            self.frame_config(index, temporal),
            content,
            self.styles,
            self.frame_path(index),
            checkpoint_every=self.options.checkpoint_every,
            stop=self.stop,
        )

    def frames(self) -> Iterator[torch.Tensor]:
        """The clip's frames to paint, at the output's size, (1, 3, H, W) in [0, 1].

        Raises:
            VideoError: a frame that does not decode.
        """
        assert self.clip is not None
        opts = self.options
        for frame in read_frames(self.clip, opts.start, opts.end, opts.max_frames):
            yield resize_longest(frame, self.config.size)

    def _indexed_frames(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(index, frame) of the frames this run paints: all, or its part's (warm-up first);
        the frames before a part are decoded and passed over."""
        begin, last = (self.part.begin, self.part.last) if self.part else (1, None)
        for index, frame in enumerate(self.frames(), start=1):
            if last is not None and index > last:
                return
            if index >= begin:
                yield index, frame

    def run(
        self, runner: StyleTransfer, listener: Callable[[FrameEvent], object] | None = None
    ) -> list[FrameResult]:
        """Paint every frame (skipping those done), then encode the video file if one is asked.

        Returns:
            One :class:`FrameResult` per frame; a stop request ends the list early with the
            stopped frame's (``outcome.stopped``), its checkpoint kept.

        Raises:
            VideoError: a corrupt frame, an encoding failure. TransferInterrupted,
                NonFiniteLossError: from a frame's job (its best image saved first).
        """
        if self.clip is None:
            self.check()
        key = self._key()
        self._claim(key)
        results = self.paint_frames(runner, listener, key)
        if results[-1].outcome is not None and results[-1].outcome.stopped:
            return results
        self.encode(len(results))
        return results

    def paint_frames(
        self,
        runner: StyleTransfer,
        listener: Callable[[FrameEvent], object] | None = None,
        key: dict[str, Any] | None = None,
    ) -> list[FrameResult]:
        """Paint this run's frames in order (all, or its part's), skipping those done; no
        claim of the folder, no encoding (:meth:`run` and :func:`run_videos` do those).

        Args:
            key: write the state (frames done) after each frame, with this key.

        Returns:
            One :class:`FrameResult` per frame painted or skipped (warm-up ones included),
            ending early at a stopped frame.

        Raises:
            VideoError: no frames at all, or one does not decode. From a frame's job as
                :meth:`run`.
        """
        if self.clip is None:
            self.check()
        total = self.expected_frames() if self.part is None else self.part.last
        tell = listener or (lambda event: None)
        results: list[FrameResult] = []
        previous: tuple[torch.Tensor, Path] | None = None
        for index, frame in self._indexed_frames():
            result = self._frame(runner, index, frame, previous, total, tell)
            results.append(result)
            if result.outcome is not None and result.outcome.stopped:
                return results
            previous = (frame, result.path)
            if key is not None:
                self._write_state(key, index)
        if not results:
            raise VideoError(f"{self.source}: no frames between {self.options.start} s and the end")
        return results

    def encode(self, count: int) -> None:
        """Encode frames 1 … ``count`` into the output video file (nothing for a folder)."""
        if not self.is_file:
            return
        assert self.clip is not None
        files = [self.frame_path(k) for k in range(1, count + 1)]
        self.audio_copied = write_video(
            files, self.output, self._rate(), self.clip, self.options.start, self._end(count)
        )

    def _rate(self) -> Any:
        assert self.clip is not None
        return self.clip.fps

    def _end(self, count: int) -> float:
        """The end (s) of the painted part: where the audio copy stops."""
        return self.options.start + count / float(self._rate())

    def _skip(self, index: int) -> bool:
        """Frame ``index`` is done; a warm-up frame also when its chunk's first own frame is
        (the frames after it continue from that one)."""
        if self._is_done(index):
            return True
        return self.part is not None and self._is_warmup(index) and self._is_done(self.part.first)

    def _frame(
        self,
        runner: StyleTransfer,
        index: int,
        frame: torch.Tensor,
        previous: tuple[torch.Tensor, Path] | None,
        total: int,
        tell: Callable[[FrameEvent], object],
    ) -> FrameResult:
        """One frame: skipped when done, else prepared and painted through its job."""
        path, warmup = self.frame_path(index), self._is_warmup(index)
        if self._skip(index):
            tell(FrameEvent(index, total, skipped=True, done=True))
            return FrameResult(index, path, None, warmup=warmup)
        began = time.perf_counter()
        content, reliable = self._prepare(index, frame, previous)
        job = self._job(index, content)
        job.check_files()
        if not self._memory_checked:
            job.check_memory(runner)  # every frame has the same size
            self._memory_checked = True
        outcome = job.run(runner, lambda event: tell(FrameEvent(index, total, event)))
        seconds = time.perf_counter() - began
        if not outcome.stopped:
            tell(FrameEvent(index, total, done=True))
        return FrameResult(index, path, outcome, reliable, seconds, warmup)

    def _claim(self, key: dict[str, Any]) -> None:
        """Make the frames folder this video's: a state written before any frame. Frames of
        another video (inputs or options changed) are removed, to be painted again; frames
        there that no video state claims are refused, not overwritten.

        Raises:
            JobError: ``frame_*.png`` files in the folder that painterly did not write.
        """
        if self._same_video(key):
            return
        frames = [*self.frames_dir.glob("frame_*.png"), *self.frames_dir.glob("frame_*.png.ckpt")]
        if frames and not self.state_path.is_file():
            raise JobError(
                f"{self.frames_dir}: holds frame_*.png files of no painterly video; "
                "choose another output"
            )
        warmups = [*self.work.glob("chunk_*/warmup_*.png"), *self.work.glob("chunk_*/*.ckpt")]
        for path in [*frames, *warmups]:  # another video's chunks: other warm-up histories
            path.unlink()
        self._write_state(key, 0)


def resize_like(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``image`` at ``like``'s height and width (a stylised frame is the frame's size)."""
    return resize_to(image, *like.shape[-2:])


def find_state(path: Path) -> Path | None:
    """The video state ``painterly resume`` continues from ``path``: the state file itself,
    a video output (``out.mp4``: ``out_frames/.painterly/video.json``) or a frames folder; or
    ``None`` when ``path`` is none of them (a picture's checkpoint)."""
    candidates = [path, path / ".painterly" / "video.json"]
    if path.name:
        candidates.append(path.with_name(path.stem + "_frames") / ".painterly" / "video.json")
    for candidate in candidates:
        if candidate.is_file() and candidate.suffix == ".json":
            try:
                load_state(candidate)
            except JobError:
                continue
            return candidate
    return None


def from_state(path: Path, stop: StopRequest | None = None) -> VideoRun:
    """The video a state file describes, to run again (the done frames are skipped).

    Raises:
        JobError: not a video state, or one this painterly cannot read.
    """
    command = load_state(path).get("command") or {}
    try:
        config = Config.from_dict(command["config"])
        options = VideoOptions(**command["options"])
        styles = [Path(s) for s in command["styles"]]
        return VideoRun(
            config, Path(command["input"]), styles, Path(command["output"]), options, stop
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError(f"{path}: damaged video state ({exc})") from None


# --------------------------------------------------------------------------- many at once


@dataclass(frozen=True)
class VideoTask:
    """One video, or one chunk of one, for a worker (picklable; a
    :class:`painterly.workers.Task`): what builds its :class:`VideoRun` there.

    Paths are absolute (a worker or a Ray task may run in another folder). On Ray the task
    reads the input and writes the frames at these paths: a cluster's nodes need one shared
    filesystem (a local Ray has it).
    """

    name: str
    config: Config
    source: Path
    styles: tuple[Path, ...]
    output: Path
    options: VideoOptions
    part: Part | None
    threads: int | None = None
    kernels: KernelPlan | None = None

    @property
    def frames(self) -> int:
        """How many frames of the output it paints (0: unknown, a whole video)."""
        return 0 if self.part is None else self.part.last - self.part.first + 1

    def video(self, stop: StopRequest) -> VideoRun:
        """Its :class:`VideoRun` (this task's threads, its part)."""
        config = self.config.replace(threads=self.threads)
        return VideoRun(
            config, self.source, self.styles, self.output, self.options, stop, self.part
        )

    def paint(self, stop: StopRequest, progress: Progress | None) -> Ran:
        """Paint its frames in order in this process; any error fails this task alone."""
        began = time.perf_counter()
        done = 0

        first = self.part.first if self.part else 1

        def listener(event: FrameEvent) -> None:  # the output's frames, not the warm-up
            nonlocal done
            if event.done and event.frame >= first and progress is not None:
                done += 1
                progress(self.name, done, self.frames)

        try:
            run = self.video(stop)
            run.check()
            results = run.paint_frames(runner_for(run.config, self.kernels), listener)
        except TransferInterrupted:
            raise  # a second Ctrl-C: stop at once
        except TurnStoppedError:
            return Ran("stopped", None, time.perf_counter() - began)
        except Exception as exc:
            return Ran("failed", reason(exc), time.perf_counter() - began)
        last = results[-1].outcome
        state: State = "stopped" if last is not None and last.stopped else "done"
        painted = sum(r.outcome is not None and not r.warmup for r in results)
        resumed = any(r.outcome is None for r in results)
        ran = Ran(state, None, time.perf_counter() - began, resumed, painted)
        ran.frames = max((r.frame for r in results if not r.warmup), default=0)
        return ran

    def ray_inputs(self) -> tuple[()]:
        """Nothing: the task reads its files itself (a shared filesystem)."""
        return ()

    def paint_remote(self) -> Ran:
        """A Ray task: :meth:`paint`, once the node sees the input and the output's folder."""
        for path in (self.source, self.output.parent):
            if not path.exists():
                return Ran(
                    "failed",
                    f"{path}: not on this Ray node; a video on a Ray cluster reads and writes "
                    "its files at the same paths on every node (a shared filesystem)",
                    0.0,
                )
        return self.paint(StopRequest(), None)


@dataclass
class VideoResult:
    """How one video of :func:`run_videos` ended.

    Attributes:
        video: the video. state: ``"done"`` (every frame written, the file encoded),
            ``"failed"`` (``error`` says why; the frames written are kept) or ``"stopped"``.
        frames: frames in the output. painted: frames painted in this run (warm-up ones not
            counted). seconds: painting time summed over its tasks.
    """

    video: VideoRun
    state: State
    frames: int = 0
    painted: int = 0
    seconds: float = 0.0
    error: str | None = None


def plan_tasks(
    videos: Sequence[VideoRun], workers: int = 1, ray: str | bool | None = None
) -> list[VideoTask]:
    """The tasks of checked videos: one per video, or one per chunk (``options.chunks``).

    Raises:
        JobError: two videos with one output, or chunks the frames cannot give.
    """
    outputs = [v.frames_dir.resolve() for v in videos]
    for k, out in enumerate(outputs):
        if out in outputs[:k]:
            raise JobError(f"{out}: two videos would be written here; give each its own output")
    tasks = []
    for video in videos:
        opts = video.options
        parts: list[Part | None] = [None]
        if opts.chunks > 1:
            overlap = 0 if opts.independent else opts.overlap
            parts = list(plan_parts(video.expected_frames(), opts.chunks, overlap))
        threads = video.config.threads or default_threads(workers, ray)
        plan = None if isinstance(ray, str) and ray else shared_plan(video.config, threads)
        for part in parts:
            name = video.output.name + (f" chunk {part.number}/{opts.chunks}" if part else "")
            styles = tuple(s.resolve() for s in video.styles)
            source, output = video.source.resolve(), video.output.resolve()
            task = VideoTask(name, video.config, source, styles, output, opts, part, threads, plan)
            tasks.append(task)
    return tasks


def run_videos(
    videos: Sequence[VideoRun],
    *,
    workers: int = 1,
    ray: str | bool | None = None,
    stop: StopRequest | None = None,
    progress: Progress | None = None,
) -> Iterator[VideoResult]:
    """Paint several videos, and chunks of each (``options.chunks``), through
    :func:`painterly.workers.schedule`: in this process, in ``workers`` local processes, or as
    Ray tasks. Each task paints its frames in order (a frame starts from the previous one);
    tasks run side by side. A video's file is encoded here once all its tasks are done.
    Running the same videos again continues each task at its next unfinished frame.

    Yields:
        A :class:`VideoResult` per video, as its last task ends.

    Raises:
        VideoError, JobError, ConfigError, ImageError: a video's checks, before any painting.
        ImportError: ``ray`` asked for but not installed.
    """
    for video in videos:
        if video.clip is None:
            video.check()
    tasks = plan_tasks(videos, workers, ray)
    for video in videos:
        video._claim(video._key())
    by_output = {v.output.resolve(): v for v in videos}
    left = {out: sum(t.output == out for t in tasks) for out in by_output}
    ended: dict[Path, list[Ran]] = {out: [] for out in by_output}
    for task, ran in schedule(tasks, workers, ray, stop, progress):
        ended[task.output].append(ran)
        left[task.output] -= 1
        if not left[task.output]:
            yield _finish(by_output[task.output], ended[task.output])
    for out, video in by_output.items():
        if left[out]:  # stopped before all its tasks started
            yield _ended(video, ended[out], "stopped")


def _ended(video: VideoRun, ran: list[Ran], state: State) -> VideoResult:
    errors = [r.error for r in ran if r.state == "failed" and r.error]
    seconds = sum(r.seconds for r in ran)
    painted = sum(r.steps for r in ran)
    return VideoResult(video, state, 0, painted, seconds, errors[0] if errors else None)


def _finish(video: VideoRun, ran: list[Ran]) -> VideoResult:
    """A video whose tasks all ended: encoded when every one is done, its state written."""
    for state in ("failed", "stopped"):
        if any(r.state == state for r in ran):
            return _ended(video, ran, state)
    count = max(r.frames for r in ran)
    result = _ended(video, ran, "done")
    result.frames = count
    try:
        video.encode(count)
    except VideoError as exc:
        result.state, result.error = "failed", reason(exc)
    video._write_state(video._key(), count)
    return result
