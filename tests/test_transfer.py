"""The optimisation on real weights and tiny images."""

from __future__ import annotations

import math

import pytest
import torch

from painterly import losses
from painterly.config import Config, ConfigError
from painterly.images import load_image, resize_to, save_image
from painterly.transfer import (
    NonFiniteLossError,
    StepEvent,
    StyleTransfer,
    TransferInterrupted,
    check_sizes,
    stalled,
)

from .conftest import CONTENT, STYLE

FAST = {"size": 96, "precision": "fp32", "patience": None, "seed": 0}


def test_zero_iterations_from_content_returns_the_input(tmp_path, content_small) -> None:
    h, w = content_small.shape[-2:]
    cfg = Config(
        iterations=0,
        init="content",
        init_colors="content",
        size=max(h, w),
        **{k: v for k, v in FAST.items() if k != "size"},
    )
    result = StyleTransfer(cfg).run(content_small, STYLE)
    path = save_image(result.image, tmp_path / "round.png")
    assert (load_image(path) - content_small).abs().max().item() <= 1 / 255 + 1e-6
    assert result.steps == 0


def _style_distance(image: torch.Tensor, runner: StyleTransfer, style: torch.Tensor) -> float:
    with torch.no_grad():
        layers = list(runner.style_weights)
        fx = runner.vgg(image, layers)
        fs = runner.vgg(style, layers)
        return sum(losses.style_layer_loss(fx[n], losses.gram_matrix(fs[n])).item() for n in layers)


def test_short_run_lowers_loss_and_moves_grams_toward_style() -> None:
    cfg = Config(iterations=15, **FAST)
    runner = StyleTransfer(cfg)
    events: list[StepEvent] = []
    result = runner.run(CONTENT, STYLE, events.append)
    assert [e.step for e in events] == list(range(1, 16))
    assert events[-1].best_loss < 0.5 * events[0].loss
    assert result.loss == pytest.approx(min(e.loss for e in events))
    content, style = runner.prepare(CONTENT, STYLE)
    assert _style_distance(result.image, runner, style) < 0.5 * _style_distance(
        content, runner, style
    )
    e = events[-1]
    assert e.loss == pytest.approx(e.content_loss + e.style_loss + e.tv_loss, rel=1e-5)
    assert set(e.layer_losses) == {"content/relu4_2"} | {f"style/relu{i}_1" for i in range(1, 6)}
    assert result.image.min() >= 0 and result.image.max() <= 1


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_same_seed_same_picture_from_noise(optimizer: str) -> None:
    cfg = Config(
        iterations=4,
        init="noise",
        optimizer=optimizer,
        learning_rate=1.0 if optimizer == "lbfgs" else 0.02,
        **FAST,
    )
    a = StyleTransfer(cfg).run(CONTENT, STYLE).image
    b = StyleTransfer(cfg).run(CONTENT, STYLE).image
    c = StyleTransfer(cfg.replace(seed=1)).run(CONTENT, STYLE).image
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_adam_keeps_pixels_in_range_and_tv_term_reported() -> None:
    cfg = Config(iterations=3, optimizer="adam", learning_rate=0.5, tv_weight=10.0, **FAST)
    events: list[StepEvent] = []
    result = StyleTransfer(cfg).run(CONTENT, STYLE, events.append)
    for e in events:
        img = e.image()
        assert img.min() >= 0 and img.max() <= 1
        assert e.tv_loss > 0
    assert result.image.min() >= 0 and result.image.max() <= 1


def test_best_image_is_a_copy_not_a_reference() -> None:
    cfg = Config(iterations=6, **FAST)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    StyleTransfer(cfg).run(CONTENT, STYLE, lambda e: seen.append((e.best_image(), e.image())))
    (best_1, current_1), (best_6, current_6) = seen[0], seen[-1]
    assert not torch.equal(best_1, best_6)  # later steps did not overwrite the earlier copy
    assert not torch.equal(current_1, current_6)


def test_patience_stops_a_run_that_makes_no_progress() -> None:
    # Content only, starting at the content (in its own colours): the loss is 0 and cannot
    # improve.
    cfg = Config(
        iterations=50,
        style_layers=(),
        patience=3,
        init_colors="content",
        **{k: v for k, v in FAST.items() if k != "patience"},
    )
    result = StyleTransfer(cfg).run(CONTENT, STYLE)
    assert result.stop_reason == "converged"
    assert result.steps == 4


def test_callback_can_stop_and_ctrl_c_keeps_the_best_image() -> None:
    cfg = Config(iterations=20, **FAST)
    result = StyleTransfer(cfg).run(CONTENT, STYLE, lambda e: e.step >= 3)
    assert (result.stop_reason, result.steps) == ("stopped", 3)

    def interrupt(event: StepEvent) -> None:
        if event.step == 4:
            raise KeyboardInterrupt

    with pytest.raises(TransferInterrupted) as info:
        StyleTransfer(cfg).run(CONTENT, STYLE, interrupt)
    partial = info.value.result
    assert partial.stop_reason == "interrupted" and partial.steps == 4
    assert partial.image.shape[0] == 1 and torch.isfinite(partial.image).all()


