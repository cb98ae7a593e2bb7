"""Colour controls of Gatys, Ecker, Hertzmann & Shechtman, "Controlling Perceptual Factors in
Neural Style Transfer", CVPR 2017, §5: keep the content image's colours.

Images here are RGB tensors of shape (1, 3, H, W), float32, values in [0, 1] (as in
:mod:`painterly.images`).

Colour space: YCbCr of ITU-R BT.601 in its full-range (JPEG/JFIF) form, scaled to [0, 1]::

    Y  = 0.299 R + 0.587 G + 0.114 B
    Cb = 0.5 + (B − Y) / 1.772
    Cr = 0.5 + (R − Y) / 1.402

The paper uses YIQ; any space with one luminance and two chroma channels serves, and YCbCr is
the one whose chroma levels users can check with common tools (CASES.md B31 measures Cb, Cr).

``luminance`` (§5.1, "luminance-only transfer")
    The style's luminance is matched to the content's mean and standard deviation,
    L_s' = σ_c / σ_s · (L_s − μ_s) + μ_c; the transfer runs on the two luminance images
    (gray, R = G = B); the output's luminance is then joined to the content's Cb and Cr.
``histogram`` (§5.2, "colour histogram matching")
    The style image's pixels are mapped by x' = A x + b so that their mean and covariance
    become the content's: b = μ_c − A μ_s and A Σ_s Aᵀ = Σ_c, with A = Σ_c^½ Σ_s^−½ (symmetric
    square roots from the eigendecomposition, the paper's "image analogies" variant). Σ_s gets
    ε I added before its inverse root, so a flat, black or gray style (a singular covariance,
    CASES.md B04) maps to finite values, never NaN.
"""

from __future__ import annotations

import torch

__all__ = [
    "blended_color_moments",
    "is_gray",
    "join_luminance",
    "match_color_moments",
    "match_color_statistics",
    "match_luminance",
    "rgb_to_ycbcr",
    "to_gray",
    "ycbcr_to_rgb",
]

_KR, _KG, _KB = 0.299, 0.587, 0.114
_CB_SCALE = 2 * (1 - _KB)  # 1.772
_CR_SCALE = 2 * (1 - _KR)  # 1.402

#: Regulariser added to the style's colour covariance (in [0, 1]² units; pixel std 0.003).
COVARIANCE_EPS = 1e-5

