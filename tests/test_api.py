"""The one-call Python API."""

from __future__ import annotations

import pytest
from PIL import Image

import painterly
from painterly import ConfigError

from .conftest import CONTENT, STYLE


def test_stylize_accepts_paths_pil_images_and_tensors(content_small, style_small) -> None:
    from_paths = painterly.stylize(CONTENT, STYLE, size=64, iterations=2, seed=0, precision="fp32")
    assert isinstance(from_paths, Image.Image) and from_paths.mode == "RGB"
    assert from_paths.size == (64, 43)
    mixed = painterly.stylize(
        Image.open(CONTENT), style_small[0], size=64, iterations=2, seed=0, precision="fp32"
    )
    assert mixed.size == (64, 43)


def test_stylize_rejects_unknown_options_before_compute() -> None:
    with pytest.raises(ConfigError, match="style_wieght"):
        painterly.stylize(CONTENT, STYLE, style_wieght=1.0)
    with pytest.raises(ConfigError, match="unknown preset"):
        painterly.stylize(CONTENT, STYLE, preset="monet")
    with pytest.raises(ConfigError, match="not both"):
        painterly.stylize(CONTENT, STYLE, config=painterly.Config(), preset="paper")
    with pytest.raises(ConfigError, match="itertions"):
        painterly.stylize(CONTENT, STYLE, config=painterly.Config(), itertions=3)


def test_public_names_are_importable() -> None:
    for name in ("Config", "StyleTransfer", "VGG19Features", "losses", "load_weights", "stylize"):
        assert hasattr(painterly, name)
    assert painterly.__version__ != "0.0.0"
