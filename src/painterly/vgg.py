"""VGG19 as a frozen feature extractor, addressed by the field's layer names.

Layer names are Caffe's: ``conv1_1`` … ``conv5_4`` (before the ReLU), ``relu1_1`` … ``relu5_4``
(after it) and ``pool1`` … ``pool5``. The Keras names of the blog are accepted as aliases:
``blockB_convI`` is the *rectified* output ``reluB_I`` (a Keras conv layer includes its ReLU) and
``blockB_pool`` is ``poolB``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .config import Pooling
from .layers import LAYER_ALIASES, LAYER_INDEX, LAYER_NAMES, layer_stride, resolve_layer
from .weights import CONV_NAMES, VGGWeights, load_weights
from .winograd import WinogradConv2d

__all__ = [
    "ALGORITHMS",
    "LAYER_ALIASES",
    "LAYER_NAMES",
    "VGG19Features",
    "crop_margin",
    "feature_size",
    "layer_stride",
    "margin_cut",
    "margin_used",
    "reflect_pad",
    "resolve_layer",
]

#: How one 3×3 layer can be computed: ``F.conv2d`` or Winograd F(m×m, 3×3), m = 2, 4, 6.
ALGORITHMS = ("direct", "winograd2", "winograd4", "winograd6")

# ImageNet statistics. Caffe's mean is per BGR channel on the 0-255 scale.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCHVISION_MEAN = (0.485, 0.456, 0.406)
_TORCHVISION_STD = (0.229, 0.224, 0.225)


class _GradientLayout(torch.autograd.Function):
    """The identity, whose backward pass gives the gradient the memory format of the features.

    Why: the losses' gradients arrive NCHW-contiguous (a Gram's ``reshape(C, H·W)`` of
    channels_last features is a copy), and meeting channels_last activations they sent ReLU's
    backward (``threshold_backward``) and the sum of a layer's two gradients (``add_``) through
    PyTorch's slow mixed-stride paths: 4× slower ReLU backward, measured, which ate the gain
    of channels_last convolutions (issue 17). One copy here is cheaper."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        if ctx.channels_last:
            return grad.contiguous(memory_format=torch.channels_last)
        return grad.contiguous()


_gradient_layout: Callable[[torch.Tensor], torch.Tensor] = _GradientLayout.apply


def margin_used(height: int, width: int, margin: int) -> int:
    """The reflection margin (px) an image of ``height`` × ``width`` px gets: ``margin``, or 0
    when a side is not above it (reflection needs more pixels than it pads)."""
    return margin if min(height, width) > margin else 0


