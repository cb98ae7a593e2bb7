"""The benchmarks' common yardstick: the default preset's loss, evaluated in float32 with direct
convolutions at the output's size, so that runs of any precision, convolution or tool compare."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from painterly import Config, StyleTransfer
from painterly.images import resize_to


def fp32_judge(content: Path, style: Path, size: int) -> Callable[[torch.Tensor], float]:
    """A function image (1, 3, H, W) in [0, 1], any size → its float32 loss at ``size`` px."""
    judge = StyleTransfer(Config(size=size, precision="fp32", convolution="direct", seed=0))
    content_image, style_image = judge.prepare(content, style)
    p, a = judge.targets(content_image, style_image)
    height, width = content_image.shape[-2:]

    def loss(image: torch.Tensor) -> float:
        with torch.no_grad():
            return judge._loss(resize_to(image, height, width), p, a)[0].item()

    return loss
