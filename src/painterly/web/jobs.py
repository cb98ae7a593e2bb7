"""The web app's state, without any web framework: decoded images and a one-at-a-time job queue.

Uploads are decoded once (and shrunk to the largest size a job may ask for), so a job never
touches a file. One worker thread runs the jobs in order; every step of a run updates the job's
progress, and a throttled PNG of the current image feeds the page's live view. Stopping a job
makes the step callback return True: :meth:`StyleTransfer.run` then returns the best image so
far, which becomes the job's result.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import re
import secrets
import threading
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from ..config import Config, ConfigError
from ..images import ImageError, load_image, resize_longest, to_pil
from ..job import Job as PaintJob
from ..job import StopRequest, TurnStoppedError
from ..memory import NotEnoughMemoryError, available_memory, check_memory, release_memory
from ..recipe import embed_options
from ..transfer import (
    NonFiniteLossError,
    Result,
    StepEvent,
    StyleTransfer,
    TransferInterrupted,
)
from ..weights import WeightsError

__all__ = [
    "LIMITS",
    "PRESERVE_COLORS",
    "ImageStore",
    "Job",
    "JobOptions",
    "JobQueue",
    "Limits",
    "StoredImage",
    "UserError",
    "find_examples",
]

log = logging.getLogger("painterly.web")

#: Whether this painterly's Config has the colour-preservation option; the page hides the
#: control when it has not. The job passes the value straight through as ``preserve_colors``.
PRESERVE_COLORS = "preserve_colors" in {f.name for f in dataclasses.fields(Config)}
PRESERVE_CHOICES: tuple[str, ...] = ("luminance", "histogram")

_INTERNAL = "Something went wrong inside painterly; the server's log has the details."


@dataclass(frozen=True)
class Limits:
    """What the app accepts. Sizes are in pixels, strength is log10(β/α)."""

    upload_bytes: int = 20 * 2**20
    upload_pixels: int = 40_000_000
    size_min: int = 64
    size_max: int = 1024
    iterations_min: int = 1
    iterations_max: int = 1000
    strength_min: float = 1.0
    strength_max: float = 5.0
    waiting_max: int = 8  # jobs waiting behind the running one
    uploads_kept: int = 16  # decoded uploads kept in memory (oldest dropped first)
    jobs_kept: int = 16  # finished jobs kept for download (oldest dropped first)
    # Slow clients: a request body must keep coming (a piece at least every body_idle_s
    # seconds) and be complete within body_total_s; at most uploads_at_once arrive at once
    # (each holds a temporary file of up to upload_bytes). A client that reads nothing of
    # its response for stall_s seconds is disconnected (painterly.web.bind: TCP_USER_TIMEOUT).
    body_idle_s: float = 15.0
    body_total_s: float = 120.0
    uploads_at_once: int = 16
    stall_s: float = 30.0
    plot_interval: float = 5.0  # least seconds between two drawings of a job's loss curves


LIMITS = Limits()


class UserError(ValueError):
    """A request the app refuses, with a sentence for the person using the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StoredImage:
    """A decoded image: RGB (1, 3, H, W) in [0, 1], at most ``size_max`` on its long side."""

    id: str
    name: str
    width: int  # as uploaded
    height: int
    tensor: torch.Tensor = field(repr=False)
    preview: bytes = field(repr=False)  # JPEG, at most 480 px on its long side


def display_name(name: str | None) -> str:
    """A client-supplied file name made safe to show (never used as a path)."""
    text = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = re.sub(r"[\x00-\x1f\x7f]", "", text).strip()
    return text[:80] or "the image"


def _jpeg(image: torch.Tensor, longest: int = 480) -> bytes:
    pil = to_pil(image)
    pil.thumbnail((longest, longest), Image.Resampling.BICUBIC)  # Pillow: one thread, not torch's
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def png_bytes(image: torch.Tensor, recipe: dict[str, Any] | None = None) -> bytes:
    """A (1, 3, H, W) image in [0, 1] as PNG bytes, with its recipe embedded when given."""
    buffer = io.BytesIO()
    metadata = embed_options(recipe, "PNG") if recipe else None
    to_pil(image).save(buffer, "PNG", **(metadata or {}))
    return buffer.getvalue()


