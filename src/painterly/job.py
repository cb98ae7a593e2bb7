"""The job runner: one picture from its inputs to its file, the same for every face.

A :class:`Job` takes the inputs, a :class:`~painterly.config.Config` and (optionally) an output
path. Before any compute it checks the files (:meth:`Job.check_files`) and the memory
(:meth:`Job.check_memory`); then :meth:`Job.run` runs the transfer, turns a stop request
(:class:`StopRequest`, set by Ctrl-C/SIGTERM in the command line, the web app's Stop button or a
batch scheduler) into a best-image save plus a checkpoint, resumes from a checkpoint
(:meth:`Job.from_checkpoint`), and saves atomically with the recipe. The command line, the web
app, and later batch and video workers all paint through it. It prints nothing and installs no
signal handler: what a person should read comes back in a :class:`JobOutcome`.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .checkpoint import checkpoint_path, file_digest, load_checkpoint, save_checkpoint
from .config import INIT_KEYWORDS, Config
from .events import NonFiniteLossError, Result, RunState, StepEvent, TransferInterrupted
from .files import Claim, ClaimedError, claim, lock_path
from .images import ImageError, load_alpha, load_image, output_format, resize_to, save_image
from .kernels import default_threads
from .ladder import check_sizes
from .memory import MemoryCheck, available_memory, check_memory
from .plot import plot_losses
from .transfer import StyleTransfer
from .turns import TurnStoppedError, take_turn

__all__ = [
    "Job",
    "JobError",
    "JobOutcome",
    "SaveError",
    "StopRequest",
    "TurnStoppedError",
    "rescue_folder",
    "save_or_rescue",
    "style_role",
]

#: What a job reads as an input: a file, or pixels (1, 3, H, W) in [0, 1].
Source = Path | torch.Tensor


class JobError(ValueError):
    """A job that cannot run as given (a path, an output, an option), said in words."""


class SaveError(ImageError):
    """The output could not be written (a full disk, a folder gone, no permission).

    Attributes:
        image: the picture, (1, C, H, W) in [0, 1], still in memory.
        rescued: where it was written instead, or ``None`` when that failed too.
    """

    def __init__(self, message: str, image: torch.Tensor, rescued: Path | None) -> None:
        super().__init__(message)
        self.image, self.rescued = image, rescued


def rescue_folder() -> Path:
    """Where a picture goes when its output cannot be written: ``$PAINTERLY_RESCUE_DIR``, else
    ``painterly-rescued`` in the system's temporary folder."""
    folder = os.environ.get("PAINTERLY_RESCUE_DIR")
    return Path(folder) if folder else Path(tempfile.gettempdir()) / "painterly-rescued"


def save_or_rescue(image: torch.Tensor, output: Path, recipe: dict[str, Any] | None) -> Path:
    """Write ``image`` to ``output`` with its recipe (atomically: a failure leaves the file
    that was there before as it was); if that fails, write it to :func:`rescue_folder`.

    Returns:
        ``output``.

    Raises:
        SaveError: the output could not be written; the message says why and where the
            picture went instead (or that it could not be written anywhere).
        ImageError: a bad output path (a folder, an unknown extension), before any write.
    """
    try:
        save_image(image, output, recipe)
        return output
    except ImageError as exc:
        if not isinstance(exc.__cause__, OSError):
            raise
        reason, cause = str(exc), exc.__cause__
    spare = rescue_folder() / output.name
    try:
        save_image(image, spare, recipe)
    except ImageError as again:
        raise SaveError(
            f"{reason}; writing it to {spare} failed too ({again}): the picture is lost",
            image,
            None,
        ) from cause
    raise SaveError(
        f"{reason}; the picture was written to {spare} instead (the file that was at "
        f"{output}, if any, is unchanged)",
        image,
        spare,
    ) from cause


