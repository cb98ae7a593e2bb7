"""Issue 12's side-by-side sheet: the old default against the new one, at 256 and 512 px, each
picture whole (shown 192 px tall) beside a 192 × 192 crop at 1:1 (one picture pixel = one
sheet pixel), so that speckle and stroke size can be judged.

Reads the pictures ``benchmarks/judge_recipe.py --save DIR`` wrote (``{pair}_{recipe}_{size}.png``)
and writes one PNG::

    python docs/make_recipe_sheet.py DIR tubingen+starry -o docs/recipe_old_new.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from painterly.sheet import contact_sheet

TILE = 192


def crop(image: Image.Image, centre: tuple[float, float]) -> Image.Image:
    """A TILE × TILE crop at 1:1 around ``centre`` (fractions of the width and height)."""
    cx, cy = round(centre[0] * image.width), round(centre[1] * image.height)
    left = min(max(0, cx - TILE // 2), max(0, image.width - TILE))
    top = min(max(0, cy - TILE // 2), max(0, image.height - TILE))
    return image.crop((left, top, left + TILE, top + TILE))


def row(
    folder: Path, pair: str, size: int, recipes: list[str], centre: tuple[float, float]
) -> Image.Image:
    """One row: for each recipe its picture at ``size`` whole and its 1:1 crop."""
    images, labels = [], []
    for recipe in recipes:
        picture = Image.open(folder / f"{pair}_{recipe}_{size}.png").convert("RGB")
        images += [picture, crop(picture, centre)]
        labels += [f"{recipe} default, {size} px", f"{recipe}: 1:1 crop"]
    return contact_sheet(images, labels, height=TILE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("pair")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--recipes", default="old,new")
    parser.add_argument("--centre", default="0.55,0.45", help="crop centre, fractions x,y")
    args = parser.parse_args()
    cx, cy = (float(v) for v in args.centre.split(","))
    rows = [
        row(args.folder, args.pair, int(size), args.recipes.split(","), (cx, cy))
        for size in args.sizes.split(",")
    ]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
