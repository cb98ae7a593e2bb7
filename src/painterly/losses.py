"""The losses of neural style transfer, in the paper's and in the blog's normalisation.

Notation (Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks",
CVPR 2016, §2): F^l are the generated image's features at layer l, N_l channels by M_l = H_l·W_l
positions; P^l the content image's; G^l = F^l F^lᵀ the Gram matrix; A^l the style image's.

``paper`` (eq. 1, 3, 4, 5)
    L_content = ½ Σ (F − P)²;  E_l = Σ (G − A)² / (4 N_l² M_l²);  L_style = Σ_l w_l E_l.
``blog`` (the 2019 TensorFlow implementation this project starts from)
    L_content = mean (F − P)²;  Gram = F Fᵀ / M_l;  E_l = mean over the N_l² entries of the squared
    Gram difference;  L_style = Σ_l w_l E_l with w_l = 1/L (a mean over layers).

Factors between them, per layer: E_l(blog) = 4 · E_l(paper), and
L_content(blog) = 2 / (N_l M_l) · L_content(paper). Total variation (not in the paper) is
Σ of squared neighbour differences (``paper``) or their mean (``blog``), on the [0, 1] image.

Wasserstein-2 style statistic (``style_loss="w2"``): each layer's features are summarised by
their mean μ and covariance Σ over positions, and compared with the style's by the squared
2-Wasserstein distance between the Gaussians N(μ, Σ) and N(μ_s, Σ_s) (Dowson & Landau 1982;
used for style transfer by Kolkin et al. 2019 and crowsonkb's style-transfer-pytorch):
W2² = |μ − μ_s|² + tr Σ + tr Σ_s − 2 tr (Σ_s^½ Σ Σ_s^½)^½, divided by N_l (a mean over channels)
and multiplied by :data:`W2_SCALE` so that the default β weighs it like the Gram loss. The cross
term is computed as the sum of the singular values of Σ_s^½ L (Σ = L Lᵀ, Cholesky), never from
the product Σ_s^½ Σ Σ_s^½, whose condition number is the square of theirs (see
:func:`w2_layer_loss`).

Spatial control (guided Gram matrices, Gatys et al. 2017, §4): a guidance channel T (the mask,
resized to the layer) multiplies the features, F_T = T ∘ F; the region's Gram matrix is
F_T F_Tᵀ scaled to the whole image, · M / Σ T² (paper; the blog's is divided by Σ T² instead of
M), and each region's E_l is weighted by its share of the image, Σ T² / M.

Every Gram matrix and every sum is computed in float32, whatever dtype the features come in
(half-precision Grams overflow); autocast is switched off inside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .config import Normalization

__all__ = [
    "HIST_SCALE",
    "W2_SCALE",
    "Normalization",
    "StyleTarget",
    "content_loss",
    "feature_moments",
    "gram_distance",
    "gram_matrix",
    "guided_gram_matrix",
    "histogram_loss",
    "histogram_match",
    "histogram_target",
    "sqrtm_psd",
    "style_layer_loss",
    "style_loss",
    "style_target_loss",
    "temporal_loss",
    "total_variation",
    "w2_distance",
    "w2_from_moments",
    "w2_layer_loss",
    "w2_target",
]


def _check(normalization: str) -> None:
    if normalization not in ("paper", "blog"):
        raise ValueError(f"normalization must be 'paper' or 'blog', not {normalization!r}")


def _no_autocast(t: torch.Tensor) -> torch.autocast:
    return torch.autocast(t.device.type, enabled=False)


class _Gram(torch.autograd.Function):
    """G = Xᵀ X in float32 for X of shape (B, M, N) in any float dtype, with the one-product
    backward dX = X (dG + dGᵀ) in X's own dtype.

    Autograd's own backward of ``X.mT @ X`` runs two products and adds them. Only X is kept
    for the backward pass, not its float32 copy: for bf16 features that halves what the Grams
    hold (~0.4 GiB at 1024 px), and the gradient, which flows into bf16 features anyway, is
    computed in bf16 (with float32 accumulation inside the product).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        xf = x.float()
        return torch.matmul(xf.transpose(1, 2), xf)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.matmul(x, (grad + grad.transpose(1, 2)).to(x.dtype))


