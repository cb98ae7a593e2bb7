"""What every painting command shares: messages, the progress bar, signals, the model.

Signals are installed here, by the command line only: the first Ctrl-C or SIGTERM sets the
job's :class:`~painterly.job.StopRequest` (the run stops at the end of the step, saving the best
image and a checkpoint); a second one stops at once.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from tqdm import tqdm

from ..config import Config
from ..job import Job, JobOutcome, StopRequest, TurnStoppedError
from ..kernels import KernelPlan
from ..transfer import NonFiniteLossError, StepEvent, StyleTransfer, TransferInterrupted

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_MEMORY",
    "EXIT_NONFINITE",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "ProgressBar",
    "Signals",
    "Terminated",
    "load_runner",
    "say",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_MEMORY, EXIT_NONFINITE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM


def say(quiet: bool, message: str) -> None:
    """A message on standard error, unless ``quiet``."""
    if not quiet:
        print(message, file=sys.stderr)


def warn(message: str) -> None:
    """One warning line: ``painterly: warning: …``."""
    print(f"painterly: warning: {message}", file=sys.stderr)


def load_runner(config: Config, kernels: KernelPlan | None = None) -> StyleTransfer:
    """The network for ``config`` (loads the weights: call it after every cheap check);
    ``kernels`` a given plan (``reproduce``), else the machine's choice."""
    return StyleTransfer(config, kernels)


def header(job: Job, runner: StyleTransfer) -> str:
    """The first line of a run: what it will do, with the seed."""
    c = job.config
    return (
        f"painterly: preset {c.preset}, seed {c.seed}, device {runner.device}, precision "
        f"{runner.precision}, size {c.size} px, {runner.threads} threads; kernels: "
        f"{runner.kernels.describe()}"
    )


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly stop as Ctrl-C."""


def on_sigterm(signum: int, frame: object) -> None:
    """The SIGTERM handler outside a run: stop like Ctrl-C."""
    raise Terminated


class Signals:
    """Ctrl-C and SIGTERM during a run: the first sets ``stop`` (a stop at the end of the
    current step, so that the checkpoint is whole); a second one stops at once."""

    def __init__(self, stop: StopRequest | None = None) -> None:
        self.stop = stop or StopRequest()
        self._previous: dict[int, Any] = {}

    @property
    def received(self) -> int | None:
        """The first signal received, or None."""
        reason = self.stop.reason if self.stop.requested else None
        return signal.Signals[reason].value if reason in ("SIGINT", "SIGTERM") else None

    def _handle(self, signum: int, frame: object) -> None:
        if self.stop.requested:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        self.stop.request(signal.Signals(signum).name)
        print(
            "\npainterly: stopping at the end of this step (again to stop at once)",
            file=sys.stderr,
        )

    def __enter__(self) -> Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def exit_code(self) -> int:
        """The exit code of a run stopped by a signal: 143 for SIGTERM, else 130."""
        return EXIT_TERMINATED if self.received == signal.SIGTERM else EXIT_INTERRUPTED


class ProgressBar:
    """A tqdm bar over the run's steps, with the loss terms; a job listener."""

    def __init__(self, config: Config, quiet: bool, label: str = "", start: int = 0) -> None:
        self.bar = tqdm(
            total=sum(steps for _, steps in config.ladder),
            initial=start,
            disable=quiet,
            unit="step",
            desc=label or "painting",
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def __call__(self, event: StepEvent) -> None:
        self.bar.update(event.step - self.bar.n)
        self.bar.set_postfix_str(
            f"loss {event.loss:.3g} = content {event.content_loss:.3g} + style "
            f"{event.style_loss:.3g}"
            + (f" + tv {event.tv_loss:.3g}" if event.tv_loss else "")
            + (f" + temporal {event.temporal_loss:.3g}" if event.temporal_loss else ""),
            refresh=False,
        )

    def close(self) -> None:
        self.bar.close()


def waiting_message(pid: int | None) -> None:
    """The line a run prints when it waits for the cores (:mod:`painterly.turns`)."""
    who = f" (pid {pid})" if pid else ""
    tqdm.write(
        f"painterly: waiting for another painterly run{who} to finish with the cores "
        "(PAINTERLY_TURNS=off starts at once; --threads N shares them)",
        file=sys.stderr,
    )


def run_job(
    runner: StyleTransfer, job: Job, quiet: bool, label: str = ""
) -> tuple[JobOutcome, Signals]:
    """Run a job under a progress bar with Ctrl-C/SIGTERM as its stop request.

    Raises:
        TransferInterrupted, NonFiniteLossError: after saying what was saved (``main`` turns
            them into exit codes).
    """
    start = job.resume.steps if job.resume else 0
    bar = ProgressBar(job.config, quiet, label, start)
    with Signals(job.stop) as signals:
        try:
            outcome = job.run(runner, bar, waiting_message)
        except TurnStoppedError:
            bar.close()
            say(False, "painterly: stopped while waiting for the cores; nothing was painted")
            raise Terminated if signals.received == signal.SIGTERM else KeyboardInterrupt from None
        except Exception as exc:
            bar.close()  # before the message, so that it is not drawn over
            _say_saved(job, exc)
            raise
        finally:
            bar.close()
    if outcome.plot is not None:
        say(False, f"painterly: drew the losses in {outcome.plot}")
    return outcome, signals


def paint(runner: StyleTransfer, job: Job, quiet: bool) -> tuple[int, JobOutcome]:
    """Run a job (:func:`run_job`) after its header line, and say how it ended.

    Returns:
        (exit code: 0, or 130/143 for a stop by Ctrl-C/SIGTERM; the outcome).

    Raises:
        TransferInterrupted, NonFiniteLossError: as :func:`run_job`.
    """
    say(quiet, header(job, runner))
    outcome, signals = run_job(runner, job, quiet)
    result = outcome.result
    if outcome.stopped:
        say(
            False,
            f"painterly: stopped at step {result.steps} — saved the best image so far to "
            f"{job.output} and a checkpoint; continue with: painterly resume {job.checkpoint}",
        )
        return signals.exit_code(), outcome
    for message in outcome.warnings:
        warn(message)
    h, w = result.image.shape[-2:]
    say(
        False,  # the one line --quiet keeps: it holds the seed
        f"painterly: wrote {job.output} ({w}x{h}) in {result.elapsed:.1f} s — "
        f"{result.steps} steps, {result.function_evals} evaluations, loss "
        f"{result.loss:.4g}, stopped by {result.stop_reason}; seed {result.seed}",
    )
    return EXIT_OK, outcome


def _say_saved(job: Job, exc: Exception) -> None:
    if not isinstance(exc, TransferInterrupted | NonFiniteLossError) or job.output is None:
        return
    hint = ""
    if job.checkpointed_at is not None and isinstance(exc, TransferInterrupted):
        hint = (
            f"; the checkpoint of step {job.checkpointed_at} continues with: "
            f"painterly resume {job.checkpoint}"
        )
    say(
        False,
        f"painterly: {exc} — saved the best image so far (step {exc.result.steps}) to "
        f"{job.output}{hint}",
    )