class StopRequest:
    """A thread-safe flag: "stop at the end of the current step, keeping the best image".

    Anyone may set it (a signal handler, a web request, a scheduler); the job reads it after
    every step.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def request(self, reason: str = "stop") -> None:
        """Ask the job to stop; ``reason`` says who asked (``"SIGINT"``, ``"web"``…)."""
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    @property
    def requested(self) -> bool:
        """True once a stop was asked for."""
        return self._event.is_set()


@dataclass
class JobOutcome:
    """What a finished (or stopped) job did.

    Attributes:
        result: the transfer's :class:`~painterly.events.Result` (recipe included).
        image: the image as written: (1, 3 or 4, H, W) in [0, 1] (alpha put back if asked).
        output: the file written, or None for a job without an output.
        stopped: True when a :class:`StopRequest` ended it; the checkpoint is then kept.
        checkpoint: the checkpoint that continues it, when one is kept.
        plot: the loss plot drawn, if asked.
        warnings: sentences about a suspicious result (a flat picture, no progress).
    """

    result: Result
    image: torch.Tensor
    output: Path | None
    stopped: bool = False
    checkpoint: Path | None = None
    plot: Path | None = None
    warnings: list[str] = field(default_factory=list)


#: A run with periodic checkpoints also writes one after the first step that ends this many
#: seconds of work after the last: a kill loses at most this much of a run with slow steps.
CHECKPOINT_SECONDS = 600.0


def style_role(index: int) -> str:
    """The role of the index-th style image in recipes and checkpoints: "style", "style2", …"""
    return "style" if index == 0 else f"style{index + 1}"


class Job:
    """One picture to paint.

    Args:
        config: the options (seed resolved by the caller if it must be reported first).
        content, styles: files, or pixels (1, 3, H, W) in [0, 1] (then name them with
            :meth:`describe_input` for the recipe).
        output: the file to write, or None to keep the result in memory only.
        save_every, save_dir: also write the current image every N steps into ``save_dir``.
        checkpoint_every: write ``OUTPUT.ckpt`` every N steps, and after any step that ends
            :data:`CHECKPOINT_SECONDS` of work after the last one (0: only on a stop request;
            None: never). Needs an output and file inputs.
        keep_alpha: put the content's transparency back on the output.
        plot: draw the loss curves there at the end.
        stop: the stop flag to obey (default: a new one, :attr:`stop`).
        stop_at: end the run after this step (``reproduce`` of a stopped picture).
    """

    def __init__(
        self,
        config: Config,
        content: Source,
        styles: Sequence[Source],
        output: Path | None = None,
        *,
        save_every: int | None = None,
        save_dir: Path | None = None,
        checkpoint_every: int | None = None,
        keep_alpha: bool = False,
        plot: Path | None = None,
        stop: StopRequest | None = None,
        stop_at: int | None = None,
    ) -> None:
        self.config, self.output = config, output
        self.sources: dict[str, Source] = {"content": content}
        self.sources.update({style_role(k): s for k, s in enumerate(styles)})
        self.save_every, self.save_dir = save_every, save_dir
        self.checkpoint_every = checkpoint_every if output is not None else None
        self.keep_alpha, self.plot_path = keep_alpha, plot
        self.stop = stop or StopRequest()
        self.stop_at = stop_at
        self.resume: RunState | None = None
        self.losses: list[dict[str, Any]] = []
        self.checkpointed_at: int | None = None
        #: The run's seconds of work at the last checkpoint (or its first step).
        self._checkpoint_clock: float | None = None
        #: Why the last checkpoint could not be written (a full disk), or ``None``.
        self.checkpoint_failure: str | None = None
        #: Why a ``--save-every`` image could not be written (the first one), or ``None``.
        self.step_failure: str | None = None
        self._claim: Claim | None = None
        #: The output's folder was gone at a write (removed during the run) and made again.
        self.folder_remade = False
        self.described: dict[str, dict[str, Any]] = {}
        self.inputs = _input_paths(config, self.sources)
        self.digests: dict[str, str] | None = None
        self._alpha: torch.Tensor | None = None
        #: Take a turn on the cores before painting (:mod:`painterly.turns`), with the lock
        #: files in ``turns_folder`` (None: :func:`painterly.turns.lock_folder`).
        self.take_turns = True
        self.turns_folder: Path | None = None

    @classmethod
    def from_checkpoint(cls, path: Path, stop: StopRequest | None = None) -> Job:
        """The job a checkpoint continues, its inputs verified unchanged.

        Raises:
            CheckpointError: missing, damaged or foreign file, or an input moved or changed.
        """
        ckpt = load_checkpoint(path)
        ckpt.verify_inputs()
        opts = ckpt.options
        styles = [Path(p) for role, p in ckpt.inputs.items() if role.startswith("style")]
        save_dir = opts.get("save_dir")
        plot = opts.get("plot")
        job = cls(
            ckpt.config,
            Path(ckpt.inputs["content"]),
            styles,
            Path(opts["output"]),
            save_every=opts.get("save_every"),
            save_dir=Path(save_dir) if save_dir else None,
            checkpoint_every=opts.get("checkpoint_every", 0),
            keep_alpha=bool(opts.get("keep_alpha")),
            plot=Path(plot) if plot else None,
            stop=stop,
        )
        job.resume, job.digests = ckpt.state, ckpt.digests
        job.losses = list(opts.get("losses") or [])
        return job

    @property
    def checkpoint(self) -> Path | None:
        """Where this job's checkpoint goes (``OUTPUT.ckpt``), or None without an output."""
        return None if self.output is None else checkpoint_path(self.output)

    @property
    def content_path(self) -> Path | None:
        """The content file, when the content is a file."""
        content = self.sources["content"]
        return content if isinstance(content, Path) else None

    def describe_input(self, role: str, **record: Any) -> None:
        """Fields to put in the recipe's record of input ``role`` (``name``, ``path``,
        ``max_side``…), for inputs given as pixels."""
        self.described.setdefault(role, {}).update(record)

    def check_files(self) -> None:
        """Everything about the files that can fail, checked before the model loads: every
        input decodes, the content is large enough at every scale, the output has a known
        format, is no input, and its folders can be made and written.

        Raises:
            ImageError: an input does not decode. ConfigError: too small at some scale.
            JobError: a bad output path, an output that would overwrite an input, a missing
                init file.
        """
        content = self.sources["content"]
        pixels = load_image(content)
        check_sizes(self.config, *pixels.shape[-2:])
        for role, source in self.sources.items():
            if role != "content" and isinstance(source, Path):
                load_image(source)
        read = [Path(p) for role, p in self.inputs.items() if role != "weights"]
        for mask in self.config.style_masks or ():
            load_image(mask)
        for role in _TEMPORAL_ROLES:
            if role in self.inputs:
                load_image(self.inputs[role])
        _check_init(self.config.init)
        if self.output is not None:
            _check_output(self.output, read, self._written())
        if self.save_every and self.save_dir is not None:
            _make_folder(self.save_dir)
        if self.keep_alpha:
            self._check_alpha()
        self.claim_output()

    def claim_output(self) -> None:
        """Claim the output path (and so its checkpoint) for this job until :meth:`run` ends
        (:func:`painterly.files.claim`): a second run writing the same file at the same time
        is refused. Nothing to do without an output, or when the claim is held already.

        Raises:
            JobError: another process is writing it (its pid named), or the lock file beside
                it cannot be created.
        """
        if self.output is None or (self._claim is not None and self._claim.held):
            return
        try:
            self._claim = claim(self.output)
        except ClaimedError as exc:
            raise JobError(str(exc)) from None
        except OSError as exc:
            raise JobError(
                f"{self.output}: cannot create its lock file {lock_path(self.output)} "
                f"({exc.strerror or exc})"
            ) from None

    def _written(self) -> list[Path]:
        assert self.output is not None
        return [self.output, checkpoint_path(self.output), *filter(None, [self.plot_path])]

    def _check_alpha(self) -> None:
        assert self.output is not None
        if output_format(self.output) not in ("PNG", "WEBP", "TIFF"):
            raise JobError(
                f"{self.output}: --keep-alpha needs a format with transparency: .png, .webp, .tiff"
            )
        if self.content_path is None or load_alpha(self.content_path) is None:
            raise JobError(f"--keep-alpha: {self.content_path} has no transparency to keep")

    def check_memory(self, runner: StyleTransfer, downscale: bool = False) -> MemoryCheck:
        """Refuse, before compute, a run whose estimated peak exceeds the memory available
        (:mod:`painterly.memory`), unless it fits when evaluated in tiles: then
        ``config.tile`` is set to the tile chosen; with ``downscale``, shrink ``config.size``
        to one that fits when no tile does.

        Returns:
            The check's numbers; ``config.size`` is then the size the job will paint at.

        Raises:
            NotEnoughMemoryError: it would not fit; the message names a size that would.
        """
        device = runner.device
        have = available_memory(device.type, device.index)
        size, check = check_memory(
            self.config, runner.precision, self._content_size(), have, downscale, str(device)
        )
        if size != self.config.size:
            self.config = self.config.replace(size=size)
        if check.tile is not None and self.config.tile is None:  # painterly.tiles
            self.config = self.config.replace(tile=check.tile)
        return check

    def _content_size(self) -> tuple[int, int]:
        """(width, height) of the content, from the file's header alone when it is a file:
        decoding a huge image to measure it could itself exhaust memory."""
        content = self.sources["content"]
        if isinstance(content, torch.Tensor):
            return int(content.shape[-1]), int(content.shape[-2])
        with Image.open(content) as probe:
            w, h = probe.size
            if probe.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF: turned a quarter
                w, h = h, w
        return w, h

    def run(
        self,
        runner: StyleTransfer,
        listener: Callable[[StepEvent], object] | None = None,
        on_wait: Callable[[int | None], object] | None = None,
    ) -> JobOutcome:
        """Paint, and write the output (with its recipe) and whatever was asked along the way.

        On a CPU the run first takes its turn on the cores (:mod:`painterly.turns`): one slot
        per thread, waiting while other painterly runs on this computer hold them.

        Args:
            runner: the network to paint with; its config is set to this job's.
            listener: called with every :class:`~painterly.events.StepEvent` (a progress bar,
                a live view); its return value is ignored: stop through :attr:`stop`.
            on_wait: called once with the pid of the run waited for (None if unknown) when
                the cores are busy (a message: "waiting for another painterly run …").

        Returns:
            A :class:`JobOutcome`. A stop request ends the run at the end of a step with the
            best image saved and the checkpoint kept (``stopped``); otherwise the checkpoint
            is removed.

        Raises:
            TransferInterrupted, NonFiniteLossError: a hard stop or a non-finite loss; the
                best image so far is written to the output first (:attr:`saved_best`).
            TurnStoppedError: the stop request came while it waited for the cores (nothing done).
            ImageError: the output cannot be written (:class:`SaveError`: the picture went to
                the rescue folder).
            JobError: another run is writing the same output (:meth:`claim_output`).
        """
        self.claim_output()
        try:
            return self._run(runner, listener, on_wait)
        finally:
            if self._claim is not None:
                self._claim.release()

    def _run(
        self,
        runner: StyleTransfer,
        listener: Callable[[StepEvent], object] | None,
        on_wait: Callable[[int | None], object] | None,
    ) -> JobOutcome:
        runner.config = self.config  # only per-run options may differ: the network is shared
        if self.keep_alpha and self.content_path is not None:
            self._alpha = load_alpha(self.content_path)
        if self.digests is None and self.checkpoint_every is not None:
            self.digests = {role: file_digest(p) for role, p in self.inputs.items()}
        styles = [v for role, v in self.sources.items() if role.startswith("style")]
        style = styles[0] if len(styles) == 1 else styles
        try:
            with self._turn(runner, on_wait):
                result = runner.run(
                    self.sources["content"], style, self._on_step(listener), self.resume
                )
        except (TransferInterrupted, NonFiniteLossError) as exc:
            self._name_inputs(exc.result)
            if self.output is not None:
                save_or_rescue(self.finish(exc.result.image), self.output, exc.result.recipe)
            raise
        return self._finish_run(result)

    def _turn(
        self, runner: StyleTransfer, on_wait: Callable[[int | None], object] | None
    ) -> contextlib.AbstractContextManager[None]:
        """The run's turn on the CPU's cores (a GPU run takes none)."""
        if runner.device.type != "cpu" or not self.take_turns:
            return contextlib.nullcontext()
        stopped = lambda: self.stop.requested  # noqa: E731
        return take_turn(runner.threads, default_threads(), stopped, on_wait, self.turns_folder)

    def _on_step(
        self, listener: Callable[[StepEvent], object] | None
    ) -> Callable[[StepEvent], bool]:
        def on_step(event: StepEvent) -> bool:
            if listener is not None:
                listener(event)
            if self.plot_path is not None:
                self.losses.append(event.losses())
            if self.save_every and self.save_dir and event.step % self.save_every == 0:
                self._try_save_step(event)
            stop = self.stop.requested
            if self.checkpoint_every is not None and (stop or self._checkpoint_due(event)):
                self._try_checkpoint(event.state(copy=False))  # written at once
                self._checkpoint_clock = event.elapsed
            return stop or (self.stop_at is not None and event.step >= self.stop_at)

        return on_step

    def _checkpoint_due(self, event: StepEvent) -> bool:
        """Every ``checkpoint_every`` steps, or :data:`CHECKPOINT_SECONDS` after the last one:
        a 4096 px picture's top scale is 10 steps of over a minute each, none on a multiple."""
        if self._checkpoint_clock is None:
            self._checkpoint_clock = event.elapsed
        every = self.checkpoint_every
        if not every:
            return False
        return (
            event.step % every == 0 or event.elapsed - self._checkpoint_clock >= CHECKPOINT_SECONDS
        )

    def _try_save_step(self, event: StepEvent) -> None:
        """A ``--save-every`` image; when the disk refuses it, the run goes on and the outcome
        warns (the first failure is named)."""
        assert self.save_dir is not None
        path = self.save_dir / f"step_{event.step:05d}.png"
        try:
            save_image(self.finish(event.image()), path)
        except ImageError as exc:
            cause = exc.__cause__
            if not isinstance(cause, OSError):
                raise
            if self.step_failure is None:
                self.step_failure = (
                    f"the step image {path} could not be written ({cause.strerror or cause}); "
                    "the run went on without it"
                )

    def _finish_run(self, result: Result) -> JobOutcome:
        self._name_inputs(result)
        stopped = result.stop_reason == "stopped" and self.stop.requested
        image = self.finish(result.image)
        outcome = JobOutcome(result, image, self.output, stopped=stopped)
        if self.plot_path is not None and self.losses:
            title = f"{self.output.name if self.output else 'picture'}: losses"
            outcome.plot = plot_losses(self.losses, self.plot_path, title)
        if self.output is not None:
            self._note_folder()
            save_or_rescue(image, self.output, result.recipe)
        if stopped and self.checkpoint is not None and self.checkpointed_at is not None:
            outcome.checkpoint = self.checkpoint
        elif self.checkpoint is not None and self.checkpoint_every is not None:
            self.checkpoint.unlink(missing_ok=True)  # complete: nothing left to resume
        if not stopped:
            outcome.warnings += result_warnings(result, self.config)
        outcome.warnings += filter(None, [self.checkpoint_failure, self.step_failure])
        if self.folder_remade:
            outcome.warnings.append(
                f"the output folder {self.output and self.output.parent} was removed during "
                "the run; it was made again"
            )
        return outcome

    def _note_folder(self) -> None:
        """Before a write beside the output: note when its folder is gone (the write makes it
        again, :func:`painterly.files.atomic_write`; the outcome then says so)."""
        if self.output is not None and not self.output.parent.is_dir():
            self.folder_remade = True

    def _name_inputs(self, result: Result) -> None:
        """Put :meth:`describe_input`'s fields into the recipe's input records."""
        for role, fields in self.described.items():
            record = result.recipe.get("inputs", {}).get(role)
            if record is not None:
                record.update(fields)

    def finish(self, image: torch.Tensor) -> torch.Tensor:
        """The image to write: with the content's alpha put back when asked."""
        if self._alpha is None:
            return image
        alpha = resize_to(self._alpha, *image.shape[-2:])
        return torch.cat([image, alpha], dim=1)

    def _try_checkpoint(self, state: RunState) -> None:
        """:meth:`save_checkpoint`; when the disk refuses it, the run goes on (the last
        checkpoint written stays as it was) and the outcome warns."""
        self._note_folder()
        try:
            self.save_checkpoint(state)
        except OSError as exc:
            self.checkpoint_failure = (
                f"the checkpoint {self.checkpoint} could not be written at step {state.steps} "
                f"({exc.strerror or exc}); the last one written, if any, is unchanged"
            )

    def save_checkpoint(self, state: RunState) -> None:
        """Write ``OUTPUT.ckpt`` from a step's state (atomically), with what resuming needs."""
        assert self.checkpoint is not None and self.output is not None
        roles = ("init", "weights", *_TEMPORAL_ROLES)
        config = self.config.replace(
            **{role: self.inputs[role] for role in roles if role in self.inputs}
        )
        if config.style_masks:
            masks = [self.inputs[f"mask{k + 1}"] for k in range(len(config.style_masks))]
            config = config.replace(style_masks=tuple(masks))
        options = {
            "output": str(self.output.resolve()),
            "save_every": self.save_every,
            "save_dir": str(self.save_dir.resolve()) if self.save_dir else None,
            "checkpoint_every": self.checkpoint_every,
            "keep_alpha": self.keep_alpha,
            "plot": str(self.plot_path.resolve()) if self.plot_path else None,
            "losses": self.losses if self.plot_path else None,
        }
        digests = self.digests or {role: file_digest(p) for role, p in self.inputs.items()}
        save_checkpoint(self.checkpoint, state, config, self.inputs, digests, options)
        self.checkpointed_at = state.steps