_gram: Callable[[torch.Tensor], torch.Tensor] = _Gram.apply


def gram_matrix(features: torch.Tensor, normalization: Normalization = "paper") -> torch.Tensor:
    """Gram matrix of feature maps: G = F Fᵀ (paper, eq. 3), or F Fᵀ / M (blog).

    Args:
        features: shape (B, N, H, W), any float dtype, either memory format.
        normalization: ``"paper"`` (no division) or ``"blog"`` (divided by M = H·W).

    Returns:
        float32 tensor of shape (B, N, N).
    """
    _check(normalization)
    b, n, h, w = features.shape
    with _no_autocast(features):
        f = features
        if f.is_contiguous(memory_format=torch.channels_last) and not f.is_contiguous():
            # (B, H, W, N) is contiguous: an (M, N) matrix without a transposing copy.
            x = f.permute(0, 2, 3, 1).reshape(b, h * w, n)
        else:
            x = f.reshape(b, n, h * w).transpose(1, 2)
        gram = _gram(x)  # float32 whatever the features' dtype
        if normalization == "blog":
            gram = gram / (h * w)
    return gram


def content_loss(
    features: torch.Tensor, target: torch.Tensor, normalization: Normalization = "paper"
) -> torch.Tensor:
    """Content loss at one layer: ½ Σ (F − P)² (paper, eq. 1) or mean (F − P)² (blog).

    Args:
        features: F, shape (B, N, H, W).
        target: P, the content image's features, same shape (broadcastable).

    Returns:
        A float32 scalar.
    """
    _check(normalization)
    with _no_autocast(features):
        diff = features.float() - target.float()
        sq = diff.square()
        return sq.mean() if normalization == "blog" else 0.5 * sq.sum()


def style_layer_loss(
    features: torch.Tensor, target_gram: torch.Tensor, normalization: Normalization = "paper"
) -> torch.Tensor:
    """One layer's style loss E_l (paper, eq. 4) between features and a target Gram matrix.

    Args:
        features: F, shape (B, N, H, W).
        target_gram: A, shape (B or 1, N, N), made by :func:`gram_matrix` with the same
            normalisation (and from features of any spatial size).

    Returns:
        A float32 scalar: Σ (G − A)² / (4 N² M²) (paper) or mean (G − A)² (blog).
    """
    _check(normalization)
    _, n, h, w = features.shape
    return gram_distance(gram_matrix(features, normalization), target_gram, n, h * w, normalization)


