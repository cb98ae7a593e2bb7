"""Each loss against a direct, independent implementation of its formula (DESIGN.md)."""

from __future__ import annotations

import itertools

import pytest
import torch

from painterly import losses


def _feats(seed: int, c: int = 6, h: int = 5, w: int = 7) -> torch.Tensor:
    return torch.randn(1, c, h, w, generator=torch.Generator().manual_seed(seed))


def _gram_loops(f: torch.Tensor) -> torch.Tensor:
    _, n, h, w = f.shape
    g = torch.zeros(n, n, dtype=torch.float64)
    for i, j in itertools.product(range(n), range(n)):
        g[i, j] = sum(
            float(f[0, i, y, x]) * float(f[0, j, y, x]) for y in range(h) for x in range(w)
        )
    return g


def test_gram_matches_explicit_sum_paper_and_blog() -> None:
    f = _feats(0)
    expected = _gram_loops(f)
    m = f.shape[2] * f.shape[3]
    torch.testing.assert_close(
        losses.gram_matrix(f, "paper")[0].double(), expected, rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(
        losses.gram_matrix(f, "blog")[0].double(), expected / m, rtol=1e-5, atol=1e-6
    )


def test_gram_is_float32_and_layout_independent() -> None:
    f = _feats(1, c=16, h=8, w=8)
    cl = f.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(losses.gram_matrix(cl), losses.gram_matrix(f))
    g16 = losses.gram_matrix(f.bfloat16())
    assert g16.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert losses.gram_matrix(f).dtype == torch.float32


def test_content_loss_formulas_and_factor() -> None:
    f, p = _feats(2), _feats(3)
    d = (f.double() - p.double()).flatten()
    paper = 0.5 * float((d**2).sum())
    blog = float((d**2).sum()) / d.numel()
    got_paper = losses.content_loss(f, p, "paper").item()
    got_blog = losses.content_loss(f, p, "blog").item()
    assert got_paper == pytest.approx(paper, rel=1e-5)
    assert got_blog == pytest.approx(blog, rel=1e-5)
    n, m = f.shape[1], f.shape[2] * f.shape[3]
    # L_content(blog) = 2 / (N M) * L_content(paper)
    assert got_blog == pytest.approx(2.0 / (n * m) * got_paper, rel=1e-5)


def test_style_layer_loss_formulas_and_factor() -> None:
    f, s = _feats(4), _feats(5, h=9, w=3)  # the style may have another spatial size
    n, m = f.shape[1], f.shape[2] * f.shape[3]
    g, a = _gram_loops(f), _gram_loops(s)
    paper = float(((g - a) ** 2).sum()) / (4 * n**2 * m**2)
    ms = s.shape[2] * s.shape[3]
    blog = float(((g / m - a / ms) ** 2).mean())
    got_paper = losses.style_layer_loss(f, losses.gram_matrix(s, "paper"), "paper").item()
    got_blog = losses.style_layer_loss(f, losses.gram_matrix(s, "blog"), "blog").item()
    assert got_paper == pytest.approx(paper, rel=1e-4)
    assert got_blog == pytest.approx(blog, rel=1e-4)
    # Same spatial size: E_l(blog) = 4 * E_l(paper).
    s2 = _feats(6)
    e_paper = losses.style_layer_loss(f, losses.gram_matrix(s2, "paper"), "paper").item()
    e_blog = losses.style_layer_loss(f, losses.gram_matrix(s2, "blog"), "blog").item()
    assert e_blog == pytest.approx(4 * e_paper, rel=1e-4)


def test_style_loss_is_weighted_sum_of_layers() -> None:
    feats = {"a": _feats(7), "b": _feats(8, c=3)}
    targets = {
        k: losses.gram_matrix(_feats(9 + i, c=v.shape[1])) for i, (k, v) in enumerate(feats.items())
    }
    weights = {"a": 0.25, "b": 2.0}
    total, per = losses.style_loss(feats, targets, weights)
    expected = sum(
        w * losses.style_layer_loss(feats[k], targets[k]).item() for k, w in weights.items()
    )
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert per["b"].item() == pytest.approx(
        2.0 * losses.style_layer_loss(feats["b"], targets["b"]).item()
    )


def test_style_loss_zero_at_target_and_positive_elsewhere() -> None:
    f = _feats(10)
    assert losses.style_layer_loss(f, losses.gram_matrix(f)).item() == pytest.approx(0.0, abs=1e-9)
    assert losses.style_layer_loss(f, losses.gram_matrix(2 * f)).item() > 0


def test_total_variation_explicit() -> None:
    x = torch.rand(1, 3, 4, 5, generator=torch.Generator().manual_seed(11))
    dh = [
        float(x[0, c, i + 1, j] - x[0, c, i, j]) ** 2
        for c in range(3)
        for i in range(3)
        for j in range(5)
    ]
    dw = [
        float(x[0, c, i, j + 1] - x[0, c, i, j]) ** 2
        for c in range(3)
        for i in range(4)
        for j in range(4)
    ]
    assert losses.total_variation(x, "paper").item() == pytest.approx(sum(dh) + sum(dw), rel=1e-5)
    blog = sum(dh) / len(dh) + sum(dw) / len(dw)
    assert losses.total_variation(x, "blog").item() == pytest.approx(blog, rel=1e-5)
    assert losses.total_variation(torch.full((1, 3, 4, 4), 0.3)).item() == 0.0


def test_unknown_normalization_raises() -> None:
    with pytest.raises(ValueError, match="normalization"):
        losses.gram_matrix(_feats(0), "keras")  # type: ignore[arg-type]


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_gradient_matches_autograd_of_the_formula(channels_last: bool) -> None:
    f = _feats(12, c=5, h=4, w=6).double()
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    f.requires_grad_(True)
    weight = torch.randn(1, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(13))
    (losses.gram_matrix(f) * weight).sum().backward()
    assert f.grad is not None
    ref = f.detach().clone().requires_grad_(True)
    x = ref.reshape(1, 5, 24)
    ((x @ x.transpose(1, 2)) * weight).sum().backward()
    assert ref.grad is not None
    torch.testing.assert_close(f.grad.double(), ref.grad, rtol=1e-5, atol=1e-5)


def test_bf16_gram_is_float32_and_keeps_only_the_bf16_features() -> None:
    """A Gram of bf16 features is computed in float32 (as exact as float32 products of the
    bf16 values allow); for the backward pass it keeps the bf16 features themselves, not a
    float32 copy (half the memory), and its gradient is within bf16 rounding of float64's."""
    f64 = torch.relu(_feats(3, c=16, h=24, w=20)).double()
    f16 = f64.bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    exact = f16.detach().double()
    m = exact.reshape(16, -1)
    target = 0.9 * (m @ m.T)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        gram = losses.gram_matrix(f16)
        loss = (gram[0] - target.float()).square().sum()
    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram[0].double(), m @ m.T, rtol=1e-6, atol=1e-4)
    assert not any(t.dtype == torch.float32 and t.numel() >= f16.numel() for t in saved)
    (grad,) = torch.autograd.grad(loss, f16)
    exact.requires_grad_(True)
    m = exact.reshape(16, -1)
    (expected,) = torch.autograd.grad((m @ m.T - target).square().sum(), exact)
    assert grad.dtype == torch.bfloat16
    assert ((grad.double() - expected).norm() / expected.norm()).item() < 1e-2


