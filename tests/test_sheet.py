"""Contact sheets."""

from __future__ import annotations

import itertools

import pytest
from PIL import Image

from painterly.sheet import LABEL_HEIGHT, MARGIN, contact_sheet, sheet_size


def test_tiles_keep_aspect_and_sheet_has_the_computed_size() -> None:
    images = [Image.new("RGB", (200, 100), (255, 0, 0)), Image.new("RGB", (50, 100), (0, 0, 255))]
    labels = ["wide", "α=1e4"]
    sheet = contact_sheet(images, labels, height=60)
    assert sheet.size == sheet_size(images, labels, 60)
    assert sheet.height == 2 * MARGIN + 60 + LABEL_HEIGHT
    assert sheet.getpixel((MARGIN + 60, MARGIN + 30)) == (255, 0, 0)  # 120 px wide tile
    last_column = sheet.crop((MARGIN + 120 + MARGIN, MARGIN, sheet.width - MARGIN, MARGIN + 60))
    assert (0, 0, 255) in {c for _, c in last_column.getcolors(4096) or []}
    for left, right in ((MARGIN, MARGIN + 120), (2 * MARGIN + 120, sheet.width - MARGIN)):
        band = sheet.crop((left, MARGIN + 60, right, MARGIN + 60 + LABEL_HEIGHT))
        assert band.convert("L").getextrema()[0] < 128  # each label was drawn


def test_long_labels_widen_their_column_instead_of_overlapping() -> None:
    tiny = [Image.new("RGB", (20, 20), (0, 200, 0))] * 3
    labels = ["α=1e4 β=1e-2\nα/β=1e6"] * 3
    sheet = contact_sheet(tiny, labels, height=20)
    assert sheet.width > MARGIN + 3 * (20 + MARGIN) + 3 * 40
    # a white gap separates neighbouring labels
    band = sheet.crop((0, MARGIN + 20, sheet.width, MARGIN + 20 + LABEL_HEIGHT)).convert("L")
    columns_with_ink = [
        x for x in range(band.width) if band.crop((x, 0, x + 1, band.height)).getextrema()[0] < 128
    ]
    gaps = [b - a for a, b in itertools.pairwise(columns_with_ink) if b - a > 1]
    assert max(gaps) >= MARGIN


def test_labels_must_match_images() -> None:
    with pytest.raises(ValueError, match="labels"):
        contact_sheet([Image.new("RGB", (4, 4))], [])
