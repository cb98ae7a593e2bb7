"""VGG19's layer names, their Keras aliases and strides: a table, with no network and no torch.

Layer names are Caffe's: ``conv1_1`` … ``conv5_4`` (before the ReLU), ``relu1_1`` … ``relu5_4``
(after it) and ``pool1`` … ``pool5``. The Keras names of the blog are accepted as aliases:
``blockB_convI`` is the *rectified* output ``reluB_I`` (a Keras conv layer includes its ReLU) and
``blockB_pool`` is ``poolB``. :mod:`painterly.config` checks options against this table without
loading the network (:mod:`painterly.vgg`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "BLOCKS",
    "LAYER_ALIASES",
    "LAYER_INDEX",
    "LAYER_NAMES",
    "layer_index",
    "layer_stride",
    "receptive_margin",
    "resolve_layer",
    "tile_halo",
]

#: (block, number of conv layers) of VGG19's five blocks.
BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))

#: Every addressable layer, in network order.
LAYER_NAMES: tuple[str, ...] = tuple(
    name
    for block, count in BLOCKS
    for name in (
        *(n for i in range(1, count + 1) for n in (f"conv{block}_{i}", f"relu{block}_{i}")),
        f"pool{block}",
    )
)

#: Keras (blog) names → Caffe names.
LAYER_ALIASES: dict[str, str] = {
    **{
        f"block{block}_conv{i}": f"relu{block}_{i}"
        for block, count in BLOCKS
        for i in range(1, count + 1)
    },
    **{f"block{block}_pool": f"pool{block}" for block, _ in BLOCKS},
}

#: Layer name → its 0-based position in network order.
LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(LAYER_NAMES)}


def resolve_layer(name: str) -> str:
    """Return the Caffe name of a layer given by its Caffe or Keras name.

    Raises:
        ValueError: the name is unknown; the message suggests the closest known names.
    """
    key = name.strip()
    if key in LAYER_INDEX:
        return key
    if key in LAYER_ALIASES:
        return LAYER_ALIASES[key]
    known = [*LAYER_NAMES, *LAYER_ALIASES]
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown VGG19 layer {name!r}{hint} (`painterly layers` lists them)")


def layer_index(name: str) -> int:
    """The 0-based position of a layer (Caffe or Keras name) in network order.

    Raises:
        ValueError: unknown name.
    """
    return LAYER_INDEX[resolve_layer(name)]


def layer_stride(name: str) -> int:
    """How many input pixels one position of ``name``'s feature map spans (2 ** pools before it)."""
    canonical = resolve_layer(name)
    pools = sum(1 for n in LAYER_NAMES[: LAYER_INDEX[canonical]] if n.startswith("pool"))
    return 1 << (pools + canonical.startswith("pool"))


def receptive_margin(name: str) -> int:
    """How far (px) beyond its own block of stride × stride pixels one position of ``name``
    reads the input, on the side where it reaches furthest.

    Each 3×3 convolution (padding 1) at stride j widens what a position reads by j on both
    sides; each 2×2 pooling of stride 2 by j on the far side. ``relu5_1``: a position p reads
    pixels 16p − 70 … 16p + 85, a receptive field of 156 px, so 70 px beyond its block.
    """
    canonical = resolve_layer(name)
    near = far = 0
    stride = 1
    for layer in LAYER_NAMES[: LAYER_INDEX[canonical] + 1]:
        if layer.startswith("conv"):
            near, far = near + stride, far + stride
        elif layer.startswith("pool"):
            far += stride
            stride *= 2
    return max(near, far - (stride - 1))


def tile_halo(names: Iterable[str]) -> int:
    """The input halo (px) of a tile whose owned features at every layer of ``names`` must be
    exact: the largest :func:`receptive_margin`, rounded up to a multiple of the deepest
    stride so that a tile's input starts on the pooling grid of the whole picture (80 px for
    the default layers, whose deepest is ``relu5_1``)."""
    layers = list(names)
    stride = max((layer_stride(n) for n in layers), default=1)
    margin = max((receptive_margin(n) for n in layers), default=0)
    return -(-margin // stride) * stride
