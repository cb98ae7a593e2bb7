"""Style transfer, the public face of the core: :class:`StyleTransfer` and the choices of
device, precision and convolution made once per machine.

Gatys, Ecker & Bethge 2016, eq. 7: minimise α·L_content + β·L_style (+ TV) over the pixels
of the output, (1, 3, H, W) in [0, 1], with the network frozen. The work is done in rooms a
reader can hold, and this module puts them together:

- :mod:`painterly.ladder`: the scales, the start image, carrying the image up, colour
  before and after, resume checks;
- :mod:`painterly.objective`: the targets once per scale and the loss of the image;
- :mod:`painterly.optimise`: the optimiser loop of one scale (steps, projection, best so far,
  stopping rule, events, snapshots);
- :mod:`painterly.events`: :class:`StepEvent`, :class:`RunState`, :class:`Result` and the
  errors; :mod:`painterly.memory`: :func:`estimate_peak_memory`.

Here the inputs are decoded and the recipe is assembled from the :class:`Result` and the
inputs (:mod:`painterly.recipe`), outside the maths. This module prints nothing and writes no
file; every name it exported before the split is still importable from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from . import objective
from .config import INIT_KEYWORDS, Config, ConfigError
from .events import NonFiniteLossError, Result, RunState, StepEvent, TransferInterrupted
from .images import ImageSource, load_image
from .kernels import KernelPlan, apply_plan, choose_kernels, plan_record
from .ladder import Inputs, Ladder, check_sizes, scaled
from .masks import load_mask
from .memory import estimate_peak_memory, keep_freed_pages, release_memory
from .objective import LossNetwork, Objective, StyleTargets
from .optimise import stalled
from .recipe import input_record, make_recipe
from .vgg import VGG19Features, resolve_layer
from .weights import load_weights

__all__ = [
    "WINOGRAD_FROM",
    "NonFiniteLossError",
    "Result",
    "RunState",
    "StepEvent",
    "StyleTargets",
    "StyleTransfer",
    "TransferInterrupted",
    "check_sizes",
    "default_threads",
    "estimate_peak_memory",
    "resolve_convolution",
    "resolve_device",
    "resolve_precision",
    "stalled",
]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; other names as given.

    Raises:
        ConfigError: CUDA asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but CUDA is not available here")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r} asked for, but this machine has {count} GPU(s)")
    return device


def resolve_precision(name: str, device: torch.device) -> str:
    """``"auto"`` → ``"bf16"`` where the hardware has native bf16 (CPU: AVX512-BF16 or AMX;
    CUDA: compute capability ≥ 8), else ``"fp32"``: the rule by CPU flags of before.
    :class:`StyleTransfer` now chooses by measurement (:func:`painterly.kernels.choose_kernels`),
    since flags can claim a bf16 that runs emulated; this stays for callers of the old name."""
    if name != "auto":
        return name
    if device.type == "cuda":
        # Native bf16 from Ampere (sm80) on; older GPUs only emulate it, slowly.
        return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp32"
    cpu = torch.cpu
    fast = (
        getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )
    return "bf16" if fast else "fp32"


#: The first layer computed by Winograd F(4×4, 3×3) when it is on. Before it, layers have few
#: channels and many pixels, and the transforms (memory-bound) cost more than the products
#: save; from here on Winograd is 1.9–2.6× faster per layer in bf16 on this project's CPU
#: (benchmarks/bench_winograd.py).
WINOGRAD_FROM = "conv3_1"


def resolve_convolution(name: str, precision: str, device: torch.device) -> str:
    """``"auto"`` → ``"winograd"`` for bf16 on a CPU, else ``"direct"``.

    On a GPU cuDNN chooses its own algorithms (Winograd among them) for a direct call, and in
    float32 the direct path is kept as the exact reference.
    """
    if name != "auto":
        return name
    return "winograd" if precision == "bf16" and device.type == "cpu" else "direct"


def _style_list(style: ImageSource | Sequence[ImageSource]) -> list[ImageSource]:
    if isinstance(style, list | tuple):
        return list(style)
    return [style]  # type: ignore[list-item]


def _input_record(image: torch.Tensor, source: ImageSource) -> dict[str, Any]:
    """The recipe's description of an input given as a path, a Pillow image or a tensor."""
    if isinstance(source, str | os.PathLike):
        return input_record(image, source)
    return input_record(image)


#: torch's own thread count when painterly was imported: the physical cores it sees (or what
#: OMP_NUM_THREADS says), before any run changed it.
_DEFAULT_THREADS = torch.get_num_threads()


def default_threads() -> int:
    """The threads a run uses unless ``--threads`` says otherwise: the physical cores torch
    sees (its own default), as it was before any run."""
    return _DEFAULT_THREADS


