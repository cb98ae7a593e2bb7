"""painterly: repaint a photo in the style of a painting.

Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks", CVPR 2016,
on the original Caffe VGG19 weights, offline, fast on a CPU.

>>> import painterly
>>> picture = painterly.stylize("photo.jpg", "painting.jpg", size=512, seed=0)  # doctest: +SKIP
>>> painterly.save_image(picture, "out.png")  # with its recipe  # doctest: +SKIP
"""

import importlib.metadata as _metadata

from . import checkpoint, losses
from .api import stylize
from .config import PRESETS, Config, ConfigError
from .images import ImageError, load_image, save_image
from .transfer import (
    NonFiniteLossError,
    Result,
    RunState,
    StepEvent,
    StyleTransfer,
    TransferInterrupted,
)
from .vgg import LAYER_ALIASES, LAYER_NAMES, VGG19Features, resolve_layer
from .weights import VGGWeights, WeightsError, load_weights

try:
    __version__ = _metadata.version("painterly")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "LAYER_ALIASES",
    "LAYER_NAMES",
    "PRESETS",
    "Config",
    "ConfigError",
    "ImageError",
    "NonFiniteLossError",
    "Result",
    "RunState",
    "StepEvent",
    "StyleTransfer",
    "TransferInterrupted",
    "VGG19Features",
    "VGGWeights",
    "WeightsError",
    "__version__",
    "checkpoint",
    "load_image",
    "load_weights",
    "losses",
    "resolve_layer",
    "save_image",
    "stylize",
]
