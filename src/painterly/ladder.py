"""The ladder: a run coarse to fine over ``config.ladder``, from decoded inputs to the result.

This room owns the scales and their sizes (:func:`check_sizes`, :func:`scaled`), the start
image (:func:`init_image`), carrying the image up from one scale to the next, the colour
handling before and after the optimisation (:class:`Colours`: ``preserve_colors`` by histogram
matching or luminance-only transfer, Gatys et al. 2016b "Preserving Color in Neural Artistic
Style Transfer"; gray inputs give a gray output) and the checks of a resumed state
(:func:`check_resume`). Each scale gets its own :class:`~painterly.objective.Objective` and
:class:`~painterly.optimise.ScaleOptimiser`.

It works on tensors: decoding the inputs and writing the recipe are the caller's
(:class:`painterly.transfer.StyleTransfer`). Nothing here prints or writes a file.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from . import color
from .config import Config, ConfigError
from .events import NonFiniteLossError, Result, RunState, StepEvent, TransferInterrupted
from .images import resize_longest, resize_to
from .objective import LossNetwork, TemporalTarget
from .optimise import Progress, ScaleOptimiser
from .tiles import make_objective

__all__ = [
    "Colours",
    "Inputs",
    "Ladder",
    "check_resume",
    "check_sizes",
    "finishing",
    "init_image",
    "scaled",
    "upsized",
]

Callback = Callable[[StepEvent], object]


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


def scaled(
    config: Config,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    size: int,
    device: torch.device,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The content at ``size`` on its longest side; each style at ``style_scale`` times the
    content's longest side there, its aspect ratio kept; all (1, 3, H, W) in [0, 1] on
    ``device``.

    The content's sides are checked at every scale (:func:`check_sizes`). A style image
    only gives statistics, so one whose short side would fall below what the deepest layer
    needs (a narrow strip, a small ``style_scale``) is enlarged until it does, not refused.

    Raises:
        ConfigError: the content is too small at some scale.
    """
    need = config.min_side
    check_sizes(config, *content.shape[-2:])
    c = resize_longest(content, size)
    style_size = max(1, round(config.style_scale * max(c.shape[-2:])))
    out = []
    for s in styles:
        sh, sw = s.shape[-2:]
        out.append(resize_longest(s, max(style_size, math.ceil(need * max(sh, sw) / min(sh, sw)))))
    return c.to(device), [s.to(device) for s in out]


def init_image(
    config: Config,
    content: torch.Tensor,
    style: torch.Tensor,
    seed: int,
    init_file: torch.Tensor | None,
    device: torch.device,
    colors_from: tuple[list[torch.Tensor], list[float]] | None = None,
) -> torch.Tensor:
    """The first scale's start, (1, 3, H, W) at the content's size: ``config.init`` is
    ``"content"``, ``"noise"`` (uniform in [0, 1], from ``seed``, drawn on the CPU), ``"style"``
    or a file (``init_file``, decoded). With ``init_colors="style"`` the content start is the
    photo with the style's colour mean and covariance (the reverse of ``preserve_colors=
    "histogram"``, Gatys et al. 2017 §5.2: x' = Σ_s^½ (Σ_c + εI)^−½ (x − μ_c) + μ_s), the
    style's moments those of ``colors_from`` (the style images and their blend weights, pooled
    by :func:`color.blended_color_moments`) when given, else of ``style``."""
    init = config.init
    h, w = content.shape[-2:]
    if init == "content" and config.init_colors == "style":
        images, weights = colors_from if colors_from is not None else ([style], [1.0])
        x = color.match_color_moments(content, *color.blended_color_moments(images, weights))
    elif init == "content":
        x = content.clone()
    elif init == "noise":
        gen = torch.Generator().manual_seed(seed)
        x = torch.rand(content.shape, generator=gen).to(device)
    elif init == "style":
        x = resize_to(style, h, w)
    else:
        assert init_file is not None
        x = resize_to(init_file, h, w).to(device)
    return x.contiguous()


def check_resume(state: RunState, ladder: list[tuple[int, int]], shapes: list[Any]) -> None:
    """Refuse a state that cannot belong to a run with this ladder and these inputs.

    Raises:
        ConfigError: another scale count, image size or step count.
    """
    if not 0 <= state.scale < len(ladder) or tuple(state.image.shape) != tuple(shapes[state.scale]):
        raise ConfigError(
            "the saved state does not match this run: it was made with other options or images"
        )
    if state.scale_step > ladder[state.scale][1]:
        raise ConfigError("the saved state has more steps at its scale than this run asks for")


