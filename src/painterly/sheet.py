"""Contact sheets: a row of labelled images, for sweeps and galleries."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

__all__ = ["LABEL_HEIGHT", "MARGIN", "contact_sheet", "sheet_size"]

#: Height in pixels of the label band under each tile, and the gap around tiles.
LABEL_HEIGHT = 44
MARGIN = 8


_GREEK = {"α": "alpha", "β": "beta"}


def _font(size: int) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, bool]:
    """A font with Greek letters where the system has DejaVu Sans; else Pillow's own font
    (which has none: the caller spells α and β out)."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size), True
    except OSError:
        return ImageFont.load_default(size=size), False


def _tile_width(image: Image.Image, height: int) -> int:
    return max(1, round(image.width * height / image.height))


def sheet_size(images: Sequence[Image.Image], height: int) -> tuple[int, int]:
    """(width, height) in pixels of :func:`contact_sheet` for these images and tile height."""
    width = MARGIN + sum(_tile_width(im, height) + MARGIN for im in images)
    return width, MARGIN + height + LABEL_HEIGHT + MARGIN


def contact_sheet(
    images: Sequence[Image.Image], labels: Sequence[str], height: int = 256
) -> Image.Image:
    """Lay images out in one row, each scaled to ``height`` px tall, with a label under each.

    Labels may hold two lines separated by a newline.

    Raises:
        ValueError: no images, or a different number of labels.
    """
    if not images or len(images) != len(labels):
        raise ValueError(
            f"need as many labels as images ({len(images)} images, {len(labels)} labels)"
        )
    sheet = Image.new("RGB", sheet_size(images, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font, greek = _font(15)
    x = MARGIN
    for image, label in zip(images, labels, strict=True):
        w = _tile_width(image, height)
        sheet.paste(image.convert("RGB").resize((w, height), Image.Resampling.LANCZOS), (x, MARGIN))
        if not greek:
            for letter, name in _GREEK.items():
                label = label.replace(letter, name)
        draw.multiline_text(
            (x + w / 2, MARGIN + height + 4),
            label,
            fill=(20, 20, 20),
            font=font,
            anchor="ma",
            align="center",
            spacing=3,
        )
        x += w + MARGIN
    return sheet
