"""Shared fixtures: the real embedded weights and tiny real images (64-128 px)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from painterly.images import load_image, resize_longest
from painterly.weights import VGGWeights, load_weights

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CONTENT = EXAMPLES / "content" / "chelsea_cat.jpg"
STYLE = EXAMPLES / "style" / "starry_night.jpg"


@pytest.fixture(scope="session")
def weights() -> VGGWeights:
    return load_weights("embedded")


@pytest.fixture(scope="session")
def content_small() -> torch.Tensor:
    return resize_longest(load_image(CONTENT), 96)


@pytest.fixture(scope="session")
def style_small() -> torch.Tensor:
    return resize_longest(load_image(STYLE), 96)