def decode_upload(path: Path, name: str, limits: Limits = LIMITS) -> torch.Tensor:
    """Decode a file the server wrote itself; the name is only for messages.

    Raises:
        UserError: not an image Pillow can decode, or over the pixel limit.
    """
    limit = f"the limit of {limits.upload_pixels / 1e6:.3g} megapixels. Use a smaller picture."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as probe:
                width, height = probe.size
    except Image.DecompressionBombError as exc:  # Pillow names the pixels, not the sides
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        amount = f"{int(pixels.group(1)) / 1e6:.0f} megapixels" if pixels else "far too many pixels"
        raise UserError(f"{name} is too large: {amount} is over {limit}", 413) from None
    except Exception:  # load_image below says in words what is wrong
        width = height = 0
    if width * height > limits.upload_pixels:
        pixels_mp = f"{width * height / 1e6:.3g} megapixels"
        raise UserError(
            f"{name} is too large: {width}×{height} px ({pixels_mp}) is over {limit}", 413
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an animated file: its first frame is used
            return load_image(path)
    except ImageError as exc:
        message = str(exc).replace(str(path), name)
        if message.startswith(f"{name}: not a readable image"):
            message = f"{name} is not an image this app can read (try a JPEG or PNG file)."
        raise UserError(message) from None


class ImageStore:
    """Decoded uploads by random id, plus the bundled examples by fixed id."""

    def __init__(self, examples: dict[str, Path] | None = None, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self.examples = dict(examples or {})
        self._images: OrderedDict[str, StoredImage] = OrderedDict()
        self._example_cache: dict[str, StoredImage] = {}
        self._lock = threading.Lock()
        # One decode at a time: a 40-megapixel upload is about 0.5 GB as float32 pixels, and
        # a burst of uploads must not hold several of those at once (nor take every core).
        self._decoding = threading.Lock()

    def _make(self, image_id: str, name: str, tensor: torch.Tensor) -> StoredImage:
        height, width = tensor.shape[-2:]
        if max(height, width) > self.limits.size_max:
            tensor = resize_longest(tensor, self.limits.size_max)
        return StoredImage(image_id, name, width, height, tensor, _jpeg(tensor))

    def add_upload(self, path: Path, name: str) -> StoredImage:
        """Decode the server-written file ``path`` and keep it under a new random id.

        Raises:
            UserError: not a decodable image, or too many pixels.
        """
        with self._decoding:
            pixels = decode_upload(path, name, self.limits)
            image = self._make(secrets.token_urlsafe(12), name, pixels)
            del pixels
        with self._lock:
            self._images[image.id] = image
            while len(self._images) > self.limits.uploads_kept:
                self._images.popitem(last=False)
        # A decode's full-size pixels are freed into the allocator's heaps, which keep them
        # (uploads of many sizes grew a loaded app ~135 MB per 32): hand them back, as a run
        # does (issue 16; trims only once 256 MiB have grown since the last trim).
        release_memory()
        return image

    def get(self, image_id: str) -> StoredImage | None:
        """The image with this id (an upload or an example), or None."""
        with self._lock:
            if image_id in self._images:
                self._images.move_to_end(image_id)
                return self._images[image_id]
            if image_id in self._example_cache:
                return self._example_cache[image_id]
        path = self.examples.get(image_id)
        if path is None:
            return None
        image = self._make(image_id, example_name(path), load_image(path))
        with self._lock:
            self._example_cache[image_id] = image
        return image


def example_name(path: Path) -> str:
    """``starry_night.jpg`` → ``Starry night``."""
    return path.stem.replace("_", " ").capitalize()


def find_examples() -> tuple[dict[str, Path], dict[str, str]]:
    """The bundled example images (``{"content-tubingen": path, …}``) and their credit lines.

    They live in the source tree's ``examples/`` folder; an installed wheel has none, and then
    both dictionaries are empty (the page hides the examples).
    """
    root = Path(__file__).resolve().parents[3] / "examples"
    found: dict[str, Path] = {}
    for kind in ("content", "style"):
        for path in sorted((root / kind).glob("*.jpg")):
            found[f"{kind}-{path.stem}"] = path
    credits: dict[str, str] = {}
    try:
        text = (root / "CREDITS.md").read_text(encoding="utf-8")
    except OSError:
        text = ""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([\w.-]+)\.jpg`", cells[0]) if len(cells) >= 2 else None
        if match:
            words = " — ".join(re.sub(r"\s*\(`[^)]*`\)|[*`]", "", c).strip() for c in cells[1:])
            credits[match.group(1)] = re.sub(r"\s+", " ", words)
    return found, {key: credits.get(path.stem, "") for key, path in found.items()}


