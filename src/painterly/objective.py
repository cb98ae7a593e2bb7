"""The objective: the loss of the generated image x at one scale, and its named terms.

Gatys, Ecker & Bethge 2016, eq. 7: L_total(x) = α L_content(x) + β L_style(x), here plus a
total variation term (not in the paper, :func:`painterly.losses.total_variation`). The network
is frozen; the targets (content features P^l, style targets A^l or the W2 statistics) are
computed once per scale by :func:`targets`; :class:`Objective` evaluates the loss of x, whose
gradient comes from autograd (``loss.backward()``, done by :mod:`painterly.optimise`).

This room owns:

- the targets of each kind: :func:`content_targets`, :func:`gram_target` (Gram matrices,
  blended and masked), :func:`moments_target` (Wasserstein-2 statistics), per layer
  :func:`layer_style_targets`, all of them :func:`targets`;
- the terms: :func:`content_term`, :func:`style_term`, :func:`tv_term` and, for a video
  frame, :func:`temporal_term` (Ruder et al. 2016), each a
  :data:`TermFunction` returning its weighted value under its name and its per-layer parts
  under ``"name/layer"``. To add a term (a histogram loss, a tiled evaluation),
  write one more such function and put it in the objective's ``terms``: the total, the
  step events and the plots pick it up by name.

The formulas themselves live in :mod:`painterly.losses`. Nothing here optimises, prints or
reads a file.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import losses
from .config import Config
from .layers import layer_stride
from .vgg import crop_margin, margin_used, reflect_pad

__all__ = [
    "DEFAULT_TERMS",
    "HIST_LAYERS",
    "VIDEO_TERMS",
    "ContentTargets",
    "Features",
    "LossNetwork",
    "Objective",
    "StyleTargets",
    "TemporalTarget",
    "TermFunction",
    "Terms",
    "content_targets",
    "content_term",
    "gram_target",
    "hist_parts",
    "layer_style_targets",
    "moments_target",
    "pooled_gram_target",
    "pooled_moments_target",
    "style_regions",
    "style_term",
    "targets",
    "temporal_term",
    "tv_term",
]

#: The network as the loss sees it: an image (1, 3, H, W) in [0, 1] → ``{layer: features}``,
#: (1, N_l, H_l, W_l), for every layer the loss reads.
Features = Callable[[torch.Tensor], dict[str, torch.Tensor]]
#: ``{layer: P^l}``, the content image's features (float32).
ContentTargets = dict[str, torch.Tensor]
#: ``{layer: [one StyleTarget per region]}``, what :meth:`StyleTransfer.targets` returns.
StyleTargets = dict[str, list[losses.StyleTarget]]
#: Named weighted loss terms, 0-d float32 tensors: ``"content"``, ``"style/relu1_1"``, …,
#: ``"total"``.
Terms = dict[str, torch.Tensor]
#: A region of the style targets: its mask (``None``: the whole image), the indices k of the
#: style images that make its target, and their blend weights v_k.
Region = tuple[torch.Tensor | None, list[int], list[float]]

#: The layers of the histogram loss with ``style_loss="gram+hist"`` (Risser, Wilmot & Barnes
#: 2017, §5: relu1_1 and relu4_1), where they are style layers.
HIST_LAYERS = ("relu1_1", "relu4_1")


@dataclass(frozen=True)
class LossNetwork:
    """The frozen network and the layers the loss reads.

    Attributes:
        network: the network without any edge margin (see :data:`Features`).
        content_layers: the layers of L_content (canonical names, e.g. ``"relu4_2"``).
        style_weights: ``{layer: w_l}``, the layers of L_style and their weights.
        margin: the edge margin (px, ``--edge-margin``) :meth:`features` pads with.
    """

    network: Features
    content_layers: list[str]
    style_weights: dict[str, float]
    margin: int = 0

    def features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The features the loss reads (:data:`Features`) of ``image`` (1, 3, H, W): the
        network on the image reflection-padded by :attr:`margin` px
        (:func:`painterly.vgg.reflect_pad`), each map cropped back to the image's own
        positions (:func:`painterly.vgg.crop_margin`). The tiles of :mod:`painterly.tiles`
        pad the whole picture the same way and run :attr:`network` on its tiles."""
        used = margin_used(image.shape[-2], image.shape[-1], self.margin)
        feats = self.network(reflect_pad(image, used))
        if not used:
            return feats
        return {n: crop_margin(f, used, layer_stride(n)) for n, f in feats.items()}


def content_targets(features: dict[str, torch.Tensor], layers: Sequence[str]) -> ContentTargets:
    """P^l of every content layer, as float32 copies of the content image's ``features``."""
    return {n: features[n].float() for n in layers}


