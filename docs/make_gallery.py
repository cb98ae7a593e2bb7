"""Render the gallery and the high-resolution example in docs/ (CPU minutes: see --help).

    python docs/make_gallery.py grid     # gallery.png: every bundled photo x every painting
    python docs/make_gallery.py hires    # tubingen_starry_night_1536.jpg + hires_compare.png

grid:  default options (the `default` preset, seed 0) at --size px (default 256), one row per
       photo: the photo, then its picture in each painting's style.
hires: Tübingen + The Starry Night at 1536 px with the default options (coarse to fine above
       1024 px: 192, 384, 768, 1536 px), style scale 0.83 (the painting at its own 1280 px, not
       upscaled); then a plain single-scale run at 1536 px given the same wall time, and a sheet
       of the same crop of both.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image

from painterly import Config, StyleTransfer, load_image, save_image
from painterly.images import to_pil
from painterly.sheet import contact_sheet

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PHOTOS = sorted((ROOT / "examples" / "content").glob("*.jpg"))
PAINTINGS = sorted((ROOT / "examples" / "style").glob("*.jpg"))


def grid(size: int) -> None:
    rows = []
    runner = StyleTransfer(Config(size=size, seed=0))
    started = time.perf_counter()
    for photo in PHOTOS:
        tiles = [to_pil(runner.prepare(photo, PAINTINGS[0])[0])]
        labels = [photo.stem.replace("_", " ")]
        for painting in PAINTINGS:
            result = runner.run(photo, painting)
            tiles.append(to_pil(result.image))
            labels.append(f"x {painting.stem.replace('_', ' ')}")
            print(f"{photo.stem} x {painting.stem}: {result.elapsed:.0f} s", flush=True)
        rows.append(contact_sheet(tiles, labels, height=size * 3 // 4))
    width = max(r.width for r in rows)
    sheet = Image.new("RGB", (width, sum(r.height for r in rows)), (255, 255, 255))
    y = 0
    for row in rows:
        sheet.paste(row, ((width - row.width) // 2, y))
        y += row.height
    save_image(sheet, DOCS / "gallery.png")
    print(f"gallery.png in {time.perf_counter() - started:.0f} s")


def hires() -> None:
    content = ROOT / "examples" / "content" / "tubingen.jpg"
    style = ROOT / "examples" / "style" / "starry_night.jpg"
    # The default options, whose ladder at 1536 px is 192, 384, 768, 1536 px with 150, 75, 38
    # and 20 steps; the painting at its own size (1280 px), not upscaled.
    ladder = Config(size=1536, style_scale=0.83, seed=0)
    fine = StyleTransfer(ladder).run(content, style)
    save_image(to_pil(fine.image), DOCS / "tubingen_starry_night_1536.jpg")
    print(f"coarse to fine: {fine.steps} steps in {fine.elapsed:.0f} s", flush=True)

    budget = fine.elapsed
    plain_cfg = ladder.replace(scales=1, iterations=10_000, patience=None)
    plain = StyleTransfer(plain_cfg).run(content, style, lambda e: e.elapsed >= budget)
    print(f"single scale: {plain.steps} steps in {plain.elapsed:.0f} s", flush=True)

    box = (560, 300, 560 + 512, 300 + 384)  # the church and the houses by the river
    crops = [to_pil(r.image).crop(box) for r in (fine, plain)]
    photo = to_pil(load_image(content)).resize(to_pil(fine.image).size, Image.Resampling.BICUBIC)
    labels = [
        "photo (1024 px, upscaled)",
        f"coarse to fine, {fine.steps} steps, {fine.elapsed:.0f} s",
        f"single scale, {plain.steps} steps, {plain.elapsed:.0f} s",
    ]
    sheet = contact_sheet([photo.crop(box), *crops], labels, height=384)
    save_image(sheet, DOCS / "hires_compare.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("grid", "hires"))
    parser.add_argument("--size", type=int, default=256, help="grid tiles' longest side")
    args = parser.parse_args()
    grid(args.size) if args.what == "grid" else hires()


if __name__ == "__main__":
    main()
