"""The optimisation: minimise α·L_content + β·L_style (+ TV) over the pixels of the output.

Gatys, Ecker & Bethge 2016, eq. 7. The network is frozen; the only parameter is the image,
(1, 3, H, W) in [0, 1]. Targets (content features, style Gram matrices) are computed once.
After every optimiser step a :class:`StepEvent` goes to the callback; this module prints
nothing and writes no file.

Pixels stay in [0, 1]: Adam steps are followed by a clip; L-BFGS iterations are followed by a
projection onto [0, 1] *between* iterations, never inside its line search, so the line search
always sees one smooth function.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from . import color, losses
from .config import INIT_KEYWORDS, Config, ConfigError
from .images import ImageSource, load_image, resize_longest, resize_to
from .masks import load_mask
from .recipe import input_record, make_recipe
from .vgg import VGG19Features, resolve_layer
from .weights import load_weights

__all__ = [
    "NonFiniteLossError",
    "Result",
    "RunState",
    "StepEvent",
    "StyleTransfer",
    "TransferInterrupted",
    "check_sizes",
    "resolve_convolution",
    "resolve_device",
    "resolve_precision",
]


@dataclass(frozen=True)
class StepEvent:
    """What happened in one optimiser step.

    ``step`` counts steps over all scales (1 … ``total_steps``); ``scale`` is the 0-based index
    of the current scale of ``scales`` (coarse to fine).

    Losses are the weighted terms of the loss *evaluated at the start of the step*:
    ``loss = content_loss + style_loss + tv_loss``, with ``content_loss = α·L_content`` etc.
    ``layer_losses`` holds each layer's weighted share (``"content/relu4_2"``, ``"style/relu1_1"``).
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
        "style", "tv", "style/relu1_1", …}`` (what :func:`painterly.plot.plot_losses` draws)."""
        return {
            "step": self.step,
            "scale": self.scale,
            "total": self.loss,
            "content": self.content_loss,
            "style": self.style_loss,
            "tv": self.tv_loss,
            **self.layer_losses,
        }

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
        history: total loss after each step.
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


def _make_optimizer(cfg: Config, x: torch.Tensor) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            [x], lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps
        )
    # One L-BFGS iteration per step() call, so that every iteration emits an event and is
    # followed by the projection onto [0, 1]. Its own stopping tests are off: ours decide.
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


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; other names as given.

    Raises:
        ConfigError: CUDA asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but CUDA is not available here")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r} asked for, but this machine has {count} GPU(s)")
    return device


def resolve_precision(name: str, device: torch.device) -> str:
    """``"auto"`` → ``"bf16"`` where the hardware has native bf16 (CPU: AVX512-BF16 or AMX;
    CUDA: compute capability ≥ 8), else ``"fp32"``."""
    if name != "auto":
        return name
    if device.type == "cuda":
        # Native bf16 from Ampere (sm80) on; older GPUs only emulate it, slowly.
        return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp32"
    cpu = torch.cpu
    fast = (
        getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )
    return "bf16" if fast else "fp32"


#: The first layer computed by Winograd F(4×4, 3×3) when it is on. Before it, layers have few
#: channels and many pixels, and the transforms (memory-bound) cost more than the products
#: save; from here on Winograd is 1.9–2.6× faster per layer in bf16 on this project's CPU
#: (benchmarks/bench_winograd.py).
WINOGRAD_FROM = "conv3_1"


def resolve_convolution(name: str, precision: str, device: torch.device) -> str:
    """``"auto"`` → ``"winograd"`` for bf16 on a CPU, else ``"direct"``.

    On a GPU cuDNN chooses its own algorithms (Winograd among them) for a direct call, and in
    float32 the direct path is kept as the exact reference.
    """
    if name != "auto":
        return name
    return "winograd" if precision == "bf16" and device.type == "cpu" else "direct"


#: ``{layer: [one StyleTarget per region]}``, what :meth:`StyleTransfer.targets` returns.
StyleTargets = dict[str, list[losses.StyleTarget]]


def _style_list(style: ImageSource | Sequence[ImageSource]) -> list[ImageSource]:
    if isinstance(style, list | tuple):
        return list(style)
    return [style]  # type: ignore[list-item]


class StyleTransfer:
    """A reusable runner: the feature extractor is built once and reused across runs.

    Args:
        config: the options (see :class:`~painterly.config.Config`).

    Raises:
        ConfigError: invalid device for this machine.
        WeightsError: the weights cannot be loaded.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        self.content_layers = [resolve_layer(n) for n in config.content_layers]
        self.style_weights = {resolve_layer(k): v for k, v in config.layer_weights.items()}
        self.layers = list(dict.fromkeys([*self.content_layers, *self.style_weights]))
        self.weights = load_weights(config.weights)
        self.vgg = VGG19Features(self.weights, config.pooling, up_to=self.layers)
        self.vgg.to(self.device)
        self.convolution = resolve_convolution(config.convolution, self.precision, self.device)
        if self.convolution == "winograd":
            # From the float32 kernels, so that the transforms are rounded to bf16 only once.
            dtype = torch.bfloat16 if self.precision == "bf16" else None
            self.vgg.use_winograd(WINOGRAD_FROM, dtype)
        if self.precision == "bf16":
            # bf16 weights rather than autocast: autocast would re-cast the frozen fp32
            # weights at every call. Grams and losses still run in float32 (losses.py).
            self.vgg.to(dtype=torch.bfloat16, memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        features: dict[str, torch.Tensor] = self.vgg(image, self.layers)
        return features

    def targets(
        self,
        content: torch.Tensor,
        style: torch.Tensor | Sequence[torch.Tensor],
        masks: Sequence[torch.Tensor] | None = None,
        blend: Sequence[float] | None = None,
    ) -> tuple[dict[str, torch.Tensor], StyleTargets]:
        """Content features P^l and the style targets of every layer (float32), computed once.

        Args:
            content: (1, 3, H, W) in [0, 1], at the output's size.
            style: one style image or several, (1, 3, H_k, W_k) in [0, 1], any sizes.
            masks: one (1, 1, H, W) mask in [0, 1] per style, at the content's size, or ``None``.
            blend: normalised blend weights v_k (default: equal); ignored with masks.

        Without masks there is one region: the styles' features pooled with weights v_k. For
        the Gram loss its target is A^l = Σ_k v_k F_k F_kᵀ / M_k (the pooled second moment), and
        for W2 the pooled mean μ = Σ v_k μ_k and covariance Σ v_k (Σ_k + μ_k μ_kᵀ) − μ μᵀ. With
        masks, style k is the target of region k alone (Gatys et al. 2017, §4).

        The output has the content's size, the style image usually not. The paper's Gram
        F Fᵀ grows with the number of positions M, so in the ``paper`` normalisation A^l is
        rescaled to the output's M: A^l = (M_out / M_style) F_s F_sᵀ. (The blog's Gram is
        already divided by M.) Without this, a style image with 4× the positions would ask
        for 4× the Gram and E_l would not depend on the style alone.
        """
        cfg = self.config
        norm = cfg.normalization
        styles = [style] if isinstance(style, torch.Tensor) else list(style)
        weights = list(blend) if blend is not None else [1.0 / len(styles)] * len(styles)
        with torch.no_grad():
            cf = self._features(content)
            content_targets = {n: cf[n].float() for n in self.content_layers}
            sfs = [self._features(s) for s in styles] if self.style_weights else []
            targets: StyleTargets = {}
            for n in self.style_weights:
                h, w = cf[n].shape[-2:]
                regions: list[tuple[torch.Tensor | None, list[int], list[float]]]
                if masks is None:
                    regions = [(None, list(range(len(styles))), weights)]
                else:
                    regions = [
                        (F.interpolate(m.to(cf[n].device), size=(h, w), mode="area"), [k], [1.0])
                        for k, m in enumerate(masks)
                    ]
                targets[n] = []
                for mask, members, vs in regions:
                    share = 1.0 if mask is None else float(mask.square().mean())
                    if cfg.style_loss == "gram":
                        gram = sum(
                            v * losses.gram_matrix(sfs[k][n], "blog")  # F_s F_sᵀ / M_style
                            for k, v in zip(members, vs, strict=True)
                        )
                        assert isinstance(gram, torch.Tensor)
                        if norm == "paper":
                            gram = gram * (h * w)
                        target = losses.StyleTarget(gram=gram, mask=mask, weight=share)
                    else:
                        moments = [losses.feature_moments(sfs[k][n]) for k in members]
                        mean = sum(v * mu for v, (mu, _) in zip(vs, moments, strict=True))
                        second = sum(
                            v * (cov + mu.mT @ mu) for v, (mu, cov) in zip(vs, moments, strict=True)
                        )
                        assert isinstance(mean, torch.Tensor) and isinstance(second, torch.Tensor)
                        mu, root, trace = losses.w2_target(mean, second - mean.mT @ mean)
                        target = losses.StyleTarget(
                            mean=mu,
                            cov_sqrt=root,
                            cov_trace=trace,
                            mask=mask,
                            weight=share,
                        )
                    targets[n].append(target)
        return content_targets, targets

    def prepare(
        self, content: ImageSource, style: ImageSource, size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode and resize the inputs: content to ``size`` (default: the config's) on its
        longest side, style to the same longest side. Returns tensors (1, 3, H, W) in [0, 1] on
        the run's device.

        Raises:
            ImageError: an input cannot be read.
            ConfigError: a resized image is too small for the deepest layer.
        """
        return self._at_size(load_image(content), load_image(style), size or self.config.size)

    def _at_size(
        self, content: torch.Tensor, style: torch.Tensor, size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c, styles = self._scaled(content, [style], size)
        return c, styles[0]

    def _scaled(
        self, content: torch.Tensor, styles: Sequence[torch.Tensor], size: int
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The content at ``size`` on its longest side; each style at ``style_scale`` times the
        content's longest side there, its aspect ratio kept.

        The content's sides are checked at every scale (:func:`check_sizes`). A style image
        only gives statistics, so one whose short side would fall below what the deepest layer
        needs (a narrow strip, a small ``style_scale``) is enlarged until it does, not refused.
        """
        need = self.config.min_side
        check_sizes(self.config, *content.shape[-2:])
        c = resize_longest(content, size)
        style_size = max(1, round(self.config.style_scale * max(c.shape[-2:])))
        scaled = []
        for s in styles:
            sh, sw = s.shape[-2:]
            scaled.append(
                resize_longest(s, max(style_size, math.ceil(need * max(sh, sw) / min(sh, sw))))
            )
        return c.to(self.device), [s.to(self.device) for s in scaled]

    def _init_image(
        self, content: torch.Tensor, style: torch.Tensor, seed: int, init_file: torch.Tensor | None
    ) -> torch.Tensor:
        init = self.config.init
        h, w = content.shape[-2:]
        if init == "content":
            x = content.clone()
        elif init == "noise":
            gen = torch.Generator().manual_seed(seed)
            x = torch.rand(content.shape, generator=gen).to(self.device)
        elif init == "style":
            x = resize_to(style, h, w)
        else:
            assert init_file is not None
            x = resize_to(init_file, h, w).to(self.device)
        return x.contiguous()

    def run(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        callback: Callable[[StepEvent], object] | None = None,
        resume: RunState | None = None,
    ) -> Result:
        """Stylise ``content`` in the style of ``style``, coarse to fine over ``config.ladder``.

        At each scale the content image is resized to that scale's longest side and each style
        image to ``style_scale`` times it, the targets are recomputed, and the previous scale's
        result, upsampled, is the start. With ``preserve_colors`` the inputs are changed first
        (:mod:`painterly.color`) and, for ``luminance``, the content's chroma is put back into
        every image handed out (results and the events' images). When the content and every
        style image are gray (R = G = B), the output is made gray too: no input has colour to
        give it (CASES.md B03).

        Args:
            content: a path, Pillow image, or tensor (3, H, W) / (1, 3, H, W) in [0, 1].
            style: one style image of the same kinds, or a list or tuple of them (blended with
                ``style_blend_weights``, or each in its region of ``style_masks``).
            callback: called after every step with a :class:`StepEvent`; a truthy return value
                stops the run early (``stop_reason="stopped"``).
            resume: a :class:`RunState` taken (``event.state()``) from an earlier run with the
                same config and inputs; the run continues from the end of that step.

        Returns:
            A :class:`Result` with the lowest-loss image of the last scale (the iterates'
            average with ``ema_decay``).

        Raises:
            TransferInterrupted: Ctrl-C; carries the best image so far, at the final size.
            NonFiniteLossError: NaN/inf loss; carries the last finite best image.
            ImageError, ConfigError: bad inputs (all checked before any compute), among them a
                number of blend weights or masks other than the number of style images, or a
                ``resume`` state that does not fit this config.
        """
        cfg = self.config
        if resume is not None:
            seed = resume.seed
        else:
            seed = cfg.seed if cfg.seed is not None else secrets.randbelow(2**31)
        content_full = load_image(content)
        style_sources = _style_list(style)
        styles_full = [load_image(s) for s in style_sources]
        blend = cfg.check_styles(len(styles_full))
        masks_full = [load_mask(m) for m in cfg.style_masks] if cfg.style_masks else None
        init_file = None if cfg.init in INIT_KEYWORDS else load_image(cfg.init)
        records = {"content": _input_record(content_full, content)}
        for k, (pixels, source) in enumerate(zip(styles_full, style_sources, strict=True)):
            records["style" if k == 0 else f"style{k + 1}"] = _input_record(pixels, source)
        if init_file is not None:
            records["init"] = _input_record(init_file, cfg.init)
        content_run, styles_run = content_full, styles_full
        if cfg.preserve_colors == "histogram":
            styles_run = [color.match_color_statistics(s, content_full) for s in styles_full]
        elif cfg.preserve_colors == "luminance":
            content_run = color.to_gray(content_full)
            styles_run = [color.match_luminance(s, content_full) for s in styles_full]
            init_file = None if init_file is None else color.to_gray(init_file)
        gray = color.is_gray(content_full) and all(color.is_gray(s) for s in styles_full)

        def finish(image: torch.Tensor) -> torch.Tensor:
            if cfg.preserve_colors == "luminance":
                image = color.join_luminance(image, content_full)
            return color.to_gray(image) if gray else image

        def finished(result: Result) -> Result:
            """At the final size, colours finished, with its recipe."""
            result = _upsized(result, *final_hw)
            result = dataclasses.replace(result, image=finish(result.image))
            return dataclasses.replace(result, recipe=self._recipe(result, records))

        if callback is not None and (gray or cfg.preserve_colors == "luminance"):
            callback = _finishing(callback, finish)
        ladder = cfg.ladder
        inputs = [self._scaled(content_run, styles_run, size) for size, _ in ladder]
        final_style = max(inputs[-1][1][0].shape[-2:])
        if any(final_style > max(s.shape[-2:]) for s in styles_full):
            warnings.warn(
                f"a style image is upscaled past its own size (to {final_style} px on its "
                "longest side): its brush strokes will look soft; lower --style-scale or use a "
                "larger style image",
                stacklevel=2,
            )
        final_hw = inputs[-1][0].shape[-2:]
        progress = _Progress(seed=seed, total=sum(n for _, n in ladder), scales=len(ladder))
        if resume is not None:
            _check_resume(resume, ladder, [c.shape for c, _ in inputs])
            progress.steps, progress.evals = resume.steps, resume.function_evals
            progress.history = list(resume.history)
            progress.start -= resume.elapsed
        x: torch.Tensor | None = None
        result: Result | None = None
        for scale, ((_, iterations), (c, ss)) in enumerate(zip(ladder, inputs, strict=True)):
            state = resume if resume is not None and resume.scale == scale else None
            if resume is not None and scale < resume.scale:
                continue
            try:
                if state is not None:
                    x = state.image.to(self.device)
                elif x is None:
                    x = self._init_image(c, ss[0], seed, init_file)
                else:
                    x = resize_to(x, *c.shape[-2:]).contiguous()
                masks = None
                if masks_full is not None:
                    masks = [resize_to(m, *c.shape[-2:]) for m in masks_full]
                p_targets, a_targets = self.targets(c, ss, masks, blend)
                progress.scale = scale
                result = self._optimise(
                    x, iterations, p_targets, a_targets, progress, callback, state
                )
            except (TransferInterrupted, NonFiniteLossError) as exc:
                exc.result = finished(exc.result)
                raise
            except KeyboardInterrupt:  # between scales: the last finished scale's result
                if result is None:
                    raise
                partial = dataclasses.replace(result, stop_reason="interrupted")
                raise TransferInterrupted(finished(partial)) from None
            if result.stop_reason == "stopped":
                return finished(result)
            x = result.image.to(self.device)
        assert result is not None
        return finished(result)

    def _recipe(self, result: Result, inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return make_recipe(
            self.config,
            seed=result.seed,
            device=result.device,
            precision=result.precision,
            inputs=inputs,
            elapsed=result.elapsed,
            steps=result.steps,
            stop_reason=result.stop_reason,
            loss=result.loss,
            weights={"source": self.weights.source, "sha256": self.weights.sha256},
        )

    def _loss(
        self,
        x: torch.Tensor,
        p_targets: dict[str, torch.Tensor],
        a_targets: StyleTargets,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        norm = cfg.normalization
        feats = self._features(x)
        terms: dict[str, torch.Tensor] = {}
        zero = torch.zeros((), device=x.device)
        content = zero
        for name in self.content_layers:
            term = losses.content_loss(feats[name], p_targets[name], norm)
            term = term * (cfg.content_weight / len(self.content_layers))
            terms[f"content/{name}"] = term
            content = content + term
        style = zero
        for name, weight in self.style_weights.items():
            e_l = [losses.style_target_loss(feats[name], t, norm) for t in a_targets[name]]
            terms[f"style/{name}"] = sum(e_l[1:], e_l[0]) * weight * cfg.style_weight
            style = style + terms[f"style/{name}"]
        tv = losses.total_variation(x, norm) * cfg.tv_weight if cfg.tv_weight > 0 else zero
        total = content + style + tv
        terms["content"], terms["style"], terms["tv"], terms["total"] = content, style, tv, total
        return total, terms

    def _optimise(
        self,
        x: torch.Tensor,
        iterations: int,
        p_targets: dict[str, torch.Tensor],
        a_targets: StyleTargets,
        run: _Progress,
        callback: Callable[[StepEvent], object] | None,
        resume: RunState | None = None,
    ) -> Result:
        """One scale's optimisation, starting at ``x`` (which it leaves unchanged), or from the
        end of the step ``resume`` describes."""
        cfg = self.config
        x = x.detach().clone().requires_grad_(True)
        best = x.detach().clone()
        best_loss = math.inf
        step_terms: dict[str, torch.Tensor] = {}  # the loss terms at the start of the step
        cache: dict[str, torch.Tensor] = {}
        cache_terms: dict[str, torch.Tensor] = {}
        use_cache = cfg.optimizer == "lbfgs" and cfg.line_search
        # L-BFGS is invariant to the scale of the objective except for its first step,
        # t = lr / |g|_1: with losses of order 1e13 that step is so small that the first
        # curvature pair drowns in float32 rounding and the next step explodes. Dividing
        # the objective by its starting value makes the first step meaningful. Adam is left
        # alone: its ε (0.1 in the blog) is tied to the loss's own scale.
        scale = 0.0  # set from the first evaluation

        def closure() -> float:
            nonlocal best_loss, scale
            # L-BFGS re-evaluates the point its line search accepted; answer from the cache.
            if use_cache and cache and torch.equal(cache["x"], x):
                x.grad = cache["grad"].clone()
                if not step_terms:
                    step_terms.update(cache_terms)
                return float(cache["loss"])
            optimizer.zero_grad(set_to_none=True)
            loss, terms = self._loss(x, p_targets, a_targets)
            value = loss.item()
            if not scale:
                rescale = cfg.optimizer == "lbfgs" and math.isfinite(value) and value > 0
                scale = 1.0 / value if rescale else 1.0
            (loss * scale).backward()
            run.evals += 1
            # Line-search trial points may leave [0, 1]; only points inside are candidates.
            inside = not use_cache or bool(((x >= 0) & (x <= 1)).all())
            if math.isfinite(value) and value < best_loss and inside:
                best_loss = value
                best.copy_(x.detach())
            detached = {k: v.detach() for k, v in terms.items()}
            if not step_terms:
                step_terms.update(detached)
            assert x.grad is not None
            if use_cache:
                cache.update(x=x.detach().clone(), grad=x.grad.clone(), loss=loss.detach() * scale)
                cache_terms.clear()
                cache_terms.update(detached)
            return value * scale

        optimizer = _make_optimizer(cfg, x)
        average = _Average(cfg.ema_decay) if cfg.ema_decay > 0 else None
        window: deque[float] = deque(maxlen=(cfg.patience or 0) + 1)
        done = 0  # steps taken at this scale
        finished: str | None = None
        if resume is not None:
            with torch.no_grad():
                best.copy_(resume.best.to(best.device))
            best_loss, scale, done = resume.best_loss, resume.loss_scale, resume.scale_step
            window.extend(resume.window)
            optimizer.load_state_dict(resume.optimizer)
            finished = resume.finished
            if average is not None and resume.average is not None:
                average.mean = resume.average.to(x.device).clone()
                average.steps = resume.average_steps

        def result(reason: str) -> Result:
            image, loss = best, best_loss
            if average is not None and average.steps and reason != "non-finite":
                image = average.value()
                with torch.no_grad():
                    loss = self._loss(image, p_targets, a_targets)[0].item()
            return Result(
                image=image.detach().to("cpu", torch.float32).clone(),
                loss=loss,
                steps=run.steps,
                function_evals=run.evals,
                stop_reason=reason,
                seed=run.seed,
                device=str(self.device),
                precision=self.precision,
                elapsed=time.perf_counter() - run.start,
                history=list(run.history),
            )

        def snapshot(copy: bool) -> RunState:
            return RunState(
                seed=run.seed,
                scale=run.scale,
                scale_step=done,
                steps=run.steps,
                function_evals=run.evals,
                finished=finished,
                image=_to_cpu(x, copy),
                best=_to_cpu(best, copy),
                best_loss=best_loss,
                loss_scale=scale,
                window=list(window),
                history=list(run.history),
                optimizer=_to_cpu(optimizer.state_dict(), copy),
                elapsed=time.perf_counter() - run.start,
                average=None if average is None else _to_cpu(average.mean, copy),
                average_steps=0 if average is None else average.steps,
            )

        if finished is not None:  # resumed from this scale's last step
            return result(finished)
        try:
            if iterations == 0:
                with torch.no_grad():
                    best_loss = self._loss(x, p_targets, a_targets)[0].item()
            while done < iterations:
                step_terms.clear()
                optimizer.step(closure)
                run.steps += 1
                done += 1
                _project(x, optimizer)
                if average is not None:
                    average.update(x)
                last = dict(step_terms)
                value = float(last["total"])
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"the loss became {value} at step {run.steps}; try a smaller learning "
                        "rate or style weight",
                        result("non-finite"),
                    )
                run.history.append(value)
                if cfg.patience:
                    window.append(best_loss)
                    if len(window) == window.maxlen and stalled(window, cfg.tolerance):
                        finished = "converged"
                if finished is None and done == iterations:
                    finished = "iterations"
                event = StepEvent(
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
                    best_loss=best_loss,
                    elapsed=time.perf_counter() - run.start,
                    _current=lambda: x.detach().to("cpu", torch.float32).clone(),
                    _best=lambda: best.detach().to("cpu", torch.float32).clone(),
                    _state=snapshot,
                )
                if callback is not None and callback(event):
                    return result("stopped")
                if finished is not None:
                    break
        except KeyboardInterrupt:
            raise TransferInterrupted(result("interrupted")) from None
        return result(finished or "iterations")


def _input_record(image: torch.Tensor, source: ImageSource) -> dict[str, Any]:
    """The recipe's description of an input given as a path, a Pillow image or a tensor."""
    if isinstance(source, str | os.PathLike):
        return input_record(image, source)
    return input_record(image)


def _to_cpu(value: Any, copy: bool = True) -> Any:
    """A (nested) state dict with every tensor on the CPU: copied, or with ``copy=False``
    sharing storage where it already is on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=copy)
    if isinstance(value, dict):
        return {k: _to_cpu(v, copy) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v, copy) for v in value)
    return value


def _check_resume(state: RunState, ladder: list[tuple[int, int]], shapes: list[Any]) -> None:
    """Refuse a state that cannot belong to a run with this ladder and these inputs."""
    if not 0 <= state.scale < len(ladder) or tuple(state.image.shape) != tuple(shapes[state.scale]):
        raise ConfigError(
            "the saved state does not match this run: it was made with other options or images"
        )
    if state.scale_step > ladder[state.scale][1]:
        raise ConfigError("the saved state has more steps at its scale than this run asks for")


# Peak memory model, fitted to whole-process peaks measured by benchmarks/bench_speed.py on the
# CPU (2026-11-29: 0.74 / 1.73 GiB at 512 / 1024 px in bf16, 0.96 / 2.22 GiB in fp32), per
# output pixel for the network's activations and their gradients, plus the optimiser's vectors.
# Checked on 2026-11-30 with Winograd and the Grams keeping bf16 features: a whole default
# 1024 × 768 run (L-BFGS history full) peaked at 2.17 GiB; this model says 2.16 GiB.
_BASE_BYTES = 0.45 * 2**30
_ACTIVATION_BYTES_PER_PIXEL = {"bf16": 1800, "fp32": 2300}


def estimate_peak_memory(config: Config, height: int, width: int, precision: str) -> int:
    """Estimated peak memory in bytes of a run whose final scale is ``height`` × ``width`` px.

    The largest scale dominates: activations (bf16 or fp32) plus the optimiser's state, which
    for L-BFGS is 2·history vectors of the image's size (float32) and for Adam 2.
    """
    pixels = height * width
    vectors = 2 * config.lbfgs_history + 4 if config.optimizer == "lbfgs" else 6
    per_pixel = _ACTIVATION_BYTES_PER_PIXEL.get(precision, 2300) + vectors * 3 * 4
    return int(_BASE_BYTES + per_pixel * pixels)


def check_sizes(config: Config, height: int, width: int) -> list[tuple[int, int]]:
    """The output's (height, width) at every scale of ``config.ladder`` for a content image of
    ``height`` × ``width`` px, checked against what the deepest layer needs. Cheap: call it
    before loading the model.

    Raises:
        ConfigError: a side below ``config.min_side`` at some scale, naming the scale.
    """
    sizes = []
    for index, (size, _) in enumerate(config.ladder):
        scale = size / max(height, width)
        h, w = max(1, round(height * scale)), max(1, round(width * scale))
        if min(h, w) < config.min_side:
            count = len(config.ladder)
            where = f" (scale {index + 1} of {count})" if count > 1 else ""
            raise ConfigError(
                f"the content image is {w}x{h} px at size {size}{where}; the layers used need "
                f"at least {config.min_side} px on each side (raise --size, use fewer --scales "
                "or shallower layers)"
            )
        sizes.append((h, w))
    return sizes


def stalled(best_losses: Sequence[float], tolerance: float) -> bool:
    """The patience rule: True when the best loss at the end of the window is not below
    (1 − tolerance) × the best loss at its start, i.e. it improved by less than ``tolerance``
    (relative) over the window. The window is ``patience + 1`` consecutive best losses."""
    return best_losses[-1] >= best_losses[0] * (1.0 - tolerance)


def _project(x: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
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


class _Average:
    """Bias-corrected exponential moving average of the iterates (as Adam's first moment,
    Kingma & Ba 2015, alg. 1): m_t = d m_{t-1} + (1 − d) x_t, x̄_t = m_t / (1 − d^t)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.mean: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            if self.mean is None:
                self.mean = torch.zeros_like(x)
            self.mean.mul_(self.decay).add_(x.detach(), alpha=1 - self.decay)
        self.steps += 1

    def value(self) -> torch.Tensor:
        assert self.mean is not None
        return (self.mean / (1 - self.decay**self.steps)).clamp(0.0, 1.0)


@dataclass
class _Progress:
    """Counters of a run that go on across scales."""

    seed: int
    total: int
    scales: int
    scale: int = 0
    steps: int = 0
    evals: int = 0
    history: list[float] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)


def _finishing(
    callback: Callable[[StepEvent], object], finish: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[StepEvent], object]:
    """The callback, handed events whose images are finished like the result's."""

    def wrapped(event: StepEvent) -> object:
        return callback(
            dataclasses.replace(
                event,
                _current=lambda: finish(event.image()),
                _best=lambda: finish(event.best_image()),
            )
        )

    return wrapped


def _upsized(result: Result, height: int, width: int) -> Result:
    """The result with its image resized to the final size (for runs ended at a coarse scale)."""
    return dataclasses.replace(result, image=resize_to(result.image, height, width))
