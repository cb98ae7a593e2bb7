"""The optimiser loop of one scale: minimise the objective over the pixels of the image.

The only parameter is the image x, (1, 3, H, W) in [0, 1]; the network is frozen. This room
owns the optimiser (:func:`make_optimizer`: Adam, Kingma & Ba 2015, or L-BFGS, Nocedal 1980,
as in Gatys et al. 2016), its steps, the L-BFGS evaluation cache, the loss rescaling, the
projection onto [0, 1] (:func:`project`), the best image so far, the patience stopping rule
(:func:`stalled`), the iterate average (:class:`Average`), the :class:`StepEvent` of every
step and the :class:`RunState` a run continues from (:class:`ScaleOptimiser`).

Pixels stay in [0, 1]: Adam steps are followed by a clip; L-BFGS iterations are followed by a
projection onto [0, 1] *between* iterations, never inside its line search, so the line search
always sees one smooth function. Nothing here prints, reads a signal or writes a file.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import Config
from .events import NonFiniteLossError, Result, RunState, StepEvent, TransferInterrupted
from .objective import Objective, Terms

__all__ = [
    "Average",
    "Progress",
    "ScaleOptimiser",
    "make_optimizer",
    "project",
    "stalled",
    "to_cpu",
]


def make_optimizer(cfg: Config, x: torch.Tensor) -> torch.optim.Optimizer:
    """The optimiser ``cfg.optimizer`` names, over the single parameter ``x``.

    L-BFGS does one iteration per ``step()`` call, so that every iteration emits an event and
    is followed by the projection onto [0, 1]; its own stopping tests are off (ours decide).
    """
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            [x], lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps
        )
    return torch.optim.LBFGS(
        [x],
        lr=cfg.learning_rate,
        max_iter=1,
        max_eval=1 + 20,  # one evaluation at the start + the line search's budget
        history_size=cfg.lbfgs_history,
        tolerance_grad=-1.0,
        tolerance_change=-1.0,
        line_search_fn="strong_wolfe" if cfg.line_search else None,
    )


def stalled(best_losses: Sequence[float], tolerance: float) -> bool:
    """The patience rule: True when the best loss at the end of the window is not below
    (1 − tolerance) × the best loss at its start, i.e. it improved by less than ``tolerance``
    (relative) over the window. The window is ``patience + 1`` consecutive best losses."""
    return best_losses[-1] >= best_losses[0] * (1.0 - tolerance)


def project(x: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    """Clamp the image to [0, 1] after a step, telling L-BFGS the step it really took.

    torch's L-BFGS remembers its step as s = t·d, the planned one; after a clamp the image
    moved less. Its next curvature pair (s, y) would then be false for every clamped pixel, so
    d is corrected to the actual movement divided by t.
    """
    with torch.no_grad():
        if x.min() >= 0 and x.max() <= 1:
            return
        delta = x.clamp(0, 1) - x
        x.add_(delta)
        state = optimizer.state.get(x, {})
        if "d" in state and "t" in state and float(state["t"]) != 0:
            state["d"] = state["d"] + delta.flatten() / float(state["t"])


def to_cpu(value: Any, copy: bool = True) -> Any:
    """A (nested) state dict with every tensor on the CPU: copied, or with ``copy=False``
    sharing storage where it already is on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=copy)
    if isinstance(value, dict):
        return {k: to_cpu(v, copy) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_cpu(v, copy) for v in value)
    return value