def style_regions(
    count: int,
    masks: Sequence[torch.Tensor] | None,
    blend: Sequence[float],
    size: tuple[int, int],
) -> list[Region]:
    """The regions of one layer of ``size`` (H_l, W_l) for ``count`` style images: without
    masks, one region whose target pools every style with weights v_k = ``blend``; with masks,
    region k (its mask resized to the layer by area averaging) belongs to style k alone
    (Gatys et al. 2017, §4)."""
    if masks is None:
        return [(None, list(range(count)), list(blend))]
    return [(F.interpolate(m, size=size, mode="area"), [k], [1.0]) for k, m in enumerate(masks)]


def gram_target(
    style_features: Sequence[torch.Tensor],
    region: Region,
    size: tuple[int, int],
    normalization: losses.Normalization,
) -> losses.StyleTarget:
    """The Gram target of one region: A^l = Σ_k v_k F_k F_kᵀ / M_k (the pooled second moment),
    times M_out = H_l·W_l of the output in the ``paper`` normalisation.

    The paper's Gram F Fᵀ grows with the number of positions M, so A^l is rescaled to the
    output's M (A^l = (M_out / M_style) F_s F_sᵀ); without this a style image with 4× the
    positions would ask for 4× the Gram. (The blog's Gram is already divided by M.)

    Args:
        style_features: each style image's features at this layer, (1, N_l, H_k, W_k).
        region: see :data:`Region`. size: the output's (H_l, W_l) at this layer.
    """
    # F_k F_kᵀ / M_k of the region's styles only
    grams = {k: losses.gram_matrix(style_features[k], "blog") for k in region[1]}
    return pooled_gram_target(grams, region, size, normalization)


def pooled_gram_target(
    grams: Mapping[int, torch.Tensor],
    region: Region,
    size: tuple[int, int],
    normalization: losses.Normalization,
) -> losses.StyleTarget:
    """:func:`gram_target` from the Gram F_k F_kᵀ / M_k (1, N_l, N_l), float32, of each style
    k of the region, by index (computed whole, or summed over tiles by :mod:`painterly.tiles`)."""
    mask, members, vs = region
    share = 1.0 if mask is None else float(mask.square().mean())
    gram = sum(v * grams[k] for k, v in zip(members, vs, strict=True))
    assert isinstance(gram, torch.Tensor)
    if normalization == "paper":
        gram = gram * (size[0] * size[1])
    return losses.StyleTarget(gram=gram, mask=mask, weight=share)


def moments_target(style_features: Sequence[torch.Tensor], region: Region) -> losses.StyleTarget:
    """The Wasserstein-2 target of one region: the pooled mean μ = Σ_k v_k μ_k and covariance
    Σ_k v_k (Σ_k + μ_k μ_kᵀ) − μ μᵀ of the styles' features (:func:`losses.w2_target` adds
    its square root and trace).

    Args:
        style_features: each style image's features at this layer, (1, N_l, H_k, W_k).
        region: see :data:`Region`.
    """
    moments = {k: losses.feature_moments(style_features[k]) for k in region[1]}
    return pooled_moments_target(moments, region)


def pooled_moments_target(
    moments: Mapping[int, tuple[torch.Tensor, torch.Tensor]], region: Region
) -> losses.StyleTarget:
    """:func:`moments_target` from the float64 mean (1, N_l) and covariance (1, N_l, N_l) of
    each style k of the region, by index (computed whole, or summed over tiles)."""
    mask, members, vs = region
    share = 1.0 if mask is None else float(mask.square().mean())
    pairs = [moments[k] for k in members]
    mean = sum(v * mu for v, (mu, _) in zip(vs, pairs, strict=True))
    second = sum(v * (cov + mu.mT @ mu) for v, (mu, cov) in zip(vs, pairs, strict=True))
    assert isinstance(mean, torch.Tensor) and isinstance(second, torch.Tensor)
    mu, root, trace = losses.w2_target(mean, second - mean.mT @ mean)
    return losses.StyleTarget(mean=mu, cov_sqrt=root, cov_trace=trace, mask=mask, weight=share)


