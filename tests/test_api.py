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


def test_stylize_takes_several_styles_and_the_quality_options(tmp_path, style_small) -> None:
    mask = Image.new("L", (64, 43), 255)
    mask.paste(0, (0, 0, 32, 43))
    mask.save(tmp_path / "right.png")
    Image.eval(mask, lambda v: 255 - v).save(tmp_path / "left.png")
    picture = painterly.stylize(
        CONTENT,
        [STYLE, style_small[0]],
        size=64,
        iterations=2,
        seed=0,
        precision="fp32",
        preserve_colors="histogram",
        style_loss="w2",
        style_scale=0.75,
        ema_decay=0.5,
        style_masks=(str(tmp_path / "left.png"), str(tmp_path / "right.png")),
    )
    assert picture.size == (64, 43)
    with pytest.raises(ConfigError, match="3 style blend weights for 2"):
        painterly.stylize(CONTENT, [STYLE, STYLE], style_blend_weights=(1, 2, 3), iterations=0)
