"""painterly: repaint a photo in the style of a painting.

Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks", CVPR 2016,
on the original Caffe VGG19 weights, offline, fast on a CPU.

>>> import painterly
>>> picture = painterly.stylize("photo.jpg", "painting.jpg", size=512, seed=0)  # doctest: +SKIP
>>> painterly.save_image(picture, "out.png")  # with its recipe  # doctest: +SKIP

The names below are loaded on first use (PEP 562), so that ``import painterly.images`` decodes
pictures without loading the network.
"""

from __future__ import annotations

import importlib
import importlib.metadata as _metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import batch, checkpoint, losses, video
    from .api import stylize
    from .config import PRESETS, Config, ConfigError
    from .images import ImageError, load_image, save_image
    from .job import Job, JobOutcome, StopRequest
    from .layers import LAYER_ALIASES, LAYER_NAMES, resolve_layer
    from .transfer import (
        NonFiniteLossError,
        Result,
        RunState,
        StepEvent,
        StyleTransfer,
        TransferInterrupted,
    )
    from .vgg import VGG19Features
    from .weights import VGGWeights, WeightsError, load_weights

from .memory import bound_library_caches

# Before any convolution of this process: oneDNN and ideep read their cache bounds once.
bound_library_caches()

try:
    __version__ = _metadata.version("painterly")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Public name → the module that defines it (``None``: the name is a submodule).
_EXPORTS: dict[str, str | None] = {
    "LAYER_ALIASES": "layers",
    "LAYER_NAMES": "layers",
    "PRESETS": "config",
    "Config": "config",
    "ConfigError": "config",
    "ImageError": "images",
    "Job": "job",
    "JobOutcome": "job",
    "NonFiniteLossError": "transfer",
    "Result": "transfer",
    "RunState": "transfer",
    "StepEvent": "transfer",
    "StopRequest": "job",
    "StyleTransfer": "transfer",
    "TransferInterrupted": "transfer",
    "VGG19Features": "vgg",
    "VGGWeights": "weights",
    "WeightsError": "weights",
    "batch": None,
    "checkpoint": None,
    "load_image": "images",
    "load_weights": "weights",
    "losses": None,
    "resolve_layer": "layers",
    "save_image": "images",
    "stylize": "api",
    "video": None,
}

__all__ = [
    "LAYER_ALIASES",
    "LAYER_NAMES",
    "PRESETS",
    "Config",
    "ConfigError",
    "ImageError",
    "Job",
    "JobOutcome",
    "NonFiniteLossError",
    "Result",
    "RunState",
    "StepEvent",
    "StopRequest",
    "StyleTransfer",
    "TransferInterrupted",
    "VGG19Features",
    "VGGWeights",
    "WeightsError",
    "__version__",
    "batch",
    "checkpoint",
    "load_image",
    "load_weights",
    "losses",
    "resolve_layer",
    "save_image",
    "stylize",
    "video",
]


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'painterly' has no attribute {name!r}")
    module = _EXPORTS[name]
    value = (
        importlib.import_module(f".{name}", __name__)
        if module is None
        else getattr(importlib.import_module(f".{module}", __name__), name)
    )
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