def layer_style_targets(
    config: Config,
    style_features: Sequence[torch.Tensor],
    content_feature: torch.Tensor,
    masks: Sequence[torch.Tensor] | None,
    blend: Sequence[float],
    layer: str = "",
) -> list[losses.StyleTarget]:
    """One layer's style targets, one per region, of the kind ``config.style_loss`` names
    (``"gram"``, ``"w2"`` or ``"gram+hist"``: Gram targets, with each channel's sorted values
    at ``layer`` when it is one of :data:`HIST_LAYERS`); ``content_feature`` (1, N_l, H_l, W_l)
    gives the layer's size."""
    size = (content_feature.shape[-2], content_feature.shape[-1])
    device = content_feature.device
    on_device = None if masks is None else [m.to(device) for m in masks]
    regions = style_regions(len(style_features), on_device, blend, size)
    if config.style_loss == "w2":
        return [moments_target(style_features, r) for r in regions]
    grams = [gram_target(style_features, r, size, config.normalization) for r in regions]
    if config.style_loss == "gram+hist" and layer in HIST_LAYERS:
        hist = losses.histogram_target(list(style_features), list(blend), size[0] * size[1])
        grams = [dataclasses.replace(t, hist=hist) for t in grams]
    return grams


def targets(
    net: LossNetwork,
    config: Config,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor] | None = None,
    blend: Sequence[float] | None = None,
) -> tuple[ContentTargets, StyleTargets]:
    """Content features P^l and the style targets of every layer (float32), computed once
    per scale, without gradients.

    Args:
        content: (1, 3, H, W) in [0, 1], at the output's size.
        styles: the style images, (1, 3, H_k, W_k) in [0, 1], any sizes.
        masks: one (1, 1, H, W) mask in [0, 1] per style, at the content's size, or ``None``.
        blend: normalised blend weights v_k (default: equal); ignored with masks.
    """
    weights = list(blend) if blend is not None else [1.0 / len(styles)] * len(styles)
    with torch.no_grad():
        cf = net.features(content)
        p_targets = content_targets(cf, net.content_layers)
        sfs = [net.features(s) for s in styles] if net.style_weights else []
        a_targets: StyleTargets = {
            n: layer_style_targets(config, [f[n] for f in sfs], cf[n], masks, weights, n)
            for n in net.style_weights
        }
        return p_targets, a_targets


#: One term of the objective: ``(objective, x, features of x) → terms``, its weighted value
#: under its name (``"tv"``) and, if it has any, its parts under ``"name/part"``.
TermFunction = Callable[["Objective", torch.Tensor, dict[str, torch.Tensor]], Terms]


def _summed(name: str, parts: Terms, device: torch.device) -> Terms:
    """``parts`` and, under ``name``, their sum (0 when there are none)."""
    total = torch.zeros((), device=device)
    for part in parts.values():
        total = total + part
    return {**parts, name: total}


def content_term(objective: Objective, x: torch.Tensor, feats: dict[str, torch.Tensor]) -> Terms:
    """α L_content, averaged over the content layers (:func:`losses.content_loss`: eq. 1 in
    ``paper``, a mean in ``blog``); parts ``"content/<layer>"``."""
    cfg, layers = objective.config, objective.net.content_layers
    parts: Terms = {}
    for name in layers:
        term = losses.content_loss(feats[name], objective.content_targets[name], cfg.normalization)
        parts[f"content/{name}"] = term * (cfg.content_weight / len(layers))
    return _summed("content", parts, x.device)


def style_term(objective: Objective, x: torch.Tensor, feats: dict[str, torch.Tensor]) -> Terms:
    """β L_style = β Σ_l w_l E_l (eq. 5), each E_l summed over its regions
    (:func:`losses.style_target_loss`: Gram eq. 4, or W2); parts ``"style/<layer>"``, and
    with ``gram+hist`` the histogram parts ``"hist/<layer>"`` (:func:`hist_parts`)."""
    cfg = objective.config
    parts: Terms = {}
    for name, weight in objective.net.style_weights.items():
        e_l = [
            losses.style_target_loss(feats[name], t, cfg.normalization)
            for t in objective.style_targets[name]
        ]
        parts[f"style/{name}"] = sum(e_l[1:], e_l[0]) * weight * cfg.style_weight
    return _summed("style", {**parts, **hist_parts(objective, feats)}, x.device)


def hist_parts(objective: Objective, feats: dict[str, torch.Tensor]) -> Terms:
    """With ``style_loss="gram+hist"``: β · hist_weight · L_hist at each histogram layer
    (:func:`losses.histogram_loss`, Risser et al. 2017, eq. 5), averaged over those layers,
    under ``"hist/<layer>"``; part of the style term. Empty otherwise."""
    cfg = objective.config
    layers = [
        n for n in objective.net.style_weights if objective.style_targets[n][0].hist is not None
    ]
    parts: Terms = {}
    for name in layers:
        hist = objective.style_targets[name][0].hist
        assert hist is not None
        weight = cfg.style_weight * cfg.hist_weight / len(layers)
        parts[f"hist/{name}"] = losses.histogram_loss(feats[name], hist) * weight
    return parts


