"""Options, validation and presets."""

from __future__ import annotations

import math

import pytest

from painterly.config import PRESETS, Config, ConfigError


def test_every_preset_is_valid() -> None:
    for name in PRESETS:
        assert Config.from_preset(name).preset == name


def test_blog_preset_is_the_blogs_recipe() -> None:
    c = Config.from_preset("blog")
    assert (c.content_weight, c.style_weight) == (1e4, 1e-2)
    assert c.content_layers == ("block5_conv2",)
    assert c.style_layers == (
        "block1_conv1",
        "block2_conv1",
        "block3_conv1",
        "block4_conv1",
        "block5_conv1",
    )
    assert (c.optimizer, c.learning_rate, c.adam_beta1, c.adam_eps) == ("adam", 0.02, 0.99, 0.1)
    assert (c.init, c.size, c.iterations, c.normalization) == ("noise", 512, 5000, "blog")
    assert c.layer_weights == {n: pytest.approx(0.2) for n in c.style_layers}


def test_paper_preset() -> None:
    c = Config.from_preset("paper")
    assert c.content_layers == ("relu4_2",)
    assert c.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert (c.optimizer, c.init, c.normalization) == ("lbfgs", "noise", "paper")
    assert c.content_weight / c.style_weight == pytest.approx(1e-3)


def test_overrides_apply_on_top_of_preset() -> None:
    c = Config.from_preset("blog", iterations=7, seed=3)
    assert (c.iterations, c.seed, c.optimizer) == (7, 3, "adam")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"style_weight": -1.0}, "style_weight"),
        ({"content_weight": math.nan}, "content_weight"),
        ({"tv_weight": math.inf}, "tv_weight"),
        ({"size": 0}, "size"),
        ({"size": 8}, "at least|below"),
        ({"iterations": -1}, "iterations"),
        ({"style_layers": ("relu9_1",)}, "unknown VGG19 layer"),
        ({"style_layers": ("relu1_1", "block1_conv1")}, "twice"),
        ({"style_layer_weights": (1.0, 2.0)}, "2 style layer weights for 5"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"adam_beta1": 1.0}, "adam_beta1"),
        ({"device": "tpu"}, "device"),
        ({"seed": -5}, "seed"),
        ({"content_layers": (), "style_layers": ()}, "at least one"),
        ({"optimizer": "adam", "line_search": True}, "lbfgs optimizer only"),
    ],
)
def test_invalid_options_raise(changes: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Config(**changes)  # type: ignore[arg-type]


def test_unknown_preset_and_option() -> None:
    with pytest.raises(ConfigError, match="unknown preset"):
        Config.from_preset("van-gogh")
    with pytest.raises(ConfigError, match="style_wieght"):
        Config.from_preset("default", style_wieght=1.0)


def test_min_side_follows_the_deepest_layer() -> None:
    assert Config().min_side == 16
    assert Config(content_layers=("relu2_1",), style_layers=("relu1_1",)).min_side == 2


def test_the_default_is_issue_12s_recipe_and_the_published_presets_keep_theirs() -> None:
    d = Config.from_preset("default")
    assert d.ladder == [(128, 100), (256, 25), (512, 10)]
    assert (d.init, d.init_colors, d.style_loss, d.style_weight) == (
        "content",
        "style",
        "gram",
        1e2,
    )
    for name in ("paper", "blog", "blog-fast"):
        c = Config.from_preset(name, size=1536)
        assert c.ladder == [(1536, c.iterations)]  # one scale, at every size
        assert (c.style_loss, c.init_colors, c.tv_per_pixel) == ("gram", "content", False)
    paper = Config.from_preset("paper")
    assert (paper.style_weight, paper.pooling) == (1e3, "avg")  # the paper's pooling, §2
