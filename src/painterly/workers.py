"""Scheduling for the faces that paint many things: in this process, in local worker
processes, or as Ray tasks.

A face (:mod:`painterly.batch`: one picture per task; :mod:`painterly.video`: one video, or one
chunk of a video, per task) builds its tasks, each a picklable object of the :class:`Task`
kind that knows how to paint itself through the job runner, and hands them to
:func:`schedule`, which yields each task with the :class:`Ran` it sent back as it ends. This
module owns the parts every such face would otherwise copy: the spawned pool with its shared
stop event and progress queue, the Ray tasks (resources, one retry, cancel on stop, loopback
for a local cluster), the torch threads per task, one network per process, and the kernel plan
chosen once by the driver (:func:`shared_plan`) so that every worker paints the same pixels.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from .config import Config
from .job import StopRequest
from .kernels import KernelPlan, choose_kernels
from .transfer import StyleTransfer, resolve_device

__all__ = [
    "Progress",
    "Ran",
    "State",
    "Task",
    "cpu_cores",
    "default_threads",
    "reason",
    "runner_for",
    "schedule",
    "shared_plan",
]

State = Literal["done", "skipped", "failed", "stopped"]

#: What a running task reports: (task name, step or frame, total of that task).
Progress = Callable[[str, int, int], object]

#: The Config fields that build the network (StyleTransfer.__init__): tasks that agree on them
#: share one loaded network per process.
_NETWORK_FIELDS = (
    "weights",
    "pooling",
    "content_layers",
    "style_layers",
    "style_layer_weights",
    "device",
    "precision",
    "convolution",
)


@dataclass
class Ran:
    """What a task sends back (picklable).

    Attributes:
        state: ``"done"``, ``"failed"`` or ``"stopped"``. error: the one-line reason of a
            failure. seconds: wall time. resumed: it continued from a checkpoint. steps:
            optimiser steps reached (a video task: frames painted). warnings: sentences about
            a suspicious result. picture: a Ray task's encoded output, for the driver to write.
            frames: a video task's last frame written (its index in the video).
    """

    state: State
    error: str | None
    seconds: float
    resumed: bool = False
    steps: int = 0
    warnings: list[str] = field(default_factory=list)
    picture: bytes | None = None
    frames: int = 0


class Task(Protocol):
    """One unit of work (picklable): a picture of a batch, a video or a chunk of one."""

    @property
    def name(self) -> str:
        """Unique within the run; the name progress reports carry."""

    @property
    def config(self) -> Config:
        """Its options (the device decides a Ray task's GPU)."""

    @property
    def threads(self) -> int | None:
        """torch threads (None: torch's default)."""

    def paint(self, stop: StopRequest, progress: Progress | None) -> Ran:
        """Paint in this process (serially or in a local worker), obeying ``stop``."""

    def ray_inputs(self) -> tuple[Any, ...]:
        """What the driver reads and sends along to the Ray task (raises OSError)."""

    def paint_remote(self, *inputs: Any) -> Ran:
        """Paint inside a Ray task from :meth:`ray_inputs`."""


T = TypeVar("T", bound=Task)

#: One network per distinct network options and kernel plan, per process: loaded once.
_RUNNERS: dict[tuple[Any, ...], StyleTransfer] = {}


def runner_for(config: Config, plan: KernelPlan | None) -> StyleTransfer:
    """This process's network for ``config`` with the driver's kernel ``plan`` (None: this
    machine's own choice), loaded on first use and kept for the next task."""
    key = (*(repr(getattr(config, f)) for f in _NETWORK_FIELDS), repr(plan))
    if key not in _RUNNERS:
        _RUNNERS[key] = StyleTransfer(config, kernels=plan)
    return _RUNNERS[key]


def shared_plan(config: Config, threads: int | None) -> KernelPlan:
    """The kernels every worker runs, chosen once by the driver for the threads each worker
    runs (``threads``; None: this process's): a plan measured on another thread count could
    differ (timings near a tie), and one plan for all workers keeps their pixels the same."""
    device = resolve_device(config.device)
    return choose_kernels(device, config.precision, config.convolution, threads=threads)


def reason(exc: BaseException) -> str:
    """The one line a failed task is reported with: the message ``stylize`` prints after
    ``painterly: error:`` (or the error's kind when it has none)."""
    text = " ".join(str(exc).split())
    known = (ValueError, OSError, MemoryError, RuntimeError)
    if isinstance(exc, known) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS says it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads(workers: int, ray: str | bool | None) -> int | None:
    """torch threads per task: 1 per Ray task (its CPUs), ``cores // workers`` for local
    workers, torch's own default in this process."""
    if ray is not None and ray is not False:
        return 1
    return max(1, cpu_cores() // workers) if workers > 1 else None


# --------------------------------------------------------------------------- local workers


class _SharedStop(StopRequest):
    """A worker's stop request: set when the parent sets the shared event."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self._shared = event

    @property
    def requested(self) -> bool:
        return bool(self._shared.is_set()) or super().requested


_WORKER: dict[str, Any] = {}


def _init_worker(event: Any, steps: Any) -> None:
    """A local worker's start: Ctrl-C is the parent's to handle (it sets the shared stop)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["stop"] = _SharedStop(event)
    _WORKER["steps"] = steps


def _worker_paint(task: Task) -> Ran:
    steps = _WORKER["steps"]

    def progress(name: str, step: int, total: int) -> None:
        steps.put((name, step, total))

    return task.paint(_WORKER["stop"], progress)


def _drain(steps: Any, progress: Progress | None) -> None:
    while True:
        try:
            name, step, total = steps.get_nowait()
        except (queue.Empty, OSError, EOFError):
            return
        if progress is not None:
            progress(name, step, total)


def _run_pool(
    tasks: Sequence[T], workers: int, stop: StopRequest, progress: Progress | None
) -> Iterator[tuple[T, Ran]]:
    """``workers`` spawned processes, each painting one task at a time with its own network."""
    context = multiprocessing.get_context("spawn")
    event, steps = context.Event(), context.Queue()
    with ProcessPoolExecutor(workers, context, _init_worker, (event, steps)) as pool:
        futures: dict[Future[Ran], T] = {pool.submit(_worker_paint, t): t for t in tasks}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            if stop.requested and not event.is_set():
                event.set()
                for f in pending:
                    f.cancel()  # those not started yet
            _drain(steps, progress)
            for f in done:
                if f.cancelled():
                    continue
                try:
                    ran = f.result()
                except BrokenProcessPool as exc:
                    ran = Ran("failed", f"a worker process died: {reason(exc)}", 0.0)
                yield futures[f], ran
        _drain(steps, progress)


# --------------------------------------------------------------------------- Ray


def _ray_paint(task: Task, *inputs: Any) -> Ran:
    """A Ray task: the task paints itself from what the driver sent."""
    return task.paint_remote(*inputs)


def _ray_resources(config: Config, threads: int) -> dict[str, Any]:
    gpus = 1 if config.device.startswith("cuda") else 0
    return {"num_cpus": threads, "num_gpus": gpus, "max_retries": 1}


def _run_ray(tasks: Sequence[T], address: str | None, stop: StopRequest) -> Iterator[tuple[T, Ran]]:
    """Each task a Ray task declaring its CPUs (and a GPU for a CUDA device), retried once if
    its worker dies; what it needs goes as :meth:`Task.ray_inputs`, its result comes back."""
    if not address:
        # A cluster of this machine alone listens on loopback only: Ray then takes 127.0.0.1
        # as the node's address (the variable's name speaks of Windows/macOS, where that is
        # Ray's default), instead of the machine's network address.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray  # the optional extra: painterly[ray]

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address or None, log_to_driver=False, include_dashboard=False)
    remote = ray.remote(_ray_paint)
    refs: dict[Any, T] = {}
    try:
        for t in tasks:
            try:
                data = t.ray_inputs()
            except OSError as exc:
                yield t, Ran("failed", f"{exc.filename}: cannot read ({exc.strerror})", 0.0)
                continue
            options = _ray_resources(t.config, t.threads or 1)
            refs[remote.options(**options).remote(t, *data)] = t
        pending, cancelled = list(refs), False
        while pending:
            if stop.requested and not cancelled:
                cancelled = True
                for ref in pending:
                    ray.cancel(ref)
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            for ref in done:
                yield refs[ref], _ray_result(ray, ref)
    finally:
        if started_here:
            ray.shutdown()


def _ray_result(ray: Any, ref: Any) -> Ran:
    try:
        ran: Ran = ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        return Ran("stopped", "cancelled by the stop request", 0.0)
    except ray.exceptions.RayError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return Ran("failed", f"the Ray task failed (retried once): {first}", 0.0)
    return ran


# --------------------------------------------------------------------------- the choice


def schedule(
    tasks: Sequence[T],
    workers: int = 1,
    ray: str | bool | None = None,
    stop: StopRequest | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[T, Ran]]:
    """Paint the tasks, yielding each with what it sent back as it ends (in the order they
    end).

    Args:
        tasks: each paints itself (:class:`Task`).
        workers: tasks at once in local spawned worker processes (1: one after another in
            this process, in the given order).
        ray: each task a Ray task: ``True`` or ``""`` for a local Ray (or the one already
            initialised), or a cluster's address. Needs ``painterly[ray]``.
        stop: set it to stop every running task at the end of its step (tasks not started
            are then not started; Ray tasks are cancelled).
        progress: called in this process with (task name, step, total) as tasks report.

    Raises:
        TransferInterrupted: a hard stop (a second Ctrl-C) of a task running in this process.
        ImportError: ``ray`` asked for but not installed.
    """
    stop = stop or StopRequest()
    if not tasks:
        return
    if ray is not None and ray is not False:
        yield from _run_ray(tasks, ray if isinstance(ray, str) else None, stop)
    elif workers > 1:
        yield from _run_pool(tasks, workers, stop, progress)
    else:
        for task in tasks:
            if stop.requested:
                return
            yield task, task.paint(stop, progress)