def tv_term(objective: Objective, x: torch.Tensor, feats: dict[str, torch.Tensor]) -> Terms:
    """γ L_TV of the image itself (:func:`losses.total_variation`); 0 when ``tv_weight`` is 0.
    With ``tv_per_pixel`` the squared neighbour differences are averaged (the ``blog`` form)
    whatever the normalisation, so that one γ serves every size."""
    cfg = objective.config
    if cfg.tv_weight > 0:
        form = "blog" if cfg.tv_per_pixel else cfg.normalization
        return {"tv": losses.total_variation(x, form) * cfg.tv_weight}
    return {"tv": torch.zeros((), device=x.device)}


@dataclass(frozen=True)
class TemporalTarget:
    """What a video frame is tied to (Ruder, Dosovitskiy & Brox 2016, §3.2), at one scale.

    Attributes:
        warped: ω, the previous stylised frame warped to this one by the optical flow,
            (1, 3, H, W) in [0, 1] at the scale's size, on the run's device.
        weight: c, (1, 1, H, W) in [0, 1]: 0 where the flow is unreliable, 1 elsewhere.
    """

    warped: torch.Tensor
    weight: torch.Tensor


def temporal_term(objective: Objective, x: torch.Tensor, feats: dict[str, torch.Tensor]) -> Terms:
    """λ L_temporal = λ (1/D) Σ_k c_k (x_k − ω_k)² (:func:`losses.temporal_loss`; Ruder et al.
    2016, eq. 7) with λ = ``temporal_weight``: differentiable in the image x, weighted per
    pixel by c; 0 without a :class:`TemporalTarget`. Its one part, ``"temporal/previous"`` (the
    previous frame: the paper's short-term loss), goes into the step events' layer losses."""
    target, weight = objective.temporal, objective.config.temporal_weight
    if target is None or weight == 0:
        zero = torch.zeros((), device=x.device)
        return {"temporal/previous": zero, "temporal": zero}
    value = losses.temporal_loss(x, target.warped, target.weight) * weight
    return {"temporal/previous": value, "temporal": value}


#: The terms of eq. 7 (+ TV), in the order they are added up.
DEFAULT_TERMS: tuple[TermFunction, ...] = (content_term, style_term, tv_term)
#: The terms of a video frame: eq. 7 (+ TV) and Ruder et al.'s temporal loss.
VIDEO_TERMS: tuple[TermFunction, ...] = (*DEFAULT_TERMS, temporal_term)


class Objective:
    """L_total(x) at one scale: the frozen network, the targets, and the terms to add up.

    Args:
        net: the network and its layers. config: the weights α, β, γ and the normalisation.
        content_targets, style_targets: from :func:`targets`, for this scale.
        terms: the term functions, added up in this order (default :data:`DEFAULT_TERMS`;
            :data:`VIDEO_TERMS` when ``temporal`` is given).
        temporal: a video frame's :class:`TemporalTarget` at this scale, or ``None``.
    """

    def __init__(
        self,
        net: LossNetwork,
        config: Config,
        content_targets: ContentTargets,
        style_targets: StyleTargets,
        terms: Sequence[TermFunction] | None = None,
        temporal: TemporalTarget | None = None,
    ) -> None:
        self.net = net
        self.config = config
        self.content_targets = content_targets
        self.style_targets = style_targets
        self.temporal = temporal
        if terms is None:
            terms = DEFAULT_TERMS if temporal is None else VIDEO_TERMS
        self.terms = tuple(terms)

    @classmethod
    def at_scale(
        cls,
        net: LossNetwork,
        config: Config,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        masks: Sequence[torch.Tensor] | None = None,
        blend: Sequence[float] | None = None,
        temporal: TemporalTarget | None = None,
    ) -> Objective:
        """The objective of one scale, its targets computed from these inputs (see
        :func:`targets` for the arguments; ``temporal``: a video frame's target)."""
        p_targets, a_targets = targets(net, config, content, styles, masks, blend)
        return cls(net, config, p_targets, a_targets, temporal=temporal)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, Terms]:
        """The total loss of ``x`` (1, 3, H, W) in [0, 1] and its terms (``"total"`` among
        them), 0-d float32 tensors in the autograd graph of ``x``."""
        feats = self.net.features(x)
        terms: Terms = {}
        values: list[torch.Tensor] = []
        for term in self.terms:
            out = term(self, x, feats)
            terms.update(out)
            values.extend(v for k, v in out.items() if "/" not in k)
        terms["total"] = functools.reduce(operator.add, values)
        return terms["total"], terms

    def value(self, x: torch.Tensor) -> float:
        """The total loss of ``x`` as a number, evaluated without gradients."""
        with torch.no_grad():
            return self(x)[0].item()
