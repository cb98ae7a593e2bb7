"""Contact sheets: a row of labelled images, for sweeps and galleries."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

__all__ = ["LABEL_HEIGHT", "MARGIN", "contact_sheet", "sheet_size"]

#: Height in pixels of the label band under each tile, and the gap around tiles.
LABEL_HEIGHT = 44
MARGIN = 8
_FONT_SIZE = 15
_GREEK = {"α": "alpha", "β": "beta"}

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font() -> tuple[Font, bool]:
    """A font with Greek letters where the system has DejaVu Sans; else Pillow's own font
    (which has none: labels then spell α and β out)."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", _FONT_SIZE), True
    except OSError:
        return ImageFont.load_default(size=_FONT_SIZE), False


def _columns(
    images: Sequence[Image.Image], labels: Sequence[str], height: int
) -> list[tuple[int, int, str]]:
    """(column width, tile width, label as drawn) per image: a column is as wide as its tile
    or its label, whichever is wider, so labels never run into each other."""
    font, greek = _font()
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    columns = []
    for image, label in zip(images, labels, strict=True):
        if not greek:
            for letter, name in _GREEK.items():
                label = label.replace(letter, name)
        tile = max(1, round(image.width * height / image.height))
        left, _, right, _ = draw.multiline_textbbox((0, 0), label, font=font, spacing=3)
        columns.append((max(tile, int(right - left) + 4), tile, label))
    return columns


def sheet_size(
    images: Sequence[Image.Image], labels: Sequence[str], height: int
) -> tuple[int, int]:
    """(width, height) in pixels of :func:`contact_sheet` for these images, labels and height."""
    width = MARGIN + sum(column + MARGIN for column, _, _ in _columns(images, labels, height))
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
    sheet = Image.new("RGB", sheet_size(images, labels, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font, _ = _font()
    x = MARGIN
    for image, (column, tile, label) in zip(images, _columns(images, labels, height), strict=True):
        resized = image.convert("RGB").resize((tile, height), Image.Resampling.LANCZOS)
        sheet.paste(resized, (x + (column - tile) // 2, MARGIN))
        draw.multiline_text(
            (x + column / 2, MARGIN + height + 4),
            label,
            fill=(20, 20, 20),
            font=font,
            anchor="ma",
            align="center",
            spacing=3,
        )
        x += column + MARGIN
    return sheet
