"""Optical flow between video frames, warping, and where the flow can be trusted.

Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016, arXiv 1604.08610),
§3.2: each frame is tied to the previous stylised frame warped by the optical flow, ω, except
where the flow is unreliable. With w = (u, v) the forward flow (frame i−1 → i) and ŵ = (û, v̂)
the backward flow (frame i → i−1), in pixels, and w̃(x) = w(x + ŵ(x)) the forward flow warped
to frame i, the weight c(x) of a pixel of frame i is 0

- at a disocclusion, where the forward–backward check fails:
  |w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5;
- at a motion boundary: |∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002;
- where x + ŵ(x) falls outside frame i−1 (nothing there to warp; not in the paper, whose
  flow fields do not leave the frame),

and 1 elsewhere. The flow is OpenCV's DIS (Kroeger et al., "Fast Optical Flow using Dense
Inverse Search", ECCV 2016): no weights to download, fast on a CPU. The paper used DeepFlow and
EpicFlow, external programs.

Images are tensors (1, 3, H, W) in [0, 1]; flows are float32 arrays (H, W, 2) of (dx, dy) in
pixels; weights are tensors (1, 1, H, W) in [0, 1]. Nothing here optimises or writes a file.
``opencv-python-headless`` is an optional extra (``pip install 'painterly[video]'``), imported
only when a flow is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "Flicker",
    "FramePair",
    "consistency_weight",
    "flicker",
    "frame_pair",
    "optical_flow",
    "temporal_difference",
    "warp",
]

#: The disocclusion test's constants (Ruder et al. 2016, §3.2): relative and absolute, px².
DISOCCLUSION_RELATIVE, DISOCCLUSION_ABSOLUTE = 0.01, 0.5
#: The motion-boundary test's constants (ibid.): relative, and absolute in (px / px)².
BOUNDARY_RELATIVE, BOUNDARY_ABSOLUTE = 0.01, 0.002


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise ImportError("optical flow needs OpenCV: pip install 'painterly[video]'") from exc
    return cv2


def _gray(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] → (H, W) uint8 luminance (BT.601), what DIS reads."""
    rgb = image.detach().to("cpu", torch.float32)[0]
    y = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return np.ascontiguousarray((y.clamp(0, 1) * 255).round().to(torch.uint8).numpy())


def optical_flow(first: torch.Tensor, second: torch.Tensor) -> np.ndarray:
    """The dense optical flow from ``first`` to ``second``: for each pixel x of ``first``,
    where it went, x + w(x), in ``second`` (OpenCV's DIS, preset MEDIUM, on luminance).

    Args:
        first, second: (1, 3, H, W) in [0, 1], the same size.

    Returns:
        w, float32 (H, W, 2): (dx, dy) in pixels.

    Raises:
        ValueError: the frames differ in size. ImportError: OpenCV is missing.
    """
    if first.shape != second.shape:
        raise ValueError(f"frames of {tuple(first.shape)} and {tuple(second.shape)} px")
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(_gray(first), _gray(second), None)
    return np.asarray(flow, dtype=np.float32)


def _grid(flow: np.ndarray) -> torch.Tensor:
    """Sampling positions x + w(x) for :func:`torch.nn.functional.grid_sample`, in [-1, 1]
    (pixel centres, ``align_corners=True``), shape (1, H, W, 2)."""
    h, w = flow.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    f = torch.from_numpy(flow)
    gx = (xs + f[..., 0]) * (2 / max(w - 1, 1)) - 1
    gy = (ys + f[..., 1]) * (2 / max(h - 1, 1)) - 1
    return torch.stack([gx, gy], dim=-1)[None].float()


def warp(image: torch.Tensor, flow: np.ndarray) -> torch.Tensor:
    """Backward warping: ω(x) = image(x + flow(x)), bilinear; positions outside the image take
    its nearest border pixel (they get weight 0 in :func:`consistency_weight`).

    Args:
        image: (1, C, H, W), any values (an image in [0, 1] stays in [0, 1]).
        flow: (H, W, 2) in pixels, from the frame being made to ``image``'s frame (the
            backward flow ŵ, to warp the previous frame to the current one).

    Returns:
        (1, C, H, W) float32 on ``image``'s device.
    """
    grid = _grid(flow).to(image.device)
    return F.grid_sample(
        image.float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )


def _flow_tensor(flow: np.ndarray) -> torch.Tensor:
    """(H, W, 2) → (1, 2, H, W) float32."""
    return torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1)[None].float()


