"""Contact sheets."""

from __future__ import annotations

import pytest
from PIL import Image

from painterly.sheet import LABEL_HEIGHT, MARGIN, contact_sheet, sheet_size


def test_tiles_keep_aspect_and_sheet_has_the_computed_size() -> None:
    images = [Image.new("RGB", (200, 100), (255, 0, 0)), Image.new("RGB", (50, 100), (0, 0, 255))]
    sheet = contact_sheet(images, ["wide", "α=1e4 β=1e-2\nα/β=1e6"], height=60)
    assert (
        sheet.size
        == sheet_size(images, 60)
        == (MARGIN + 120 + MARGIN + 30 + MARGIN, 2 * MARGIN + 60 + LABEL_HEIGHT)
    )
    assert sheet.getpixel((MARGIN + 60, MARGIN + 30)) == (255, 0, 0)
    assert sheet.getpixel((MARGIN + 120 + MARGIN + 15, MARGIN + 30)) == (0, 0, 255)
    for left, width in ((MARGIN, 120), (2 * MARGIN + 120, 30)):
        band = sheet.crop((left, MARGIN + 60, left + width, MARGIN + 60 + LABEL_HEIGHT))
        assert band.convert("L").getextrema()[0] < 128  # each label was drawn


def test_labels_must_match_images() -> None:
    with pytest.raises(ValueError, match="labels"):
        contact_sheet([Image.new("RGB", (4, 4))], [])
