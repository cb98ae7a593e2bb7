"""Render the gallery and the high-resolution example in docs/ (CPU minutes: see --help).

    python docs/make_gallery.py grid     # gallery.png: every bundled photo x every painting
    python docs/make_gallery.py hires    # tubingen_starry_night_1536.jpg + hires_compare.png
    python docs/make_gallery.py tiles PICTURE.png --tile 832   # tiles_4096.png (no painting)

grid:  default options (the `default` preset, seed 0) at --size px (default 256), one row per
       photo: the photo, then its picture in each painting's style.
hires: Tübingen + The Starry Night at 1536 px with the default options (coarse to fine above
       1024 px: 192, 384, 768, 1536 px), style scale 0.83 (the painting at its own 1280 px, not
       upscaled); then a plain single-scale run at 1536 px given the same wall time, and a sheet
       of the same crop of both.
tiles: a picture painted with --tile (README: the 4096 px one) shrunk to 1024 px with its
       tiles' owned blocks drawn in, and two crops at 1:1 centred on corners of four tiles
       (the ticks on their edges mark the tile boundaries), to look for seams.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image, ImageDraw

from painterly import Config, StyleTransfer, load_image, save_image
from painterly.images import to_pil
from painterly.layers import resolve_layer
from painterly.sheet import contact_sheet
from painterly.tiles import tile_grid

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


def _boundaries(height: int, width: int, tile: int) -> tuple[list[int], list[int]]:
    """The owned blocks' first rows and columns in the picture's pixels (not the padded's)."""
    cfg = Config()
    layers = [*cfg.content_layers, *cfg.layer_weights]
    grid = tile_grid(height, width, tile, [resolve_layer(n) for n in layers], cfg.edge_margin)
    used = grid[0].margin
    rows = sorted({t.rows[0] - used for t in grid if t.rows[0]})
    cols = sorted({t.cols[0] - used for t in grid if t.cols[0]})
    return rows, cols


def tiles(picture: Path, tile: int) -> None:
    image = Image.open(picture).convert("RGB")
    width, height = image.size
    rows, cols = _boundaries(height, width, tile)
    scale = 1024 / width
    whole = image.resize((1024, round(height * scale)), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(whole)
    for r in rows:
        draw.line([(0, r * scale), (whole.width, r * scale)], fill=(255, 255, 0), width=1)
    for c in cols:
        draw.line([(c * scale, 0), (c * scale, whole.height)], fill=(255, 255, 0), width=1)
    half, crops, labels = 192, [], [f"{width} × {height} px, tiles of {tile} px (yellow)"]
    for r, c in ((rows[0], cols[0]), (rows[len(rows) // 2], cols[len(cols) // 2])):
        crop = image.crop((c - half, r - half, c + half, r + half))
        mark = ImageDraw.Draw(crop)
        for a, b in (((half, 0), (half, 12)), ((0, half), (12, half))):
            mark.line([a, b], fill=(255, 255, 0), width=3)
        mark.line([(half, 2 * half - 12), (half, 2 * half)], fill=(255, 255, 0), width=3)
        mark.line([(2 * half - 12, half), (2 * half, half)], fill=(255, 255, 0), width=3)
        crops.append(crop)
        labels.append(f"1:1 at a corner of four tiles (x {c}, y {r})")
    top = contact_sheet([whole], labels[:1], height=whole.height)
    bottom = contact_sheet(crops, labels[1:], height=2 * half)  # 1:1, not rescaled
    sheet = Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height), "white")
    sheet.paste(top, (0, 0))
    sheet.paste(bottom, (0, top.height))
    save_image(sheet, DOCS / f"tiles_{max(width, height)}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("grid", "hires", "tiles"))
    parser.add_argument("picture", nargs="?", type=Path, help="tiles: the picture")
    parser.add_argument("--size", type=int, default=256, help="grid tiles' longest side")
    parser.add_argument("--tile", type=int, default=832, help="tiles: the --tile it was made with")
    args = parser.parse_args()
    if args.what == "tiles":
        tiles(args.picture, args.tile)
    else:
        grid(args.size) if args.what == "grid" else hires()


if __name__ == "__main__":
    main()