def result_warnings(result: Result, config: Config) -> list[str]:
    """Sentences about a result that is probably not what was wanted: a near-uniform picture
    (B16) or a run whose loss never fell below its start at the final scale (B21)."""
    found = []
    spread = float(result.image.std()) * 255
    if spread < 2:
        found.append(
            f"the output is nearly uniform (std {spread:.2f}/255). Check the weights: content "
            "and style weight 0, or a --tv-weight far above the others, flatten the picture."
        )
    # The loss is evaluated at the start of each step: one step alone cannot show progress.
    # Within the final scale only: a larger scale's losses are larger (more positions), so a
    # coarse to fine run's last loss is often above its first scale's start (4096 px: 12×).
    scale = result.history[result.scale_start :]
    if len(scale) > 1 and 0 < scale[0] <= result.loss:
        hint = (
            "the --learning-rate is probably too high (pixels are in [0, 1]: try 0.02)"
            if config.optimizer == "adam"
            else "the start may already be as close as it gets (same photo and painting?)"
        )
        found.append(
            f"the loss never fell below its starting value ({scale[0]:.4g}); the "
            f"output is the starting image: {hint}."
        )
    return found


def _input_paths(config: Config, sources: dict[str, Source]) -> dict[str, str]:
    """role → absolute path of every file the run reads ("content", "style", …, "mask1", …,
    "init", "weights"), as checkpoints and recipes name them."""
    inputs = {role: str(s.resolve()) for role, s in sources.items() if isinstance(s, Path)}
    for k, mask in enumerate(config.style_masks or ()):
        inputs[f"mask{k + 1}"] = str(Path(mask).resolve())
    if config.init not in INIT_KEYWORDS:
        inputs["init"] = str(Path(config.init).resolve())
    if config.weights not in ("embedded", "torchvision"):
        inputs["weights"] = str(Path(config.weights).resolve())
    for role in _TEMPORAL_ROLES:  # a video frame's ω and c
        if getattr(config, role) is not None:
            inputs[role] = str(Path(getattr(config, role)).resolve())
    return inputs


#: The config's fields that name a video frame's temporal files, also their input roles.
_TEMPORAL_ROLES = ("temporal_target", "temporal_mask")


def _check_init(init: str) -> None:
    if init in INIT_KEYWORDS:
        return
    if not Path(init).exists():
        close = difflib.get_close_matches(init, INIT_KEYWORDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise JobError(
            f"--init {init!r} is neither content, noise, style nor an existing file{hint}"
        )
    load_image(init)


def _check_output(output: Path, read: Sequence[Path], written: Sequence[Path]) -> None:
    """The output can be written, in a known format, without overwriting an input."""
    if output.is_dir():
        raise JobError(f"{output}: is a folder; give the output a file name")
    for parent in output.parents:
        if parent.exists() and not parent.is_dir():
            raise JobError(f"{output}: {parent} is a file, not a folder")
    output_format(output)
    # Every file the run will write (the picture, its checkpoint, its plot) against every
    # file it reads, by resolved path, so that a symlink or ./name is caught too.
    for path in read:
        for target in written:
            if path.resolve() == target.resolve():
                raise JobError(f"{target}: the output would overwrite an input image")
    _make_folder(output.parent)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(f"{folder}: cannot create this folder ({exc.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise JobError(f"{folder}: this folder is not writable")
