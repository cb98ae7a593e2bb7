"""The bad inputs that broke other tools (../shared/bugs/CASES.md), made by its own script.

Every image file of the manifest is either decoded to an RGB (1, 3, H, W) tensor in [0, 1] or
refused with an ImageError that names the file and the reason; a few kinds get a closer look.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from painterly.images import ImageError, load_image

from .conftest import ROOT

SCRIPT = ROOT.parent / "shared" / "bugs" / "make_bug_inputs.py"

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason=f"{SCRIPT} is not beside this checkout")

#: Files that must be refused, with a word the message must contain.
REFUSED = {
    "B05_fake_container.heic": "HEIC",
    "B09_decompression_bomb_20000x20000.png": "decompression bomb",
    "B25_empty_0_bytes.jpg": "empty file",
    "B25_truncated_40pct.jpg": "truncated",
    "B25_text_file_named.png": "not a readable image",
    "B25_directory_named_like.png": "is a folder",
}
IMAGE_SUFFIXES = {".png", ".jpg", ".gif", ".webp", ".bmp", ".tiff", ".heic"}


@pytest.fixture(scope="module")
def bug_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    out = tmp_path_factory.mktemp("bugs")
    subprocess.run([sys.executable, str(SCRIPT), str(out)], check=True, capture_output=True)
    rows: list[dict[str, str]] = json.loads((out / "manifest.json").read_text())
    return out, rows


def test_every_image_is_decoded_or_refused_by_name(bug_inputs) -> None:
    folder, rows = bug_inputs
    files = [r["file"] for r in rows if Path(r["file"]).suffix in IMAGE_SUFFIXES]
    files = [f for f in files if (folder / f).exists()]
    assert len(files) > 50 and set(REFUSED) <= set(files)
    for name in files:
        path = folder / name
        if name in REFUSED:
            with pytest.raises(ImageError) as info:
                load_image(path)
            assert str(path) in str(info.value) and REFUSED[name] in str(info.value), name
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = load_image(path)
        assert t.dim() == 4 and t.shape[:2] == (1, 3) and t.dtype == torch.float32, name
        assert torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1, name


def test_exif_orientations_all_display_the_same_upright_picture(bug_inputs) -> None:
    folder, _ = bug_inputs
    images = [
        load_image(folder / f"B08_exif_orientation_{k}_displays_80x120.jpg") for k in range(1, 9)
    ]
    for t in images:
        assert t.shape == (1, 3, 120, 80)
        assert (t - images[0]).abs().mean() < 0.03  # JPEG noise only
    r, g, b = images[0][0, :, :10, :10].mean(dim=(1, 2)).tolist()
    assert r > 0.6 and g < 0.4 and b < 0.4  # the red block is top-left


def test_hidden_colour_under_transparency_never_reaches_the_network(bug_inputs) -> None:
    folder, _ = bug_inputs
    magenta = load_image(folder / "B02_rgba_circle_hidden_magenta_256.png")
    black = load_image(folder / "B02_rgba_circle_hidden_black_256.png")
    assert torch.equal(magenta, black)


def test_animated_gif_gives_its_first_frame_with_a_warning(bug_inputs) -> None:
    folder, _ = bug_inputs
    with pytest.warns(UserWarning, match="first frame"):
        t = load_image(folder / "B05_animated_3frames_red_green_blue_128.gif")
    r, g, b = t[0].mean(dim=(1, 2)).tolist()
    assert r > g and r > b


def test_sixteen_bit_and_dark_inputs_keep_their_range(bug_inputs) -> None:
    folder, _ = bug_inputs
    dark = load_image(folder / "B19_dark_values_0_to_4_256.png")
    assert dark.max().item() == pytest.approx(4 / 255, abs=1e-6)
    one_bit = load_image(folder / "B03_bilevel_1bit_256.png")
    assert set(torch.unique(one_bit).tolist()) == {0.0, 1.0}
