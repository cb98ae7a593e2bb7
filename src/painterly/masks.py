"""Masks for spatial control (Gatys, Ecker, Hertzmann & Shechtman 2017, §4).

A mask is an image file read as its luminance: white (1) is where a style applies, black (0)
where it does not, gray partly. Tensors are (1, 1, H, W), float32, values in [0, 1].
"""

from __future__ import annotations

import torch

from .color import rgb_to_ycbcr
from .images import ImageSource, load_image

__all__ = ["load_mask"]


def load_mask(source: ImageSource) -> torch.Tensor:
    """Decode a mask: any image :func:`painterly.images.load_image` reads, as its luminance
    Y (BT.601), shape (1, 1, H, W) in [0, 1].

    Raises:
        ImageError: the file cannot be read (the message names it).
    """
    return rgb_to_ycbcr(load_image(source))[:, :1].clamp(0.0, 1.0).contiguous()