def _moments_by_hand(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """μ and Σ (+ εI) of (1, N, H, W) features over positions, float64, without the library."""
    x = f.double().reshape(f.shape[1], -1)
    mean = x.mean(1)
    centred = x - mean[:, None]
    return mean, centred @ centred.T / x.shape[1] + torch.eye(x.shape[0], dtype=torch.float64)


def _sqrtm_by_hand(a: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(a)
    return vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T


def test_w2_distance_matches_the_dowson_landau_formula() -> None:
    """On a small, well-conditioned case, W2² = |μ − μ_s|² + tr Σ + tr Σ_s −
    2 tr (Σ_s^½ Σ Σ_s^½)^½ (ε = 1 on both diagonals), evaluated literally in float64."""
    f, s = _feats(10) * 3 + 1, _feats(11) * 2
    mean, cov = _moments_by_hand(f)
    s_mean, s_cov = _moments_by_hand(s)
    root = _sqrtm_by_hand(s_cov)
    expected = (
        (mean - s_mean).square().sum()
        + cov.trace()
        + s_cov.trace()
        - 2 * _sqrtm_by_hand(root @ cov @ root).trace()
    )
    target = losses.w2_target(*losses.feature_moments(s))
    got = losses.w2_distance(f, *target)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    loss = losses.w2_layer_loss(f, *target)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(losses.W2_SCALE * expected.item() / 6, rel=1e-6)


def test_w2_gradient_matches_float64_finite_differences_on_vgg_like_features() -> None:
    """Features shaped and scaled like VGG's relu4_1 at 64 px (N = 256 channels over M = 40
    positions, so Σ has rank < 40; channel scales 1…3000, eigenvalues of Σ up to ~1e7): the
    autograd gradient of W2² agrees with central differences of W2² itself. When the cross term
    came from the eigenvalues of Σ_s^½ Σ Σ_s^½ (condition ~1e15), W2² carried float64 rounding
    noise that differences at h = 1e-5 turned into a 1e-4 error (issue 17: fp32 L-BFGS runs
    parted ways on another CPU's rounding)."""
    gen = torch.Generator().manual_seed(12)

    def vgg_like() -> torch.Tensor:
        scale = 10 ** (3.5 * torch.rand(1, 256, 1, 1, generator=gen, dtype=torch.float64))
        return (torch.randn(1, 256, 5, 8, generator=gen, dtype=torch.float64) * scale).relu()

    f, s = vgg_like(), vgg_like()
    target = losses.w2_target(*losses.feature_moments(s))
    x = f.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(losses.w2_distance(x, *target), x)
    direction = torch.randn(f.shape, generator=gen, dtype=torch.float64) * f.abs().mean()
    slope = (grad * direction).sum().item()
    h = 1e-5
    with torch.no_grad():
        ahead = losses.w2_distance(f + h * direction, *target).item()
        behind = losses.w2_distance(f - h * direction, *target).item()
    assert abs((ahead - behind) / (2 * h) - slope) < 1e-6 * abs(slope)


def test_histogram_target_is_the_sorted_style_and_match_keeps_the_rank_order() -> None:
    style = _feats(21, c=3, h=4, w=6)
    target = losses.histogram_target([style], [1.0], 24)  # same count: the sorted values
    torch.testing.assert_close(target, style[0].flatten(1).sort(dim=1).values)
    f = _feats(22, c=3, h=4, w=6)
    matched = losses.histogram_match(f, target)
    for c in range(3):  # R(F) has the style's values, in F's rank order
        torch.testing.assert_close(matched[0, c].flatten().sort().values, target[c])
        assert torch.equal(matched[0, c].flatten().argsort(), f[0, c].flatten().argsort())


def test_histogram_target_resamples_and_blends_the_quantiles() -> None:
    ramp = torch.arange(100.0).reshape(1, 1, 10, 10)  # values 0 … 99
    half = losses.histogram_target([ramp], [1.0], 50)
    torch.testing.assert_close(half[0], torch.arange(50.0) * 2 + 0.5)  # midpoint quantiles
    low, high = ramp.expand(1, 1, 10, 10), ramp + 1000
    blend = losses.histogram_target([low, high], [0.5, 0.5], 100)
    assert (blend[0, :50] < 100).all() and (blend[0, 50:] >= 1000).all()  # half from each


def test_histogram_loss_is_zero_for_the_same_histogram_and_pulls_towards_it() -> None:
    style = _feats(23, c=4, h=5, w=5)
    target = losses.histogram_target([style], [1.0], 25)
    shuffled = style.flatten(2)[..., torch.randperm(25)].reshape(1, 4, 5, 5)
    assert losses.histogram_loss(shuffled, target).item() == pytest.approx(0.0, abs=1e-6)
    f = (2 * _feats(24, c=4, h=5, w=5) + 3).requires_grad_(True)
    loss = losses.histogram_loss(f, target)
    loss.backward()
    assert f.grad is not None
    matched = losses.histogram_match(f, target)
    scale = losses.HIST_SCALE / target.square().mean()
    expected = scale * 2 * (f.detach() - matched) / f.numel()  # d/dF of the mean, R(F) fixed
    torch.testing.assert_close(f.grad, expected, rtol=1e-4, atol=1e-6)
    stepped = f.detach() - 0.1 * f.grad / f.grad.abs().max()
    assert losses.histogram_loss(stepped, target) < loss
