"""Video benchmark (not a test): flicker with and without Ruder et al.'s temporal loss, style
loss per frame, and seconds per frame.

Issue 14. Prints the CPU model and flags (avx2, avx512f, avx512_bf16, amx), then for each
clip the *independent* baseline (every frame stylised on its own from the photo, the first
frame's steps each) against ``painterly video``'s default (each later frame started from the
previous stylised frame warped by the flow, with the temporal loss, fewer steps):

- flicker: the mean over consecutive pairs of Σ c |x_i − ω_i| / (3 Σ c), ω_i the previous
  stylised frame warped by the *input's* flow, c its reliability weight
  (:func:`painterly.flow.flicker`), in 1/255 units, and the ratio temporal / independent;
- each frame's style loss β·L_style (evaluated afresh on the written frame), as the largest
  ratio temporal / independent over the frames;
- seconds per later frame, and their ratio to the independent frames' (same run).

``chunks`` (issue 14, item 5) paints the real clip unchunked and in ``--chunks`` chunks with
each ``--overlaps`` warm-up count, on each ``--workers`` count (:func:`painterly.video.run_videos`),
and prints the flicker of each chunk boundary's pair of frames against the same pair of the
unchunked run, how far the chunked frames lie from the unchunked ones, and the wall seconds
per frame.

Clips: ``pan`` (a photo panned 2 px per frame at the output's size, a folder of PNGs) and
``real`` (a 2.5 s, 12 fps MP4 made with PyAV from a bundled photo: a slow pan with a zoom).

    python benchmarks/bench_video.py quality --clip pan --size 64 --frames 5
    python benchmarks/bench_video.py quality --clip real --size 128
    python benchmarks/bench_video.py speed --size 256 --frames 3
    python benchmarks/bench_video.py tune --size 64 --weights 1e13,1e14,1e15
    python benchmarks/bench_video.py chunks --size 128 --frames 12 --overlaps 0,3 --workers 1
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from painterly.config import Config
from painterly.flow import flicker
from painterly.images import load_image, resize_longest, save_image
from painterly.kernels import cpu_flags, cpu_model
from painterly.ladder import scaled
from painterly.objective import Objective
from painterly.transfer import StyleTransfer
from painterly.video import VideoOptions, VideoRun, plan_parts, run_videos

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "examples" / "content" / "tubingen.jpg"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def pan_frames(photo: Path, frames: int, size: int, shift: int = 2) -> list[torch.Tensor]:
    """A photo panned ``shift`` px per frame: windows of ``size`` × ``3 size / 4`` px, (1, 3,
    H, W) in [0, 1], sliding right over the photo resized to ``size + shift·frames`` wide."""
    wide = resize_longest(load_image(photo), size + shift * frames)
    h = round(size * 3 / 4)
    return [wide[..., :h, k * shift : k * shift + size].contiguous() for k in range(frames)]


def real_clip(photo: Path, path: Path, seconds: float = 2.5, fps: int = 12) -> Path:
    """A short MP4 (H.264, 320 × 240) of a slow pan with a zoom over ``photo`` (PyAV)."""
    import av

    src = load_image(photo)
    _, _, h, w = src.shape
    count = round(seconds * fps)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "16"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for k in range(count):
            t = k / max(count - 1, 1)
            crop_w = round(w * (0.7 - 0.1 * t))  # zooms in by a seventh
            crop_h = round(crop_w * 3 / 4)
            x0 = round((w - crop_w) * (0.15 + 0.5 * t))  # pans right
            y0 = round((h - crop_h) * 0.5)
            window = src[..., y0 : y0 + crop_h, x0 : x0 + crop_w]
            frame = torch.nn.functional.interpolate(
                window, size=(240, 320), mode="bicubic", antialias=True
            ).clamp(0, 1)
            rgb = (frame[0].permute(1, 2, 0) * 255).round().byte().numpy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb))):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def style_losses(
    runner: StyleTransfer, config: Config, inputs: list[torch.Tensor], outputs: list[torch.Tensor]
) -> list[float]:
    """β·L_style of each stylised frame against the style, evaluated afresh (float32)."""
    style = load_image(STYLE)
    found = []
    for content, out in zip(inputs, outputs, strict=True):
        c, styles = scaled(config, content, [style], config.size, runner.device)
        objective = Objective.at_scale(runner.network, config, c, styles)
        with torch.no_grad():
            found.append(float(objective(out.to(runner.device))[1]["style"]))
    return found


def paint(
    clip: Path, out: Path, config: Config, options: VideoOptions, runner: StyleTransfer
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[float]]:
    """(input frames at the output's size, stylised frames, seconds per frame) of one run."""
    video = VideoRun(config, clip, [STYLE], out, options)
    video.check()
    results = video.run(runner)
    inputs = [load_image(video.work / f"input_{r.frame:05d}.png") for r in results]
    return inputs, [load_image(r.path) for r in results], [r.seconds for r in results]


def compare(clip: Path, size: int, frames: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """Independent frames, the warped start alone (temporal weight 0: what a temporal term
    without a gradient leaves) and the temporal default on one clip; the numbers to print."""
    config = Config(size=size, seed=0, precision="fp32", iterations=args.first, patience=None)
    if args.weight is not None:
        config = config.replace(temporal_weight=args.weight)
    runner = StyleTransfer(config)
    base = dict(max_frames=frames, frame_iterations=args.later, checkpoint_every=0)
    variants = [("independent", True, config), ("temporal", False, config)]
    if args.ablation:
        variants.insert(1, ("warped start only", False, config.replace(temporal_weight=0.0)))
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, independent, cfg in variants:
            options = VideoOptions(independent=independent, **base)  # type: ignore[arg-type]
            out = Path(tmp) / name.replace(" ", "_")
            inputs, outputs, seconds = paint(clip, out, cfg, options, runner)
            found[name] = {
                "flicker": flicker(inputs, outputs).mean * 255,
                "style": style_losses(runner, config, inputs, outputs),
                "seconds": seconds,
            }
    return found


def _later(seconds: list[float]) -> float:
    return sum(seconds[1:]) / max(len(seconds) - 1, 1)


def report(found: dict[str, Any], label: str) -> None:
    """Print each variant's flicker, style-loss ratios and seconds against the independent."""
    ind = found["independent"]
    print(f"\n{label}: {len(ind['style'])} frames")
    print(f"  independent: flicker {ind['flicker']:.2f}/255, {_later(ind['seconds']):.2f} s/frame")
    for name, run in found.items():
        if name == "independent":
            continue
        ratio = run["flicker"] / ind["flicker"]
        styles = [t / i for t, i in zip(run["style"], ind["style"], strict=True)]
        per = ", ".join(f"{s:.3f}" for s in styles)
        print(f"  {name}: flicker {run['flicker']:.2f}/255 -> ratio {ratio:.3f} (target <= 0.5)")
        print(f"    style loss / independent, per frame: {per}; worst {max(styles):.3f} (<= 1.10)")
        speedup = _later(ind["seconds"]) / _later(run["seconds"])
        print(
            f"    s per later frame {_later(run['seconds']):.2f} ({speedup:.1f}x fewer); "
            f"first frame {run['seconds'][0]:.2f} s"
        )


def speed(args: argparse.Namespace) -> None:
    """Seconds per later frame of the default at ``--size`` on the real clip (few frames)."""
    config = Config(size=args.size, seed=0, iterations=args.first)
    runner = StyleTransfer(config)
    with tempfile.TemporaryDirectory() as tmp:
        clip = real_clip(PHOTO, Path(tmp) / "clip.mp4")
        options = VideoOptions(max_frames=args.frames, frame_iterations=args.later)
        _, _, seconds = paint(clip, Path(tmp) / "out", config, options, runner)
    print(f"\nspeed at {args.size} px ({runner.kernels.describe()}, {runner.threads} threads): "
          f"first frame ({args.first} steps) {seconds[0]:.1f} s; later frames ({args.later} "
          f"steps): {', '.join(f'{s:.1f}' for s in seconds[1:])} s")  # fmt: skip


def _chunked_run(
    clip: Path, out: Path, config: Config, options: VideoOptions, workers: int
) -> tuple[VideoRun, list[torch.Tensor], float]:
    """One run through run_videos: the video, its frames and its wall seconds."""
    video = VideoRun(config, clip, [STYLE], out, options)
    began = time.perf_counter()
    [result] = run_videos([video], workers=workers)
    wall = time.perf_counter() - began
    assert result.state == "done", result.error
    return video, [load_image(video.frame_path(k)) for k in range(1, result.frames + 1)], wall


def _numbers(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _largest_difference(frames: list[torch.Tensor], others: list[torch.Tensor]) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(frames, others, strict=True)) * 255


def chunks(args: argparse.Namespace) -> None:
    """The chunk boundaries' flicker against the unchunked run, and seconds per frame."""
    config = Config(size=args.size, seed=0, precision="fp32", iterations=args.first, patience=None)
    base: dict[str, Any] = dict(
        max_frames=args.frames, frame_iterations=args.later, checkpoint_every=0
    )
    with tempfile.TemporaryDirectory() as tmp:
        clip = real_clip(PHOTO, Path(tmp) / "clip.mp4")
        video, whole, wall = _chunked_run(clip, Path(tmp) / "w", config, VideoOptions(**base), 1)
        n = len(whole)
        inputs = [load_image(video.work / f"input_{k:05d}.png") for k in range(1, n + 1)]
        ref = flicker(inputs, whole)
        print(f"\nreal clip, {n} frames at {args.size} px, {args.first} / {args.later} steps")
        print(f"  unchunked, 1 process: {wall:.1f} s ({wall / n:.2f} s per frame), "
              f"flicker {ref.mean * 255:.2f}/255")  # fmt: skip
        for overlap in (int(m) for m in args.overlaps.split(",")):
            firsts = [p.first for p in plan_parts(n, args.chunks, overlap)[1:]]
            seen: list[torch.Tensor] | None = None
            for workers in (int(w) for w in args.workers.split(",")):
                options = VideoOptions(chunks=args.chunks, overlap=overlap, **base)
                out = Path(tmp) / f"o{overlap}_w{workers}"
                _, frames, wall = _chunked_run(clip, out, config, options, workers)
                got = flicker(inputs, frames)
                at = [got.differences[f - 2] * 255 for f in firsts]
                was = [ref.differences[f - 2] * 255 for f in firsts]
                off = [float((frames[f - 1] - whole[f - 1]).abs().mean()) * 255 for f in firsts]
                print(f"  {args.chunks} chunks, overlap {overlap}, {workers} worker(s): "
                      f"{wall:.1f} s ({wall / n:.2f} s per frame), flicker "
                      f"{got.mean * 255:.2f}/255")  # fmt: skip
                print(f"    boundary pair (frame {firsts}): {_numbers(at)}/255, unchunked "
                      f"{_numbers(was)}; boundary frame vs unchunked: mean |diff| "
                      f"{_numbers(off)}/255")  # fmt: skip
                if seen is not None:
                    print(f"    largest difference from the first worker count's frames: "
                          f"{_largest_difference(frames, seen):.1f}/255")  # fmt: skip
                seen = seen or frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("quality", "speed", "tune", "chunks"))
    parser.add_argument("--clip", choices=("pan", "real"), default="pan")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--first", type=int, default=40, help="first-frame steps")
    parser.add_argument("--later", type=int, default=20, help="later-frame steps")
    parser.add_argument("--weight", type=float, default=None, help="temporal weight")
    parser.add_argument("--weights", default="1e13,1e14,1e15", help="tune: weights to try")
    parser.add_argument("--ablation", action="store_true", help="also the warped start alone")
    parser.add_argument("--chunks", type=int, default=2, help="chunks: how many")
    parser.add_argument("--overlaps", default="0,3", help="chunks: warm-up frames to try")
    parser.add_argument("--workers", default="1", help="chunks: worker counts to try")
    args = parser.parse_args()
    flags = " ".join(f"{k}={'yes' if v else 'no'}" for k, v in cpu_flags().items())
    print(f"{datetime.date.today()}: {cpu_model()}, {flags}, torch {torch.__version__}")
    print(f"command: {' '.join(sys.argv[1:])}")
    if args.what == "speed":
        speed(args)
        return
    if args.what == "chunks":
        chunks(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.clip == "pan":
            clip = Path(tmp) / "pan"
            for k, frame in enumerate(pan_frames(PHOTO, args.frames or 5, args.size)):
                save_image(frame, clip / f"f{k:03d}.png")
        else:
            clip = real_clip(PHOTO, Path(tmp) / "clip.mp4")
        weights = [float(w) for w in args.weights.split(",")] if args.what == "tune" else [None]
        for weight in weights:
            args.weight = weight if weight is not None else args.weight
            began = time.perf_counter()
            found = compare(clip, args.size, args.frames, args)
            label = (
                f"{args.clip} clip at {args.size} px, temporal weight {args.weight or 'default'}"
            )
            report(found, f"{label} ({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