def gram_distance(
    gram: torch.Tensor, target_gram: torch.Tensor, n: int, m: int, normalization: Normalization
) -> torch.Tensor:
    """E_l from a Gram matrix: Σ (G − A)² / (4 N² M²) (paper, eq. 4) or mean (G − A)² (blog).

    Args:
        gram: G (1, N, N), float32, normalised as ``normalization`` says (:func:`gram_matrix`).
        target_gram: A, the same shape. n, m: N_l channels and M_l positions of the layer.

    Returns:
        A float32 scalar.
    """
    sq = (gram - target_gram.float()).square()
    if normalization == "blog":
        return sq.mean()
    return sq.sum() / (4.0 * n**2 * m**2)


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float],
    normalization: Normalization = "paper",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted style loss over layers: L_style = Σ_l w_l E_l (paper, eq. 5).

    Args:
        features: ``{layer: F^l}``.
        target_grams: ``{layer: A^l}`` for the same layers.
        layer_weights: ``{layer: w_l}``; the blog's mean over layers is w_l = 1 / L.

    Returns:
        ``(L_style, {layer: w_l E_l})``, float32 scalars.
    """
    per_layer = {
        name: weight * style_layer_loss(features[name], target_grams[name], normalization)
        for name, weight in layer_weights.items()
    }
    total = torch.stack(list(per_layer.values())).sum()
    return total, per_layer


def total_variation(image: torch.Tensor, normalization: Normalization = "paper") -> torch.Tensor:
    """Total variation (squared form) of an image, a smoothness prior (Mahendran & Vedaldi 2015).

    Args:
        image: shape (B, C, H, W), values in [0, 1].

    Returns:
        float32 scalar: Σ of squared differences between horizontal and vertical neighbours
        (``paper``), or the mean of each set of differences, summed (``blog``).
    """
    _check(normalization)
    with _no_autocast(image):
        x = image.float()
        dh = (x[..., 1:, :] - x[..., :-1, :]).square()
        dw = (x[..., :, 1:] - x[..., :, :-1]).square()
        if normalization == "blog":
            return dh.mean() + dw.mean()
        return dh.sum() + dw.sum()


def temporal_loss(
    image: torch.Tensor, warped: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Short-term temporal loss of a video frame (Ruder, Dosovitskiy & Brox, "Artistic style
    transfer for videos", GCPR 2016, eq. 7): L_temporal = (1/D) Σ_k c_k (x_k − ω_k)².

    D = 3·H·W is the number of values of the image; ω is the previous stylised frame warped
    to this one by the optical flow, c the per-pixel weight, 0 where the flow is unreliable
    (disocclusions, motion boundaries: :func:`painterly.flow.consistency_weight`), 1 elsewhere.

    Args:
        image: x, (1, 3, H, W) in [0, 1], the frame being optimised (the gradient flows to it).
        warped: ω, (1, 3, H, W) in [0, 1], a constant target.
        weight: c, (1, 1, H, W) in [0, 1] (one weight per pixel, shared by its channels), or
            ``None`` for c = 1 everywhere.

    Returns:
        A float32 scalar.

    Raises:
        ValueError: the shapes do not match.
    """
    if warped.shape != image.shape or (
        weight is not None and weight.shape[-2:] != image.shape[-2:]
    ):
        raise ValueError(
            f"temporal loss: image {tuple(image.shape)}, warped {tuple(warped.shape)} and "
            f"weight {None if weight is None else tuple(weight.shape)} do not match"
        )
    with _no_autocast(image):
        sq = (image.float() - warped.float()).square()
        if weight is not None:
            sq = sq * weight.float()
        return sq.sum() / image[0].numel()


#: Factor of the histogram loss (``style_loss="gram+hist"``), chosen so that with
#: ``hist_weight`` = 1 the histogram term at the photo is about half the Gram loss there
#: (Tübingen + The Starry Night, 256 px: 1.7e12 against 3.4e12 with β = 1e3).
HIST_SCALE = 1e10


def histogram_target(
    style_features: list[torch.Tensor], blend: list[float], count: int
) -> torch.Tensor:
    """Each channel's sorted target values for an output of ``count`` positions.

    The quantile function of the blended styles' feature values per channel (the mixture
    Σ_k v_k p_k of each style's empirical distribution), sampled at the ``count`` midpoints
    (i + ½) / count by linear interpolation. Risser, Wilmot & Barnes 2017, "Stable and
    Controllable Neural Texture Synthesis and Style Transfer Using Histogram Losses", §4.

    Args:
        style_features: each style's features at one layer, (1, N, H_k, W_k), any float dtype.
        blend: the weights v_k (Σ = 1). count: M = H·W of the output at this layer.

    Returns:
        float32 (N, count), each row non-decreasing.
    """
    parts = []
    for f, v in zip(style_features, blend, strict=True):
        values = f.detach().float().flatten(2)[0].sort(dim=1).values
        share = max(1, round(v * count * len(blend)))
        parts.append(_resample_sorted(values, share))
    pooled = torch.cat(parts, 1).sort(dim=1).values
    return _resample_sorted(pooled, count)


def _resample_sorted(values: torch.Tensor, count: int) -> torch.Tensor:
    """Sorted rows (N, M) → (N, count): the empirical quantile function at (i + ½) / count."""
    m = values.shape[1]
    pos = ((torch.arange(count, device=values.device, dtype=torch.float32) + 0.5) * m / count) - 0.5
    pos = pos.clamp(0, m - 1)
    low = pos.floor().long()
    high = (low + 1).clamp_max(m - 1)
    frac = pos - low.float()
    return values[:, low] * (1 - frac) + values[:, high] * frac