def finishing(callback: Callback, finish: Callable[[torch.Tensor], torch.Tensor]) -> Callback:
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


def upsized(result: Result, height: int, width: int) -> Result:
    """The result with its image resized to the final size (for runs ended at a coarse scale)."""
    return dataclasses.replace(result, image=resize_to(result.image, height, width))


class Colours:
    """The colour handling of a run, before and after the optimisation.

    Before (:meth:`before`): with ``preserve_colors="histogram"`` each style's colours are
    matched to the content's; with ``"luminance"`` content, init and styles become luminance
    images (the styles' luminance matched to the content's). After (:meth:`finish`): for
    ``"luminance"`` the content's chroma is put back; when the content and every style image
    are gray (R = G = B), the output is made gray too (no input has colour to give it).

    Args:
        config: ``preserve_colors``. content: the full-size content (1, 3, H, W) in [0, 1].
        styles: the full-size style images.
    """

    def __init__(self, config: Config, content: torch.Tensor, styles: Sequence[torch.Tensor]):
        self.mode = config.preserve_colors
        self.content = content
        self.gray = color.is_gray(content) and all(color.is_gray(s) for s in styles)

    @property
    def changes_images(self) -> bool:
        """Whether :meth:`finish` changes images (then the events' images are finished too)."""
        return self.gray or self.mode == "luminance"

    def before(
        self, styles: Sequence[torch.Tensor], init: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        """The content, styles and init file the optimisation sees."""
        content = self.content
        if self.mode == "histogram":
            return content, [color.match_color_statistics(s, content) for s in styles], init
        if self.mode == "luminance":
            styles_run = [color.match_luminance(s, content) for s in styles]
            gray_init = None if init is None else color.to_gray(init)
            return color.to_gray(content), styles_run, gray_init
        return content, list(styles), init

    def finish(self, image: torch.Tensor) -> torch.Tensor:
        """An output image (1, 3, H, W) in [0, 1] with its colours finished."""
        if self.mode == "luminance":
            image = color.join_luminance(image, self.content)
        return color.to_gray(image) if self.gray else image


@dataclass(frozen=True)
class Inputs:
    """A run's decoded inputs at full size, (1, 3, H, W) in [0, 1].

    Attributes:
        content: the content image. styles: the style images (any sizes).
        blend: the normalised blend weights v_k, one per style.
        masks: one (1, 1, H, W) mask per style, or ``None``. init: the init file, or ``None``.
        temporal: a video frame's ω (1, 3, H', W') and c (1, 1, H'', W'') in [0, 1] (any
            sizes: resized to each scale), or ``None``.
    """

    content: torch.Tensor
    styles: list[torch.Tensor]
    blend: Sequence[float]
    masks: list[torch.Tensor] | None = None
    init: torch.Tensor | None = None
    temporal: tuple[torch.Tensor, torch.Tensor] | None = None


class Ladder:
    """One run over the scales of ``config.ladder``, coarse to fine.

    At each scale the content image is resized to that scale's longest side and each style
    image to ``style_scale`` times it (:func:`scaled`, all checked here, before any compute),
    the targets are recomputed, and the previous scale's result, upsampled, is the start.

    Args:
        net: the network and its layers. config: the options.
        device: where the images live. precision: ``"fp32"`` or ``"bf16"``, for the result.
        inputs: the decoded inputs.

    Raises:
        ConfigError: the content is too small at some scale.
    """

    def __init__(
        self,
        net: LossNetwork,
        config: Config,
        device: torch.device,
        precision: str,
        inputs: Inputs,
    ) -> None:
        self.net, self.config, self.device, self.precision = net, config, device, precision
        self.inputs = inputs
        self.colours = Colours(config, inputs.content, inputs.styles)
        content, styles, self.init = self.colours.before(inputs.styles, inputs.init)
        self.scales = [scaled(config, content, styles, size, device) for size, _ in config.ladder]
        self.final_hw = self.scales[-1][0].shape[-2:]

    def upscaled_style(self) -> int | None:
        """The final scale's style size (longest side, px) when it enlarges a style image
        past its own size (its brush strokes will look soft), else ``None``."""
        final_style = max(self.scales[-1][1][0].shape[-2:])
        if any(final_style > max(s.shape[-2:]) for s in self.inputs.styles):
            return final_style
        return None

    def finished(self, result: Result) -> Result:
        """The result at the final size, its colours finished."""
        result = upsized(result, *self.final_hw)
        return dataclasses.replace(result, image=self.colours.finish(result.image))

    def _progress(self, seed: int, resume: RunState | None) -> Progress:
        ladder = self.config.ladder
        progress = Progress(
            seed=seed,
            total=sum(n for _, n in ladder),
            scales=len(ladder),
            device=str(self.device),
            precision=self.precision,
        )
        if resume is not None:
            check_resume(resume, ladder, [c.shape for c, _ in self.scales])
            progress.steps, progress.evals = resume.steps, resume.function_evals
            progress.history = list(resume.history)
            progress.start -= resume.elapsed
        return progress

    def _start(
        self, scale: int, x: torch.Tensor | None, seed: int, state: RunState | None
    ) -> torch.Tensor:
        """The start of ``scale``: the resumed image, the init image, or ``x`` carried up."""
        c, styles = self.scales[scale]
        if state is not None:
            return state.image.to(self.device)
        if x is None:
            config = self.config
            if self.inputs.masks is not None:  # each region has its own style: the photo's colours
                config = dataclasses.replace(config, init_colors="content")
            colors = (styles, list(self.inputs.blend))
            return init_image(config, c, styles[0], seed, self.init, self.device, colors)
        return resize_to(x, *c.shape[-2:]).contiguous()

    def _temporal(self, content: torch.Tensor) -> TemporalTarget | None:
        """The video frame's temporal target at the size of this scale's ``content``: ω
        resized bicubically, c by area averaging (Ruder et al. 2016, §3.2)."""
        if self.inputs.temporal is None:
            return None
        warped, weight = self.inputs.temporal
        h, w = content.shape[-2:]
        if tuple(weight.shape[-2:]) != (h, w):
            weight = torch.nn.functional.interpolate(weight, size=(h, w), mode="area")
        warped = resize_to(warped, h, w) if tuple(warped.shape[-2:]) != (h, w) else warped
        return TemporalTarget(warped.to(self.device), weight.clamp(0, 1).to(self.device))

    def _scale(
        self,
        scale: int,
        x: torch.Tensor,
        progress: Progress,
        callback: Callback | None,
        state: RunState | None,
    ) -> Result:
        """One scale: its targets, then its optimisation from ``x``."""
        c, styles = self.scales[scale]
        masks = None
        if self.inputs.masks is not None:
            masks = [resize_to(m, *c.shape[-2:]) for m in self.inputs.masks]
        # Tiled (painterly.tiles) when config.tile is set and this scale is larger than a tile.
        objective = make_objective(
            self.net, self.config, c, styles, masks, self.inputs.blend, self._temporal(c)
        )
        progress.scale = scale
        iterations = self.config.ladder[scale][1]
        return ScaleOptimiser(
            objective, self.config, x, iterations, progress, callback, state
        ).run()

    def run(
        self, seed: int, callback: Callback | None = None, resume: RunState | None = None
    ) -> Result:
        """The run, from the start or from ``resume``; see :meth:`StyleTransfer.run`.

        Returns:
            The last scale's result at the final size, colours finished, without a recipe.

        Raises:
            TransferInterrupted, NonFiniteLossError: carrying a finished result.
            ConfigError: ``resume`` does not fit this ladder and these inputs.
        """
        progress = self._progress(seed, resume)
        if callback is not None and self.colours.changes_images:
            callback = finishing(callback, self.colours.finish)
        x: torch.Tensor | None = None
        result: Result | None = None
        for scale in range(len(self.scales)):
            state = resume if resume is not None and resume.scale == scale else None
            if resume is not None and scale < resume.scale:
                continue
            try:
                x = self._start(scale, x, seed, state)
                result = self._scale(scale, x, progress, callback, state)
            except (TransferInterrupted, NonFiniteLossError) as exc:
                exc.result = self.finished(exc.result)
                raise
            except KeyboardInterrupt:  # between scales: the last finished scale's result
                if result is None:
                    raise
                partial = dataclasses.replace(result, stop_reason="interrupted")
                raise TransferInterrupted(self.finished(partial)) from None
            if result.stop_reason == "stopped":
                return self.finished(result)
            x = result.image.to(self.device)
        assert result is not None
        return self.finished(result)
