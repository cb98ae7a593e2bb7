"""What the core hands out: one :class:`StepEvent` per optimiser step, the :class:`RunState` a
run continues from, the :class:`Result`, and the two errors that carry a result.

Every room of the core (:mod:`~painterly.ladder`, :mod:`~painterly.optimise`,
:mod:`~painterly.objective`, :mod:`~painterly.transfer`) imports these; this module imports
no other part of painterly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["NonFiniteLossError", "Result", "RunState", "StepEvent", "TransferInterrupted"]


@dataclass(frozen=True)
class StepEvent:
    """What happened in one optimiser step.

    ``step`` counts steps over all scales (1 … ``total_steps``); ``scale`` is the 0-based index
    of the current scale of ``scales`` (coarse to fine).

    Losses are the weighted terms of the loss *evaluated at the start of the step*:
    ``loss = content_loss + style_loss + tv_loss`` (+ :attr:`temporal_loss` for a video frame),
    with ``content_loss = α·L_content`` etc. ``layer_losses`` holds each layer's weighted share
    (``"content/relu4_2"``, ``"style/relu1_1"``; a video frame's ``"temporal/previous"``).
    :meth:`image` and :meth:`best_image` copy the run's state at the moment they are called:
    call them inside the callback.
    """

    step: int
    total_steps: int
    scale: int
    scales: int
    function_evals: int
    loss: float
    content_loss: float
    style_loss: float
    tv_loss: float
    layer_losses: dict[str, float]
    best_loss: float
    elapsed: float
    _current: Callable[[], torch.Tensor] = field(repr=False)
    _best: Callable[[], torch.Tensor] = field(repr=False)
    _state: Callable[[bool], RunState] = field(repr=False)

    def image(self) -> torch.Tensor:
        """A copy of the current image, (1, 3, H, W) float32 on the CPU, in [0, 1]."""
        return self._current()

    def best_image(self) -> torch.Tensor:
        """A copy of the lowest-loss image so far, (1, 3, H, W) float32 on the CPU, in [0, 1]."""
        return self._best()

    def losses(self) -> dict[str, Any]:
        """This step's losses as one flat record: ``{"step", "scale", "total", "content",
        "style", "tv", "style/relu1_1", …}`` (what :func:`painterly.plot.plot_losses` draws);
        a video frame's also ``"temporal"``, the sum of its ``"temporal/…"`` parts."""
        record = {
            "step": self.step,
            "scale": self.scale,
            "total": self.loss,
            "content": self.content_loss,
            "style": self.style_loss,
            "tv": self.tv_loss,
            **self.layer_losses,
        }
        if any(k.startswith("temporal/") for k in self.layer_losses):
            record["temporal"] = self.temporal_loss
        return record

    @property
    def temporal_loss(self) -> float:
        """λ·L_temporal of a video frame (the sum of the ``"temporal/…"`` layer losses), else 0."""
        return sum(v for k, v in self.layer_losses.items() if k.startswith("temporal/"))

    def state(self, copy: bool = True) -> RunState:
        """Everything needed to continue the run exactly from the end of this step, on the
        CPU: pass it to :meth:`StyleTransfer.run` as ``resume``. Call it inside the callback.

        Args:
            copy: ``False`` skips copying tensors already on the CPU (the optimiser's memory is
                ~2 · history image-sized vectors): the state then shares storage with the
                running optimisation and is valid only until the callback returns, e.g. for
                writing it to a file at once.
        """
        return self._state(copy)


@dataclass(frozen=True)
class RunState:
    """A run frozen at the end of a step, from which :meth:`StyleTransfer.run` continues as if
    it had never stopped (same images, same losses; on the CPU, bit for bit).

    Attributes:
        seed: the run's seed. scale: 0-based index of the scale in the ladder.
        scale_step: steps done at this scale. steps, function_evals: counts over all scales.
        finished: the reason this scale ended at this step (``"iterations"``, ``"converged"``),
            or ``None`` while it goes on.
        image: the current iterate, (1, 3, H, W) float32 in [0, 1]. best: the lowest-loss image
            of this scale so far, same shape; best_loss: its loss.
        loss_scale: the factor L-BFGS's objective is multiplied by (1 / the scale's first loss).
        window: the patience rule's recent best losses. history: total loss after every step.
        optimizer: the optimiser's ``state_dict()``, tensors on the CPU.
        elapsed: seconds of work so far.
        average, average_steps: the iterate average's running sum m_t and t (``ema_decay``).
    """

    seed: int
    scale: int
    scale_step: int
    steps: int
    function_evals: int
    finished: str | None
    image: torch.Tensor = field(repr=False)
    best: torch.Tensor = field(repr=False)
    best_loss: float
    loss_scale: float
    window: list[float]
    history: list[float] = field(repr=False)
    optimizer: dict[str, Any] = field(repr=False)
    elapsed: float
    average: torch.Tensor | None = field(default=None, repr=False)
    average_steps: int = 0


@dataclass(frozen=True)
class Result:
    """The outcome of a run.

    Attributes:
        image: the lowest-loss image evaluated, (1, 3, H, W) float32 on the CPU, in [0, 1].
        loss: its total loss.
        steps: optimiser steps taken; function_evals: loss evaluations (they differ for L-BFGS
            with a line search).
        stop_reason: ``"iterations"``, ``"converged"`` (patience rule), ``"interrupted"`` or
            ``"non-finite"``.
        seed, device, precision: as resolved for this run. elapsed: seconds.
        history: total loss after each step, over all scales (each scale's losses are of its own
            size: a larger scale's are larger, so compare within one scale).
        scale_start: the index in ``history`` of the final scale's first step.
        recipe: what made it (:mod:`painterly.recipe`): the resolved config, inputs, weights,
            versions, timings; :func:`painterly.images.save_image` embeds it in the file.
    """

    image: torch.Tensor = field(repr=False)
    loss: float
    steps: int
    function_evals: int
    stop_reason: str
    seed: int
    device: str
    precision: str
    elapsed: float
    history: list[float] = field(repr=False)
    recipe: dict[str, Any] = field(default_factory=dict, repr=False)
    scale_start: int = 0


class TransferInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run. ``result`` carries the best image so far."""

    def __init__(self, result: Result) -> None:
        super().__init__("interrupted")
        self.result = result


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite. ``result`` carries the last finite best image."""

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result
