"""The ``painterly`` command, one module per subcommand: ``stylize``, ``resume``,
``reproduce``, ``animate``, ``sweep``, ``batch``, ``video``, ``layers``, ``serve``, ``doctor``.

Exit codes: 0 success; 1 unexpected internal error; 2 bad input, option or output path
(reported before any compute); 3 the run would not fit in memory (said before any compute, with
a size that fits); 4 the loss became non-finite (the best finite image is saved);
130 interrupted by Ctrl-C, 143 stopped by SIGTERM (either way the best image so far is
saved to the output path, and for ``stylize`` a checkpoint that ``painterly resume`` continues).
``batch`` exits with 1 when any of its jobs failed (its table says which and why).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence

from ..checkpoint import CheckpointError
from ..config import ConfigError
from ..images import ImageError
from ..job import JobError, TurnStoppedError
from ..media import VideoError
from ..memory import NotEnoughMemoryError
from ..recipe import RecipeError, painterly_version
from ..transfer import NonFiniteLossError, TransferInterrupted
from ..weights import WeightsError
from . import animate, batch, doctor, layers, reproduce, resume, serve, stylize, sweep, video
from .common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_MEMORY,
    EXIT_NONFINITE,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Terminated,
    on_sigterm,
)
from .options import UsageError

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_MEMORY",
    "EXIT_NONFINITE",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

#: Subcommand → (its module's add_parser, its run), in the order ``--help`` lists them.
_COMMANDS: dict[str, tuple[Callable[..., None], Callable[[argparse.Namespace], int]]] = {
    "stylize": (stylize.add_parser, stylize.run),
    "animate": (animate.add_parser, animate.run),
    "reproduce": (reproduce.add_parser, reproduce.run),
    "resume": (resume.add_parser, resume.run),
    "sweep": (sweep.add_parser, sweep.run),
    "batch": (batch.add_parser, batch.run),
    "video": (video.add_parser, video.run),
    "layers": (layers.add_parser, layers.run),
    "serve": (serve.add_parser, serve.run),
    "doctor": (doctor.add_parser, doctor.run),
}

#: Errors reported in one line with exit code 2: a bad input, option or path.
_USAGE_ERRORS = (
    UsageError,
    ConfigError,
    ImageError,
    WeightsError,
    CheckpointError,
    RecipeError,
    JobError,
    VideoError,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``painterly`` command."""
    parser = argparse.ArgumentParser(
        prog="painterly",
        description="Repaint a photo in the style of a painting (Gatys et al. 2016).",
        epilog="Exit codes: 0 ok, 1 internal error, 2 bad input or option, 3 not enough memory, "
        "4 non-finite loss, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).",
    )
    parser.add_argument("--version", action="version", version=f"painterly {painterly_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser, _ in _COMMANDS.values():
        add_parser(sub)
    return parser


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Warnings (an animated input, an upscaled painting) as one line, like every message,
    each once however many times the inputs are read."""
    text = str(message)
    if text not in _WARNED:
        _WARNED.add(text)
        print(f"painterly: warning: {text}", file=sys.stderr)


_WARNED: set[str] = set()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    _WARNED.clear()
    try:
        return _COMMANDS[args.command][1](args)
    except _USAGE_ERRORS as exc:
        print(f"painterly: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NotEnoughMemoryError as exc:
        print(f"painterly: error: {exc}", file=sys.stderr)
        return EXIT_MEMORY
    except TurnStoppedError:
        print("painterly: stopped while waiting for the cores", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TransferInterrupted as exc:
        by_sigterm = isinstance(exc.__context__, Terminated)
        return EXIT_TERMINATED if by_sigterm else EXIT_INTERRUPTED
    except KeyboardInterrupt as exc:
        print("painterly: interrupted", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except NonFiniteLossError:
        return EXIT_NONFINITE
    except BrokenPipeError:  # `painterly layers | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)
        warnings.showwarning = shown
