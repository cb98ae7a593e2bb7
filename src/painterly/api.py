"""The one-call Python API."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from .config import Config, ConfigError
from .images import ImageSource, to_pil
from .recipe import RECIPE_KEY
from .transfer import StepEvent, StyleTransfer

__all__ = ["stylize"]


def stylize(
    content: ImageSource,
    style: ImageSource | Sequence[ImageSource],
    *,
    config: Config | None = None,
    preset: str | None = None,
    callback: Callable[[StepEvent], object] | None = None,
    **options: Any,
) -> Image.Image:
    """Repaint ``content`` in the style of ``style`` (Gatys, Ecker & Bethge 2016).

    Args:
        content: the photo: a path, a Pillow image, or a tensor (3, H, W) / (1, 3, H, W) in [0, 1].
        style: the painting, same kinds; or a list of paintings, blended with
            ``style_blend_weights`` (or each in its region of ``style_masks``).
        config: a full :class:`~painterly.config.Config`; ``options`` are applied on top of it.
        preset: ``"default"`` (when neither it nor ``config`` is given), ``"paper"``, ``"blog"``,
            ``"blog-fast"`` (see :data:`painterly.config.PRESETS`); not together with ``config``.
        callback: called with a :class:`~painterly.transfer.StepEvent` after every step.
        **options: any :class:`~painterly.config.Config` field, e.g. ``size=256``,
            ``iterations=100``, ``style_weight=1e5``, ``seed=0``, ``preserve_colors="luminance"``,
            ``style_loss="w2"``, ``style_scale=0.5``, ``ema_decay=0.9``.

    Returns:
        The output as an RGB Pillow image of the content's aspect ratio, longest side ``size``.
        Its ``info["painterly:recipe"]`` holds the recipe (JSON) that
        :func:`painterly.save_image` embeds in the file.

    Raises:
        ConfigError: an invalid option. ImageError: an unreadable input.
        WeightsError: the VGG19 weights cannot be loaded.
        TransferInterrupted, NonFiniteLossError: see :meth:`StyleTransfer.run`.
    """
    if config is not None and preset is not None:
        raise ConfigError("give either config or preset, not both")
    if config is not None:
        cfg = config.replace(**options)
    else:
        cfg = Config.from_preset(preset or "default", **options)
    result = StyleTransfer(cfg).run(content, style, callback)
    picture = to_pil(result.image)
    picture.info[RECIPE_KEY] = json.dumps(result.recipe)  # painterly.save_image embeds it
    return picture