#: The command line's default: the page starts where ``painterly stylize`` does.
_DEFAULT = Config()


@dataclass
class JobOptions:
    """The few controls the page offers; everything else is the default preset. The style
    strength and the steps start at the command line's defaults."""

    size: int = 384
    # log10(β/α): β = 10**strength with α = 1
    strength: float = round(math.log10(_DEFAULT.style_weight / _DEFAULT.content_weight), 3)
    iterations: int = _DEFAULT.iterations
    preserve_colors: str | None = None

    @classmethod
    def parse(cls, data: dict[str, Any], limits: Limits = LIMITS) -> JobOptions:
        """Options from the page's JSON, checked against ``limits``.

        Raises:
            UserError: a value out of bounds or of the wrong kind, said in words.
        """

        def number(key: str, default: float, low: float, high: float, label: str) -> float:
            value = data.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UserError(f"{label} must be a number")
            if not (math.isfinite(value) and low <= value <= high):
                raise UserError(f"{label} must be between {low:g} and {high:g}, not {value:g}")
            return float(value)

        size = number("size", cls.size, limits.size_min, limits.size_max, "The size")
        iterations = number(
            "iterations", cls.iterations, limits.iterations_min, limits.iterations_max, "Steps"
        )
        strength = number(
            "strength", cls.strength, limits.strength_min, limits.strength_max, "Style strength"
        )
        preserve = data.get("preserve_colors") or None
        if preserve is not None and preserve not in PRESERVE_CHOICES:
            raise UserError(f"Preserve colours must be off, {' or '.join(PRESERVE_CHOICES)}")
        if preserve is not None and not PRESERVE_COLORS:
            raise UserError("This version of painterly cannot preserve colours")
        return cls(int(size), round(strength, 3), int(iterations), preserve)

    def config(self) -> Config:
        """The run's configuration: the default preset with these options."""
        extra: dict[str, Any] = (
            {"preserve_colors": self.preserve_colors or "none"} if PRESERVE_COLORS else {}
        )
        return Config.from_preset(
            "default",
            size=self.size,
            iterations=self.iterations,
            content_weight=1.0,
            style_weight=10.0**self.strength,
            seed=0,
            **extra,
        )


@dataclass
class Job:
    """One picture to paint, from the queue to its result."""

    id: str
    options: JobOptions
    config: Config
    content: StoredImage
    style: StoredImage
    created: float = field(default_factory=time.time)
    state: str = "queued"  # queued → running → done | stopped | failed | cancelled
    message: str = ""
    step: int = 0
    total: int = 0
    loss: float | None = None
    content_loss: float | None = None
    style_loss: float | None = None
    elapsed: float = 0.0
    started: float | None = None
    stop: StopRequest = field(default_factory=StopRequest)
    frame: bytes | None = None  # PNG of the latest live image
    frame_version: int = 0
    frame_step: int = 0
    result: bytes | None = None  # PNG of the final (best) image
    result_size: tuple[int, int] | None = None
    losses: list[dict[str, Any]] = field(default_factory=list)  # per step, for the plot
    plot: tuple[int, float, bytes] | None = None  # (steps drawn, when, PNG) of the last plot

    @property
    def stop_requested(self) -> bool:
        """True once Stop was pressed (or the app is closing)."""
        return self.stop.requested

    @property
    def finished(self) -> bool:
        """True once the job can no longer change."""
        return self.state in ("done", "stopped", "failed", "cancelled")

    def eta(self) -> float | None:
        """Seconds left at the current pace (the patience rule may end the run sooner)."""
        if self.state != "running" or self.step < 1:
            return None
        return self.elapsed / self.step * max(self.total - self.step, 0)