def margin_cut(length: int, margin: int, stride: int) -> int:
    """How many positions of a feature map of ``length`` positions (of a layer of ``stride``,
    of an image padded by ``margin`` px) the crop drops at each end: the ⌈margin / stride⌉ that
    lie (partly) in the padding, fewer where that would leave none (relu5_1 of a 32 px side:
    2 positions, padded by 4 px or not)."""
    return max(0, min(-(-margin // stride), (length - 1) // 2))


def feature_size(height: int, width: int, margin: int, stride: int) -> tuple[int, int]:
    """(H_l, W_l), the feature map of a layer of ``stride`` that the loss sees of an image of
    ``height`` × ``width`` px with an edge ``margin`` (px): the padded image's map less
    :func:`margin_cut` at each end (H // stride without a margin)."""
    used = margin_used(height, width, margin)
    sizes = [(n + 2 * used) // stride for n in (height, width)]
    h, w = (n - 2 * margin_cut(n, used, stride) for n in sizes)
    return h, w


def reflect_pad(image: torch.Tensor, margin: int) -> torch.Tensor:
    """``image`` (B, C, H, W) reflection-padded by :func:`margin_used` px on every side
    (itself when that is 0), in the autograd graph."""
    used = margin_used(image.shape[-2], image.shape[-1], margin)
    return F.pad(image, (used,) * 4, mode="reflect") if used else image


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last for a 4-D tensor laid out so (and not also plain contiguous), else
    contiguous."""
    cl = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if cl and not x.is_contiguous() else torch.contiguous_format


class _Crop(torch.autograd.Function):
    """``x[..., ch : H − ch, cw : W − cw]`` as a new tensor in ``x``'s memory format, whose
    backward pass writes the gradient into a tensor of ``x``'s shape and memory format with
    zeros on the cut positions.

    Why: the sliced view was neither contiguous nor channels_last, so the Gram's reshape made a
    transposing copy of it, and autograd's two slice backward passes each zero-filled and
    copied a whole map, in NCHW, which :class:`_GradientLayout` then transposed back: about
    0.5 s of a 512 px step at relu1_1 and relu2_1 alone on a 2-core AVX2 CPU (issue 17)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, ch: int, cw: int) -> torch.Tensor:
        h, w = x.shape[-2:]
        ctx.shape, ctx.cut, ctx.format = x.shape, (ch, cw), _memory_format(x)
        return x[..., ch : h - ch, cw : w - cw].clone(memory_format=ctx.format)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (ch, cw), (h, w) = ctx.cut, ctx.shape[-2:]
        full = torch.empty(
            ctx.shape, dtype=grad.dtype, device=grad.device, memory_format=ctx.format
        )
        full[..., :ch, :].zero_()
        full[..., h - ch :, :].zero_()
        full[..., ch : h - ch, :cw].zero_()
        full[..., ch : h - ch, w - cw :].zero_()
        full[..., ch : h - ch, cw : w - cw].copy_(grad)
        return full, None, None


_crop: Callable[[torch.Tensor, int, int], torch.Tensor] = _Crop.apply


def crop_margin(features: torch.Tensor, margin: int, stride: int) -> torch.Tensor:
    """Features (B, C, H_l, W_l) of an image padded by ``margin`` px, without the
    :func:`margin_cut` positions at each end of both sides: ``features`` itself where none is
    cut, else a copy in its memory format (:class:`_Crop`)."""
    h, w = features.shape[-2:]
    ch, cw = (margin_cut(n, margin, stride) for n in (h, w))
    if not ch and not cw:
        return features
    return _crop(features, ch, cw)


class VGG19Features(nn.Module):
    """VGG19's convolutional part, frozen, returning the feature maps asked for by name.

    Args:
        weights: a :class:`~painterly.weights.VGGWeights` or a source for
            :func:`~painterly.weights.load_weights` (``"embedded"``, ``"torchvision"``, a path).
        pooling: ``"max"`` (the network as trained) or ``"avg"`` (Gatys et al. 2016, §2, report
            slightly more appealing results with average pooling).
        up_to: if given, layers after the deepest of these are not built at all.
        margin: px of reflection padding put around the image before the network, the
            features then cropped back to the image (:attr:`margin`); 0: none.

    The parameters never require gradients; the module is always in eval mode.
    """

    def __init__(
        self,
        weights: VGGWeights | str = "embedded",
        pooling: Pooling = "max",
        up_to: Iterable[str] | None = None,
        margin: int = 0,
    ) -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, not {margin}")
        #: The image's reflection padding in px (:meth:`forward`): the network's own zero
        #: padding then falls outside the image, whose border pixels are seen as interior ones.
        self.margin = margin
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        if isinstance(weights, str):
            weights = load_weights(weights)
        self.pooling: Pooling = pooling
        self.preprocessing = weights.preprocessing
        last = len(LAYER_NAMES) - 1
        if up_to is not None:
            wanted = [LAYER_INDEX[resolve_layer(n)] for n in up_to]
            last = max(wanted) if wanted else -1
        self._names = LAYER_NAMES[: last + 1]
        self.convs: dict[str, nn.Conv2d | WinogradConv2d] = {}
        for name in CONV_NAMES:
            if name not in self._names:
                break
            kernel, bias = weights.convs[name]
            conv = nn.Conv2d(kernel.shape[1], kernel.shape[0], 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(kernel)
                assert conv.bias is not None
                conv.bias.copy_(bias)
            self.convs[name] = conv
            self.add_module(name, conv)
        if weights.preprocessing == "caffe":
            mean = torch.tensor(_CAFFE_MEAN_BGR) / 255.0
            std = torch.full((3,), 1.0 / 255.0)
        else:
            mean, std = torch.tensor(_TORCHVISION_MEAN), torch.tensor(_TORCHVISION_STD)
        # Plain tuples, not buffers: they must stay float32 when the network is cast to bf16.
        self._mean: tuple[float, ...] = tuple(mean.tolist())
        self._std: tuple[float, ...] = tuple(std.tolist())
        #: Set by :meth:`set_plan`: in-place ReLU where autograd allows, per-layer memory
        #: formats, gradients in the features' memory format. Off: the forward of before.
        self.fused = False
        # Float32 kernels and biases of the layers switched away from direct convolution.
        self._direct: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.requires_grad_(False)
        self.eval()

    def set_plan(
        self,
        algorithms: Mapping[str, str],
        channels_last: Iterable[str] = (),
        dtype: torch.dtype = torch.float32,
    ) -> dict[str, str]:
        """Compute each conv layer as ``algorithms`` says (:data:`ALGORITHMS`; layers not named:
        ``"direct"``), the direct layers in ``channels_last`` in that memory format (the others
        NCHW), everything in ``dtype``, with the fused forward (:attr:`fused`). Any earlier
        plan or :meth:`use_winograd` is undone first: kernel transforms are always made from the
        float32 kernels. Returns ``{layer: algorithm}`` of the layers this network has.

        The plans come from :func:`painterly.kernels.choose_kernels`; the bf16 path of before
        (:meth:`use_winograd` and ``.to(bfloat16, channels_last)``) does not use this method.

        Raises:
            ValueError: an unknown layer or algorithm.
        """
        for name, algorithm in algorithms.items():
            if name not in CONV_NAMES or algorithm not in ALGORITHMS:
                raise ValueError(f"no such conv layer/algorithm: {name!r}: {algorithm!r}")
        last_format = set(channels_last)
        device = next(iter(self.convs.values())).bias.device  # type: ignore[union-attr]
        done = {}
        for name in list(self.convs):
            kernel, bias = self._float32_kernel(name)
            algorithm = algorithms.get(name, "direct")
            module: nn.Module
            if algorithm == "direct":
                conv = nn.Conv2d(kernel.shape[1], kernel.shape[0], 3, padding=1)
                conv.weight.data, conv.bias.data = kernel.clone(), bias.clone()  # type: ignore[union-attr]
                fmt = torch.channels_last if name in last_format else torch.contiguous_format
                module = conv.requires_grad_(False).to(device, dtype, memory_format=fmt)  # type: ignore[call-overload]
                self._direct.pop(name, None)
            else:
                conv = nn.Conv2d(kernel.shape[1], kernel.shape[0], 3, padding=1)
                conv.weight.data, conv.bias.data = kernel, bias  # type: ignore[union-attr]
                module = WinogradConv2d(conv, dtype, m=int(algorithm[-1])).to(device)
                self._direct[name] = (kernel, bias)
            self.convs[name] = module  # type: ignore[assignment]
            self.add_module(name, module)
            done[name] = algorithm
        self.fused = True
        return done

    def _float32_kernel(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The float32 (C_out, C_in, 3, 3) kernel and (C_out,) bias of a layer, on the CPU."""
        if name in self._direct:
            return self._direct[name]
        conv = self.convs[name]
        if not isinstance(conv, nn.Conv2d) or conv.weight.dtype != torch.float32:
            raise ValueError(f"{name}: its float32 kernel is gone (use_winograd or a cast)")
        assert conv.bias is not None
        return conv.weight.detach().cpu().contiguous(), conv.bias.detach().cpu().clone()

    def use_winograd(self, first: str = "conv3_1", dtype: torch.dtype | None = None) -> list[str]:
        """Compute the convolutions from ``first`` on by Winograd F(4×4, 3×3)
        (:mod:`painterly.winograd`): 4× fewer multiplications, less precision.

        The kernel transforms are made from the kernels as they are now, in ``dtype`` (default:
        the kernels'), and follow later ``.to(device/dtype)`` calls. For bf16, switch before
        casting with ``dtype=torch.bfloat16``: the transforms are computed from the float32
        kernels and rounded once. Returns the layers switched.

        Raises:
            ValueError: ``first`` is not a conv layer.
        """
        if first not in CONV_NAMES:
            raise ValueError(f"{first!r} is not a conv layer ({', '.join(CONV_NAMES)})")
        switched = []
        for name in CONV_NAMES[CONV_NAMES.index(first) :]:
            conv = self.convs.get(name)
            if isinstance(conv, nn.Conv2d):
                self.convs[name] = WinogradConv2d(conv, dtype)
                self.add_module(name, self.convs[name])
                switched.append(name)
        return switched

    def train(self, mode: bool = True) -> VGG19Features:
        """Ignored: the extractor stays in eval mode."""
        return super().train(False)

    @property
    def deepest_layer(self) -> str | None:
        """The last layer this (possibly truncated) network can return."""
        return self._names[-1] if self._names else None

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """Map an RGB image in [0, 1], shape (B, 3, H, W), to the network's input space."""
        if self.preprocessing == "caffe":
            image = image.flip(1)  # RGB -> BGR
        mean = torch.tensor(self._mean, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
        std = torch.tensor(self._std, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
        return (image - mean) / std

    def forward(
        self, image: torch.Tensor, layers: Sequence[str], margin: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Compute feature maps.

        Args:
            image: RGB, shape (B, 3, H, W), values nominally in [0, 1] (not clamped here).
            layers: layer names (Caffe or Keras); the computation stops at the deepest one.
            margin: the reflection margin in px for this call (default :attr:`margin`; 0 for
                the loss network, :class:`painterly.objective.LossNetwork`, which pads itself).

        Returns:
            ``{name as given: features (B, C_l, H_l, W_l)}``, where H_l = H / layer_stride.
            With a :attr:`margin` m (and sides above m), the image is reflection-padded by m
            px first and each feature map cropped by ⌈m / stride⌉ positions on every side, so
            that the losses count the image's own positions, none of them at the network's
            zero padding (that padding made a bright or speckled line along the picture's
            edges; README, "Edges").

        Raises:
            ValueError: an unknown layer, or one beyond this network's ``up_to``, or an image
                whose shape is not (B, 3, H, W).
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an image of shape (B, 3, H, W), got {tuple(image.shape)}")
        wanted: dict[str, list[str]] = {}
        for name in layers:
            canonical = resolve_layer(name)
            if canonical not in LAYER_INDEX or LAYER_INDEX[canonical] >= len(self._names):
                raise ValueError(f"layer {name!r} lies beyond this network's last layer")
            wanted.setdefault(canonical, []).append(name)
        if not wanted:
            return {}
        margin = margin_used(
            image.shape[-2], image.shape[-1], self.margin if margin is None else margin
        )
        image = reflect_pad(image, margin)
        features = self._features(image, wanted)
        if margin:
            features = {n: crop_margin(f, margin, layer_stride(n)) for n, f in features.items()}
        return features

    def _features(
        self, image: torch.Tensor, wanted: dict[str, list[str]]
    ) -> dict[str, torch.Tensor]:
        """The feature maps of ``wanted`` ({canonical layer: names as given}) of ``image``."""
        last = max(LAYER_INDEX[c] for c in wanted)
        out: dict[str, torch.Tensor] = {}
        first = self.convs["conv1_1"]
        weight = first.weight if isinstance(first, nn.Conv2d) else first.u
        # The network's dtype and memory format decide the computation's (bf16 weights:
        # bf16 convolutions); the image's own gradient stays in its dtype.
        x = self.preprocess(image).to(weight.dtype)
        if weight.dim() == 4 and weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        if self.fused:
            return self._fused_forward(x, wanted, last)
        for name in self._names[: last + 1]:
            if name.startswith("conv"):
                x = self.convs[name](x)
            elif name.startswith("relu"):
                x = F.relu(x)
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2, 2)
            else:
                x = F.avg_pool2d(x, 2, 2)
            for given in wanted.get(name, ()):
                out[given] = x
        return out

    def _fused_forward(
        self, x: torch.Tensor, wanted: dict[str, list[str]], last: int
    ) -> dict[str, torch.Tensor]:
        """:meth:`forward` under a plan: each direct layer gets its input in its kernel's memory
        format; ReLU runs in place on a conv output nobody asked for (a convolution's backward
        needs its input and kernel, not its output; ReLU's needs only its result); the features
        returned pass through :class:`_GradientLayout`. A Winograd layer whose own output
        nobody asked for computes its ReLU too, in its forward and backward passes."""
        out: dict[str, torch.Tensor] = {}
        rectified = False
        for name in self._names[: last + 1]:
            if name.startswith("conv"):
                conv = self.convs[name]
                if isinstance(conv, WinogradConv2d):
                    rectified = name not in wanted and LAYER_INDEX[name] < last
                    x = conv(x, relu=rectified)
                else:
                    cl = conv.weight.is_contiguous(memory_format=torch.channels_last)
                    fmt = torch.channels_last if cl else torch.contiguous_format
                    x = conv(x.contiguous(memory_format=fmt))
            elif name.startswith("relu"):
                if not rectified:
                    x = F.relu(x) if f"conv{name[4:]}" in wanted else F.relu_(x)
                rectified = False
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2, 2)
            else:
                x = F.avg_pool2d(x, 2, 2)
            for given in wanted.get(name, ()):
                out[given] = _gradient_layout(x)
        return out
