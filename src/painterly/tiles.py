"""Exact tiled evaluation of the objective, for pictures whose network does not fit in memory.

The style statistics are sums over positions: the Gram matrix G^l = Σ_m f_m f_mᵀ (Gatys et al.
2016, eq. 3; guided, Σ_m T_m² f_m f_mᵀ, Gatys et al. 2017, §4), and for W2 the mean Σ_m w_m f_m
and second moment Σ_m w_m f_m f_mᵀ (covariance = second moment − μ μᵀ). So each is the sum of
its parts over a partition of the positions, and the loss's gradient with respect to a
position's features is ∂L/∂S · ∂S/∂f_m: it depends on that position and on the whole
picture's statistics S alone. The content loss (eq. 1) is a sum over positions too; total
variation is cheap and evaluated on the whole image.

Each :class:`Tile` *owns* a block of the picture (origins on multiples of the deepest layer's
stride, so that the pooling windows of the tile are the whole picture's) and reads an input
*halo* around it of the deepest layer's receptive margin (:func:`painterly.layers.tile_halo`:
80 px for ``relu5_1``), so that its owned features are exactly the whole picture's. With an
edge margin (``--edge-margin``, :meth:`painterly.objective.LossNetwork.features`) the whole
picture is reflection-padded once and the padded picture is cut into tiles, the network run on
them without a margin; the positions the whole picture's loss crops off (those in the padding)
belong to no tile, and the padding's adjoint takes the gradient back to the image. One
evaluation (:class:`TiledObjective`) then runs

1. pass 1: each tile forward without gradients, summing each layer's statistics and the
   content loss from its owned positions;
2. the loss from the summed statistics S, and ∂L/∂S by autograd on S alone;
3. pass 2: each tile forward and backward of ⟨∂L/∂S, S_tile⟩ + its content loss, with
   ∂L/∂S held fixed, its input gradient added into the whole image's (halos overlap; the sum
   is exact). Pass 1 keeps its last tile's forward pass for this, so a step costs n − 1
   more tile forward passes than the n forward and backward ones.

Peak memory is then the network's on one tile's input plus the image-sized vectors (the
image, its gradient, the optimiser's history), :func:`painterly.memory.estimate_tiled_peak`.
The targets are
computed the same way (:func:`tiled_targets`): content features and each style image's
statistics, tile by tile, without gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from . import losses
from .config import Config
from .layers import layer_stride, tile_halo
from .objective import (
    DEFAULT_TERMS,
    VIDEO_TERMS,
    ContentTargets,
    LossNetwork,
    Objective,
    StyleTargets,
    TemporalTarget,
    TermFunction,
    Terms,
    pooled_gram_target,
    pooled_moments_target,
    style_regions,
    temporal_term,
    tv_term,
)
from .vgg import feature_size, margin_cut, margin_used, reflect_pad

__all__ = [
    "Tile",
    "TiledObjective",
    "loss_layers",
    "make_objective",
    "needs_tiles",
    "tile_grid",
    "tiled_targets",
]

#: One layer's statistics of one region, summed over positions (see :func:`_region_stats`).
Stats = list[torch.Tensor]
#: Pass 1's last tile, kept for pass 2: its crop (a leaf), content sums and statistics.
_Kept = tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, list["Stats"]]]


@dataclass(frozen=True)
class Tile:
    """A block of the (padded) picture owned by one tile, and the input it reads.

    Coordinates are those of the picture reflection-padded by the edge margin (the image
    itself without one), whose whole feature maps the network sees.

    Attributes:
        rows, cols: the owned pixels [start, stop) (starts on multiples of ``stride``).
        crop_rows, crop_cols: the input read, the owned block plus the halo, clipped to the
            picture (starts on multiples of ``stride``).
        picture: the padded picture's (height, width) in px.
        margin: the edge margin (px) it was padded by; the features of its outer
            :func:`painterly.vgg.margin_cut` positions are no one's (the loss crops them).
    """

    rows: tuple[int, int]
    cols: tuple[int, int]
    crop_rows: tuple[int, int]
    crop_cols: tuple[int, int]
    picture: tuple[int, int]
    margin: int = 0

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """The tile's input: the padded picture ``image`` (…, H, W) cut to the crop."""
        (r0, r1), (c0, c1) = self.crop_rows, self.crop_cols
        return image[..., r0:r1, c0:c1]

    def owned(self, stride: int, local: bool = True) -> tuple[slice, slice]:
        """The owned positions of a layer of ``stride``: in the crop's feature map (``local``)
        or in the whole picture's as the loss sees it (the padded map less its margin cut).
        Positions m with block [s m, s m + s) in the owned pixels, outside the cut."""
        out = []
        owned, crops = (self.rows, self.cols), (self.crop_rows, self.crop_cols)
        sides = zip(owned, crops, self.picture, strict=True)
        for (start, stop), (crop_start, _), length in sides:
            n = length // stride
            cut = margin_cut(n, self.margin, stride)
            low, high = max(start // stride, cut), min(stop // stride, n - cut)
            shift = crop_start // stride if local else cut
            out.append(slice(low - shift, max(low, high) - shift))
        return out[0], out[1]


def _spans(length: int, side: int, halo: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(owned, read) intervals along one side of ``length`` px."""
    out = []
    for start in range(0, length, side):
        stop = min(start + side, length)
        out.append(((start, stop), (max(0, start - halo), min(length, stop + halo))))
    return out


def tile_grid(
    height: int, width: int, tile: int, layers: Sequence[str], margin: int = 0
) -> list[Tile]:
    """The tiles of a ``height`` × ``width`` px picture reflection-padded by the edge ``margin``
    (px, as :func:`painterly.vgg.reflect_pad` pads it; 0: none): owned blocks of ``tile`` px
    (rounded down to a multiple of the deepest stride of ``layers``, at least one stride) that
    partition the padded picture, each with the halo of :func:`painterly.layers.tile_halo`.

    The last row and column of blocks are shorter; the positions of a layer of stride s are
    owned by the block holding their s × s pixels, so every position of every layer's map as
    the loss sees it (:func:`painterly.vgg.feature_size`) belongs to exactly one tile.
    """
    stride = max(layer_stride(n) for n in layers)
    side = max(stride, tile // stride * stride)
    halo = tile_halo(layers)
    used = margin_used(height, width, margin)
    picture = (height + 2 * used, width + 2 * used)
    return [
        Tile(rows, cols, crop_rows, crop_cols, picture, used)
        for rows, crop_rows in _spans(picture[0], side, halo)
        for cols, crop_cols in _spans(picture[1], side, halo)
    ]


def loss_layers(net: LossNetwork) -> list[str]:
    """Every layer the loss reads, content layers first, once each."""
    return list(dict.fromkeys([*net.content_layers, *net.style_weights]))


def needs_tiles(config: Config, height: int, width: int) -> bool:
    """Whether a scale of ``height`` × ``width`` px runs tiled: ``config.tile`` is set and the
    picture is more than one tile."""
    return config.tile is not None and max(height, width) > config.tile


def _owned_features(
    net: LossNetwork, crop: torch.Tensor, tile: Tile, layers: Sequence[str]
) -> dict[str, torch.Tensor]:
    """The tile's owned features (1, N_l, h_l, w_l) of every layer, from its input ``crop`` of
    the padded picture (the network without a margin: the picture was padded once)."""
    feats = net.network(crop)
    out = {}
    for name in layers:
        rows, cols = tile.owned(layer_stride(name))
        out[name] = feats[name][..., rows, cols]
    return out


def _region_stats(
    features: torch.Tensor, target: losses.StyleTarget, mask: torch.Tensor | None, weight: float
) -> Stats:
    """One region's statistics of owned features (1, N, h, w): for the Gram loss [Σ (T f)(T f)ᵀ]
    (float32, T = 1 without a mask); for W2 [Σ w f, Σ w f fᵀ] (float64), w_m = T_m² / ``weight``
    (``weight``: Σ T² over the whole layer, or its position count M without a mask)."""
    if target.gram is not None:
        f = features if mask is None else features.float() * mask.float()
        return [losses.gram_matrix(f, "paper")[0]]
    n = features.shape[1]
    f = features.double().reshape(n, -1)
    if mask is None:
        w = torch.full((f.shape[1],), 1.0 / weight, dtype=f.dtype, device=f.device)
    else:
        w = mask.double().reshape(-1).square() / weight
    return [f @ w, (f * w) @ f.T]


def _region_loss(
    stats: Stats, target: losses.StyleTarget, shape: tuple[int, int], cfg: Config, weight: float
) -> torch.Tensor:
    """One region's weighted E_l from its summed statistics, as
    :func:`losses.style_target_loss` computes it from the whole layer's features;
    ``shape`` is (N_l, M_l), ``weight`` as in :func:`_region_stats`."""
    n, m = shape
    norm = cfg.normalization
    if target.gram is not None:
        gram = stats[0][None]
        if target.mask is not None:  # guided Gram, Gatys et al. 2017, §4
            gram = gram / max(weight, 1e-8) * (m if norm == "paper" else 1)
        elif norm == "blog":
            gram = gram / m
        return losses.gram_distance(gram, target.gram, n, m, norm) * target.weight
    assert target.mean is not None and target.cov_sqrt is not None
    assert target.cov_trace is not None
    mean, second = stats
    cov = second - mean[:, None] * mean[None, :]
    w2 = losses.w2_from_moments(
        mean[None], cov[None], target.mean, target.cov_sqrt, target.cov_trace
    )
    e_l = (losses.W2_SCALE * w2 / n).float()
    return e_l * (4.0 if norm == "blog" else 1.0) * target.weight


class _Precomputed(torch.autograd.Function):
    """A loss value whose gradient with respect to x was computed already (by the passes)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, value: torch.Tensor, grad: torch.Tensor) -> Any:
        ctx.save_for_backward(grad)
        return value.clone()

    @staticmethod
    def backward(ctx: Any, out: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (grad,) = ctx.saved_tensors
        return out * grad, None, None


_precomputed: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
_precomputed = _Precomputed.apply


class TiledObjective(Objective):
    """:class:`~painterly.objective.Objective` evaluated tile by tile, with the same loss and
    gradient (up to float rounding); see the module's docstring for the two passes.

    Args:
        net, config, content_targets, style_targets: as for :class:`Objective` (the targets
            may come from :func:`tiled_targets`).
        tile: the owned block's side in px (:func:`tile_grid`).

    Raises:
        ValueError: ``terms`` other than :data:`~painterly.objective.DEFAULT_TERMS` (a term
            of the features would need its own split into tiles).
    """

    def __init__(
        self,
        net: LossNetwork,
        config: Config,
        content_targets: ContentTargets,
        style_targets: StyleTargets,
        tile: int,
        terms: Sequence[TermFunction] | None = None,
        temporal: TemporalTarget | None = None,
    ) -> None:
        allowed = DEFAULT_TERMS if temporal is None else VIDEO_TERMS
        if terms is not None and tuple(terms) != allowed:
            raise ValueError("a tiled objective evaluates the default terms only")
        super().__init__(net, config, content_targets, style_targets, terms, temporal=temporal)
        self.tile = tile
        self.layers = loss_layers(net)

    def _scales(self, height: int, width: int) -> dict[str, list[float]]:
        """Per style layer and region: Σ T² over the layer (M = H_l W_l without a mask), summed
        in float64 as :func:`_region_stats` weighs: W2's weights T² / Σ T² must sum to 1 to
        float64 rounding, or Σ w f fᵀ − μ μᵀ is not positive semi-definite (a float32 sum
        was 1.4e-7 off for a mask area-resized to 9 × 15, and Cholesky failed)."""
        out = {}
        for name in self.net.style_weights:
            h, w = feature_size(height, width, self.net.margin, layer_stride(name))
            m = h * w
            out[name] = [
                float(m) if t.mask is None else float(t.mask.double().square().sum())
                for t in self.style_targets[name]
            ]
        return out

    def _tile_parts(
        self, crop: torch.Tensor, tile: Tile, scales: Mapping[str, list[float]]
    ) -> tuple[dict[str, torch.Tensor], dict[str, list[Stats]]]:
        """One tile's Σ (F − P)² over its owned positions per content layer, and its statistics
        of every style layer and region, from its input ``crop`` (in the autograd graph when
        grad mode is on)."""
        owned = _owned_features(self.net, crop, tile, self.layers)
        content = {}
        for name in self.net.content_layers:
            rows, cols = tile.owned(layer_stride(name), False)
            target = self.content_targets[name][..., rows, cols]
            content[name] = (owned[name].float() - target.float()).square().sum()
        stats: dict[str, list[Stats]] = {}
        for name, targets in self.style_targets.items():
            rows, cols = tile.owned(layer_stride(name), False)
            stats[name] = [
                _region_stats(
                    owned[name], t, None if t.mask is None else t.mask[..., rows, cols], weight
                )
                for t, weight in zip(targets, scales[name], strict=True)
            ]
        return content, stats

    def _pass_one(
        self, x: torch.Tensor, grid: Sequence[Tile], scales: Mapping[str, list[float]], keep: bool
    ) -> tuple[dict[str, torch.Tensor], dict[str, list[Stats]], _Kept | None]:
        """The content sums and style statistics of the whole picture, summed over the tiles
        without gradients; with ``keep`` the last tile's forward pass is kept, in the autograd
        graph of its crop, for pass 2 to start with (one forward pass fewer)."""
        content: dict[str, torch.Tensor] = {}
        stats: dict[str, list[Stats]] = {}
        kept = None
        for index, tile in enumerate(grid):
            last = keep and index == len(grid) - 1
            crop = tile.crop(x).detach().requires_grad_(last)
            with torch.set_grad_enabled(last):
                parts, tile_stats = self._tile_parts(crop, tile, scales)
            if last:
                kept = (crop, parts, tile_stats)
            with torch.no_grad():
                for name, value in parts.items():
                    content[name] = content[name] + value if name in content else value.detach()
                for name, regions in tile_stats.items():
                    if name not in stats:
                        stats[name] = [[s.detach().clone() for s in r] for r in regions]
                        continue
                    for total, part in zip(stats[name], regions, strict=True):
                        for a, b in zip(total, part, strict=True):
                            a.add_(b)
        return content, stats, kept

    def _terms(
        self,
        x: torch.Tensor,
        content: Mapping[str, torch.Tensor],
        stats: Mapping[str, list[Stats]],
        scales: Mapping[str, list[float]],
    ) -> Terms:
        """The terms of :class:`Objective` from the summed content losses and statistics."""
        cfg, (height, width) = self.config, x.shape[-2:]
        terms: Terms = {}
        for name in self.net.content_layers:
            factor = self._content_factor(self.content_targets[name])
            terms[f"content/{name}"] = content[name] * factor
        terms["content"] = _sum([terms[f"content/{n}"] for n in self.net.content_layers], x)
        for name, weight in self.net.style_weights.items():
            h, w = feature_size(height, width, self.net.margin, layer_stride(name))
            m = h * w
            e_l = [
                _region_loss(s, t, (s[0].shape[0], m), cfg, scale)
                for s, t, scale in zip(
                    stats[name], self.style_targets[name], scales[name], strict=True
                )
            ]
            terms[f"style/{name}"] = sum(e_l[1:], e_l[0]) * weight * cfg.style_weight
        terms["style"] = _sum([terms[f"style/{n}"] for n in self.net.style_weights], x)
        terms.update(tv_term(self, x, {}))
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        if self.temporal is not None:  # per pixel, of the whole image, like TV
            terms.update(temporal_term(self, x, {}))
            terms["total"] = terms["total"] + terms["temporal"]
        return terms

    def _content_factor(self, target: torch.Tensor) -> float:
        """α / L_c times eq. 1's ½ (paper) or the blog's 1 / (N M): the factor of Σ (F − P)²."""
        cfg = self.config
        scale = 0.5 if cfg.normalization == "paper" else 1.0 / target.numel()
        return scale * cfg.content_weight / len(self.net.content_layers)

    def _pass_two(
        self,
        x: torch.Tensor,
        grid: Sequence[Tile],
        scales: Mapping[str, list[float]],
        slopes: Mapping[str, list[Stats]],
        kept: list[_Kept],
    ) -> torch.Tensor:
        """∂(content + style)/∂x: each tile forward and backward of its content loss plus
        ⟨∂L/∂S, S_tile⟩ with the ``slopes`` ∂L/∂S fixed, added into the whole gradient; the
        last tile of pass 1 first (popped from ``kept``, so that its graph is freed after its
        backward pass), without a new forward pass."""
        grad = torch.zeros_like(x, dtype=torch.float32)
        for index in [len(grid) - 1, *range(len(grid) - 1)] if kept else range(len(grid)):
            tile = grid[index]
            with torch.enable_grad():
                if kept and index == len(grid) - 1:
                    crop, content, stats = kept.pop()
                else:
                    crop = tile.crop(x).detach().requires_grad_(True)
                    content, stats = self._tile_parts(crop, tile, scales)
                total = torch.zeros((), dtype=torch.float64, device=x.device)
                for name, value in content.items():
                    total = total + value * self._content_factor(self.content_targets[name])
                for name, regions in stats.items():
                    for part, slope in zip(regions, slopes[name], strict=True):
                        for s, g in zip(part, slope, strict=True):
                            total = total + (s * g).sum()
                if total.requires_grad:
                    (crop_grad,) = torch.autograd.grad(total, crop)
                    (r0, r1), (c0, c1) = tile.crop_rows, tile.crop_cols
                    grad[..., r0:r1, c0:c1] += crop_grad.float()
            del crop, content, stats, total
        return grad

    def evaluate(self, x: torch.Tensor, gradient: bool = True) -> tuple[Terms, torch.Tensor | None]:
        """The terms of ``x`` (1, 3, H, W) in [0, 1], detached, and with ``gradient`` the
        gradient of ``"total"`` with respect to x (float32, x's shape), else None."""
        height, width = x.shape[-2:]
        grid = tile_grid(height, width, self.tile, self.layers, self.net.margin)
        scales = self._scales(height, width)
        source = x.detach().requires_grad_(gradient)
        with torch.set_grad_enabled(gradient):  # the edge margin, once for the whole picture
            padded = reflect_pad(source, self.net.margin)
        content, stats, kept = self._pass_one(padded.detach(), grid, scales, keep=gradient)
        holder = [kept] if kept is not None else []
        del kept
        if not gradient:
            with torch.no_grad():
                return self._terms(x, content, stats, scales), None
        with torch.enable_grad():
            leaves = {
                n: [[s.requires_grad_(True) for s in r] for r in rs] for n, rs in stats.items()
            }
            image = x.detach().requires_grad_(True)
            terms = self._terms(image, content, leaves, scales)
            flat = [s for rs in leaves.values() for r in rs for s in r]
            outer = terms["style"] + terms["tv"]  # and a video frame's temporal term:
            outer = outer + terms["temporal"] if "temporal" in terms else outer
            found: Sequence[torch.Tensor | None] = [None] * (len(flat) + 1)
            if outer.requires_grad:
                found = torch.autograd.grad(outer, [*flat, image], allow_unused=True)
        slopes = iter(
            torch.zeros_like(s) if g is None else g for g, s in zip(found, flat, strict=False)
        )
        per = {n: [[next(slopes) for _ in r] for r in rs] for n, rs in leaves.items()}
        grad = self._pass_two(padded.detach(), grid, scales, per, holder)
        if padded is not source:  # the padding's adjoint: its pixels' gradients onto theirs
            (grad,) = torch.autograd.grad(padded, source, grad)
        if found[-1] is not None:
            grad += found[-1].float()
        return {k: v.detach() for k, v in terms.items()}, grad

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, Terms]:
        """The total loss of ``x`` and its terms, as :meth:`Objective.__call__` gives them:
        ``"total"`` is in the autograd graph of x (its backward hands out the gradient the
        two passes computed), the other terms are detached."""
        gradient = torch.is_grad_enabled() and x.requires_grad
        terms, grad = self.evaluate(x, gradient)
        if grad is not None:
            terms["total"] = _precomputed(x, terms["total"], grad)
        return terms["total"], terms


def _sum(values: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    total = torch.zeros((), device=x.device)
    for value in values:
        total = total + value
    return total


def _stat_sums(
    net: LossNetwork, image: torch.Tensor, tile: int, style_loss: str
) -> dict[str, list[torch.Tensor]]:
    """Per style layer of ``net``, sums over all positions of ``image`` (1, 3, H, W), tile by
    tile: [Σ f fᵀ] (float32) for the Gram loss, [Σ f, Σ f fᵀ] (float64) for W2."""
    layers = loss_layers(net)
    sums: dict[str, list[torch.Tensor]] = {}
    height, width = image.shape[-2:]
    padded = reflect_pad(image, net.margin)
    for t in tile_grid(height, width, tile, layers, net.margin):
        owned = _owned_features(net, t.crop(padded), t, layers)
        for name in net.style_weights:
            f = owned[name]
            if style_loss == "gram":
                parts = [losses.gram_matrix(f, "paper")[0]]
            else:
                flat = f.double().reshape(f.shape[1], -1)
                parts = [flat.sum(1), flat @ flat.T]
            if name in sums:
                for a, b in zip(sums[name], parts, strict=True):
                    a.add_(b)
            else:
                sums[name] = parts
    return sums


def _content_features(net: LossNetwork, image: torch.Tensor, tile: int) -> ContentTargets:
    """P^l of every content layer (1, N_l, H_l, W_l), float32, assembled from the tiles."""
    layers = loss_layers(net)
    out: ContentTargets = {}
    height, width = image.shape[-2:]
    padded = reflect_pad(image, net.margin)
    for t in tile_grid(height, width, tile, layers, net.margin):
        owned = _owned_features(net, t.crop(padded), t, layers)
        for name in net.content_layers:
            stride = layer_stride(name)
            if name not in out:
                size = feature_size(height, width, net.margin, stride)
                out[name] = torch.zeros((1, owned[name].shape[1], *size), device=image.device)
            rows, cols = t.owned(stride, False)
            out[name][..., rows, cols] = owned[name].float()
    return out


def _layer_targets(
    config: Config,
    sums: Sequence[list[torch.Tensor]],
    counts: Sequence[int],
    size: tuple[int, int],
    masks: Sequence[torch.Tensor] | None,
    blend: Sequence[float],
) -> list[losses.StyleTarget]:
    """One layer's targets, as :func:`painterly.objective.layer_style_targets` makes them,
    from each style image's sums (:func:`_stat_sums`) over its ``counts`` positions."""
    regions = style_regions(len(sums), masks, blend, size)
    if config.style_loss == "gram":
        grams = {k: s[0][None] / m for k, (s, m) in enumerate(zip(sums, counts, strict=True))}
        return [pooled_gram_target(grams, r, size, config.normalization) for r in regions]
    moments = {}
    for k, (s, m) in enumerate(zip(sums, counts, strict=True)):
        mean = s[0] / m
        moments[k] = (mean[None], (s[1] / m - mean[:, None] * mean[None, :])[None])
    return [pooled_moments_target(moments, r) for r in regions]


def tiled_targets(
    net: LossNetwork,
    config: Config,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor] | None,
    blend: Sequence[float] | None,
    tile: int,
) -> tuple[ContentTargets, StyleTargets]:
    """:func:`painterly.objective.targets` computed tile by tile (no network pass over a whole
    picture), for the same arguments; ``tile`` as in :func:`tile_grid`."""
    weights = list(blend) if blend is not None else [1.0 / len(styles)] * len(styles)
    height, width = content.shape[-2:]
    with torch.no_grad():
        p_targets = _content_features(net, content, tile)
        sums = [_stat_sums(net, s, tile, config.style_loss) for s in styles]
        on_device = None if masks is None else [m.to(content.device) for m in masks]
        a_targets: StyleTargets = {}
        for name in net.style_weights:
            stride = layer_stride(name)
            sides = [s.shape[-2:] for s in styles]
            counts = [h * w for h, w in (feature_size(a, b, net.margin, stride) for a, b in sides)]
            size = feature_size(height, width, net.margin, stride)
            per_style = [s[name] for s in sums]
            a_targets[name] = _layer_targets(config, per_style, counts, size, on_device, weights)
    return p_targets, a_targets


def make_objective(
    net: LossNetwork,
    config: Config,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor] | None = None,
    blend: Sequence[float] | None = None,
    temporal: TemporalTarget | None = None,
) -> Objective:
    """The objective of one scale: tiled (:class:`TiledObjective`, targets by
    :func:`tiled_targets`) when :func:`needs_tiles` says so, else
    :meth:`Objective.at_scale`. Arguments as for :func:`painterly.objective.targets`;
    ``temporal``: a video frame's target (its term is per pixel, evaluated on the whole image)."""
    if config.tile is None or not needs_tiles(config, *content.shape[-2:]):
        return Objective.at_scale(net, config, content, styles, masks, blend, temporal)
    found = tiled_targets(net, config, content, styles, masks, blend, config.tile)
    return TiledObjective(net, config, *found, tile=config.tile, temporal=temporal)
