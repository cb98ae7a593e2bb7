"""The one-call Python API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

from .config import Config
from .images import ImageSource, to_pil
from .transfer import StepEvent, StyleTransfer

__all__ = ["stylize"]


def stylize(
    content: ImageSource,
    style: ImageSource,
    *,
    config: Config | None = None,
    preset: str = "default",
    callback: Callable[[StepEvent], object] | None = None,
    **options: Any,
) -> Image.Image:
    """Repaint ``content`` in the style of ``style`` (Gatys, Ecker & Bethge 2016).

    Args:
        content: the photo: a path, a Pillow image, or a tensor (3, H, W) / (1, 3, H, W) in [0, 1].
        style: the painting, same kinds.
        config: a full :class:`~painterly.config.Config`; if given, ``preset`` and ``options``
            are applied on top of it.
        preset: ``"default"``, ``"paper"`` or ``"blog"`` (see :data:`painterly.config.PRESETS`).
        callback: called with a :class:`~painterly.transfer.StepEvent` after every step.
        **options: any :class:`~painterly.config.Config` field, e.g. ``size=256``,
            ``iterations=100``, ``style_weight=1e5``, ``seed=0``.

    Returns:
        The output as an RGB Pillow image of the content's aspect ratio, longest side ``size``.

    Raises:
        ConfigError: an invalid option. ImageError: an unreadable input.
        WeightsError: the VGG19 weights cannot be loaded.
        TransferInterrupted, NonFiniteLossError: see :meth:`StyleTransfer.run`.
    """
    cfg = config.replace(**options) if config is not None else Config.from_preset(preset, **options)
    result = StyleTransfer(cfg).run(content, style, callback)
    return to_pil(result.image)