def _memory_problem(runner: StyleTransfer, job: Job) -> str | None:
    """Words for the page when the run would not fit in the memory available, else None.

    The same check as the command line's (:func:`painterly.memory.check_memory`), before compute;
    a run that fits only in tiles gets the tile in ``job.config`` (:mod:`painterly.tiles`).
    """
    h, w = job.content.tensor.shape[-2:]
    have = available_memory(runner.device.type, runner.device.index)
    try:
        _, check = check_memory(job.config, runner.precision, (int(w), int(h)), have)
        if check.tile is not None and job.config.tile is None:  # fits in tiles: paint so
            job.config = job.config.replace(tile=check.tile)
    except NotEnoughMemoryError as exc:
        check, gib = exc.check, 2**30
        words = (
            f"Not enough memory for {job.config.size} px on this computer (it needs about "
            f"{check.need / gib:.1f} GB, {(check.have or 0) / gib:.1f} GB is free)"
        )
        if check.fits < LIMITS.size_min:
            return f"{words}: close other programs and try again."
        return f"{words}: choose {check.fits} px or less."
    return None


def _ending(result: Result) -> tuple[str, str]:
    """The job's final state and the page's sentence for a run that returned."""
    if result.stop_reason == "stopped":
        return "stopped", f"Stopped at step {result.steps}; kept the best image."
    if result.stop_reason == "converged":
        return "done", f"Finished after {result.steps} steps: the picture stopped changing."
    return "done", f"Finished: {result.steps} steps in {result.elapsed:.0f} s."


