"""One typed configuration with every option, its default, its validation, and the presets.

Presets (:data:`PRESETS`):

``default``
    Tuned for the best picture per CPU-second at 512 px (README, "How the default was chosen"):
    the paper's losses and layers, started from the content image, L-BFGS, bf16 where the
    hardware has it.
``paper``
    Gatys et al. 2016 as published: content ``conv4_2`` (taken after its ReLU, ``relu4_2``), style
    ``relu1_1`` … ``relu5_1`` with w_l = 1/5, α/β = 1e-3, L-BFGS from white noise, max pooling.
``blog``
    The 2019 TensorFlow blog's recipe: content ``block5_conv2``, style ``block1_conv1`` …
    ``block5_conv1``, α = 1e4, β = 1e-2, blog normalisation, Adam (lr 0.02, β1 0.99, ε 0.1) from a
    noise image, 512 px, 5000 iterations. Two slips of the blog are fixed: it clipped the image to
    [0, 255] while its pixels live in [0, 1] (we clip to [0, 1]), and it stopped at the first loss
    increase keeping a *reference* to the "best" image, which later steps mutate (we keep a copy
    of the best image and stop by a patience rule on relative improvement).
``blog-fast``
    The blog's losses, layers, α and β, optimised like the default (started from the photo,
    L-BFGS, bf16 where available, 200 steps): α/β mean what they mean in the blog, and a picture
    takes a minute or two instead of hours. ``painterly sweep`` uses it unless told otherwise.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .losses import Normalization
from .vgg import Pooling, layer_stride, resolve_layer

__all__ = ["INIT_KEYWORDS", "PRESETS", "Config", "ConfigError"]

Optimizer = Literal["lbfgs", "adam"]
Precision = Literal["auto", "fp32", "bf16"]
Convolution = Literal["auto", "direct", "winograd"]
PreserveColors = Literal["none", "luminance", "histogram"]
StyleStatistic = Literal["gram", "w2"]

#: Above this size (px, longest side) the default is coarse to fine (README, "Coarse to fine").
COARSE_TO_FINE_ABOVE = 1024

#: Values of ``init`` that are not file paths.
INIT_KEYWORDS = ("content", "noise", "style")

_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


class ConfigError(ValueError):
    """An option has an invalid value or conflicts with another option."""


@dataclass
class Config:
    """Every option of a style transfer run.

    Attributes:
        size: longest side of the output in pixels; the content image is resized to it (up or
            down) and the style image to the same longest side.
        iterations: optimiser steps (for L-BFGS one step is one iteration, which may use more than
            one function evaluation when ``line_search`` is on).
        content_weight: α, multiplies the content loss (averaged over content layers).
        style_weight: β, multiplies the style loss Σ_l w_l E_l.
        tv_weight: multiplies the total variation loss (0 switches it off).
        content_layers: layers of the content representation (Caffe or Keras names).
        style_layers: layers of the style representation.
        style_layer_weights: w_l per style layer; ``None`` means equal weights 1/L.
        normalization: ``"paper"`` or ``"blog"`` (see :mod:`painterly.losses`).
        optimizer: ``"lbfgs"`` or ``"adam"``.
        learning_rate: L-BFGS step length / Adam's lr (pixels in [0, 1]).
        adam_beta1, adam_beta2, adam_eps: Adam's β1, β2, ε.
        lbfgs_history: L-BFGS memory (pairs of vectors kept).
        line_search: L-BFGS with a strong-Wolfe line search (more evaluations per step).
        init: ``"content"``, ``"noise"`` (uniform in [0, 1]), ``"style"`` or an image path.
        pooling: ``"max"`` or ``"avg"``.
        precision: ``"auto"`` (bf16 where the hardware runs it fast, else fp32), ``"fp32"``,
            ``"bf16"`` (convolutions only; Grams and losses stay float32).
        convolution: how the 3×3 convolutions are computed: ``"direct"``, ``"winograd"``
            (F(4×4, 3×3) from ``conv3_1`` on: 4× fewer multiplications there, ~10× the
            rounding error; :mod:`painterly.winograd`) or ``"auto"``: Winograd for bf16 on a
            CPU, where it is faster (benchmarks/README.md), direct otherwise.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        weights: ``"embedded"``, ``"torchvision"`` or a path to a state dict.
        seed: seed of the noise init; ``None`` picks one at random (reported in the result).
        scales: number of scales, coarse to fine: the long side doubles from scale to scale up
            to ``size`` (``size / 2**(scales - 1)`` first); 1 is a plain single-scale run.
            ``None`` (the default) chooses: 1 up to :data:`COARSE_TO_FINE_ABOVE` px, above it as
            many as bring the first scale to 128–256 px (:attr:`scale_count`).
        scale_iterations: steps at each scale, coarse to fine; ``None`` gives every scale
            ``iterations`` steps, except for an automatic ladder, where the steps halve from
            scale to scale up (at least 20): the fine scales only add detail.
        patience: stop when the best loss improved by less than ``tolerance`` (relative) over
            this many steps; ``None`` runs all ``iterations``.
        tolerance: relative improvement that counts as progress for ``patience``.
        preserve_colors: ``"none"``, ``"luminance"`` (transfer on luminance, the content's
            chroma put back) or ``"histogram"`` (the style's colour mean and covariance matched
            to the content's first); Gatys et al. 2017, §5 (:mod:`painterly.color`).
        style_blend_weights: one weight per style image (normalised to sum 1); ``None`` means
            equal weights. The target is the statistics of the styles' features pooled with
            these weights.
        style_scale: the style image's longest side relative to the output's (at every scale);
            1 = the same longest side. The style's aspect ratio is always kept.
        style_masks: one mask image path per style image (white = where that style applies,
            black = not; gray = partly): guided Gram matrices, Gatys et al. 2017, §4.
        style_loss: the style statistic, ``"gram"`` (Gatys et al. 2016, eq. 4) or ``"w2"``
            (the Wasserstein-2 distance between Gaussians with the features' mean and
            covariance; :func:`painterly.losses.w2_layer_loss`).
        ema_decay: iterate averaging: 0 is off; d in (0, 1) keeps the bias-corrected exponential
            moving average of the iterates, m_t = d m_{t-1} + (1 − d) x_t, x̄_t = m_t / (1 − d^t),
            which is then the saved result and the start of the next scale.
    """

    size: int = 512
    iterations: int = 150
    content_weight: float = 1.0
    style_weight: float = 1e3
    tv_weight: float = 0.0
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = _STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None
    normalization: Normalization = "paper"
    optimizer: Optimizer = "lbfgs"
    learning_rate: float = 1.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    lbfgs_history: int = 20
    line_search: bool = False
    init: str = "content"
    pooling: Pooling = "max"
    precision: Precision = "auto"
    convolution: Convolution = "auto"
    device: str = "auto"
    weights: str = "embedded"
    seed: int | None = None
    scales: int | None = None
    scale_iterations: tuple[int, ...] | None = None
    patience: int | None = 50
    tolerance: float = 1e-3
    preserve_colors: PreserveColors = "none"
    style_blend_weights: tuple[float, ...] | None = None
    style_scale: float = 1.0
    style_masks: tuple[str, ...] | None = None
    style_loss: StyleStatistic = "gram"
    ema_decay: float = 0.0
    preset: str = field(default="default", compare=False)

    def __post_init__(self) -> None:
        self.content_layers = tuple(self.content_layers)
        self.style_layers = tuple(self.style_layers)
        if self.style_layer_weights is not None:
            self.style_layer_weights = tuple(float(w) for w in self.style_layer_weights)
        if self.scale_iterations is not None:
            self.scale_iterations = tuple(self.scale_iterations)
        if self.style_blend_weights is not None:
            self.style_blend_weights = tuple(float(w) for w in self.style_blend_weights)
        if self.style_masks is not None:
            self.style_masks = tuple(str(m) for m in self.style_masks)
        self.validate()

    @classmethod
    def from_preset(cls, name: str = "default", **overrides: Any) -> Config:
        """The preset's options with ``overrides`` applied on top.

        Raises:
            ConfigError: unknown preset, unknown option or invalid value.
        """
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        _check_names(overrides)
        return cls(**{**PRESETS[name], **overrides, "preset": name})

    def replace(self, **changes: Any) -> Config:
        """A validated copy with some options changed.

        Raises:
            ConfigError: unknown option or invalid value.
        """
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON-friendly values (tuples as lists); :meth:`from_dict`
        reads them back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> Config:
        """A validated config from :meth:`to_dict`'s output (e.g. read from JSON).

        Raises:
            ConfigError: unknown option (say, from a newer painterly) or invalid value.
        """
        _check_names(options)
        return cls(**options)

    @property
    def layer_weights(self) -> dict[str, float]:
        """``{style layer: w_l}``, equal 1/L when ``style_layer_weights`` is ``None``."""
        n = len(self.style_layers)
        weights = self.style_layer_weights or (1.0 / max(n, 1),) * n
        return dict(zip(self.style_layers, weights, strict=True))

    @property
    def ladder(self) -> list[tuple[int, int]]:
        """``[(long side in px, steps), …]`` from the coarsest scale to ``size``."""
        n = self.scale_count
        sizes = [round(self.size / 2 ** (n - 1 - i)) for i in range(n)]
        if self.scale_iterations is not None:
            steps = self.scale_iterations
        elif self.scales is None:
            floor = min(self.iterations, 20)
            steps = tuple(max(round(self.iterations / 2**i), floor) for i in range(n))
        else:
            steps = (self.iterations,) * n
        return list(zip(sizes, steps, strict=True))

    @property
    def scale_count(self) -> int:
        """``scales``, or when it is ``None``: 1 up to :data:`COARSE_TO_FINE_ABOVE` px, else
        the number of doublings that starts at 128–256 px (1536 px: 192, 384, 768, 1536)."""
        if self.scales is not None:
            return self.scales
        if self.size <= COARSE_TO_FINE_ABOVE:
            return 1
        return 1 + math.ceil(math.log2(self.size / 256))

    @property
    def min_side(self) -> int:
        """The smallest image side the deepest layer used can take (its stride)."""
        return max(layer_stride(n) for n in (*self.content_layers, *self.style_layers))

    def check_styles(self, count: int) -> tuple[float, ...]:
        """The normalised blend weights v_k (Σ v_k = 1) for ``count`` style images.

        Raises:
            ConfigError: no style image, or a number of blend weights or masks that is not
                ``count``.
        """
        if count < 1:
            raise ConfigError("give at least one style image")
        weights = self.style_blend_weights or (1.0,) * count
        if len(weights) != count:
            raise ConfigError(f"{len(weights)} style blend weights for {count} style images")
        if self.style_masks is not None and len(self.style_masks) != count:
            raise ConfigError(f"{len(self.style_masks)} style masks for {count} style images")
        total = sum(weights)
        return tuple(w / total for w in weights)

    def validate(self) -> None:
        """Check every option and the combinations of options.

        Raises:
            ConfigError: the first problem found, in words a user can act on.
        """
        _positive_int("size", self.size)
        _nonnegative_int("iterations", self.iterations)
        for name in ("content_weight", "style_weight", "tv_weight"):
            _nonnegative_float(name, getattr(self, name))
        for name in ("learning_rate", "adam_eps"):
            _nonnegative_float(name, getattr(self, name))
            if getattr(self, name) == 0:
                raise ConfigError(f"{name} must be > 0")
        _nonnegative_float("tolerance", self.tolerance)
        if self.tolerance >= 1:
            raise ConfigError(
                f"tolerance is a relative improvement in [0, 1), got {self.tolerance}"
            )
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < 1):
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        _positive_int("lbfgs_history", self.lbfgs_history)
        if self.patience is not None:
            _positive_int("patience", self.patience)
        if not self.content_layers and not self.style_layers:
            raise ConfigError("give at least one content or style layer")
        for layers in (self.content_layers, self.style_layers):
            try:
                canonical = [resolve_layer(n) for n in layers]
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            if len(set(canonical)) != len(canonical):
                raise ConfigError(f"a layer is listed twice in {', '.join(layers)}")
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise ConfigError(
                    f"{len(self.style_layer_weights)} style layer weights for "
                    f"{len(self.style_layers)} style layers"
                )
            for w in self.style_layer_weights:
                _nonnegative_float("a style layer weight", w)
        _choice("normalization", self.normalization, ("paper", "blog"))
        _choice("optimizer", self.optimizer, ("lbfgs", "adam"))
        _choice("pooling", self.pooling, ("max", "avg"))
        _choice("precision", self.precision, ("auto", "fp32", "bf16"))
        _choice("convolution", self.convolution, ("auto", "direct", "winograd"))
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(self.device)):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, not {self.device!r}")
        if self.seed is not None and not (
            isinstance(self.seed, int)
            and 0 <= self.seed < 2**63
            and not isinstance(self.seed, bool)
        ):
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not self.init:
            raise ConfigError("init must be content, noise, style or an image path")
        if self.line_search and self.optimizer != "lbfgs":
            raise ConfigError("line_search applies to the lbfgs optimizer only")
        if self.scales is not None:
            _positive_int("scales", self.scales)
        if self.scale_iterations is not None:
            if len(self.scale_iterations) != self.scale_count:
                raise ConfigError(
                    f"{len(self.scale_iterations)} scale iterations for {self.scale_count} scales"
                )
            for n in self.scale_iterations:
                _nonnegative_int("a scale's iterations", n)
        _choice("preserve_colors", self.preserve_colors, ("none", "luminance", "histogram"))
        _choice("style_loss", self.style_loss, ("gram", "w2"))
        if self.style_blend_weights is not None:
            for w in self.style_blend_weights:
                _nonnegative_float("a style blend weight", w)
            if not self.style_blend_weights or sum(self.style_blend_weights) <= 0:
                raise ConfigError("style blend weights must have a positive sum")
        _nonnegative_float("style_scale", self.style_scale)
        if not 0 < self.style_scale <= 8:
            raise ConfigError(f"style_scale must be in (0, 8], got {self.style_scale!r}")
        if self.style_masks is not None:
            if not self.style_masks or not all(self.style_masks):
                raise ConfigError("style_masks must be one image path per style image")
            if self.style_blend_weights is not None:
                raise ConfigError(
                    "give style_masks or style_blend_weights, not both: with masks each "
                    "style has its own region"
                )
        _nonnegative_float("ema_decay", self.ema_decay)
        if self.ema_decay >= 1:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        smallest = self.ladder[0][0]
        if smallest < self.min_side:
            where = " at the first scale" if self.scale_count > 1 else ""
            raise ConfigError(
                f"size {smallest} px{where} is below "
                f"{self.min_side} px, the least the deepest layer needs"
            )


def _check_names(options: dict[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(unknown)}")


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _nonnegative_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")


def _nonnegative_float(name: str, value: object) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


_BLOG_LOSSES: dict[str, Any] = {
    "content_weight": 1e4,
    "style_weight": 1e-2,
    "tv_weight": 0.0,
    "content_layers": ("block5_conv2",),
    "style_layers": tuple(f"block{i}_conv1" for i in range(1, 6)),
    "normalization": "blog",
}

#: Named sets of options; :meth:`Config.from_preset` applies one with overrides.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": {
        "iterations": 1000,
        "content_weight": 1.0,
        "style_weight": 1e3,
        "content_layers": ("relu4_2",),
        "style_layers": _STYLE_LAYERS,
        "normalization": "paper",
        "optimizer": "lbfgs",
        "init": "noise",
        "precision": "fp32",
        "patience": None,
    },
    "blog": {
        **_BLOG_LOSSES,
        "size": 512,
        "iterations": 5000,
        "content_weight": 1e4,
        "style_weight": 1e-2,
        "optimizer": "adam",
        "learning_rate": 0.02,
        "adam_beta1": 0.99,
        "adam_eps": 0.1,
        "init": "noise",
        "precision": "fp32",
        "patience": 200,
        "tolerance": 1e-4,
    },
    "blog-fast": {**_BLOG_LOSSES, "iterations": 200},
}
