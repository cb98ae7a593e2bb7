"""Loss curves of a run (matplotlib) and animations of its saved steps (Pillow).

matplotlib is an optional extra (``pip install 'painterly[plot]'``); it is imported only when a
plot is drawn, through its object-oriented API (a ``Figure`` rendered by Agg: no display, no
pyplot state, safe in the web app's threads).
"""

from __future__ import annotations

import io
import itertools
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from .files import atomic_write
from .images import ImageError, output_format

__all__ = ["LossRecord", "animate", "loss_figure_bytes", "plot_losses", "step_frames"]

#: One step's losses, as :meth:`painterly.transfer.StepEvent.losses` gives them: ``{"step": int,
#: "scale": int, "total": float, "content": float, "style": float, "tv": float,
#: "style/relu1_1": float, …}`` (the weighted terms; a video frame's also "temporal").
LossRecord = dict[str, Any]


def plot_losses(
    records: Sequence[LossRecord], path: str | os.PathLike[str], title: str = ""
) -> Path:
    """Draw the loss terms over steps on a log scale and write the figure (PNG, SVG, PDF…).

    The content, style and (when used) TV terms are thick lines, the total a dashed one, each
    style layer's share a thin line; a dotted vertical line marks the start of every scale
    after the first. Zero values (the content term at a photo start) leave a gap.

    Raises:
        ImportError: matplotlib is not installed (the message says how to get it).
        ValueError: no records.
    """
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    data = loss_figure_bytes(records, title, fmt)
    return atomic_write(path, lambda f: f.write(data))


def _figure(records: Sequence[LossRecord], title: str) -> Any:
    """The matplotlib Figure of the loss curves (no pyplot: safe off the main thread)."""
    if not records:
        raise ValueError("no steps to plot")
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'painterly[plot]'") from exc
    steps = [r["step"] for r in records]

    def series(key: str) -> list[float]:  # a log axis cannot show 0: leave a gap instead
        values = [float(r.get(key, math.nan)) for r in records]
        return [v if v > 0 else math.nan for v in values]

    fig = Figure(figsize=(9, 4.5), dpi=120)
    ax = fig.subplots()
    ax.plot(steps, series("style"), color="tab:red", lw=2.4, label="style  β·L_style")
    ax.plot(steps, series("content"), color="tab:blue", lw=2.4, label="content  α·L_content")
    if any(r.get("tv", 0) > 0 for r in records):
        ax.plot(steps, series("tv"), color="tab:green", lw=2, label="total variation")
    if any(r.get("temporal", 0) > 0 for r in records):  # a video frame (Ruder et al. 2016)
        ax.plot(steps, series("temporal"), color="tab:purple", lw=2, label="temporal  λ·L_temporal")
    ax.plot(steps, series("total"), color="black", lw=1.2, ls=(0, (4, 2)), label="total")
    layers = sorted({k for r in records for k in r if k.startswith("style/")})
    shades = matplotlib.colormaps["viridis"]
    for i, key in enumerate(layers):
        ax.plot(steps, series(key), lw=0.9, color=shades(i / max(len(layers) - 1, 1)),
                alpha=0.8, label=f"  {key.split('/', 1)[1]}")  # fmt: skip
    part = "frame" if any("frame" in r for r in records) else "scale"  # a video's frames
    for previous, record in itertools.pairwise(records):
        if record.get(part, 0) != previous.get(part, 0):
            ax.axvline(record["step"] - 0.5, color="grey", ls=":", lw=1)
            ax.annotate(f" {part} {record[part] + 1}", (record["step"] - 0.5, 1.0),
                        xycoords=("data", "axes fraction"), va="top", fontsize=8,
                        color="grey")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted loss (log scale)")
    ax.set_title(title or "losses per step")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def loss_figure_bytes(records: Sequence[LossRecord], title: str = "", fmt: str = "png") -> bytes:
    """:func:`plot_losses`'s figure as the bytes of a ``fmt`` file (png, svg, pdf).

    Raises:
        ImportError: matplotlib is not installed. ValueError: no records.
    """
    buffer = io.BytesIO()
    _figure(records, title).savefig(buffer, format=fmt)
    return buffer.getvalue()


_STEP_FILE = re.compile(r"step_(\d+)\.png$")


def step_frames(folder: str | os.PathLike[str]) -> list[Path]:
    """The ``step_NNNNN.png`` files of a ``--save-every`` folder, in step order.

    Raises:
        ImageError: not a folder, or no step images in it.
    """
    d = Path(folder)
    if not d.is_dir():
        raise ImageError(f"{d}: not a folder of saved steps")
    frames = sorted(
        (p for p in d.iterdir() if _STEP_FILE.search(p.name)),
        key=lambda p: int(_STEP_FILE.search(p.name).group(1)),  # type: ignore[union-attr]
    )
    if not frames:
        raise ImageError(f"{d}: no step_NNNNN.png images (made by stylize --save-every)")
    return frames


def animate(
    frames: Sequence[str | os.PathLike[str]],
    path: str | os.PathLike[str],
    fps: float = 10.0,
    hold_last: float = 1.5,
) -> Path:
    """Write the frames as an animation (GIF, animated WebP or APNG by the extension), each
    resized to the last frame's size (coarse-to-fine runs save smaller early frames).

    Args:
        frames: image files in order. path: the animation to write.
        fps: frames per second. hold_last: seconds the last frame stays before the loop.

    Raises:
        ImageError: unreadable frame, or an extension that cannot hold an animation.
        ValueError: no frames, or fps not positive.
    """
    if not frames:
        raise ValueError("no frames to animate")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    fmt = output_format(path)
    if fmt not in ("GIF", "WEBP", "PNG"):
        raise ImageError(f"{path}: animations are written as .gif, .webp or .png (APNG)")
    images = []
    for frame in frames:
        try:
            with Image.open(frame) as im:
                images.append(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise ImageError(f"{frame}: not a readable image ({exc})") from None
    size = images[-1].size
    images = [im if im.size == size else im.resize(size, Image.Resampling.BICUBIC) for im in images]
    durations = [round(1000 / fps)] * len(images)
    durations[-1] = max(durations[-1], round(1000 * hold_last))
    options: dict[str, Any] = {"save_all": True, "append_images": images[1:], "loop": 0}
    options["duration"] = durations
    if fmt == "WEBP":
        options["quality"] = 90
    return atomic_write(path, lambda f: images[0].save(f, format=fmt, **options))
