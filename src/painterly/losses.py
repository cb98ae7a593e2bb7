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

Every Gram matrix and every sum is computed in float32, whatever dtype the features come in
(half-precision Grams overflow); autocast is switched off inside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch

__all__ = [
    "Normalization",
    "content_loss",
    "gram_matrix",
    "style_layer_loss",
    "style_loss",
    "total_variation",
]

Normalization = Literal["paper", "blog"]


def _check(normalization: str) -> None:
    if normalization not in ("paper", "blog"):
        raise ValueError(f"normalization must be 'paper' or 'blog', not {normalization!r}")


def _no_autocast(t: torch.Tensor) -> torch.autocast:
    return torch.autocast(t.device.type, enabled=False)


class _Gram(torch.autograd.Function):
    """G = Xᵀ X for X of shape (B, M, N), with the one-product backward dX = X (dG + dGᵀ).

    Autograd's own backward of ``X.mT @ X`` runs two products and adds them.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.matmul(x.transpose(1, 2), x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.matmul(x, grad + grad.transpose(1, 2))


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
        f = features.float()
        if f.is_contiguous(memory_format=torch.channels_last) and not f.is_contiguous():
            # (B, H, W, N) is contiguous: an (M, N) matrix without a transposing copy.
            x = f.permute(0, 2, 3, 1).reshape(b, h * w, n)
        else:
            x = f.reshape(b, n, h * w).transpose(1, 2)
        gram = _gram(x)
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
    gram = gram_matrix(features, normalization)
    sq = (gram - target_gram.float()).square()
    if normalization == "blog":
        return sq.mean()
    return sq.sum() / (4.0 * n**2 * (h * w) ** 2)


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
