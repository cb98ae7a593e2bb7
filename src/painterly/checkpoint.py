"""Checkpoints: a run saved at the end of a step, to be continued later as if never stopped.

A checkpoint file holds the :class:`~painterly.transfer.RunState` (current and best image,
optimiser state, step, scale, seed, patience window, loss history), the resolved
:class:`~painterly.config.Config`, the input files' absolute paths with their SHA-256 digests,
and the command's own options (output path, saving). It is written with :func:`torch.save`
atomically and read back with ``weights_only=True``: plain tensors, numbers, strings, lists and
dicts only, never pickled code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from .config import Config, ConfigError
from .events import RunState
from .files import atomic_write, file_digest

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "checkpoint_path",
    "file_digest",
    "load_checkpoint",
    "save_checkpoint",
]

_FORMAT = "painterly-checkpoint"
_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or no longer fits its input files. Names the file."""


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        state: where the run stopped. config: its options (seed included).
        inputs: role → absolute path (``"content"``, ``"style"``, …).
        digests: role → SHA-256 hex digest of that file when the run started.
        options: the command's own settings (output path, saving), JSON-like values.
    """

    state: RunState
    config: Config
    inputs: dict[str, str]
    digests: dict[str, str]
    options: dict[str, Any]

    def verify_inputs(self) -> None:
        """Check that every input file is still there with the same bytes.

        Raises:
            CheckpointError: a file is missing or changed.
        """
        for role, path in self.inputs.items():
            if not Path(path).is_file():
                raise CheckpointError(f"the {role} image {path} of this checkpoint is gone")
            if file_digest(path) != self.digests.get(role):
                raise CheckpointError(
                    f"the {role} image {path} changed since the checkpoint was written; "
                    "resuming would not continue the same picture"
                )


def checkpoint_path(output: str | os.PathLike[str]) -> Path:
    """Where the checkpoint of a run writing ``output`` lies: ``out.png`` → ``out.png.ckpt``."""
    out = Path(output)
    return out.with_name(out.name + ".ckpt")


def save_checkpoint(
    path: str | os.PathLike[str],
    state: RunState,
    config: Config,
    inputs: dict[str, str],
    digests: dict[str, str],
    options: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (the previous one stays intact until the new one is whole).

    Args:
        path: the file to write (by convention :func:`checkpoint_path` of the output).
        state: from :meth:`painterly.transfer.StepEvent.state`.
        config: the run's config, with its seed set.
        inputs, digests: role → absolute path, and role → :func:`file_digest` of it.
        options: JSON-like extras for whoever resumes (e.g. the CLI's output path).

    Raises:
        OSError: the file cannot be written.
    """
    payload = {
        "format": _FORMAT,
        "version": _VERSION,
        "state": {f.name: getattr(state, f.name) for f in fields(RunState)},
        "config": config.to_dict(),
        "inputs": dict(inputs),
        "digests": dict(digests),
        "options": dict(options or {}),
    }
    return atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        CheckpointError: missing, unreadable, not a painterly checkpoint, from a newer version,
            or with options this version does not know.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        why = first if len(first) > 12 and not first.isdigit() else type(exc).__name__
        raise CheckpointError(
            f"{p}: not a readable checkpoint (damaged or not one: {why})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise CheckpointError(f"{p}: not a painterly checkpoint")
    if payload.get("version") != _VERSION:
        raise CheckpointError(
            f"{p}: checkpoint version {payload.get('version')!r}; this painterly reads "
            f"version {_VERSION}"
        )
    try:
        config = Config.from_dict(payload["config"])
        state = RunState(**payload["state"])
        return Checkpoint(
            state=state,
            config=config,
            inputs=dict(payload["inputs"]),
            digests=dict(payload["digests"]),
            options=dict(payload["options"]),
        )
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{p}: damaged checkpoint ({exc})") from None
