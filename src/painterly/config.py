"""One typed configuration with every option, its default, its validation, and the presets.

Presets (:data:`PRESETS`):

``default``
    Chosen on pictures (issue 12; README, "How the default was chosen"): the paper's losses and
    layers with β = 1e2, coarse to fine from 128–255 px at every size (100 steps there, a
    quarter of that per scale up, at least 10), started from the photo moved to the painting's
    colour mean and covariance, L-BFGS, bf16 where the hardware has it.
``paper``
    Gatys et al. 2016 as published: content ``conv4_2`` (taken after its ReLU, ``relu4_2``), style
    ``relu1_1`` … ``relu5_1`` with w_l = 1/5, α/β = 1e-3, L-BFGS from white noise, average
    pooling (§2: "for image synthesis we found that replacing the maximum pooling operation by
    average pooling yields slightly more appealing results"; before issue 12 the preset had max
    pooling, which more than doubled its colour noise).
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
import functools
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from .layers import layer_stride, resolve_layer

__all__ = ["INIT_KEYWORDS", "PRESETS", "Config", "ConfigError", "OptionSpec", "command_options"]

Normalization = Literal["paper", "blog"]
Pooling = Literal["max", "avg"]
Optimizer = Literal["lbfgs", "adam"]
Precision = Literal["auto", "fp32", "bf16"]
Convolution = Literal["auto", "direct", "winograd"]
PreserveColors = Literal["none", "luminance", "histogram"]
StyleStatistic = Literal["gram", "w2", "gram+hist"]
InitColors = Literal["content", "style"]

#: The automatic ladder's first scale starts at this long side or up to twice it (px): coarse
#: to fine at every size from twice it on (README, "How the default was chosen").
FIRST_SCALE = 128

#: The automatic ladder divides the steps by this from one scale to the next one up.
STEP_RATIO = 4

#: The default λ of the temporal loss (``painterly video``): with pixels in [0, 1] and
#: L_temporal a mean over the frame's values, it must be of the size of α·L_content (a sum over
#: relu4_2's features); chosen on the panned clip of benchmarks/bench_video.py (README, "Video").
TEMPORAL_WEIGHT = 1e14

#: Values of ``init`` that are not file paths.
INIT_KEYWORDS = ("content", "noise", "style")

_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


class ConfigError(ValueError):
    """An option has an invalid value or conflicts with another option."""


def _option(default: Any, help: str, *, metavar: str | None = None, word: str | None = None) -> Any:
    """A Config field that is also a command-line option (``--field-name``): its help text, its
    metavar and, for an optional number, the word that means ``None`` (``--patience none``)."""
    metadata = {"help": help, "metavar": metavar, "word": word}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class OptionSpec:
    """One command-line option derived from a :class:`Config` field.

    Attributes:
        name: the field's name (``style_weight``); flag: ``--style-weight``.
        kind: ``"int"``, ``"float"``, ``"str"``, ``"bool"``, ``"choice"`` or ``"list"``.
        item: for ``"list"``, the element type's name (``"str"``, ``"float"``, ``"int"``).
        choices: for ``"choice"``, the allowed values.
        word: for an optional number, the word that stands for ``None`` (``"none"``, ``"auto"``).
        default: the field's default; help, metavar: as shown by ``--help``.
    """

    name: str
    flag: str
    kind: str
    help: str
    metavar: str | None = None
    item: str | None = None
    choices: tuple[str, ...] = ()
    word: str | None = None
    default: Any = None


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
        tv_per_pixel: the total variation is the mean of the squared neighbour differences
            rather than their sum (the ``paper`` normalisation's), so that one ``tv_weight``
            means the same smoothing at every size.
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
        init_colors: with ``init="content"``: ``"content"`` starts from the photo as it is,
            ``"style"`` from the photo with its colour mean and covariance moved to the first
            style image's (:func:`painterly.color.match_color_statistics` the other way round),
            so that the optimiser need not spend its steps on the palette.
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
            ``None`` (the default) chooses as many as bring the first scale to 128–255 px
            (:attr:`scale_count`).
        scale_iterations: steps at each scale, coarse to fine; ``None`` gives every scale
            ``iterations`` steps, except for an automatic ladder, where the first scale gets
            ``iterations`` and each scale up a quarter of the one below (at least 10): most
            steps are taken where they cost a sixteenth, and the fine scales only add detail.
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
            covariance; :func:`painterly.losses.w2_layer_loss`) or ``"gram+hist"`` (the Gram
            loss plus the histogram loss of Risser et al. 2017 at relu1_1 and relu4_1,
            :func:`painterly.losses.histogram_loss`).
        hist_weight: the histogram loss's weight relative to β (``gram+hist`` only).
        ema_decay: iterate averaging: 0 is off; d in (0, 1) keeps the bias-corrected exponential
            moving average of the iterates, m_t = d m_{t-1} + (1 − d) x_t, x̄_t = m_t / (1 − d^t),
            which is then the saved result and the start of the next scale.
        temporal_weight: λ, multiplies a video frame's temporal loss (1/D) Σ c (x − ω)²
            (Ruder, Dosovitskiy & Brox 2016, eq. 7; :func:`painterly.losses.temporal_loss`);
            it acts only with a ``temporal_target`` (``painterly video`` sets one per frame).
        temporal_target: ω, an image file: the previous stylised frame warped to this one by
            the optical flow; ``None`` (a still picture) means no temporal loss.
        temporal_mask: c, an image file read as luminance (white = 1): where the flow is
            reliable; ``None`` weighs every pixel 1.
        tile: evaluate every scale whose longest side exceeds this many px tile by tile
            (:mod:`painterly.tiles`: the same loss and gradient, in the memory of one tile of
            this side plus its halo); rounded down to a multiple of the deepest layer's
            stride. ``None``: the memory guard sets it when a run would not fit
            (:func:`painterly.memory.check_memory`).
        edge_margin: px of reflection padding around every image the network sees, its
            features cropped back to the image (:class:`painterly.vgg.VGG19Features`); without
            it (0) VGG's zero padding leaves a bright or speckled line along the edges.
    """

    size: int = _option(512, "longest side of the output", metavar="PX")
    iterations: int = _option(100, "optimiser steps (the first scale's)", metavar="N")
    content_weight: float = _option(1.0, "α", metavar="ALPHA")
    style_weight: float = _option(1e2, "β", metavar="BETA")
    tv_weight: float = _option(0.0, "total variation weight", metavar="W")
    tv_per_pixel: bool = _option(False, "total variation averaged over pixels (one W, any size)")
    content_layers: tuple[str, ...] = _option(("relu4_2",), "content layers", metavar="L1,L2")
    style_layers: tuple[str, ...] = _option(_STYLE_LAYERS, "style layers", metavar="L1,L2")
    style_layer_weights: tuple[float, ...] | None = _option(
        None, "w_l per style layer (default equal)", metavar="W1,W2"
    )
    normalization: Normalization = _option("paper", "normalization")
    optimizer: Optimizer = _option("lbfgs", "optimizer")
    learning_rate: float = _option(1.0, "learning rate", metavar="LR")
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    lbfgs_history: int = 20
    line_search: bool = _option(False, "line search")
    init: str = _option("content", "init", metavar="content|noise|style|FILE")
    init_colors: InitColors = _option(
        "style", "the content start's colours: the photo's, or moved to the style's"
    )
    pooling: Pooling = _option("max", "pooling")
    precision: Precision = _option("auto", "precision")
    convolution: Convolution = _option(
        "auto", "winograd: fewer FLOPs, less precise; auto: winograd for bf16 on a CPU"
    )
    device: str = _option("auto", "device", metavar="auto|cpu|cuda[:N]")
    threads: int | None = _option(
        None,
        "CPU threads (default: the physical cores torch sees)",
        metavar="N",
    )
    weights: str = _option("embedded", "weights", metavar="embedded|torchvision|FILE")
    seed: int | None = _option(None, "noise seed (default: random, always printed)")
    scales: int | None = _option(
        None,
        "coarse-to-fine scales; auto: from 128-255 px up",
        metavar="N|auto",
        word="auto",
    )
    scale_iterations: tuple[int, ...] | None = _option(
        None, "steps per scale, coarse to fine", metavar="N1,N2"
    )
    patience: int | None = _option(
        50, "stop after N steps without progress", metavar="N|none", word="none"
    )
    tolerance: float = _option(1e-3, "relative improvement that counts")
    preserve_colors: PreserveColors = _option("none", "keep the photo's colours")
    style_blend_weights: tuple[float, ...] | None = _option(
        None, "one weight per style (normalised)", metavar="W1,W2"
    )
    style_scale: float = _option(1.0, "style's longest side / output's", metavar="S")
    style_masks: tuple[str, ...] | None = _option(
        None, "one mask image per style (white: here)", metavar="M1,M2"
    )
    style_loss: StyleStatistic = _option("gram", "style statistic")
    hist_weight: float = _option(1.0, "histogram loss weight, times β (gram+hist)", metavar="W")
    ema_decay: float = _option(0.0, "average the iterates (0: off; e.g. 0.9)", metavar="D")
    temporal_weight: float = _option(
        TEMPORAL_WEIGHT,
        f"video: weight of the temporal loss (0: off; default {TEMPORAL_WEIGHT:g})",
        metavar="W",
    )
    temporal_target: str | None = None
    temporal_mask: str | None = None
    tile: int | None = _option(
        None,
        "evaluate scales larger than PX in exact tiles of PX (auto: when memory asks)",
        metavar="PX|auto",
        word="auto",
    )
    edge_margin: int = _option(
        4, "px of reflection around the image the network sees (0: off)", metavar="PX"
    )
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

        Options written before ``edge_margin`` existed have none: it is then 0, as they were
        made.

        Raises:
            ConfigError: unknown option (say, from a newer painterly) or invalid value.
        """
        _check_names(options)
        # Saved before edge_margin existed (recipes, checkpoints): made without a margin.
        return cls(**{"edge_margin": 0, **options})

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
            floor = min(self.iterations, 10)
            steps = tuple(max(round(self.iterations / STEP_RATIO**i), floor) for i in range(n))
        else:
            steps = (self.iterations,) * n
        return list(zip(sizes, steps, strict=True))

    @property
    def scale_count(self) -> int:
        """``scales``, or when it is ``None``: the number of doublings that starts at
        :data:`FIRST_SCALE` to twice it, whatever the size (256 px: 128, 256; 512 px: 128, 256,
        512; 1536 px: 192, 384, 768, 1536); 1 below twice :data:`FIRST_SCALE`."""
        if self.scales is not None:
            return self.scales
        return max(1, 1 + math.floor(math.log2(self.size / FIRST_SCALE)))

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
        for check in _CHECKS:
            check(self)


def _check_numbers(c: Config) -> None:
    _positive_int("size", c.size)
    _nonnegative_int("iterations", c.iterations)
    for name in ("content_weight", "style_weight", "tv_weight", "temporal_weight", "hist_weight"):
        _nonnegative_float(name, getattr(c, name))
    for name in ("learning_rate", "adam_eps"):
        _nonnegative_float(name, getattr(c, name))
        if getattr(c, name) == 0:
            raise ConfigError(f"{name} must be > 0")
    _nonnegative_float("tolerance", c.tolerance)
    _nonnegative_int("edge_margin", c.edge_margin)
    if c.tolerance >= 1:
        raise ConfigError(f"tolerance is a relative improvement in [0, 1), got {c.tolerance}")
    for name in ("adam_beta1", "adam_beta2"):
        value = getattr(c, name)
        if not (isinstance(value, int | float) and 0 <= value < 1):
            raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
    _positive_int("lbfgs_history", c.lbfgs_history)
    if c.patience is not None:
        _positive_int("patience", c.patience)
    if c.threads is not None:
        _positive_int("threads", c.threads)
    if c.seed is not None and not (
        isinstance(c.seed, int) and 0 <= c.seed < 2**63 and not isinstance(c.seed, bool)
    ):
        raise ConfigError(f"seed must be a non-negative integer, got {c.seed!r}")
    if c.tile is not None:
        _positive_int("tile", c.tile)
    _nonnegative_float("ema_decay", c.ema_decay)
    if c.ema_decay >= 1:
        raise ConfigError(f"ema_decay must be in [0, 1) (0 = off), got {c.ema_decay}")


def _check_layers(c: Config) -> None:
    if not c.content_layers and not c.style_layers:
        raise ConfigError("give at least one content or style layer")
    for layers in (c.content_layers, c.style_layers):
        try:
            canonical = [resolve_layer(n) for n in layers]
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if len(set(canonical)) != len(canonical):
            raise ConfigError(f"a layer is listed twice in {', '.join(layers)}")
    if c.style_layer_weights is not None:
        if len(c.style_layer_weights) != len(c.style_layers):
            raise ConfigError(
                f"{len(c.style_layer_weights)} style layer weights for "
                f"{len(c.style_layers)} style layers"
            )
        for w in c.style_layer_weights:
            _nonnegative_float("a style layer weight", w)


def _check_choices(c: Config) -> None:
    for spec in command_options():
        if spec.kind == "choice":
            _choice(spec.name, getattr(c, spec.name), spec.choices)
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(c.device)):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, not {c.device!r}")
    if not c.init:
        raise ConfigError("init must be content, noise, style or an image path")
    if c.line_search and c.optimizer != "lbfgs":
        raise ConfigError("line_search applies to the lbfgs optimizer only")
    if c.temporal_mask is not None and c.temporal_target is None:
        raise ConfigError("temporal_mask needs a temporal_target (the warped previous frame)")
    if c.tile is not None and c.style_loss == "gram+hist":
        # The histogram loss sorts each channel over the whole picture: no sum over tiles.
        raise ConfigError("--style-loss gram+hist cannot be evaluated in tiles (--tile)")


def _check_styles(c: Config) -> None:
    if c.style_blend_weights is not None:
        for w in c.style_blend_weights:
            _nonnegative_float("a style blend weight", w)
        if not c.style_blend_weights or sum(c.style_blend_weights) <= 0:
            raise ConfigError("style blend weights must have a positive sum")
    _nonnegative_float("style_scale", c.style_scale)
    if not 0 < c.style_scale <= 8:
        raise ConfigError(f"style_scale must be in (0, 8], got {c.style_scale!r}")
    if c.style_masks is not None:
        if c.style_loss == "gram+hist":
            raise ConfigError("style_loss gram+hist does not take style_masks (use gram or w2)")
        if not c.style_masks or not all(c.style_masks):
            raise ConfigError("style_masks must be one image path per style image")
        if c.style_blend_weights is not None:
            raise ConfigError(
                "give style_masks or style_blend_weights, not both: with masks each "
                "style has its own region"
            )


def _check_ladder(c: Config) -> None:
    if c.scales is not None:
        _positive_int("scales", c.scales)
    if c.scale_iterations is not None:
        if len(c.scale_iterations) != c.scale_count:
            raise ConfigError(
                f"{len(c.scale_iterations)} scale iterations for {c.scale_count} scales"
            )
        for n in c.scale_iterations:
            _nonnegative_int("a scale's iterations", n)
    if c.tile is not None and c.tile < c.min_side:
        raise ConfigError(f"tile {c.tile} px is below {c.min_side} px, the deepest layer's stride")
    smallest = c.ladder[0][0]
    if smallest < c.min_side:
        where = " at the first scale" if c.scale_count > 1 else ""
        raise ConfigError(
            f"size {smallest} px{where} is below {c.min_side} px, the least the deepest layer needs"
        )


_CHECKS = (_check_numbers, _check_layers, _check_choices, _check_styles, _check_ladder)


@functools.cache
def command_options() -> tuple[OptionSpec, ...]:
    """The command-line options, one per :class:`Config` field that declares a help text, in
    field order, with their kinds read from the fields' type annotations: the one table that
    ``painterly stylize --help``, the parser and the README's option table come from."""
    hints = typing.get_type_hints(Config)
    specs = []
    defaults = Config.__dataclass_fields__
    for f in dataclasses.fields(Config):
        if "help" not in f.metadata:
            continue
        kind, item, choices = _kind(hints[f.name])
        specs.append(
            OptionSpec(
                name=f.name,
                flag="--" + f.name.replace("_", "-"),
                kind=kind,
                help=f.metadata["help"],
                metavar=f.metadata["metavar"],
                item=item,
                choices=choices,
                word=f.metadata["word"],
                default=defaults[f.name].default,
            )
        )
    return tuple(specs)