class JobQueue:
    """Jobs run one at a time, in order, on a worker thread; and one at a time per computer,
    through a lock file that every painterly app takes while it paints.

    Args:
        limits: queue length and how many finished jobs are kept.
        frame_interval: least seconds between two live images (PNG encodes cost time).
        runner_factory: builds a :class:`StyleTransfer` for a config (tests may swap it).
        machine_lock: the folder of the cores' lock files shared with every painterly run on
            this computer (default: :func:`painterly.turns.lock_folder`; None: this app
            alone takes no turns with others).
    """

    def __init__(
        self,
        limits: Limits = LIMITS,
        frame_interval: float = 0.3,
        runner_factory: Callable[[Config], StyleTransfer] = StyleTransfer,
        machine_lock: Path | Literal["default"] | None = "default",
    ) -> None:
        self.limits = limits
        self._turns: Path | Literal["default"] | None = machine_lock
        self.frame_interval = frame_interval
        self.runner_factory = runner_factory
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._runner: StyleTransfer | None = None
        self._plotting = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="painterly-web-worker", daemon=True)
        self._thread.start()

    # -- the page's side ---------------------------------------------------------------------

    def submit(self, options: JobOptions, content: StoredImage, style: StoredImage) -> Job:
        """Queue a job.

        Raises:
            UserError: the queue is full or closed, or the options do not fit these images.
        """
        try:
            config = options.config()
        except ConfigError as exc:
            raise UserError(f"These settings cannot be used: {exc}") from None
        for label, image in (("photo", content), ("painting", style)):
            h, w = image.tensor.shape[-2:]
            scale = options.size / max(h, w)
            short = round(min(h, w) * scale)
            if short < config.min_side:
                raise UserError(
                    f"At {options.size} px the {label} would be only {short} px on its short "
                    f"side; the network needs at least {config.min_side}. Choose a larger size."
                )
        job = Job(secrets.token_urlsafe(9), options, config, content, style)
        with self._cond:
            if self._closed:
                raise UserError("The app is shutting down", 503)
            if len(self._waiting) >= self.limits.waiting_max:
                raise UserError(
                    f"The queue is full ({self.limits.waiting_max} pictures waiting); "
                    "try again when one has finished",
                    429,
                )
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._forget_old()
            self._cond.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        with self._cond:
            return self._jobs.get(job_id)

    def stop(self, job_id: str) -> Job | None:
        """Stop a running job (it keeps its best image) or cancel a waiting one."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.finished:
                return job
            if job.state == "queued":
                self._waiting.remove(job)
                job.state, job.message = "cancelled", "Cancelled before it started."
            else:
                job.stop.request("web")
            self._cond.notify_all()
            return job

    def status(self, job: Job) -> dict[str, Any]:
        """A JSON-friendly view of one job."""
        with self._cond:
            position = self._waiting.index(job) + 1 if job.state == "queued" else 0
            return {
                "id": job.id,
                "state": job.state,
                "message": job.message,
                "position": position,
                "step": job.step,
                "total": job.total,
                "loss": job.loss,
                "content_loss": job.content_loss,
                "style_loss": job.style_loss,
                "elapsed": round(job.elapsed, 2),
                "eta": None if (eta := job.eta()) is None else round(eta, 1),
                "frame": job.frame_version,
                "frame_step": job.frame_step,
                "has_result": job.result is not None,
                "result_size": job.result_size,
                "size": job.options.size,
                "stopping": job.stop_requested and not job.finished,
                "loss_steps": len(job.losses),
            }

    def losses(self, job: Job) -> list[dict[str, Any]]:
        """A copy of the job's per-step losses so far."""
        with self._cond:
            return list(job.losses)

    def fresh_plot(self, job: Job) -> bytes | None:
        """The job's last drawing of its loss curves, when it is still good enough to send:
        it shows every step so far, or (while the job runs) it is less than
        ``limits.plot_interval`` seconds old. None: call :meth:`draw_plot`."""
        with self._cond:
            if job.plot is None:
                return None
            steps, when, data = job.plot
            fresh = time.monotonic() - when < self.limits.plot_interval and not job.finished
            return data if steps == len(job.losses) or fresh else None

    def draw_plot(self, job: Job) -> bytes | None:
        """The job's loss curves as a PNG (None before its first step), drawn one at a time
        for every page: however many pages ask, a running job is drawn at most once per
        ``limits.plot_interval`` seconds (matplotlib takes a good part of a second).

        Raises:
            ImportError: matplotlib is not installed.
        """
        from ..plot import loss_figure_bytes

        with self._plotting:
            if (data := self.fresh_plot(job)) is not None:  # drawn while this one waited
                return data
            records = self.losses(job)
            if not records:
                return None
            data = loss_figure_bytes(records, "losses per step")
            with self._cond:
                job.plot = (len(records), time.monotonic(), data)
            return data

    def overview(self) -> dict[str, Any]:
        """The queue as every tab sees it: the running job and the ones waiting."""
        with self._cond:
            jobs = ([self._running] if self._running else []) + list(self._waiting)

            def row(job: Job) -> dict[str, Any]:
                return {
                    "id": job.id,
                    "state": job.state,
                    "step": job.step,
                    "total": job.total,
                    "size": job.options.size,
                    "content": job.content.name,
                    "style": job.style.name,
                }

            return {"jobs": [row(j) for j in jobs], "waiting": len(self._waiting)}

    def close(self, timeout: float = 10.0) -> None:
        """Cancel waiting jobs, stop the running one and wait for the worker to end."""
        with self._cond:
            self._closed = True
            for job in self._waiting:
                job.state, job.message = "cancelled", "The app was shut down."
            self._waiting.clear()
            if self._running is not None:
                self._running.stop.request("shutdown")
            self._cond.notify_all()
        self._thread.join(timeout)

    # -- the worker's side -------------------------------------------------------------------

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished]
        for job in finished[: max(len(finished) - self.limits.jobs_kept, 0)]:
            del self._jobs[job.id]

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                self._running = job
                job.state, job.started = "running", time.time()
                job.total = sum(n for _, n in job.config.ladder)
                job.message = "Loading the network…"
            try:
                self._run(job)
            except Exception:  # the worker must survive any job
                log.exception("job %s failed", job.id)
                self._finish(job, "failed", _INTERNAL)
            finally:
                with self._cond:
                    self._running = None
                    self._forget_old()

    def _runner_for(self, config: Config) -> StyleTransfer:
        """One network for all jobs: only per-run options may differ between two configs."""
        per_run = {"size", "iterations", "content_weight", "style_weight", "seed", "preset", "tile"}
        runner = self._runner
        if runner is not None:
            old = {k: v for k, v in vars(runner.config).items() if k not in per_run}
            new = {k: v for k, v in vars(config).items() if k not in per_run}
            if old == new:
                runner.config = config
                return runner
        self._runner = None  # free the old network before building the next
        self._runner = self.runner_factory(config)
        return self._runner

    def _run(self, job: Job) -> None:
        try:
            runner = self._runner_for(job.config)
            if (words := _memory_problem(runner, job)) is not None:
                self._finish(job, "failed", words)
                return
            with self._cond:
                if job.stop_requested:
                    self._finish(job, "stopped", "Stopped before the first step.")
                    return
                job.message = "Painting…"
            result = self._paint(runner, job)
        except TurnStoppedError:
            self._finish(job, "cancelled", "Cancelled before it started.")
            return
        except (TransferInterrupted, NonFiniteLossError) as exc:
            self._store_result(job, exc.result)
            reason = (
                "The picture went wrong (the loss became infinite); the best image before "
                "that is kept. Try a lower style strength."
                if isinstance(exc, NonFiniteLossError)
                else "Interrupted; the best image so far is kept."
            )
            self._finish(job, "stopped" if exc.result.steps else "failed", reason)
            return
        except (ConfigError, ImageError, WeightsError) as exc:
            self._finish(job, "failed", f"This picture cannot be painted: {exc}")
            return
        except MemoryError:
            self._finish(job, "failed", "Not enough memory for this size; choose a smaller one.")
            return
        self._store_result(job, result)
        self._finish(job, *_ending(result))

    def _paint(self, runner: StyleTransfer, job: Job) -> Result:
        """The run itself, through the job runner (no output file: the result stays here)."""
        painting = PaintJob(job.config, job.content.tensor, [job.style.tensor], stop=job.stop)
        for role, image in (("content", job.content), ("style", job.style)):
            painting.describe_input(role, name=image.name, max_side=self.limits.size_max)
        if self._turns is None:
            painting.take_turns = False
        elif self._turns != "default":
            painting.turns_folder = self._turns
        return painting.run(runner, self._on_step(job), self._on_wait(job)).result

    def _on_wait(self, job: Job) -> Callable[[int | None], None]:
        """What the page says while another painterly run on this computer has the cores."""

        def on_wait(pid: int | None) -> None:
            with self._cond:
                job.message = "Waiting for another painterly run on this computer to finish…"

        return on_wait

    def _on_step(self, job: Job) -> Callable[[StepEvent], None]:
        """The listener that keeps the job's progress and a throttled live image."""
        last_frame = 0.0

        def on_step(event: StepEvent) -> None:
            nonlocal last_frame
            frame = None
            if event.step == 1 or time.perf_counter() - last_frame >= self.frame_interval:
                frame = png_bytes(event.image())
                last_frame = time.perf_counter()
            with self._cond:
                job.step, job.total = event.step, event.total_steps
                job.loss, job.elapsed = event.loss, event.elapsed
                job.content_loss, job.style_loss = event.content_loss, event.style_loss
                job.losses.append(event.losses())
                job.message = ""
                if frame is not None:
                    job.frame, job.frame_step = frame, event.step
                    job.frame_version += 1

        return on_step

    def _store_result(self, job: Job, result: Result) -> None:
        data = png_bytes(result.image, result.recipe or None)
        height, width = result.image.shape[-2:]
        with self._cond:
            job.result, job.result_size = data, (int(width), int(height))
            job.frame, job.frame_step = data, result.steps
            job.frame_version += 1
            job.elapsed = result.elapsed

    def _finish(self, job: Job, state: str, message: str) -> None:
        with self._cond:  # a re-entrant lock: callers may hold it already
            job.state, job.message = state, message
