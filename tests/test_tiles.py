"""Exact tiled evaluation (painterly.tiles): the same loss, gradient and picture as the whole.

Tiny pictures split into several tiles, fp32 direct convolutions: the tiled loss and gradient
equal the whole picture's up to float rounding (the sums are only reordered), for the Gram and
W2 losses, with masks and with two blended styles; a halo one stride short is caught; a short
coarse-to-fine run with tiles ends at the untiled picture; the memory guard picks a tile when
the memory available (monkeypatched) is too small for the whole picture.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest
import torch

from painterly import Config, StyleTransfer, job, memory, tiles
from painterly.config import ConfigError
from painterly.images import resize_longest
from painterly.layers import LAYER_NAMES, layer_stride, receptive_margin, tile_halo
from painterly.objective import LossNetwork, Objective, TemporalTarget
from painterly.vgg import feature_size

from .conftest import CONTENT, STYLE

SHALLOW = ("relu1_1", "relu2_1", "relu3_1")


def _runner(**options: Any) -> StyleTransfer:
    """fp32 direct, with the default edge margin (4 px) unless ``options`` say otherwise."""
    return StyleTransfer(Config(precision="fp32", convolution="direct", seed=0, **options))


@pytest.fixture(scope="module")
def net() -> LossNetwork:
    """The default layers (content relu4_2, style relu1_1 … relu5_1), fp32 direct."""
    return _runner().network


@pytest.fixture(scope="module")
def pictures(content_small: torch.Tensor, style_small: torch.Tensor) -> dict[str, Any]:
    """A 128 × 85 content, a noisy start, two styles of other sizes, two complementary masks."""
    content = resize_longest(content_small, 128)
    h, w = content.shape[-2:]
    left = torch.zeros(1, 1, h, w)
    left[..., : w // 2 + 7] = 1.0
    start = content + 0.1 * torch.rand(content.shape, generator=torch.Generator().manual_seed(0))
    return {
        "content": content,
        "start": start.clamp(0, 1),
        "styles": [resize_longest(style_small, 112), resize_longest(style_small, 96).flip(-1)],
        "masks": [left, 1 - left],
    }


def _loss_and_grad(
    objective: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    x: torch.Tensor,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    x = x.clone().requires_grad_(True)
    loss, terms = objective(x)
    loss.backward()
    assert x.grad is not None
    return {k: v.detach() for k, v in terms.items()}, x.grad


def _compare(whole: Objective, tiled: Objective, x: torch.Tensor) -> tuple[float, float]:
    """The largest relative difference of any term, and of the gradient (max-norm)."""
    terms_w, grad_w = _loss_and_grad(whole, x)
    terms_t, grad_t = _loss_and_grad(tiled, x)
    assert terms_w.keys() == terms_t.keys()
    term = max(float((terms_w[k] - terms_t[k]).abs() / terms_w[k].abs().clamp_min(1e-30))
               for k in terms_w)  # fmt: skip
    grad = float((grad_w - grad_t).abs().max() / grad_w.abs().max())
    return term, grad


def test_the_halo_is_the_receptive_margin_rounded_to_the_deepest_stride() -> None:
    # relu5_1's receptive field is 156 px (Simonyan & Zisserman's VGG19): 70 px each side of
    # its own 16 × 16 block, 80 px on the 16 px pooling grid.
    assert receptive_margin("relu5_1") == (156 - 16) // 2 == 70
    assert tile_halo(Config().style_layers + Config().content_layers) == 80
    assert (receptive_margin("relu1_1"), receptive_margin("relu3_1"), tile_halo(SHALLOW)) == (
        1, 10, 12)  # fmt: skip
    # the margin grows with depth, never shrinks
    margins = [receptive_margin(n) for n in LAYER_NAMES]
    assert margins == sorted(margins)


def test_tiles_partition_every_layer_and_start_on_the_pooling_grid() -> None:
    layers = ["relu1_1", "relu3_1", "relu5_1"]
    height, width = 203, 150  # not multiples of the stride
    grid = tiles.tile_grid(height, width, 70, layers)  # rounded down to 64
    assert len(grid) == 4 * 3 and grid[0].rows == (0, 64)
    for name in layers:
        s = layer_stride(name)
        owned = torch.zeros(height // s, width // s, dtype=torch.int64)
        for t in grid:
            assert t.crop_rows[0] % 16 == 0 and t.crop_cols[0] % 16 == 0
            assert t.crop_rows[0] <= t.rows[0] - 80 or t.crop_rows[0] == 0
            owned[t.owned(s, local=False)] += 1
        assert bool((owned == 1).all()), name


@pytest.mark.parametrize("margin", [4, 20])
def test_with_an_edge_margin_the_tiles_partition_the_maps_the_loss_sees(margin: int) -> None:
    """The padded picture's tiles own every position of each layer's cropped map
    (feature_size) once, and none of the positions the margin's crop drops."""
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu5_1"]
    height, width = 203, 150
    grid = tiles.tile_grid(height, width, 64, layers, margin)
    assert grid[0].picture == (height + 2 * margin, width + 2 * margin)
    for name in layers:
        s = layer_stride(name)
        size = feature_size(height, width, margin, s)
        owned = torch.zeros(size, dtype=torch.int64)
        for t in grid:
            rows, cols = t.owned(s, local=False)
            assert 0 <= rows.start <= rows.stop <= size[0] and 0 <= cols.stop <= size[1]
            owned[rows, cols] += 1
            local = t.owned(s)
            assert (local[0].stop - local[0].start, local[1].stop - local[1].start) == (
                rows.stop - rows.start, cols.stop - cols.start)  # fmt: skip
        assert bool((owned == 1).all()), name