def _kind(hint: Any) -> tuple[str, str | None, tuple[str, ...]]:
    """(kind, list item type, choices) of a field's type: ``int | None`` is an int, a
    ``Literal`` a choice, ``tuple[float, ...]`` a list of floats."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0]
        args = list(typing.get_args(hint))
    if typing.get_origin(hint) is Literal:
        return "choice", None, tuple(args)
    if typing.get_origin(hint) is tuple:
        return "list", args[0].__name__, ()
    return hint.__name__, None, ()


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

#: What the published presets keep of the options before issue 12's default: one scale, the
#: Gram loss alone, the photo start in its own colours.
_PUBLISHED: dict[str, Any] = {"scales": 1, "style_loss": "gram", "init_colors": "content"}

#: Named sets of options; :meth:`Config.from_preset` applies one with overrides.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": {
        **_PUBLISHED,
        "iterations": 1000,
        "content_weight": 1.0,
        "style_weight": 1e3,
        "content_layers": ("relu4_2",),
        "style_layers": _STYLE_LAYERS,
        "normalization": "paper",
        "optimizer": "lbfgs",
        "init": "noise",
        "pooling": "avg",
        "precision": "fp32",
        "patience": None,
    },
    "blog": {
        **_PUBLISHED,
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
    "blog-fast": {**_PUBLISHED, **_BLOG_LOSSES, "iterations": 200},
}