class Average:
    """Bias-corrected exponential moving average of the iterates (as Adam's first moment,
    Kingma & Ba 2015, alg. 1): m_t = d m_{t-1} + (1 − d) x_t, x̄_t = m_t / (1 − d^t)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.mean: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        """Add the iterate ``x`` (1, 3, H, W): m_t = d m_{t-1} + (1 − d) x_t."""
        with torch.no_grad():
            if self.mean is None:
                self.mean = torch.zeros_like(x)
            self.mean.mul_(self.decay).add_(x.detach(), alpha=1 - self.decay)
        self.steps += 1

    def value(self) -> torch.Tensor:
        """x̄_t = m_t / (1 − d^t), clipped to [0, 1]."""
        assert self.mean is not None
        return (self.mean / (1 - self.decay**self.steps)).clamp(0.0, 1.0)


@dataclass
class Progress:
    """What a run carries across scales: its identity and its counters."""

    seed: int
    total: int
    scales: int
    device: str
    precision: str
    scale: int = 0
    steps: int = 0
    evals: int = 0
    history: list[float] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)


def _cpu_copy(image: torch.Tensor) -> torch.Tensor:
    return image.detach().to("cpu", torch.float32).clone()


class ScaleOptimiser:
    """One scale's optimisation, starting at ``x`` (which it leaves unchanged), or from the
    end of the step ``resume`` describes. :meth:`run` does it.

    Args:
        objective: the loss of this scale. config: the optimiser's options.
        x: the start, (1, 3, H, W) in [0, 1] on the run's device.
        iterations: optimiser steps at this scale. run: the counters across scales.
        callback: gets a :class:`StepEvent` after every step; a truthy return stops the run.
        resume: a state taken at this scale, to continue from.
    """

    def __init__(
        self,
        objective: Objective,
        config: Config,
        x: torch.Tensor,
        iterations: int,
        run: Progress,
        callback: Callable[[StepEvent], object] | None = None,
        resume: RunState | None = None,
    ) -> None:
        self.objective, self.config, self.iterations = objective, config, iterations
        self.progress, self.callback = run, callback
        self.x = x.detach().clone().requires_grad_(True)
        self.best = self.x.detach().clone()
        self.best_loss = math.inf
        self.step_terms: Terms = {}  # the loss terms at the start of the step
        self.cache: dict[str, torch.Tensor] = {}
        self.cache_terms: Terms = {}
        self.use_cache = config.optimizer == "lbfgs" and config.line_search
        # L-BFGS is invariant to the scale of the objective except for its first step,
        # t = lr / |g|_1: with losses of order 1e13 that step is so small that the first
        # curvature pair drowns in float32 rounding and the next step explodes. Dividing
        # the objective by its starting value makes the first step meaningful. Adam is left
        # alone: its ε (0.1 in the blog) is tied to the loss's own scale.
        self.loss_scale = 0.0  # set from the first evaluation
        self.optimizer = make_optimizer(config, self.x)
        self.average = Average(config.ema_decay) if config.ema_decay > 0 else None
        self.window: deque[float] = deque(maxlen=(config.patience or 0) + 1)
        self.done = 0  # steps taken at this scale
        self.finished: str | None = None
        if resume is not None:
            self._restore(resume)

    def _restore(self, state: RunState) -> None:
        with torch.no_grad():
            self.best.copy_(state.best.to(self.best.device))
        self.best_loss, self.loss_scale, self.done = (
            state.best_loss,
            state.loss_scale,
            state.scale_step,
        )
        self.window.extend(state.window)
        self.optimizer.load_state_dict(state.optimizer)
        self.finished = state.finished
        if self.average is not None and state.average is not None:
            self.average.mean = state.average.to(self.x.device).clone()
            self.average.steps = state.average_steps

    def _closure(self) -> float:
        """The optimiser's closure: the (rescaled) loss at x, its gradient left in ``x.grad``."""
        x = self.x
        # L-BFGS re-evaluates the point its line search accepted; answer from the cache.
        if self.use_cache and self.cache and torch.equal(self.cache["x"], x):
            x.grad = self.cache["grad"].clone()
            if not self.step_terms:
                self.step_terms.update(self.cache_terms)
            return float(self.cache["loss"])
        self.optimizer.zero_grad(set_to_none=True)
        loss, terms = self.objective(x)
        value = loss.item()
        if not self.loss_scale:
            rescale = self.config.optimizer == "lbfgs" and math.isfinite(value) and value > 0
            self.loss_scale = 1.0 / value if rescale else 1.0
        (loss * self.loss_scale).backward()
        self.progress.evals += 1
        self._remember(value, loss, terms)
        return value * self.loss_scale

    def _remember(self, value: float, loss: torch.Tensor, terms: Terms) -> None:
        """After an evaluation: the best image, the step's terms, the cache."""
        x = self.x
        # Line-search trial points may leave [0, 1]; only points inside are candidates.
        inside = not self.use_cache or bool(((x >= 0) & (x <= 1)).all())
        if math.isfinite(value) and value < self.best_loss and inside:
            self.best_loss = value
            self.best.copy_(x.detach())
        detached = {k: v.detach() for k, v in terms.items()}
        if not self.step_terms:
            self.step_terms.update(detached)
        assert x.grad is not None
        if self.use_cache:
            scaled = loss.detach() * self.loss_scale
            self.cache.update(x=x.detach().clone(), grad=x.grad.clone(), loss=scaled)
            self.cache_terms.clear()
            self.cache_terms.update(detached)

    def result(self, reason: str) -> Result:
        """The scale's result: the best image (or the iterates' average), CPU float32."""
        image, loss = self.best, self.best_loss
        if self.average is not None and self.average.steps and reason != "non-finite":
            image = self.average.value()
            loss = self.objective.value(image)
        run = self.progress
        return Result(
            image=image.detach().to("cpu", torch.float32).clone(),
            loss=loss,
            steps=run.steps,
            function_evals=run.evals,
            stop_reason=reason,
            seed=run.seed,
            device=run.device,
            precision=run.precision,
            elapsed=time.perf_counter() - run.start,
            history=list(run.history),
            scale_start=len(run.history) - self.done,
        )

    def snapshot(self, copy: bool) -> RunState:
        """The state at the end of the last step (see :meth:`StepEvent.state`)."""
        run, average = self.progress, self.average
        return RunState(
            seed=run.seed,
            scale=run.scale,
            scale_step=self.done,
            steps=run.steps,
            function_evals=run.evals,
            finished=self.finished,
            image=to_cpu(self.x, copy),
            best=to_cpu(self.best, copy),
            best_loss=self.best_loss,
            loss_scale=self.loss_scale,
            window=list(self.window),
            history=list(run.history),
            optimizer=to_cpu(self.optimizer.state_dict(), copy),
            elapsed=time.perf_counter() - run.start,
            average=None if average is None else to_cpu(average.mean, copy),
            average_steps=0 if average is None else average.steps,
        )

    def _event(self, value: float, last: Terms) -> StepEvent:
        run = self.progress
        return StepEvent(
            step=run.steps,
            total_steps=run.total,
            scale=run.scale,
            scales=run.scales,
            function_evals=run.evals,
            loss=value,
            content_loss=float(last["content"]),
            style_loss=float(last["style"]),
            tv_loss=float(last["tv"]),
            layer_losses={k: float(v) for k, v in last.items() if "/" in k},
            best_loss=self.best_loss,
            elapsed=time.perf_counter() - run.start,
            _current=lambda: _cpu_copy(self.x),
            _best=lambda: _cpu_copy(self.best),
            _state=self.snapshot,
        )

    def _judge(self) -> None:
        """The stopping rules after a step: patience, then the step count."""
        cfg = self.config
        if cfg.patience:
            self.window.append(self.best_loss)
            if len(self.window) == self.window.maxlen and stalled(self.window, cfg.tolerance):
                self.finished = "converged"
        if self.finished is None and self.done == self.iterations:
            self.finished = "iterations"

    def step(self) -> bool:
        """One optimiser step, its projection, average, stopping rules and event. True when
        the callback asks to stop.

        Raises:
            NonFiniteLossError: the loss at the start of the step was NaN or infinite.
        """
        run = self.progress
        self.step_terms.clear()
        self.optimizer.step(self._closure)
        run.steps += 1
        self.done += 1
        project(self.x, self.optimizer)
        if self.average is not None:
            self.average.update(self.x)
        last = dict(self.step_terms)
        value = float(last["total"])
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the loss became {value} at step {run.steps}; try a smaller learning "
                "rate or style weight",
                self.result("non-finite"),
            )
        run.history.append(value)
        self._judge()
        return self.callback is not None and bool(self.callback(self._event(value, last)))

    def run(self) -> Result:
        """Steps until the step count, the patience rule or the callback ends the scale.

        Raises:
            TransferInterrupted: Ctrl-C (KeyboardInterrupt); carries this scale's best image.
            NonFiniteLossError: NaN/inf loss; carries the last finite best image.
        """
        if self.finished is not None:  # resumed from this scale's last step
            return self.result(self.finished)
        try:
            if self.iterations == 0:
                self.best_loss = self.objective.value(self.x)
            while self.done < self.iterations:
                if self.step():
                    return self.result("stopped")
                if self.finished is not None:
                    break
        except KeyboardInterrupt:
            raise TransferInterrupted(self.result("interrupted")) from None
        return self.result(self.finished or "iterations")