@pytest.mark.parametrize(
    "options, masked",
    [
        ({"style_loss": "gram"}, True),
        ({"style_loss": "w2"}, True),
        ({"style_loss": "w2", "normalization": "blog", "tv_weight": 10.0}, False),
    ],
)
def test_tiled_loss_and_gradient_equal_the_whole_pictures(
    net: LossNetwork, pictures: dict[str, Any], options: dict[str, Any], masked: bool
) -> None:
    cfg = Config(precision="fp32", seed=0, **options)
    masks = pictures["masks"] if masked else None
    blend = None if masked else [0.3, 0.7]
    args = (net, cfg, pictures["content"], pictures["styles"], masks, blend)
    whole = Objective.at_scale(*args)
    tiled = tiles.TiledObjective(net, cfg, *tiles.tiled_targets(*args, tile=64), tile=64)
    assert net.margin == 4  # the default edge margin: the padded 93 × 136 px in 2 × 3 tiles
    assert len(tiles.tile_grid(85, 128, 64, tiles.loss_layers(net), net.margin)) == 6
    term, grad = _compare(whole, tiled, pictures["start"])
    assert term < 2e-6 and grad < 2e-6, (term, grad)
    if masked:  # without gradients: pass 1 alone
        start = pictures["start"]
        assert tiled.value(start) == pytest.approx(whole.value(start), rel=1e-6)


def test_tiles_are_exact_with_any_edge_margin(pictures: dict[str, Any]) -> None:
    """A margin wider than relu1_1–relu3_1's strides (20 px: 20, 10, 5 positions cropped),
    shallow layers so that the tiles cut well inside the picture: the tiled loss and gradient
    are the whole picture's with that margin, and measurably not the whole picture's without
    one (so the margin is really there)."""
    layers = {"style_layers": SHALLOW, "content_layers": ("relu3_1",)}
    net = _runner(edge_margin=20, **layers).network
    cfg = Config(precision="fp32", edge_margin=20, **layers)
    args = (net, cfg, pictures["content"], pictures["styles"], pictures["masks"], None)
    tiled = tiles.TiledObjective(net, cfg, *tiles.tiled_targets(*args, tile=32), tile=32)
    term, grad = _compare(Objective.at_scale(*args), tiled, pictures["start"])
    assert term < 2e-6 and grad < 2e-6, (term, grad)
    bare = _runner(edge_margin=0, **layers).network
    plain = Objective.at_scale(bare, cfg.replace(edge_margin=0), *args[2:])
    term, grad = _compare(plain, tiled, pictures["start"])
    assert term > 1e-3 and grad > 1e-2, (term, grad)


def test_a_video_frames_temporal_term_is_tiled_exactly_too(
    net: LossNetwork, pictures: dict[str, Any]
) -> None:
    """A video frame's temporal term (per pixel, of the whole image) in a tiled scale: the same
    terms and gradient as the whole picture's objective with the same target and mask."""
    cfg = Config(precision="fp32", seed=0, temporal_weight=1e13)
    content = pictures["content"]
    weight = torch.ones_like(content[:, :1])
    weight[..., :20] = 0.0
    target = TemporalTarget(content.flip(-1), weight)
    whole = tiles.make_objective(net, cfg, content, pictures["styles"][:1], temporal=target)
    tiled_cfg = cfg.replace(tile=64)
    tiled = tiles.make_objective(net, tiled_cfg, content, pictures["styles"][:1], temporal=target)
    assert isinstance(tiled, tiles.TiledObjective) and not isinstance(whole, tiles.TiledObjective)
    term, grad = _compare(whole, tiled, pictures["start"])
    assert term < 2e-6 and grad < 2e-6, (term, grad)
    terms, _ = _loss_and_grad(tiled, pictures["start"])
    assert terms["temporal"] > 0.01 * terms["total"]  # the term is there, and not negligible