def test_bf16_reaches_the_fp32_loss() -> None:
    # β 1e3 from the photo's own colours: 12 steps at 64 px there differ by noise alone
    # (from the new default's start bf16 ends 16 % off fp32 at 12 steps; both still falling).
    base = Config(iterations=12, style_weight=1e3, init_colors="content", **{**FAST, "size": 64})
    fp32 = StyleTransfer(base)
    r32 = fp32.run(CONTENT, STYLE)
    r16 = StyleTransfer(base.replace(precision="bf16")).run(CONTENT, STYLE)
    assert r16.precision == "bf16"
    # Evaluate both final images with the fp32 loss.
    content, style = fp32.prepare(CONTENT, STYLE)
    p, a = fp32.targets(content, style)
    with torch.no_grad():
        l32 = fp32._loss(r32.image, p, a)[0].item()
        l16 = fp32._loss(r16.image, p, a)[0].item()
    assert l16 == pytest.approx(l32, rel=0.15)


def test_style_and_file_init(tmp_path) -> None:
    init_file = save_image(torch.full((1, 3, 10, 10), 0.25), tmp_path / "init.png")
    runner = StyleTransfer(Config(iterations=0, **FAST))
    content, style = runner.prepare(CONTENT, STYLE)
    h, w = content.shape[-2:]
    from_style = StyleTransfer(Config(iterations=0, init="style", **FAST)).run(CONTENT, STYLE)
    torch.testing.assert_close(from_style.image, resize_to(style, h, w))
    from_file = StyleTransfer(Config(iterations=0, init=str(init_file), **FAST)).run(CONTENT, STYLE)
    assert from_file.image.shape[-2:] == (h, w)
    assert from_file.image.mean().item() == pytest.approx(0.25, abs=0.01)


def test_ladder_doubles_up_to_size() -> None:
    assert Config(size=512, scales=3, iterations=150).ladder == [(128, 150), (256, 150), (512, 150)]
    assert Config(size=500, scales=2, scale_iterations=(30, 10)).ladder == [(250, 30), (500, 10)]
    with pytest.raises(ConfigError, match="first scale"):
        Config(size=64, scales=4)
    with pytest.raises(ConfigError, match="2 scale iterations for 3 scales"):
        Config(scales=3, scale_iterations=(1, 2))


def test_coarse_work_is_carried_to_the_final_scale() -> None:
    cfg = Config(scales=2, scale_iterations=(6, 0), **FAST)
    events: list[StepEvent] = []
    result = StyleTransfer(cfg).run(CONTENT, STYLE, events.append)
    content, _ = StyleTransfer(cfg).prepare(CONTENT, STYLE)
    assert result.image.shape == content.shape  # the final scale's size
    assert [e.scale for e in events] == [0] * 6 and events[0].scales == 2
    # Six coarse steps, none at the final scale: the output is the coarse result, upsampled.
    assert (result.image - content.cpu()).abs().mean() > 0.02


def test_two_scales_count_steps_across_scales() -> None:
    cfg = Config(scales=2, scale_iterations=(3, 2), **FAST)
    events: list[StepEvent] = []
    result = StyleTransfer(cfg).run(CONTENT, STYLE, events.append)
    assert [(e.step, e.scale) for e in events] == [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1)]
    assert {e.total_steps for e in events} == {5}
    assert result.steps == 5 and len(result.history) == 5


def test_patience_rule_compares_relative_improvement_over_the_window() -> None:
    assert stalled([100.0, 99.95, 99.95], tolerance=1e-3)  # 0.05 % better: stalled
    assert not stalled([100.0, 99.0, 99.8], tolerance=1e-3)  # 0.2 % better: progress
    assert stalled([100.0, 99.9], tolerance=1e-3)  # exactly the tolerance counts as stalled
    assert stalled([0.0, 0.0], tolerance=0.0)


def test_paper_style_target_does_not_depend_on_the_style_images_size(content_small) -> None:
    # A style image made of the content tiled 2 x 2 has the content's statistics at 4x the
    # positions: its (rescaled) target must match the content's own Gram matrices.
    tiled = torch.cat([torch.cat([content_small] * 2, dim=3)] * 2, dim=2)
    # Without the edge margin: its crop leaves relu5_1 only 4 x 2 positions at 96 px.
    runner = StyleTransfer(Config(size=96, precision="fp32", seed=0, edge_margin=0))
    _, own = runner.targets(content_small, content_small)
    _, from_tiled = runner.targets(content_small, tiled)
    for name in own:
        ratio = (from_tiled[name][0].gram.norm() / own[name][0].gram.norm()).item()
        # 1 up to border effects (large at relu5_1: 6 x 4 positions); 4 without the rescaling.
        assert ratio == pytest.approx(1.0, abs=0.2), name


