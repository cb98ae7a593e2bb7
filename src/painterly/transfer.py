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
import secrets
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import color, losses
from .config import INIT_KEYWORDS, Config, ConfigError
from .images import ImageSource, load_image, resize_longest, resize_to
from .masks import load_mask
from .vgg import VGG19Features, resolve_layer
from .weights import load_weights

__all__ = [
    "NonFiniteLossError",
    "Result",
    "StepEvent",
    "StyleTransfer",
    "TransferInterrupted",
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

    def image(self) -> torch.Tensor:
        """A copy of the current image, (1, 3, H, W) float32 on the CPU, in [0, 1]."""
        return self._current()

    def best_image(self) -> torch.Tensor:
        """A copy of the lowest-loss image so far, (1, 3, H, W) float32 on the CPU, in [0, 1]."""
        return self._best()


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
    history: list[float]


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
        self.vgg = VGG19Features(load_weights(config.weights), config.pooling, up_to=self.layers)
        self.vgg.to(self.device)
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
        content's longest side there, its aspect ratio kept. Checks every side is large enough.
        """
        c = resize_longest(content, size)
        style_size = max(1, round(self.config.style_scale * max(c.shape[-2:])))
        scaled = [resize_longest(s, style_size) for s in styles]
        need = self.config.min_side
        labelled = [("content", c)] + [
            (f"style{'' if len(scaled) == 1 else f' {k + 1}'}", s) for k, s in enumerate(scaled)
        ]
        for label, t in labelled:
            h, w = t.shape[-2:]
            if min(h, w) < need:
                raise ConfigError(
                    f"the {label} image is {w}x{h} px at size {size}; the layers used need at "
                    f"least {need} px on each side (raise --size or --style-scale, use fewer "
                    "--scales or shallower layers)"
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

        Returns:
            A :class:`Result` with the lowest-loss image of the last scale (the iterates'
            average with ``ema_decay``).

        Raises:
            TransferInterrupted: Ctrl-C; carries the best image so far, at the final size.
            NonFiniteLossError: NaN/inf loss; carries the last finite best image.
            ImageError, ConfigError: bad inputs (all checked before any compute), among them a
                number of blend weights or masks other than the number of style images.
        """
        cfg = self.config
        seed = cfg.seed if cfg.seed is not None else secrets.randbelow(2**31)
        content_full = load_image(content)
        styles_full = [load_image(s) for s in _style_list(style)]
        blend = cfg.check_styles(len(styles_full))
        masks_full = [load_mask(m) for m in cfg.style_masks] if cfg.style_masks else None
        init_file = None if cfg.init in INIT_KEYWORDS else load_image(cfg.init)
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
            return dataclasses.replace(result, image=finish(result.image))

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
        x: torch.Tensor | None = None
        result: Result | None = None
        for scale, ((_, iterations), (c, ss)) in enumerate(zip(ladder, inputs, strict=True)):
            try:
                if x is None:
                    x = self._init_image(c, ss[0], seed, init_file)
                else:
                    x = resize_to(x, *c.shape[-2:]).contiguous()
                masks = None
                if masks_full is not None:
                    masks = [resize_to(m, *c.shape[-2:]) for m in masks_full]
                p_targets, a_targets = self.targets(c, ss, masks, blend)
                progress.scale = scale
                result = self._optimise(x, iterations, p_targets, a_targets, progress, callback)
            except (TransferInterrupted, NonFiniteLossError) as exc:
                exc.result = finished(_upsized(exc.result, *final_hw))
                raise
            except KeyboardInterrupt:  # between scales: the last finished scale's result
                if result is None:
                    raise
                partial = dataclasses.replace(result, stop_reason="interrupted")
                raise TransferInterrupted(finished(_upsized(partial, *final_hw))) from None
            if result.stop_reason == "stopped":
                return finished(_upsized(result, *final_hw))
            x = result.image.to(self.device)
        assert result is not None
        return finished(result)

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
    ) -> Result:
        """One scale's optimisation, starting at ``x`` (which it leaves unchanged)."""
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

        window: deque[float] = deque(maxlen=(cfg.patience or 0) + 1)
        reason = "iterations"
        try:
            if iterations == 0:
                with torch.no_grad():
                    best_loss = self._loss(x, p_targets, a_targets)[0].item()
            for _ in range(iterations):
                step_terms.clear()
                optimizer.step(closure)
                run.steps += 1
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
                )
                if callback is not None and callback(event):
                    reason = "stopped"
                    break
                if cfg.patience:
                    window.append(best_loss)
                    if len(window) == window.maxlen and stalled(window, cfg.tolerance):
                        reason = "converged"
                        break
        except KeyboardInterrupt:
            raise TransferInterrupted(result("interrupted")) from None
        return result(reason)


# Peak memory model, fitted to whole-process peaks measured by benchmarks/bench_speed.py on the
# CPU (2026-11-29: 0.74 / 1.73 GiB at 512 / 1024 px in bf16, 0.96 / 2.22 GiB in fp32), per
# output pixel for the network's activations and their gradients, plus the optimiser's vectors.
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