#: The least colour spread (std, in [0, 1] units) :func:`match_color_moments` gives a picture:
#: a flat or grey painting has a singular colour covariance, which would flatten the photo into
#: one colour (a flat black painting: a black start, and nothing for the content loss to pull
#: back). 0.02 ≈ 5/255 keeps the photo's structure faintly; a painting's spread is larger in every
#: direction (The Starry Night's least: 0.03).
COLOR_STD_FLOOR = 0.02


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """RGB → full-range BT.601 YCbCr. (B, 3, H, W) in [0, 1] → (B, 3, H, W), Y, Cb, Cr in [0, 1]."""
    r, g, b = image.unbind(1)
    y = _KR * r + _KG * g + _KB * b
    cb = 0.5 + (b - y) / _CB_SCALE
    cr = 0.5 + (r - y) / _CR_SCALE
    return torch.stack([y, cb, cr], 1)


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`, clamped to [0, 1]. (B, 3, H, W) → (B, 3, H, W)."""
    y, cb, cr = image.unbind(1)
    r = y + _CR_SCALE * (cr - 0.5)
    b = y + _CB_SCALE * (cb - 0.5)
    g = (y - _KR * r - _KB * b) / _KG
    return torch.stack([r, g, b], 1).clamp(0.0, 1.0)


def to_gray(image: torch.Tensor) -> torch.Tensor:
    """The luminance Y repeated in R, G and B: (B, 3, H, W) → (B, 3, H, W), R = G = B."""
    y = rgb_to_ycbcr(image)[:, :1]
    return y.expand(-1, 3, -1, -1).contiguous()


def is_gray(image: torch.Tensor, tolerance: float = 1.5 / 255) -> bool:
    """True when every pixel has R, G and B within ``tolerance`` of each other."""
    spread = image.amax(1) - image.amin(1)
    return bool(spread.max() <= tolerance)


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The style's luminance with the content's mean and standard deviation, as a gray image.

    Gatys et al. 2017, §5.1: L_s' = σ_c / σ_s · (L_s − μ_s) + μ_c (σ_s floored at 1e-6, so a
    flat style stays flat). Inputs (1, 3, H, W) of any sizes in [0, 1]; returns the style's
    shape, R = G = B, clamped to [0, 1].
    """
    ls = rgb_to_ycbcr(style)[:, :1]
    lc = rgb_to_ycbcr(content)[:, :1]
    scale = lc.std() / ls.std().clamp_min(1e-6)
    matched = ((ls - ls.mean()) * scale + lc.mean()).clamp(0.0, 1.0)
    return matched.expand(-1, 3, -1, -1).contiguous()


def join_luminance(luminance: torch.Tensor, chroma_from: torch.Tensor) -> torch.Tensor:
    """Y of ``luminance`` with Cb, Cr of ``chroma_from`` (resized to it), back in RGB.

    Gatys et al. 2017, §5.1, last step. Both (1, 3, H, W) in [0, 1]; ``chroma_from`` is resized
    bicubically to ``luminance``'s size when the sizes differ. Returns (1, 3, H, W) in [0, 1].
    """
    from .images import resize_to

    h, w = luminance.shape[-2:]
    chroma = rgb_to_ycbcr(resize_to(chroma_from.to(luminance.device), h, w))[:, 1:]
    y = rgb_to_ycbcr(luminance)[:, :1]
    return ycbcr_to_rgb(torch.cat([y, chroma], 1))


def _sym_power(cov: torch.Tensor, power: float) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    floor = 0.0 if power > 0 else 1e-12
    out: torch.Tensor = (vecs * vals.clamp_min(floor).pow(power)) @ vecs.T
    return out


def match_color_statistics(
    style: torch.Tensor, content: torch.Tensor, eps: float = COVARIANCE_EPS
) -> torch.Tensor:
    """The style image with the content's colour mean and covariance (Gatys et al. 2017, §5.2).

    x' = A (x − μ_s) + μ_c with A = Σ_c^½ (Σ_s + ε I)^−½, computed in float64.

    Args:
        style: (1, 3, H, W) in [0, 1], the image whose colours change.
        content: (1, 3, H', W') in [0, 1], whose colour statistics are the goal.
        eps: added to Σ_s's diagonal; keeps a singular style (flat, black, gray) finite.

    Returns:
        The style's shape, float32, clamped to [0, 1]. A flat style becomes flat μ_c; a gray
        style matched to a gray content stays gray.
    """
    xs = style[0].reshape(3, -1).double()
    xc = content[0].reshape(3, -1).double()
    mu_s, mu_c = xs.mean(1, keepdim=True), xc.mean(1, keepdim=True)
    cov_s = torch.cov(xs, correction=0) + eps * torch.eye(3, dtype=torch.float64, device=xs.device)
    cov_c = torch.cov(xc, correction=0)
    a = _sym_power(cov_c, 0.5) @ _sym_power(cov_s, -0.5)
    out = a @ (xs - mu_s) + mu_c
    return out.reshape(style.shape).float().clamp(0.0, 1.0)


def blended_color_moments(
    images: list[torch.Tensor], weights: list[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour mean (3, 1) and covariance (3, 3), float64, of the mixture Σ_k v_k p_k of the
    images' pixel distributions: μ = Σ v_k μ_k, Σ = Σ v_k (Σ_k + μ_k μ_kᵀ) − μ μᵀ (the same for
    any order of the images with their weights). Images (1, 3, H_k, W_k) in [0, 1]."""
    mean = torch.zeros(3, 1, dtype=torch.float64, device=images[0].device)
    second = torch.zeros(3, 3, dtype=torch.float64, device=images[0].device)
    for image, v in zip(images, weights, strict=True):
        x = image[0].reshape(3, -1).double()
        mu = x.mean(1, keepdim=True)
        mean = mean + v * mu
        second = second + v * (torch.cov(x, correction=0) + mu @ mu.T)
    return mean, second - mean @ mean.T


def match_color_moments(
    image: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, eps: float = COVARIANCE_EPS
) -> torch.Tensor:
    """``image`` with colour mean ``mean`` (3, 1) and covariance ``cov`` (3, 3): x' = A (x − μ_x)
    + μ with A = Σ^½ (Σ_x + ε I)^−½, as :func:`match_color_statistics` (Gatys et al. 2017,
    §5.2) but towards given moments, the target covariance's eigenvalues floored at
    :data:`COLOR_STD_FLOOR`² (a painting's own spread, ~0.2², is left as it is).
    (1, 3, H, W) in [0, 1] → the same shape, clamped."""
    evals, evecs = torch.linalg.eigh(cov.double())
    cov = evecs @ torch.diag(evals.clamp_min(COLOR_STD_FLOOR**2)) @ evecs.T
    x = image[0].reshape(3, -1).double()
    mu_x = x.mean(1, keepdim=True)
    cov_x = torch.cov(x, correction=0) + eps * torch.eye(3, dtype=torch.float64, device=x.device)
    a = _sym_power(cov, 0.5) @ _sym_power(cov_x, -0.5)
    out = a @ (x - mu_x) + mean.double()
    return out.reshape(image.shape).float().clamp(0.0, 1.0)