def histogram_match(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """R(F): every channel's values replaced by the target's, rank for rank (Risser et al.
    2017, §4.2: exact histogram matching by sorting).

    Args:
        features: F, (1, N, H, W). target: (N, H·W) sorted rows (:func:`histogram_target`).

    Returns:
        float32 (1, N, H, W), no gradient: F's channels with the target's histogram, the order
        of their values kept.
    """
    _, n, h, w = features.shape
    with torch.no_grad():
        f = features.detach().float().reshape(n, h * w)
        order = f.argsort(dim=1)
        matched = torch.empty_like(f).scatter_(1, order, target.float())
    return matched.reshape(1, n, h, w)


def histogram_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The histogram loss of one layer, HIST_SCALE · mean (F − R(F))² / mean T² with R(F) held
    fixed (Risser et al. 2017, eq. 5, averaged over the N·M entries instead of summed, and
    divided by the mean square of the target values T, so that relu1_1, whose values are
    hundreds of times smaller than relu4_1's, weighs as much).

    Its gradient, 2 (F − R(F)) / (N M), pulls every feature value towards the value of the
    same rank in the painting: the Gram matrix alone cannot see a channel's histogram (a
    mean and spread can be traded against each other), which is where washed-out colours come
    from.

    Args:
        features: F, (1, N, H, W), any float dtype. target: see :func:`histogram_match`.

    Returns:
        A float32 scalar ≥ 0.
    """
    with _no_autocast(features):
        f = features.float()
        scale = HIST_SCALE / target.float().square().mean().clamp_min(1e-12)
        return scale * (f - histogram_match(f, target)).square().mean()


#: Factor of the W2 style loss, chosen so that α = 1, β = 1e3 stylise about as strongly as with
#: the Gram loss: at the photo, the two losses are of the same size on the bundled pairs
#: (README, "Another style statistic").
W2_SCALE = 1e5

#: Added to the diagonal of covariances before their factorisations. VGG features here run from
#: 0 to ~1000 and the covariances' eigenvalues reach 1e7…1e8 (relu4_1), so ε = 1 changes W2 very
#: little, while it bounds the singular values of Σ_s^½ L below by ε, far above float64 rounding
#: of the largest (~1e4 · 2e-16). It does not rescue the product Σ_s^½ Σ Σ_s^½: its eigenvalues
#: reach 1e15, and float64 rounding there (~0.3) is as large as its smallest ones (ε² = 1).
_COV_EPS = 1.0


def guided_gram_matrix(
    features: torch.Tensor,
    mask: torch.Tensor | None,
    normalization: Normalization = "paper",
) -> torch.Tensor:
    """Gram matrix of one region (Gatys et al. 2017, §4): (T∘F)(T∘F)ᵀ scaled to the image.

    Args:
        features: F, shape (1, N, H, W).
        mask: T, shape (1, 1, H, W) with values in [0, 1], or ``None`` (the whole image: the
            plain :func:`gram_matrix`).

    Returns:
        float32 (1, N, N): · M / Σ T² (paper) or / Σ T² (blog); a zero mask gives zeros.
    """
    if mask is None:
        return gram_matrix(features, normalization)
    _, _, h, w = features.shape
    weights = mask.float().square().sum().clamp_min(1e-8)
    gram = gram_matrix(features.float() * mask.float(), "paper") / weights
    return gram * (h * w) if normalization == "paper" else gram


def feature_moments(
    features: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of feature vectors over positions, optionally weighted by T².

    Args:
        features: F, shape (1, N, H, W).
        mask: T, shape (1, 1, H, W) in [0, 1], or ``None`` (equal weights).

    Returns:
        float64 ``(μ, Σ)`` of shapes (1, N) and (1, N, N), Σ = Σ_m w_m (f_m − μ)(f_m − μ)ᵀ with
        w_m = T_m² / Σ T² (1 / M without a mask).
    """
    _, n, h, w = features.shape
    with _no_autocast(features):
        # float64: covariance entries reach 1e7, and float32 rounding there makes Σ indefinite.
        f = features.double().reshape(n, h * w)
        if mask is None:
            weights = torch.full((h * w,), 1.0 / (h * w), device=f.device, dtype=f.dtype)
        else:
            t2 = mask.double().reshape(h * w).square()
            weights = t2 / t2.sum().clamp_min(1e-8)
        mean = f @ weights
        centred = f - mean[:, None]
        cov = (centred * weights) @ centred.T
    return mean[None], cov[None]


class _SqrtmPSD(torch.autograd.Function):
    """Square root of a symmetric positive semi-definite matrix by its eigendecomposition.

    Forward: A = V diag(λ) Vᵀ → A^½ = V diag(√λ) Vᵀ (λ clamped at 0). Backward: the derivative
    of X = A^½ solves the Sylvester equation X dX + dX X = dA; in the eigenbasis
    dA~_ij = (√λ_i + √λ_j) dX~_ij, so the gradient is V (Vᵀ G V / (√λ_i + √λ_j)) Vᵀ (the
    Daleckii-Krein formula for f = √), which stays finite for repeated eigenvalues.
    """

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh(a.double())
        roots = vals.clamp_min(0.0).sqrt()
        ctx.save_for_backward(roots, vecs)
        root: torch.Tensor = (vecs * roots.unsqueeze(-2)) @ vecs.transpose(-1, -2)
        return root.to(a.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        roots, vecs = ctx.saved_tensors
        vt = vecs.transpose(-1, -2)
        denominator = (roots.unsqueeze(-1) + roots.unsqueeze(-2)).clamp_min(1e-12)
        inner = (vt @ grad.double() @ vecs) / denominator
        out: torch.Tensor = vecs @ inner @ vt
        return out.to(grad.dtype)


_sqrtm: Callable[[torch.Tensor], torch.Tensor] = _SqrtmPSD.apply


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """A^½ of symmetric PSD matrices (…, N, N), differentiable (see :class:`_SqrtmPSD`).

    Computed in float64, returned in the input's dtype.
    """
    return _sqrtm(matrix)


def w2_distance(
    features: torch.Tensor,
    target_mean: torch.Tensor,
    target_cov_sqrt: torch.Tensor,
    target_cov_trace: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """W2²(N(μ, Σ), N(μ_s, Σ_s)) between the features' Gaussian and the style's, in float64.

    W2² = |μ − μ_s|² + tr Σ + tr Σ_s − 2 tr (Σ_s^½ Σ Σ_s^½)^½ (Dowson & Landau 1982), with
    ε = 1 added to the diagonal of Σ. With Σ = L Lᵀ (Cholesky), (Σ_s^½ L)(Σ_s^½ L)ᵀ =
    Σ_s^½ Σ Σ_s^½, so the cross term is the nuclear norm ‖Σ_s^½ L‖_*, the sum of the singular
    values of a matrix conditioned like Σ_s^½ and L (~1e4 here), not like their product (~1e15 at
    relu4_1): the product's eigenvalues near ε² are float64 rounding noise (0.74 computed against
    a bound of 1), and a gradient built from them (∝ 1 / √λ) is noise that L-BFGS amplifies until
    runs differing only in the convolutions' rounding (another CPU, Winograd) part ways. Both
    factorisations have stable gradients (singular values: U Vᵀ, whatever their multiplicities).

    Args:
        features: F, shape (1, N, H, W), any float dtype.
        target_mean: μ_s, (1, N). target_cov_sqrt: Σ_s^½, (1, N, N). target_cov_trace: tr Σ_s
            (from :func:`w2_target`).
        mask: region weights T, (1, 1, H, W), or ``None``.

    Returns:
        A float64 scalar ≥ 0 (up to rounding), in squared feature units.
    """
    mean, cov = feature_moments(features, mask)
    return w2_from_moments(mean, cov, target_mean, target_cov_sqrt, target_cov_trace)


def w2_from_moments(
    mean: torch.Tensor,
    cov: torch.Tensor,
    target_mean: torch.Tensor,
    target_cov_sqrt: torch.Tensor,
    target_cov_trace: torch.Tensor,
) -> torch.Tensor:
    """W2² of :func:`w2_distance` from the features' mean μ (1, N) and covariance Σ (1, N, N),
    float64 (:func:`feature_moments`, or sums over tiles): ε = 1 is added to Σ's diagonal here.

    Returns:
        A float64 scalar ≥ 0 (up to rounding), in squared feature units.
    """
    n = cov.shape[-1]
    cov = cov + _COV_EPS * torch.eye(n, device=cov.device, dtype=torch.float64)
    factor = torch.linalg.cholesky(cov)  # Σ + εI is positive definite
    cross = torch.linalg.svdvals(target_cov_sqrt.double() @ factor).sum()
    w2: torch.Tensor = (
        (mean - target_mean).double().square().sum()
        + torch.diagonal(cov, dim1=-2, dim2=-1).sum()
        + target_cov_trace.double()
        - 2 * cross
    )
    return w2


def w2_layer_loss(
    features: torch.Tensor,
    target_mean: torch.Tensor,
    target_cov_sqrt: torch.Tensor,
    target_cov_trace: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """One layer's W2 style loss: W2_SCALE · W2²(N(μ, Σ), N(μ_s, Σ_s)) / N.

    Args: as :func:`w2_distance`, which computes W2².

    Returns:
        A float32 scalar ≥ 0 (up to rounding).
    """
    w2 = w2_distance(features, target_mean, target_cov_sqrt, target_cov_trace, mask)
    return (W2_SCALE * w2 / features.shape[1]).float()


def w2_target(
    mean: torch.Tensor, cov: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A style's W2 target from its features' mean (1, N) and covariance (1, N, N).

    Returns ``(μ_s, Σ_s^½, tr Σ_s)``, the last two float64, with ε = 1 added to Σ_s's diagonal
    as to the output's, so that Σ_s^½ L (:func:`w2_distance`) has no singular value below ε (the
    cross term's gradient grows as the inverse of the smallest).
    """
    eye = torch.eye(cov.shape[-1], device=cov.device, dtype=torch.float64)
    cov = cov.double() + _COV_EPS * eye
    return mean, sqrtm_psd(cov), torch.diagonal(cov, dim1=-2, dim2=-1).sum()


@dataclass(frozen=True)
class StyleTarget:
    """What one region of the output should match at one layer.

    ``gram`` (1, N, N) for the Gram loss; ``mean`` (1, N), ``cov_sqrt`` (1, N, N) and
    ``cov_trace`` (scalar) for W2. ``mask`` (1, 1, H_l, W_l) is the region's guidance channel
    at the layer's size (``None``: the whole image) and ``weight`` its share of the layer loss.
    ``hist`` (N, H_l·W_l), with ``style_loss="gram+hist"`` at the histogram layers: each
    channel's sorted target values (:func:`histogram_target`).
    """

    gram: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    cov_sqrt: torch.Tensor | None = None
    cov_trace: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    weight: float = 1.0
    hist: torch.Tensor | None = None


def style_target_loss(
    features: torch.Tensor, target: StyleTarget, normalization: Normalization = "paper"
) -> torch.Tensor:
    """One region's E_l at one layer, times its weight: the Gram loss of eq. 4 on the region's
    guided Gram matrix, or the W2 loss when the target holds a mean and covariance.

    Args:
        features: F, shape (1, N, H, W).

    Returns:
        A float32 scalar.
    """
    if target.gram is None:
        assert target.mean is not None and target.cov_sqrt is not None
        assert target.cov_trace is not None
        w2 = w2_layer_loss(features, target.mean, target.cov_sqrt, target.cov_trace, target.mask)
        return w2 * (4.0 if normalization == "blog" else 1.0) * target.weight
    if target.mask is None:
        return style_layer_loss(features, target.gram, normalization) * target.weight
    _, n, h, w = features.shape
    gram = guided_gram_matrix(features, target.mask, normalization)
    return gram_distance(gram, target.gram, n, h * w, normalization) * target.weight
