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
from .events import StepEvent
from .files import atomic_write, file_digest
from .flow import frame_pair
from .images import load_image, resize_longest, resize_to, save_image
from .job import Job, JobError, JobOutcome, StopRequest
from .ladder import check_sizes
from .media import Clip, VideoError, check_video_output, open_clip, read_frames, write_video
from .recipe import RecipeError, read_recipe
from .transfer import StyleTransfer

__all__ = [
    "STATE_FORMAT",
    "FrameEvent",
    "FrameResult",
    "VideoOptions",
    "VideoRun",
    "find_state",
    "from_state",
    "load_state",
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
    """

    first_frame_iterations: int | None = None
    frame_iterations: int = 50
    max_frames: int | None = None
    start: float = 0.0
    end: float | None = None
    fps: float | None = None
    independent: bool = False
    checkpoint_every: int = 20

    def check(self) -> None:
        """Raises JobError: a negative count, time or an empty time range."""
        for name in ("first_frame_iterations", "frame_iterations", "max_frames"):
            value = getattr(self, name)
            if value is not None and value < (1 if name == "max_frames" else 0):
                raise JobError(f"--{name.replace('_', '-')} must be a positive integer")
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
    share of pixels the flow trusted (1 for the first frame) and seconds of painting."""

    frame: int
    path: Path
    outcome: JobOutcome | None
    reliable: float = 1.0
    seconds: float = 0.0


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
    ) -> None:
        self.config, self.source, self.styles = config, source, list(styles)
        self.output, self.options = output, options or VideoOptions()
        self.stop = stop or StopRequest()
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
        """Frame ``index`` (1-based) as written: ``frame_00001.png``."""
        return self.frames_dir / f"frame_{index:05d}.png"

    def _work_file(self, kind: str, index: int) -> Path:
        return self.work / f"{kind}_{index:05d}.png"

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
            self.work.mkdir(parents=True, exist_ok=True)
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
        if index == 1 or opts.independent:
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
        self, index: int, frame: torch.Tensor, previous: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[Path, float]:
        """Write frame ``index``'s input files (the frame; ω and c from ``previous``, the
        previous input and stylised frames); returns the input file and the trusted share."""
        content = self._work_file("input", index)
        if checkpoint_path(self.frame_path(index)).is_file() and content.is_file():
            return content, 1.0  # resumed: its files are what its checkpoint verifies
        save_image(frame, content)
        if previous is None or self.options.independent:
            return content, 1.0
        prev_input, prev_output = previous
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
        total = self.expected_frames()
        tell = listener or (lambda event: None)
        results: list[FrameResult] = []
        previous: tuple[torch.Tensor, torch.Tensor] | None = None
        for index, frame in enumerate(self.frames(), start=1):
            result = self._frame(runner, index, frame, previous, total, tell)
            results.append(result)
            if result.outcome is not None and result.outcome.stopped:
                return results
            previous = (frame, load_image(result.path))
            self._write_state(key, index)
        if not results:
            raise VideoError(f"{self.source}: no frames between {self.options.start} s and the end")
        if self.is_file:
            assert self.clip is not None
            files = [r.path for r in results]
            opts = self.options
            self.audio_copied = write_video(
                files, self.output, self._rate(), self.clip, opts.start, self._end(len(files))
            )
        return results

    def _rate(self) -> Any:
        assert self.clip is not None
        return self.clip.fps

    def _end(self, count: int) -> float:
        """The end (s) of the painted part: where the audio copy stops."""
        return self.options.start + count / float(self._rate())

    def _frame(
        self,
        runner: StyleTransfer,
        index: int,
        frame: torch.Tensor,
        previous: tuple[torch.Tensor, torch.Tensor] | None,
        total: int,
        tell: Callable[[FrameEvent], object],
    ) -> FrameResult:
        """One frame: skipped when done, else prepared and painted through its job."""
        path = self.frame_path(index)
        if self._is_done(index):
            tell(FrameEvent(index, total, skipped=True, done=True))
            return FrameResult(index, path, None)
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
        return FrameResult(index, path, outcome, reliable, seconds)

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
        for path in frames:
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
