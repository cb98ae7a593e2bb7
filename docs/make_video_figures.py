"""Re-make docs/video_frames.png and docs/video.webp (issue 14), resumably.

    python docs/make_video_figures.py [--frames 16] [--max-frames N]

The clip: ``benchmarks/bench_video.py``'s 2.5 s pan and zoom over Tübingen (12 fps, made with
PyAV), stylised at 192 px in The Starry Night's style twice through ``painterly.video``:
every frame on its own (``independent``, 80 steps each) and with Ruder et al.'s warped start
and temporal loss (the defaults; 80 steps for the first frame, 30 for each later one). The
frames go to ``out/video_figures/`` and a run continues where the last one stopped, so that
``--max-frames`` can paint the clip in short turns; the figures are drawn once every frame is
there.

video_frames.png: three consecutive frames, independent (top) against temporal (bottom).
video.webp:       the clip, independent | temporal side by side, 12 fps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from painterly.config import Config
from painterly.flow import flicker
from painterly.images import load_image, to_pil
from painterly.sheet import contact_sheet
from painterly.transfer import StyleTransfer
from painterly.video import VideoOptions, VideoRun

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WORK = ROOT / "out" / "video_figures"
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_video import PHOTO, STYLE, real_clip  # noqa: E402

SIZE, FIRST, LATER, FPS = 192, 80, 30, 12
SHOWN = (10, 11, 12)  # the frames of the still figure (1-based)


def paint(frames: int, runner: StyleTransfer) -> dict[str, VideoRun]:
    """Both runs, up to ``frames`` frames each (the frames done are skipped)."""
    clip = WORK / "clip.mp4"
    if not clip.is_file():
        WORK.mkdir(parents=True, exist_ok=True)
        real_clip(PHOTO, clip)
    config = Config(size=SIZE, seed=0, iterations=FIRST)
    runs = {}
    for name in ("independent", "temporal"):
        options = VideoOptions(
            max_frames=frames, frame_iterations=LATER, independent=name == "independent"
        )
        video = VideoRun(config, clip, [STYLE], WORK / name, options)
        video.check()
        done = video.run(runner)
        print(f"{name}: {len(done)} frames, {sum(r.seconds for r in done):.0f} s painted now")
        runs[name] = video
    return runs


def figures(runs: dict[str, VideoRun], frames: int) -> None:
    """The still figure and the animation, from the frames on disk."""
    ind, tem = runs["independent"], runs["temporal"]
    tiles, labels = [], []
    for name, video in (("on its own", ind), ("temporal", tem)):
        for k in SHOWN:
            tiles.append(to_pil(load_image(video.frame_path(k))))
            labels.append(f"{name}, frame {k}")
    sheet = contact_sheet(tiles[:3], labels[:3], height=tiles[0].height)
    below = contact_sheet(tiles[3:], labels[3:], height=tiles[0].height)
    both = Image.new("RGB", (max(sheet.width, below.width), sheet.height + below.height), "white")
    both.paste(sheet, (0, 0))
    both.paste(below, (0, sheet.height))
    both.save(DOCS / "video_frames.png", optimize=True)
    pictures = []
    for k in range(1, frames + 1):
        a, b = (Image.open(v.frame_path(k)).convert("RGB") for v in (ind, tem))
        pair = Image.new("RGB", (a.width + b.width + 4, a.height), "white")
        pair.paste(a, (0, 0))
        pair.paste(b, (a.width + 4, 0))
        pictures.append(pair)
    pictures[0].save(
        DOCS / "video.webp", save_all=True, append_images=pictures[1:], duration=1000 // FPS,
        loop=0, quality=80, method=6,
    )  # fmt: skip
    inputs = [load_image(tem.work / f"input_{k:05d}.png") for k in range(1, frames + 1)]
    for name, video in runs.items():
        outputs = [load_image(video.frame_path(k)) for k in range(1, frames + 1)]
        print(f"{name}: flicker {flicker(inputs, outputs).mean * 255:.2f}/255")
    size = (DOCS / "video.webp").stat().st_size / 1e6
    print(f"wrote docs/video_frames.png and docs/video.webp ({size:.2f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="frames of the clip to paint")
    parser.add_argument("--max-frames", type=int, help="paint at most this many now")
    args = parser.parse_args()
    runner = StyleTransfer(Config(size=SIZE, seed=0))
    runs = paint(min(args.max_frames or args.frames, args.frames), runner)
    if all(v.frame_path(args.frames).is_file() for v in runs.values()):
        figures(runs, args.frames)


if __name__ == "__main__":
    main()