def consistency_weight(forward: np.ndarray, backward: np.ndarray) -> torch.Tensor:
    """c, the temporal loss's per-pixel weight in frame i (Ruder et al. 2016, §3.2): 0 at
    disocclusions (|w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5, w̃(x) = w(x + ŵ(x))), at motion
    boundaries (|∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002) and where x + ŵ(x) leaves the frame; 1
    elsewhere.

    Args:
        forward: w, (H, W, 2) px, frame i−1 → i. backward: ŵ, (H, W, 2) px, frame i → i−1.

    Returns:
        (1, 1, H, W) float32 of 0s and 1s, on the CPU.
    """
    w_hat = _flow_tensor(backward)
    w_tilde = warp(_flow_tensor(forward), backward)
    back_sq = w_hat.square().sum(1, keepdim=True)
    disoccluded = (w_tilde + w_hat).square().sum(1, keepdim=True) > (
        DISOCCLUSION_RELATIVE * (w_tilde.square().sum(1, keepdim=True) + back_sq)
        + DISOCCLUSION_ABSOLUTE
    )
    boundary = _gradient_sq(w_hat) > BOUNDARY_RELATIVE * back_sq + BOUNDARY_ABSOLUTE
    h, w = backward.shape[:2]
    grid = _grid(backward)
    # Pixel centres within ±0.5 px of the frame: a sample there still reads a real pixel.
    limit = torch.tensor([1 + 1 / max(w - 1, 1), 1 + 1 / max(h - 1, 1)])
    outside = (grid.abs() > limit).any(-1)[:, None]
    return (~(disoccluded | boundary | outside)).float()


def _gradient_sq(flow: torch.Tensor) -> torch.Tensor:
    """|∇u|² + |∇v|² of a flow (1, 2, H, W), central differences (one-sided at the borders),
    shape (1, 1, H, W)."""
    gy, gx = torch.gradient(flow[0], dim=(1, 2))
    return (gx.square() + gy.square()).sum(0)[None, None]


@dataclass(frozen=True)
class FramePair:
    """The flow between two consecutive input frames, i−1 and i, at the output's size.

    Attributes:
        forward: w, (H, W, 2) px, i−1 → i. backward: ŵ, (H, W, 2) px, i → i−1.
        weight: c, (1, 1, H, W) in {0, 1}: where warping frame i−1 to i can be trusted.
    """

    forward: np.ndarray
    backward: np.ndarray
    weight: torch.Tensor

    def warp(self, previous: torch.Tensor) -> torch.Tensor:
        """Frame i−1's ``previous`` (1, C, H, W) warped to frame i (by ŵ): ω."""
        return warp(previous, self.backward)

    @property
    def reliable(self) -> float:
        """The share of frame i's pixels with weight 1."""
        return float(self.weight.mean())


def frame_pair(previous: torch.Tensor, current: torch.Tensor) -> FramePair:
    """Forward and backward flow between two input frames (1, 3, H, W) in [0, 1] of the same
    size, and c (:func:`consistency_weight`).

    Raises:
        ValueError: the frames differ in size. ImportError: OpenCV is missing.
    """
    forward = optical_flow(previous, current)
    backward = optical_flow(current, previous)
    return FramePair(forward, backward, consistency_weight(forward, backward))


def temporal_difference(current: torch.Tensor, previous: torch.Tensor, pair: FramePair) -> float:
    """How much a stylised frame differs from the previous stylised frame where the *input's*
    flow says they show the same thing: Σ c |x_i − ω_i| / (3 Σ c), the mean absolute
    difference per value over the reliable pixels, in [0, 1] (0 = perfectly stable). This is
    the flicker that Ruder et al.'s temporal loss removes.

    Args:
        current: x_i, (1, 3, H, W) in [0, 1]. previous: x_{i−1}, the same size.
        pair: the input frames' :func:`frame_pair` (i−1 → i).
    """
    warped = pair.warp(previous.float())
    c = pair.weight.to(current.device)
    total = float(c.sum()) * current.shape[1]
    if total == 0:
        return 0.0
    return float(((current.float() - warped).abs() * c).sum()) / total


@dataclass
class Flicker:
    """The flicker of a stylised clip, measured against the input's flow (the benchmark's and
    the test's number): per pair of frames, :func:`painterly.flow.temporal_difference`."""

    differences: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """The mean over the pairs (0 with fewer than two frames)."""
        return sum(self.differences) / len(self.differences) if self.differences else 0.0


def flicker(inputs: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> Flicker:
    """How much consecutive stylised ``outputs`` differ where the consecutive ``inputs``' flow
    says they show the same thing (all (1, 3, H, W) in [0, 1], the same size)."""
    result = Flicker()
    for k in range(1, len(inputs)):
        pair = frame_pair(inputs[k - 1], inputs[k])
        result.differences.append(temporal_difference(outputs[k], outputs[k - 1], pair))
    return result