def test_result_is_the_lowest_loss_image_not_the_last() -> None:
    # Adam with a far too large step makes the loss jump around: the last image is not the best.
    cfg = Config(iterations=8, optimizer="adam", learning_rate=0.8, **FAST)
    seen: list[tuple[float, torch.Tensor]] = []
    result = StyleTransfer(cfg).run(CONTENT, STYLE, lambda e: seen.append((e.loss, e.image())))
    losses_seen = [loss for loss, _ in seen]
    assert losses_seen.index(min(losses_seen)) < len(seen) - 1, losses_seen
    assert result.loss == pytest.approx(min(losses_seen))
    assert not torch.equal(result.image, seen[-1][1])


def test_memory_estimate_grows_with_pixels_and_history() -> None:
    from painterly.transfer import estimate_peak_memory

    cfg = Config()
    small = estimate_peak_memory(cfg, 384, 512, "bf16")
    assert 0.5 * 2**30 < small < 1.5 * 2**30  # measured: about 0.75 GiB plus L-BFGS's history
    fixed = estimate_peak_memory(cfg, 0, 0, "bf16")
    assert estimate_peak_memory(cfg, 768, 1024, "bf16") - fixed > 3.9 * (small - fixed)
    assert estimate_peak_memory(cfg.replace(lbfgs_history=5), 384, 512, "bf16") < small
    assert estimate_peak_memory(cfg, 384, 512, "fp32") > small


def test_a_nan_in_the_style_loss_stops_the_run_with_the_last_finite_best_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = losses.style_target_loss
    layers = len(Config().style_layers)
    calls = {"n": 0}

    def poisoned(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1  # once per style layer and evaluation
        loss = real(*args, **kwargs)
        # From the third evaluation on (step 3 of L-BFGS without line search): NaN.
        return loss * float("nan") if calls["n"] > 2 * layers else loss

    monkeypatch.setattr(losses, "style_target_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match="step 3") as info:
        StyleTransfer(Config(iterations=10, **FAST)).run(CONTENT, STYLE)
    result = info.value.result
    assert result.stop_reason == "non-finite" and torch.isfinite(result.image).all()
    assert math.isfinite(result.loss) and float(result.image.std()) > 2 / 255


def test_a_narrow_style_image_is_enlarged_not_refused() -> None:
    strip = torch.rand(1, 3, 8, 400, generator=torch.Generator().manual_seed(0))
    runner = StyleTransfer(Config(iterations=1, **FAST))
    _, style = runner.prepare(CONTENT, strip)
    assert min(style.shape[-2:]) == 16 and style.shape[-1] == 800  # aspect kept
    assert runner.run(CONTENT, strip).steps == 1


def test_sizes_are_checked_at_every_scale_before_any_compute() -> None:
    cfg = Config(size=512, scales=3, iterations=1)
    assert check_sizes(cfg, 300, 400) == [(96, 128), (192, 256), (384, 512)]
    with pytest.raises(ConfigError, match="scale 1 of 3"):
        check_sizes(cfg, 40, 400)  # 128x13 at the first scale


def test_an_added_term_function_joins_the_total_and_the_layer_losses() -> None:
    from painterly.objective import DEFAULT_TERMS, Objective, Terms

    runner = StyleTransfer(Config(iterations=1, **FAST))
    content, style = runner.prepare(CONTENT, STYLE, 64)
    p, a = runner.targets(content, style)
    x = torch.rand(content.shape, generator=torch.Generator().manual_seed(1))

    def brightness(objective: Objective, image: torch.Tensor, feats: object) -> Terms:
        part = image.mean() * 1e13  # of the order of the total, so that losing it shows
        return {"brightness/mean": part, "brightness": part}

    base = Objective(runner.network, runner.config, p, a)
    total, terms = base(x)
    assert float(total) == pytest.approx(float(terms["content"] + terms["style"] + terms["tv"]))
    extended = Objective(runner.network, runner.config, p, a, (*DEFAULT_TERMS, brightness))
    total2, terms2 = extended(x)
    expected = float(total) + float(x.mean()) * 1e13
    assert float(total2) == pytest.approx(expected, rel=1e-6)
    assert "brightness/mean" in terms2 and float(terms2["brightness"]) > 0


def test_threads_apply_during_the_run_are_put_back_and_go_into_the_recipe() -> None:
    before = torch.get_num_threads()
    wanted = 1 if before > 1 else 2
    seen: list[int] = []
    runner = StyleTransfer(Config(iterations=2, threads=wanted, **FAST))
    result = runner.run(CONTENT, STYLE, lambda event: seen.append(torch.get_num_threads()))
    assert seen == [wanted, wanted]
    assert torch.get_num_threads() == before
    assert result.recipe["config"]["threads"] == wanted
    default = StyleTransfer(Config(iterations=1, **FAST)).run(CONTENT, STYLE)
    assert default.recipe["config"]["threads"] == before