def test_a_halo_one_stride_short_is_not_exact(
    pictures: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Shallow layers (halo 12 px) so that each tile reads well inside the 128 px picture.
    net = _runner(style_layers=SHALLOW, content_layers=("relu3_1",)).network
    cfg = Config(precision="fp32", style_layers=SHALLOW, content_layers=("relu3_1",))
    args = (net, cfg, pictures["content"], pictures["styles"][:1], None, None)
    whole = Objective.at_scale(*args)
    x = pictures["start"]

    def tiled() -> Objective:
        return tiles.TiledObjective(net, cfg, *tiles.tiled_targets(*args, tile=32), tile=32)

    grid = tiles.tile_grid(85, 128, 32, SHALLOW)
    assert len(grid) == 12 and grid[5].crop_cols[1] - grid[5].crop_cols[0] == 32 + 2 * 12
    term, grad = _compare(whole, tiled(), x)
    assert term < 2e-6 and grad < 2e-6, (term, grad)
    real = tiles.tile_halo
    monkeypatch.setattr(tiles, "tile_halo", lambda names: real(names) - 4)
    term, grad = _compare(whole, tiled(), x)
    assert term > 1e-4 and grad > 1e-3, (term, grad)


def test_a_run_in_tiles_ends_at_the_untiled_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real = tiles.make_objective

    def spy(*args: Any, **kwargs: Any) -> Objective:
        objective = real(*args, **kwargs)
        made.append(type(objective).__name__)
        return objective

    monkeypatch.setattr("painterly.ladder.make_objective", spy)
    options = {"size": 64, "scales": 2, "iterations": 5, "style_weight": 1e4}
    plain = _runner(**options).run(CONTENT, STYLE)
    tiled = _runner(**options, tile=32).run(CONTENT, STYLE)
    # the 32 px scale is one tile: whole; only the 64 px scale runs in tiles (2 × 2)
    assert made == ["Objective", "Objective", "Objective", "TiledObjective"]
    assert tiled.loss == pytest.approx(plain.loss, rel=1e-4)
    assert float((tiled.image - plain.image).abs().max()) < 2e-3
    assert plain.loss < plain.history[0] * 0.9  # it painted: the comparison means something


def test_the_memory_guard_tiles_a_run_that_does_not_fit_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = Config(size=4096, precision="fp32")
    whole = memory.estimate_peak_memory(cfg, 3072, 4096, "fp32")
    have = 12 * 2**30
    assert whole > have  # 4096 × 3072 px whole: about 34 GiB
    size, check = memory.check_memory(cfg, "fp32", (4000, 3000), have)
    assert size == 4096 and check.ok and check.tile is not None and check.whole == whole
    assert check.tile % 16 == 0 and check.need <= have
    bigger = memory.estimate_tiled_peak(cfg, 3072, 4096, "fp32", check.tile + 16 * 64)
    assert bigger > have  # the tile chosen is (nearly) the largest that fits
    # forced: the tiled estimate, whatever the memory
    _, forced = memory.check_memory(cfg.replace(tile=512), "fp32", (4000, 3000), None)
    assert forced.tile == 512 and forced.need < whole
    # too little even for tiles (the whole-picture vectors: 22 of L-BFGS's at the top scale's
    # 10 steps, 3.1 GiB, and the images): refused as before, naming a size that fits whole
    with pytest.raises(memory.NotEnoughMemoryError, match="--size"):
        memory.check_memory(cfg, "fp32", (4000, 3000), 5 * 2**30)

    # the job runner sets the tile on its config; lower scales stay whole
    monkeypatch.setattr(job, "available_memory", lambda *device: have)
    paint = job.Job(cfg, torch.zeros(1, 3, 3000, 4000), [torch.zeros(1, 3, 64, 64)])
    runner = types.SimpleNamespace(device=torch.device("cpu"), precision="fp32")
    paint.check_memory(runner)  # type: ignore[arg-type]
    tile = paint.config.tile
    assert tile == check.tile and paint.config.size == 4096
    assert tiles.needs_tiles(paint.config, 3072, 4096)
    assert not tiles.needs_tiles(paint.config, tile * 3 // 4, tile)


def test_the_memory_estimate_counts_the_pairs_the_top_scale_can_hold() -> None:
    """L-BFGS adds one pair per step after the first: a 10-step top scale holds 9 of a 20-pair
    history (22 vectors with direction, gradients, line-search start), 3 steps hold 2."""
    pixels, vector = 3072 * 4096, 3072 * 4096 * 3 * 4
    cfg = Config(size=4096)
    assert cfg.ladder[-1][1] == 10

    def peak(c: Config) -> int:
        return memory.estimate_tiled_peak(c, 3072, 4096, "fp32", 1024)

    assert peak(cfg.replace(lbfgs_history=9)) == peak(cfg)  # 9 pairs either way
    assert peak(cfg) - peak(cfg.replace(lbfgs_history=5)) == 2 * 4 * vector
    short = cfg.replace(scales=1, iterations=3)
    assert peak(cfg) - peak(short) == 2 * (9 - 2) * vector
    assert peak(cfg.replace(optimizer="adam", line_search=False)) < peak(short) + pixels * 12


def test_the_histogram_loss_is_never_tiled() -> None:
    """gram+hist sorts each channel over the whole picture: no tiles, asked for or chosen."""
    with pytest.raises(ConfigError, match="cannot be evaluated in tiles"):
        Config(style_loss="gram+hist", tile=256)
    cfg = Config(size=4096, precision="fp32", style_loss="gram+hist")
    assert memory.choose_tile(cfg, 3072, 4096, "fp32", 12 * 2**30) is None
    assert memory.choose_tile(cfg.replace(style_loss="gram"), 3072, 4096, "fp32", 12 * 2**30)
