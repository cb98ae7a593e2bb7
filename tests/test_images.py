"""Decoding any common file to RGB [0, 1], resizing, atomic saving."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.images import ImageError, load_image, resize_longest, save_image, to_pil


def _save(img: Image.Image, path: Path, **kw: object) -> Path:
    img.save(path, **kw)
    return path


def test_gray_and_one_bit_become_gray_rgb(tmp_path: Path) -> None:
    gray = Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1)), "L")
    t = load_image(_save(gray, tmp_path / "g.png"))
    assert t.shape == (1, 3, 8, 64)
    torch.testing.assert_close(t[0, 0], t[0, 2])
    assert t[0, 0, 0, 1].item() == pytest.approx(4 / 255)
    one = load_image(_save(gray.convert("1"), tmp_path / "b.png"))
    assert set(torch.unique(one).tolist()) <= {0.0, 1.0}


def test_alpha_is_composited_over_white_whatever_hides_under_it(tmp_path: Path) -> None:
    arrays = []
    for hidden in ((255, 0, 255), (0, 0, 0)):
        a = np.zeros((4, 4, 4), dtype=np.uint8)
        a[..., :3] = hidden
        a[1:3, 1:3] = (10, 200, 30, 255)
        arrays.append(load_image(_save(Image.fromarray(a, "RGBA"), tmp_path / f"{hidden}.png")))
    torch.testing.assert_close(arrays[0], arrays[1])
    assert arrays[0][0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert arrays[0][0, 1, 1, 1].item() == pytest.approx(200 / 255)


def test_sixteen_bit_scaled_by_its_depth(tmp_path: Path) -> None:
    a = np.full((4, 4), 65535 // 2, dtype=np.uint16)
    t = load_image(_save(Image.fromarray(a), tmp_path / "i16.png"))
    assert t.max().item() == pytest.approx(0.5, abs=1e-3)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    t = load_image(_save(img, tmp_path / "o.jpg", exif=exif))
    assert t.shape[-2:] == (40, 20)


def test_palette_and_cmyk(tmp_path: Path) -> None:
    rgb = Image.new("RGB", (8, 8), (0, 128, 255))
    p = load_image(_save(rgb.convert("P"), tmp_path / "p.png"))
    c = load_image(_save(rgb.convert("CMYK"), tmp_path / "c.jpg"))
    assert p.shape == c.shape == (1, 3, 8, 8)
    assert p[0, 2, 0, 0].item() > 0.9 and c[0, 0, 0, 0].item() < 0.15


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), (b"", "empty file"), (b"hello, not an image", "not a readable image")],
)
def test_unreadable_inputs_name_the_file(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_file(tmp_path: Path) -> None:
    good = _save(Image.new("RGB", (64, 64), (1, 2, 3)), tmp_path / "good.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ImageError, match=r"cut\.png"):
        load_image(cut)


def test_tensor_and_pil_inputs() -> None:
    t = torch.rand(3, 5, 7)
    assert load_image(t).shape == (1, 3, 5, 7)
    assert load_image(to_pil(t)).shape == (1, 3, 5, 7)
    with pytest.raises(ImageError, match="shape"):
        load_image(torch.rand(4, 5, 7))
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        load_image(torch.full((3, 2, 2), 255.0))


def test_resize_longest_keeps_aspect() -> None:
    t = resize_longest(torch.rand(1, 3, 300, 451), 128)
    assert t.shape == (1, 3, 85, 128)
    assert t.min() >= 0 and t.max() <= 1


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tiff"])
def test_save_follows_extension_and_round_trips(tmp_path: Path, ext: str) -> None:
    t = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    path = save_image(t, tmp_path / f"out{ext}")
    with Image.open(path) as im:
        assert im.format == {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP", ".tiff": "TIFF"}[ext]
        assert im.size == (24, 16) and im.mode == "RGB"
    if ext in (".png", ".tiff"):
        assert (load_image(path) - t).abs().max() <= 0.5 / 255 + 1e-6
    assert [p.name for p in tmp_path.iterdir()] == [f"out{ext}"]  # no temp file left behind


def test_save_refuses_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="extension"):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "out")
    with pytest.raises(ImageError, match=r"\.xyz"):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "out.xyz")


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "keep.png")
    before = path.read_bytes()

    def boom(self: Image.Image, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(ImageError, match=r"keep\.png: cannot write .*disk full"):
        save_image(torch.ones(1, 3, 4, 4), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.png"]