@contextlib.contextmanager
def threads_set(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` for the block, then put back."""
    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class StyleTransfer:
    """A reusable runner: the feature extractor is built once and reused across runs.

    Args:
        config: the options (see :class:`~painterly.config.Config`).
        kernels: the kernel plan to run (default: :func:`painterly.kernels.choose_kernels` for
            this config and machine).

    Raises:
        ConfigError: invalid device for this machine.
        WeightsError: the weights cannot be loaded.
    """

    def __init__(self, config: Config, kernels: KernelPlan | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.content_layers = [resolve_layer(n) for n in config.content_layers]
        self.style_weights = {resolve_layer(k): v for k, v in config.layer_weights.items()}
        self.layers = list(dict.fromkeys([*self.content_layers, *self.style_weights]))
        self.weights = load_weights(config.weights)
        self.vgg = VGG19Features(
            self.weights, config.pooling, up_to=self.layers, margin=config.edge_margin
        )
        self.vgg.to(self.device)
        # The kernels: explicit choices as given, "auto" measured once per machine and cached;
        # or a plan handed in (a batch's workers share their driver's, for identical pixels).
        self.kernels = kernels or choose_kernels(
            self.device, config.precision, config.convolution, threads=self.threads
        )
        self.precision = self.kernels.precision
        self.convolution = self.kernels.convolution
        apply_plan(self.vgg, self.kernels)

    @property
    def threads(self) -> int:
        """CPU threads a run uses: ``config.threads``, or :func:`default_threads`."""
        return self.config.threads or default_threads()

    def _features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The features the loss reads of ``image`` (1, 3, H, W), edge margin included
        (:meth:`LossNetwork.features`): what the targets are computed from."""
        return self.network.features(image)

    def _bare_features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network without the edge margin (the loss network pads, see `network`)."""
        features: dict[str, torch.Tensor] = self.vgg(image, self.layers, margin=0)
        return features

    @property
    def network(self) -> LossNetwork:
        """The network as the objective sees it: features by layer, and the loss's layers."""
        return LossNetwork(
            self._bare_features, self.content_layers, self.style_weights, self.config.edge_margin
        )

    def targets(
        self,
        content: torch.Tensor,
        style: torch.Tensor | Sequence[torch.Tensor],
        masks: Sequence[torch.Tensor] | None = None,
        blend: Sequence[float] | None = None,
    ) -> tuple[dict[str, torch.Tensor], StyleTargets]:
        """Content features P^l and the style targets of every layer (float32), computed once.

        Args:
            content: (1, 3, H, W) in [0, 1], at the output's size.
            style: one style image or several, (1, 3, H_k, W_k) in [0, 1], any sizes.
            masks: one (1, 1, H, W) mask in [0, 1] per style, at the content's size, or ``None``.
            blend: normalised blend weights v_k (default: equal); ignored with masks.

        Without masks there is one region: the styles' features pooled with weights v_k. For
        the Gram loss its target is A^l = Σ_k v_k F_k F_kᵀ / M_k (the pooled second moment), and
        for W2 the pooled mean μ = Σ v_k μ_k and covariance Σ v_k (Σ_k + μ_k μ_kᵀ) − μ μᵀ. With
        masks, style k is the target of region k alone (Gatys et al. 2017, §4). In the
        ``paper`` normalisation A^l is rescaled to the output's number of positions
        (:func:`painterly.objective.gram_target`).
        """
        styles = [style] if isinstance(style, torch.Tensor) else list(style)
        return objective.targets(self.network, self.config, content, styles, masks, blend)

    def prepare(
        self, content: ImageSource, style: ImageSource, size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode and resize the inputs: content to ``size`` (default: the config's) on its
        longest side, style to the same longest side. Returns tensors (1, 3, H, W) in [0, 1] on
        the run's device.

        Raises:
            ImageError: an input cannot be read.
            ConfigError: a resized image is too small for the deepest layer.
        """
        return self._at_size(load_image(content), load_image(style), size or self.config.size)

    def _at_size(
        self, content: torch.Tensor, style: torch.Tensor, size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c, styles = self._scaled(content, [style], size)
        return c, styles[0]

    def _scaled(
        self, content: torch.Tensor, styles: Sequence[torch.Tensor], size: int
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """See :func:`painterly.ladder.scaled`."""
        return scaled(self.config, content, styles, size, self.device)

    def _loss(
        self,
        x: torch.Tensor,
        p_targets: dict[str, torch.Tensor],
        a_targets: StyleTargets,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss of ``x`` and its terms for these targets (see :class:`Objective`)."""
        return Objective(self.network, self.config, p_targets, a_targets)(x)

    def _load(
        self, content: ImageSource, style: ImageSource | Sequence[ImageSource]
    ) -> tuple[Inputs, dict[str, dict[str, Any]]]:
        """The decoded inputs, and the recipe's record of each (all checked before compute)."""
        cfg = self.config
        content_full = load_image(content)
        style_sources = _style_list(style)
        styles_full = [load_image(s) for s in style_sources]
        blend = cfg.check_styles(len(styles_full))
        masks_full = [load_mask(m) for m in cfg.style_masks] if cfg.style_masks else None
        init_file = None if cfg.init in INIT_KEYWORDS else load_image(cfg.init)
        records = {"content": _input_record(content_full, content)}
        for k, (pixels, source) in enumerate(zip(styles_full, style_sources, strict=True)):
            records["style" if k == 0 else f"style{k + 1}"] = _input_record(pixels, source)
        if init_file is not None:
            records["init"] = _input_record(init_file, cfg.init)
        temporal = None
        if cfg.temporal_target is not None:  # a video frame (Ruder et al. 2016)
            warped = load_image(cfg.temporal_target)
            h, w = warped.shape[-2:]
            weight = torch.ones(1, 1, h, w)
            records["temporal"] = _input_record(warped, cfg.temporal_target)
            if cfg.temporal_mask is not None:
                weight = load_mask(cfg.temporal_mask)
                records["temporal_mask"] = _input_record(weight, cfg.temporal_mask)
            temporal = (warped, weight)
        inputs = Inputs(content_full, styles_full, blend, masks_full, init_file, temporal)
        return inputs, records

    def run(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        callback: Callable[[StepEvent], object] | None = None,
        resume: RunState | None = None,
    ) -> Result:
        """Stylise ``content`` in the style of ``style``, coarse to fine over ``config.ladder``.

        At each scale the content image is resized to that scale's longest side and each style
        image to ``style_scale`` times it, the targets are recomputed, and the previous scale's
        result, upsampled, is the start (:class:`painterly.ladder.Ladder`). With
        ``preserve_colors`` the inputs are changed first (:mod:`painterly.color`) and, for
        ``luminance``, the content's chroma is put back into every image handed out (results
        and the events' images). When the content and every style image are gray (R = G = B),
        the output is made gray too: no input has colour to give it (CASES.md B03). While it
        runs, the memory a step frees stays mapped for the next step
        (:func:`painterly.memory.keep_freed_pages`); when it returns or raises, the memory the
        run freed goes back to the system (:func:`painterly.memory.release_memory`), so that a
        process painting many pictures of different sizes levels off.

        Args:
            content: a path, Pillow image, or tensor (3, H, W) / (1, 3, H, W) in [0, 1].
            style: one style image of the same kinds, or a list or tuple of them (blended with
                ``style_blend_weights``, or each in its region of ``style_masks``).
            callback: called after every step with a :class:`StepEvent`; a truthy return value
                stops the run early (``stop_reason="stopped"``).
            resume: a :class:`RunState` taken (``event.state()``) from an earlier run with the
                same config and inputs; the run continues from the end of that step.

        Returns:
            A :class:`Result` with the lowest-loss image of the last scale (the iterates'
            average with ``ema_decay``), and its recipe.

        Raises:
            TransferInterrupted: Ctrl-C; carries the best image so far, at the final size.
            NonFiniteLossError: NaN/inf loss; carries the last finite best image.
            ImageError, ConfigError: bad inputs (all checked before any compute), among them a
                number of blend weights or masks other than the number of style images, or a
                ``resume`` state that does not fit this config.
        """
        try:
            with keep_freed_pages():  # no page faulted in again each step (issue 17)
                return self._run(content, style, callback, resume)
        finally:
            release_memory()  # between jobs: a long-lived process levels off (issue 16)

    def _run(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        callback: Callable[[StepEvent], object] | None,
        resume: RunState | None,
    ) -> Result:
        """:meth:`run`, whose locals (the ladder, its targets) are gone when it returns."""
        cfg = self.config
        if resume is not None:
            seed = resume.seed
        else:
            seed = cfg.seed if cfg.seed is not None else secrets.randbelow(2**31)
        inputs, records = self._load(content, style)
        ladder = Ladder(self.network, cfg, self.device, self.precision, inputs)
        final_style = ladder.upscaled_style()
        if final_style is not None:
            warnings.warn(
                f"a style image is upscaled past its own size (to {final_style} px on its "
                "longest side): its brush strokes will look soft; lower --style-scale or use a "
                "larger style image",
                stacklevel=2,
            )
        try:
            with threads_set(self.threads):
                result = ladder.run(seed, callback, resume)
        except (TransferInterrupted, NonFiniteLossError) as exc:
            exc.result = self._with_recipe(exc.result, records)
            raise
        return self._with_recipe(result, records)

    def _with_recipe(self, result: Result, inputs: dict[str, dict[str, Any]]) -> Result:
        """The result with its recipe (:func:`painterly.recipe.make_recipe`)."""
        recipe = make_recipe(
            self.config,
            seed=result.seed,
            device=result.device,
            precision=result.precision,
            inputs=inputs,
            elapsed=result.elapsed,
            steps=result.steps,
            stop_reason=result.stop_reason,
            loss=result.loss,
            threads=self.threads,
            weights={"source": self.weights.source, "sha256": self.weights.sha256},
            kernels=plan_record(self.kernels),
        )
        return dataclasses.replace(result, recipe=recipe)
