"""Many pictures: every photo × every style (or given pairs) × a grid of options, resumable.

A face on the job runner (:mod:`painterly.job`): each picture is a :class:`~painterly.job.Job`,
checked, stopped, checkpointed and saved there. This module only plans the jobs
(:func:`plan_jobs`), schedules them (in this process, in local worker processes, or as Ray
tasks, through :mod:`painterly.workers`), and keeps the manifest ``OUT_DIR/manifest.jsonl``
(:class:`Manifest`): one JSON line per job that ended, with its inputs' SHA-256, its options,
its state, output, error and seconds. Running the same batch again skips the jobs done with
unchanged inputs and options, resumes those with a checkpoint
(:meth:`~painterly.job.Job.from_checkpoint`) and redoes the rest. A job that fails (an
unreadable photo) fails alone, with the one-line message ``painterly stylize`` would print
for it.

>>> from painterly.batch import run_batch
>>> for r in run_batch(["photos/"], ["paintings/"], "out", size=256, seed=0):  # doctest: +SKIP
...     print(r.job.name, r.state, r.error)
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, checkpoint_path
from .config import Config, ConfigError, command_options
from .events import TransferInterrupted
from .files import atomic_write, file_digest
from .job import Job, JobError, StopRequest, TurnStoppedError
from .kernels import KernelPlan
from .kernels import default_threads as process_threads
from .transfer import StepEvent
from .workers import (
    Progress,
    Ran,
    State,
    cpu_cores,
    default_threads,
    reason,
    runner_for,
    schedule,
    shared_plan,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "BatchJob",
    "BatchResult",
    "Manifest",
    "cpu_cores",
    "expand_inputs",
    "parse_grid",
    "plan_jobs",
    "read_pairs",
    "run_batch",
    "run_jobs",
]

#: File endings a folder's pictures are recognised by (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")

#: The options that do not change the picture's pixels by definition of the batch: the
#: scheduler sets the CPU threads per worker.
_NOT_COMPARED = ("threads",)


@dataclass(frozen=True)
class BatchJob:
    """One picture of a batch.

    Attributes:
        name: unique and readable, ``{photo}__{style}`` (+ ``__{field}={value}`` per grid
            option); the output's stem and the manifest's job id.
        content, style: the photo and the painting (files).
        config: the options of this picture (the grid's values applied).
        output: the file to write, ``OUT_DIR/{name}.png``.
        grid: the grid's values of this job (field → value), empty without a grid.
    """

    name: str
    content: Path
    style: Path
    config: Config
    output: Path
    grid: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    """How one job of a batch ended.

    Attributes:
        job: the job. state: ``"done"``, ``"skipped"`` (done before, inputs and options
            unchanged), ``"failed"`` or ``"stopped"`` (by the stop request; its checkpoint kept).
        output: the picture written (a stopped job's best image so far), or None.
        error: for a failed job, the one-line reason (as ``painterly stylize`` says it).
        seconds: wall time of this job in this run (0 for a skipped one).
        resumed: True when it continued from a checkpoint.
        steps: optimiser steps reached. warnings: sentences about a suspicious result.
        threads: the CPU threads it was painted with (also in the manifest and the recipe).
    """

    job: BatchJob
    state: State
    output: Path | None = None
    error: str | None = None
    seconds: float = 0.0
    resumed: bool = False
    steps: int = 0
    warnings: list[str] = field(default_factory=list)
    threads: int | None = None


# --------------------------------------------------------------------------- planning


def expand_inputs(items: Iterable[str | os.PathLike[str]], what: str = "photo") -> list[Path]:
    """Files, folders (their pictures, by :data:`IMAGE_SUFFIXES`, not recursive) and glob
    patterns, in the order given (a folder's and a pattern's files sorted by name), each once.

    Raises:
        JobError: an item that is neither a file, a folder with pictures, nor a pattern that
            matches a file.
    """
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise JobError(f"{path}: this folder holds no {what} ({', '.join(IMAGE_SUFFIXES)})")
        elif path.is_file():
            files = [path]
        elif glob.has_magic(str(item)):
            files = sorted(Path(p) for p in glob.glob(str(item)) if Path(p).is_file())
            if not files:
                raise JobError(f"{item}: no file matches this pattern")
        else:
            raise JobError(f"{path}: no such file or folder")
        found += files
    return list(dict.fromkeys(p.resolve() for p in found))


def read_pairs(path: Path) -> list[tuple[Path, Path]]:
    """Explicit (photo, style) pairs: one pair a line, ``PHOTO STYLE`` separated by a tab or
    spaces (a tab when a name holds spaces), ``#`` starts a comment; relative names are read
    from the pairs file's folder.

    Raises:
        JobError: the file cannot be read, or a line is not a pair of existing files.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise JobError(f"{path}: cannot read the pairs file ({exc.strerror})") from None
    pairs = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split("\t") if "\t" in text else text.split()
        if len(fields) != 2:
            raise JobError(f"{path}:{number}: expected 'PHOTO STYLE', got {text!r}")
        files = [(path.parent / f.strip()).resolve() for f in fields]
        for f in files:
            if not f.is_file():
                raise JobError(f"{path}:{number}: {f}: no such file")
        pairs.append((files[0], files[1]))
    if not pairs:
        raise JobError(f"{path}: no pairs in this file")
    return pairs


def parse_grid(text: str) -> tuple[str, tuple[Any, ...]]:
    """``"style_weight=1e2,1e3"`` → ``("style_weight", (100.0, 1000.0))``.

    Any :class:`~painterly.config.Config` option (``style-weight`` works too); values are read
    as the option's kind (numbers, words, ``true``/``false``); a list option's values are
    separated by ``;`` (``style_layers=relu1_1,relu2_1;relu3_1``).

    Raises:
        ConfigError: no ``=``, an unknown option, or a value of the wrong kind.
    """
    key, sep, values = text.partition("=")
    name = key.strip().lstrip("-").replace("-", "_")
    specs = {s.name: s for s in command_options()}
    if not sep or name not in specs:
        known = ", ".join(specs)
        raise ConfigError(f"--grid {text!r}: expected OPTION=V1,V2 with an option of: {known}")
    spec = specs[name]
    items = [v.strip() for v in values.split(";" if spec.kind == "list" else ",")]
    if not all(items):
        raise ConfigError(f"--grid {text!r}: an empty value")
    try:
        parsed = tuple(_grid_value(spec.kind, spec.item, spec.word, v) for v in items)
    except ValueError as exc:
        raise ConfigError(f"--grid {text!r}: {exc}") from None
    return name, parsed


def _grid_value(kind: str, item: str | None, word: str | None, text: str) -> Any:
    if word is not None and text.lower() in (word, "none"):
        return None
    if kind == "bool":
        if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise ValueError(f"{text!r} is not true or false")
        return text.lower() in ("true", "yes", "1")
    if kind == "list":
        convert = {"int": int, "float": float}.get(item or "str", str)
        return tuple(convert(t.strip()) for t in text.split(",") if t.strip())
    convert = {"int": int, "float": float}.get(kind, str)
    return convert(text)


def _format_value(value: Any) -> str:
    """A grid value as it reads in a file name: 1e2, 0.5, relu1_1+relu2_1, true."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        mantissa, exponent = f"{value:e}".split("e")
        if float(mantissa) == 1.0 and int(exponent) != 0:
            return f"1e{int(exponent)}"
        return f"{value:g}"
    if isinstance(value, tuple):
        return "+".join(_format_value(v) for v in value)
    return str(value)


def _safe(text: str) -> str:
    """A file-name-safe version of a name (letters, digits, ``. _ - = +`` kept)."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("._") or "image"


def _unique_names(paths: Sequence[Path]) -> dict[Path, str]:
    """Each path's readable short name: its stem, with its folder's name in front where two
    stems collide (``a-cat``, ``b-cat``), and a number where that still collides."""
    stems = [_safe(p.stem) for p in paths]
    names = {}
    for path, stem in zip(paths, stems, strict=True):
        names[path] = stem if stems.count(stem) == 1 else f"{_safe(path.parent.name)}-{stem}"
    seen: dict[str, int] = {}
    for path in paths:
        base = names[path]
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:
            names[path] = f"{base}-{seen[base]}"
    return names


def plan_jobs(
    photos: Sequence[Path],
    styles: Sequence[Path],
    out_dir: Path,
    config: Config,
    *,
    pairs: Sequence[tuple[Path, Path]] | None = None,
    grid: Sequence[tuple[str, Sequence[Any]]] = (),
) -> list[BatchJob]:
    """The jobs of a batch: every photo × every style (or the given ``pairs``) × every point
    of the ``grid`` (the product of its options' values), named ``{photo}__{style}`` plus
    ``__{option}={value}`` per grid option, written as PNG in ``out_dir``.

    Raises:
        ConfigError: a grid value the Config refuses. JobError: no job at all.
    """
    couples = list(pairs) if pairs is not None else list(itertools.product(photos, styles))
    if not couples:
        raise JobError("nothing to paint: give at least one photo and one style")
    photo_names = _unique_names(list(dict.fromkeys(p for p, _ in couples)))
    style_names = _unique_names(list(dict.fromkeys(s for _, s in couples)))
    keys = [k for k, _ in grid]
    points = list(itertools.product(*(v for _, v in grid))) if grid else [()]
    jobs, used = [], set()
    for (photo, style), point in itertools.product(couples, points):
        values = dict(zip(keys, point, strict=True))
        label = "".join(f"__{k}={_safe(_format_value(v))}" for k, v in values.items())
        name = f"{photo_names[photo]}__{style_names[style]}{label}"
        base, k = name, 1
        while name in used:  # the same pair given twice in --pairs
            k += 1
            name = f"{base}-{k}"
        used.add(name)
        cfg = config.replace(**values)
        jobs.append(BatchJob(name, photo, style, cfg, out_dir / f"{name}.png", values))
    return jobs


# --------------------------------------------------------------------------- manifest


def _options(config: Config) -> dict[str, Any]:
    """The options a job's output depends on, JSON-like (``threads`` left out)."""
    options = config.to_dict()
    for key in _NOT_COMPARED:
        options.pop(key, None)
    return options


def _digest(path: Path) -> str | None:
    try:
        return file_digest(path)
    except OSError:
        return None


class Manifest:
    """``OUT_DIR/manifest.jsonl``: one JSON line per job that ended, appended as it ends.

    Each line: ``{"job", "inputs": {"content"/"style": {"path", "sha256"}}, "options",
    "state", "output", "error", "seconds", "resumed", "steps", "ended"}``. The last line of a
    job says how it stands; a damaged line (a crash while writing) is ignored.
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / "manifest.jsonl"
        self.last: dict[str, dict[str, Any]] = {}
        self._digests: dict[Path, str | None] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                    self.last[str(record["job"])] = record
                except (ValueError, KeyError, TypeError):
                    continue

    def inputs(self, job: BatchJob) -> dict[str, dict[str, str | None]]:
        """The job's input files with their SHA-256 (None for an unreadable file)."""
        found = {}
        for role, path in (("content", job.content), ("style", job.style)):
            if path not in self._digests:
                self._digests[path] = _digest(path)
            found[role] = {"path": str(path), "sha256": self._digests[path]}
        return found

    def is_done(self, job: BatchJob) -> bool:
        """True when this job ended done with the same inputs (bytes) and options, and its
        output is still there."""
        record = self.last.get(job.name)
        return (
            record is not None
            and record.get("state") == "done"
            and record.get("inputs") == self.inputs(job)
            and record.get("options") == _options(job.config)
            and job.output.is_file()
        )

    def write(self, result: BatchResult) -> None:
        """Append the line of a job that ended (flushed to disk at once)."""
        record = {
            "job": result.job.name,
            "inputs": self.inputs(result.job),
            "options": _options(result.job.config),
            "state": result.state,
            "output": str(result.output) if result.output else None,
            "error": result.error,
            "seconds": round(result.seconds, 3),
            "resumed": result.resumed,
            "steps": result.steps,
            "threads": result.threads,
            "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.last[result.job.name] = record
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


# --------------------------------------------------------------------------- painting


@dataclass(frozen=True)
class _Task:
    """What a worker needs to paint one job (picklable); a :class:`painterly.workers.Task`."""

    job: BatchJob
    threads: int | None
    checkpoint_every: int | None
    resume: bool
    kernels: KernelPlan | None = None  # the driver's plan: the same pixels on any worker

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def config(self) -> Config:
        return self.job.config

    def paint(self, stop: StopRequest, progress: Progress | None) -> Ran:
        """Paint in this process (serially, or inside a local worker)."""
        try:
            job, resumed = _make_job(self, stop)
        except (ConfigError, JobError) as exc:
            return Ran("failed", reason(exc), 0.0)
        total = sum(steps for _, steps in job.config.ladder)

        def listener(event: StepEvent) -> None:
            if progress is not None:
                progress(self.name, event.step, total)

        ran = _paint(job, stop, listener, self.kernels)
        ran.resumed = resumed
        return ran

    def ray_inputs(self) -> tuple[bytes, bytes]:
        """The photo's and the painting's bytes (a cluster's machines have no shared disk)."""
        return self.job.content.read_bytes(), self.job.style.read_bytes()

    def paint_remote(self, content: bytes, style: bytes) -> Ran:
        """A Ray task: paint from the inputs' bytes in a private folder, send the PNG back."""
        bj = self.job
        with tempfile.TemporaryDirectory(prefix="painterly-") as tmp:
            folder = Path(tmp)
            c_path, s_path = folder / f"c{bj.content.suffix}", folder / f"s{bj.style.suffix}"
            c_path.write_bytes(content)
            s_path.write_bytes(style)
            out = folder / "out" / bj.output.name
            config = bj.config.replace(threads=self.threads)
            job = Job(config, c_path, [s_path], out, checkpoint_every=None)
            for role, path in (("content", bj.content), ("style", bj.style)):
                job.describe_input(role, name=path.name, path=str(path))
            ran = _paint(job, StopRequest(), None, self.kernels)
            if ran.state == "done":
                ran.picture = out.read_bytes()
            elif ran.error:
                ran.error = ran.error.replace(str(c_path), str(bj.content))
                ran.error = ran.error.replace(str(s_path), str(bj.style))
        return ran


def _make_job(task: _Task, stop: StopRequest) -> tuple[Job, bool]:
    """The job runner's Job for a task: continued from its checkpoint when there is one for
    the same options and inputs, else from the start."""
    bj = task.job
    ckpt = checkpoint_path(bj.output)
    if task.resume and ckpt.is_file():
        try:
            job = Job.from_checkpoint(ckpt, stop)
            if _options(job.config) == _options(bj.config):
                job.config = job.config.replace(threads=task.threads)
                return job, True
        except CheckpointError:
            pass  # an input changed or the file is damaged: paint again from the start
    config = bj.config.replace(threads=task.threads)
    job = Job(
        config, bj.content, [bj.style], bj.output, checkpoint_every=task.checkpoint_every, stop=stop
    )
    return job, False


def _paint(
    job: Job,
    stop: StopRequest,
    listener: Callable[[StepEvent], object] | None,
    plan: KernelPlan | None,
) -> Ran:
    """Check and run one Job with the job runner; any error fails this job alone."""
    started = time.perf_counter()
    try:
        job.check_files()
        runner = runner_for(job.config, plan)
        job.check_memory(runner)
        outcome = job.run(runner, listener)
    except TransferInterrupted:
        raise  # a second Ctrl-C: stop the whole batch at once
    except TurnStoppedError:
        return Ran("stopped", None, time.perf_counter() - started)
    except Exception as exc:
        return Ran("failed", reason(exc), time.perf_counter() - started)
    state: State = "stopped" if outcome.stopped else "done"
    ran = Ran(state, None, time.perf_counter() - started, steps=outcome.result.steps)
    ran.warnings = list(outcome.warnings)
    return ran


# --------------------------------------------------------------------------- the batch


def run_jobs(
    jobs: Sequence[BatchJob],
    out_dir: Path,
    *,
    workers: int = 1,
    ray: str | bool | None = None,
    stop: StopRequest | None = None,
    progress: Progress | None = None,
    checkpoint_every: int | None = 100,
) -> Iterator[BatchResult]:
    """Paint the jobs, yielding each one's :class:`BatchResult` as it ends (skipped ones first),
    after writing its manifest line.

    Args:
        jobs: from :func:`plan_jobs`. out_dir: where the manifest lies.
        workers: jobs at once in local worker processes (1: in this process); each gets
            ``cores // workers`` torch threads unless the jobs' config sets ``threads``.
        ray: run each job as a Ray task: ``True`` or ``""`` for a local Ray (or the one
            already initialised), or a cluster's address. Needs ``painterly[ray]``.
        stop: set it to stop every running job at the end of its step, keeping checkpoints
            (jobs not started are then not started; Ray tasks are cancelled).
        progress: called with (job name, step, total steps) as jobs step.
        checkpoint_every: as ``stylize --checkpoint-every`` (0: only on a stop request).

    Raises:
        TransferInterrupted: a hard stop (a second Ctrl-C) of the job running in this process.
        ImportError: ``ray`` asked for but not installed.
    """
    stop = stop or StopRequest()
    manifest = Manifest(out_dir)
    tasks = []
    for bj in jobs:
        if manifest.is_done(bj):
            yield BatchResult(bj, "skipped", bj.output)
            continue
        threads = bj.config.threads or default_threads(workers, ray)
        resume = checkpoint_path(bj.output).is_file() and ray is None
        # A cluster's machines choose their own kernels; on this machine all share one plan.
        plan = None if isinstance(ray, str) and ray else shared_plan(bj.config, threads)
        tasks.append(_Task(bj, threads, checkpoint_every, resume, plan))
    for task, ran in schedule(tasks, workers, ray, stop, progress):
        result = _result(task, ran)
        manifest.write(result)
        yield result


def _result(task: _Task, ran: Ran) -> BatchResult:
    """The BatchResult of a task; a Ray task's picture is written here, by the driver."""
    bj = task.job
    output: Path | None = bj.output if ran.state in ("done", "stopped") else None
    if ran.picture is not None:
        picture = ran.picture
        atomic_write(bj.output, lambda f: f.write(picture))
    elif output is not None and not output.is_file():
        output = None
    threads = task.threads or process_threads()
    return BatchResult(
        bj, ran.state, output, ran.error, ran.seconds, ran.resumed, ran.steps, ran.warnings, threads
    )


def run_batch(
    photos: Sequence[str | os.PathLike[str]],
    styles: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    config: Config | None = None,
    pairs: str | os.PathLike[str] | None = None,
    grid: Sequence[str] | dict[str, Sequence[Any]] = (),
    workers: int = 1,
    ray: str | bool | None = None,
    stop: StopRequest | None = None,
    progress: Progress | None = None,
    checkpoint_every: int | None = 100,
    **options: Any,
) -> Iterator[BatchResult]:
    """Paint every photo in every style (files, folders or glob patterns) into ``out_dir``,
    yielding each job's :class:`BatchResult` as it ends; see :func:`run_jobs`.

    Args:
        photos, styles: files, folders or patterns (ignored when ``pairs`` is given).
        config: the options (default: the default preset); ``options`` (any Config field)
            on top. A ``seed`` of None becomes 0, so that a rerun is the same batch.
        pairs: a file of explicit pairs (:func:`read_pairs`) instead of photos × styles.
        grid: ``["style_weight=1e2,1e3"]`` or ``{"style_weight": [1e2, 1e3]}``.

    Raises:
        JobError, ConfigError: before any compute, for bad inputs, pairs or options.
    """
    cfg = (config or Config()).replace(**options)
    if cfg.seed is None:
        cfg = cfg.replace(seed=0)
    out = Path(out_dir)
    axes = list(grid.items()) if isinstance(grid, dict) else [parse_grid(g) for g in grid]
    couples = read_pairs(Path(pairs)) if pairs is not None else None
    found_photos = expand_inputs(photos) if couples is None else []
    found_styles = expand_inputs(styles, "style") if couples is None else []
    jobs = plan_jobs(found_photos, found_styles, out, cfg, pairs=couples, grid=axes)
    return run_jobs(
        jobs,
        out,
        workers=workers,
        ray=ray,
        stop=stop,
        progress=progress,
        checkpoint_every=checkpoint_every,
    )
