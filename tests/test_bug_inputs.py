"""The bad inputs that broke other tools (../shared/bugs/CASES.md), made by its own script.

Every image file of the manifest is either decoded to an RGB (1, 3, H, W) tensor in [0, 1] or
refused with an ImageError that names the file and the reason; a few kinds get a closer look.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import cli
from painterly.cli import common
from painterly.config import Config
from painterly.images import ImageError, load_image
from painterly.job import result_warnings
from painterly.transfer import StyleTransfer

from .conftest import CONTENT, ROOT, STYLE

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


# --- The command line on the manifest's cases ------------------------------------------------

QUICK = ["--size", "64", "--iterations", "2", "--seed", "0", "-q"]


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command gets as far as building the model."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded: the error came too late")

    monkeypatch.setattr(common, "StyleTransfer", refuse)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["B10_tiny_1x1.png", "B10_tiny_8x8.png", "B10_tiny_15x15.png"])
def test_too_small_for_the_network_exits_2_naming_the_minimum(
    bug_inputs, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    folder, _ = bug_inputs
    side = name.split("_")[-1].split("x")[0]
    out = folder / "o.png"
    args = ["stylize", str(folder / name), str(CONTENT), "-o", str(out), "--size", side, "-q"]
    assert cli.main(args) == 2
    assert "16 px" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("name", ["B10_tiny_16x16.png", "B10_tiny_31x31.png", "B10_tiny_32x32.png"])
def test_at_the_minimum_size_a_run_succeeds(bug_inputs, name: str) -> None:
    folder, _ = bug_inputs
    side = name.split("_")[-1].split("x")[0]
    out = folder / f"{name}.out.png"
    args = ["stylize", str(folder / name), str(STYLE), "-o", str(out), *QUICK, "--size", side]
    assert cli.main(args) == 0
    with Image.open(out) as im:
        assert im.size == (int(side), int(side))


@pytest.mark.parametrize(
    "name", ["B11_aspect_4000x40.png", "B11_aspect_40x4000.png", "B11_aspect_2000x7.png"]
)
def test_extreme_aspect_ratio_exits_2_before_the_model_loads(
    bug_inputs, capsys: pytest.CaptureFixture[str], no_model: None, name: str
) -> None:
    folder, _ = bug_inputs
    out = folder / "o.png"
    assert cli.main(["stylize", str(folder / name), str(STYLE), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "at least 16 px" in err and "Traceback" not in err


def test_content_and_style_of_different_shapes_keep_the_contents_aspect(bug_inputs) -> None:
    folder, _ = bug_inputs
    out = folder / "b13.png"
    content, style = (
        folder / "B13_content_landscape_400x300.png",
        folder / "B13_style_portrait_200x500.png",
    )
    assert cli.main(["stylize", str(content), str(style), "-o", str(out), *QUICK]) == 0
    with Image.open(out) as im:
        assert abs(im.width / im.height - 4 / 3) < 0.03  # 64x48


def test_extreme_settings_never_save_a_nan_or_black_image(bug_inputs) -> None:
    folder, _ = bug_inputs
    case = json.loads((folder / "B15_run_config.json").read_text())
    out = folder / "b15.png"
    code = cli.main(
        [
            "stylize", str(folder / case["content"]), str(folder / case["style"]), "-o", str(out),
            "--optimizer", case["optimizer"], "--learning-rate", str(case["learning_rate"]),
            "--style-weight", str(case["style_weight"]), "--iterations", "10", "--size", "64",
            "-q",
        ]
    )  # fmt: skip
    assert code in (0, 4)  # pixels stay in [0, 1], so here the loss stays finite
    pixels = _pixels(out)
    assert pixels.max() > 0 and pixels.std() > 2


def test_round_trip_returns_every_extreme_and_primary_colour(bug_inputs) -> None:
    folder, _ = bug_inputs
    names = [
        "B17_extremes_checker_and_primaries_256.png",
        "B18_pure_red_64.png",
        "B18_pure_green_64.png",
        "B18_pure_blue_64.png",
        "B18_red_left_blue_right_128x64.png",
        "B19_constant_200_100_50_64.png",
    ]
    for name in names:
        path = folder / name
        with Image.open(path) as im:
            side = max(im.size)
        out = folder / f"{name}.round.png"
        args = ["stylize", str(path), str(STYLE), "-o", str(out), "--iterations", "0"]
        args += ["--init-colors", "content", "--scales", "1"]  # the photo, as it is
        assert cli.main([*args, "--size", str(side), "-q"]) == 0
        assert np.abs(_pixels(out) - _pixels(path)).max() <= 1, name


def test_same_image_as_content_and_style_still_writes_and_reports(
    bug_inputs, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = bug_inputs
    same = folder / "B20_same_image_for_content_and_style_256.png"
    out = folder / "b20.png"
    args = ["stylize", str(same), str(same), "-o", str(out), "--size", "64", "--seed", "0"]
    args += ["--init-colors", "content"]  # from the photo itself: nothing left to gain
    assert cli.main([*args, "--iterations", "200", "--patience", "5", "-q"]) == 0
    err = capsys.readouterr().err
    steps = int(re.search(r"(\d+) steps", err).group(1))  # type: ignore[union-attr]
    assert steps < 200 and "stopped by converged" in err
    assert _pixels(out).shape == (64, 64, 3)


def test_default_optimisers_lower_the_loss_and_a_huge_learning_rate_is_reported(
    bug_inputs, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = bug_inputs
    case = json.loads((folder / "B21_run_config.json").read_text())
    content, style = folder / case["content"], folder / case["style"]
    for optimizer, lr in (("lbfgs", None), ("adam", 0.02)):
        cfg = Config(size=64, iterations=30, optimizer=optimizer, seed=0, patience=None)
        if lr:
            cfg = cfg.replace(learning_rate=lr)
        result = StyleTransfer(cfg).run(content, style)
        assert result.loss < 0.5 * result.history[0], optimizer
    out = folder / "b21.png"
    args = ["stylize", str(content), str(style), "-o", str(out), "--size", "64", "--seed", "0"]
    assert (
        cli.main(
            [*args, "--optimizer", "adam", "--learning-rate", "1e4", "--iterations", "20", "-q"]
        )
        == 0
    )
    assert "never fell below its starting value" in capsys.readouterr().err
    assert _pixels(out).std() > 2


def test_the_no_progress_warning_compares_losses_within_the_final_scale() -> None:
    """Found painting 4096 px: a coarse to fine run's final loss (3.1e12, of 4096 × 3072
    positions) was above its first scale's start (2.6e11, at 128 px), and the run warned that
    the loss never fell and the output was the start, while the top scale had more than halved
    its own start. Compare within the final scale, where the steps' losses are of one size."""
    cfg = Config(size=96, scales=2, scale_iterations=(3, 3), seed=0, patience=None)
    result = StyleTransfer(cfg).run(CONTENT, STYLE)
    assert result.scale_start == 3 and len(result.history) == 6
    assert result.loss < result.history[result.scale_start]
    assert not [w for w in result_warnings(result, cfg) if "never fell" in w]
    coarse_then_fine = dataclasses.replace(result, history=[1.0, 0.5, 8.0, 4.0], loss=4.0,
                                           scale_start=2)  # fmt: skip
    assert not [w for w in result_warnings(coarse_then_fine, cfg) if "never fell" in w]
    stuck = dataclasses.replace(coarse_then_fine, loss=8.0)
    (warning,) = [w for w in result_warnings(stuck, cfg) if "never fell" in w]
    assert "(8)" in warning


def test_an_init_image_of_another_size_is_resized_to_the_content(bug_inputs) -> None:
    folder, _ = bug_inputs
    init = folder / "B22_init_green_diagonal_123x77.png"
    out = folder / "b22.png"
    args = [
        "stylize",
        str(folder / "B22_content_256x192.png"),
        str(folder / "B22_style_256x256.png"),
    ]
    assert cli.main([*args, "-o", str(out), "--init", str(init), "--iterations", "0", "-q"]) == 0
    got = _pixels(out)
    assert got.shape == (384, 512, 3)  # the default size, the content's 4:3
    with Image.open(init) as im:
        expected = np.asarray(
            im.convert("RGB").resize((512, 384), Image.Resampling.BICUBIC), dtype=np.int16
        )
    assert np.abs(got - expected).mean() < 2


def test_missing_output_folders_are_created(bug_inputs) -> None:
    folder, _ = bug_inputs
    case = json.loads((folder / "B23_output_path_cases.json").read_text())
    out = folder / case["outputs"][0]
    args = ["stylize", str(folder / case["content"]), str(folder / case["style"]), "-o", str(out)]
    assert cli.main([*args, *QUICK]) == 0 and out.exists()


def test_bad_output_names_exit_2_before_the_model_and_good_ones_are_accepted(
    bug_inputs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = bug_inputs
    case = json.loads((folder / "B24_output_name_cases.json").read_text())
    head = ["stylize", str(folder / case["content"]), str(folder / case["style"]), "-o"]
    real = common.StyleTransfer
    monkeypatch.setattr(common, "StyleTransfer", None)  # calling it would raise TypeError
    for name in case["reject_before_compute"]:
        assert cli.main([*head, str(folder / "b24" / name), *QUICK]) == 2, name
        assert ".png" in capsys.readouterr().err  # the message lists what works
    monkeypatch.setattr(common, "StyleTransfer", real)
    for name in case["accept"]:
        assert cli.main([*head, str(folder / "b24" / name), *QUICK]) == 0, name
        assert (folder / "b24" / name).exists()


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(
    bug_inputs, capsys: pytest.CaptureFixture[str], no_model: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = bug_inputs
    case = json.loads((folder / "B27_overwrite_cases.json").read_text())
    monkeypatch.chdir(folder)
    before = {n: _sha(folder / n) for n in (case["content"], case["style"])}
    for output in case["outputs_to_refuse"]:
        assert cli.main(["stylize", case["content"], case["style"], "-o", output, "-q"]) == 2
        assert "overwrite an input" in capsys.readouterr().err
    assert before == {n: _sha(folder / n) for n in before}


@pytest.mark.parametrize(
    "name", ["B25_empty_0_bytes.jpg", "B25_truncated_40pct.jpg", "B25_text_file_named.png",
             "B25_directory_named_like.png", "B25_does_not_exist.png"]
)  # fmt: skip
def test_unreadable_inputs_exit_2_naming_the_file_before_the_model(
    bug_inputs, capsys: pytest.CaptureFixture[str], no_model: None, name: str
) -> None:
    folder, _ = bug_inputs
    path = folder / name
    for args in ([str(path), str(STYLE)], [str(CONTENT), str(path)]):
        assert cli.main(["stylize", *args, "-o", str(folder / "o.png"), "-q"]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_same_seed_same_pixels_other_seed_other_picture(bug_inputs) -> None:
    # The files differ only in their recipes' timestamps and timings; the pictures are equal
    # to the last bit.
    folder, _ = bug_inputs
    case = json.loads((folder / "B30_seed_case.json").read_text())
    outs = []
    for i, run in enumerate(case["runs"]):
        out = folder / f"b30_{i}.png"
        args = ["stylize", str(folder / case["content"]), str(folder / case["style"]), "-o"]
        extra = ["--init", "noise", "--seed", str(run["seed"]), "--device", case["device"]]
        assert cli.main([*args, str(out), *extra, "--size", "64", "--iterations", "5", "-q"]) == 0
        outs.append(_pixels(out))
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize(
    "name",
    ["B04_flat_colour_256.png", "B04_flat_black_256.png", "B04_gray_texture_as_RGB_style_256.png"],
)
def test_degenerate_styles_give_finite_losses_and_a_real_picture(bug_inputs, name: str) -> None:
    folder, _ = bug_inputs
    cfg = Config(size=64, iterations=5, seed=0, patience=None)
    result = StyleTransfer(cfg).run(folder / "B04_content_256x192.png", folder / name)
    assert all(math.isfinite(v) for v in result.history)
    assert torch.isfinite(result.image).all() and float(result.image.std()) > 2 / 255


def test_keep_alpha_puts_the_inputs_transparency_back(bug_inputs) -> None:
    folder, _ = bug_inputs
    content = folder / "B02_rgba_circle_hidden_magenta_256.png"
    out = folder / "b02.png"
    args = ["stylize", str(content), str(STYLE), "-o", str(out), "--keep-alpha"]
    assert cli.main([*args, "--size", "256", "--iterations", "1", "-q"]) == 0
    with Image.open(out) as im, Image.open(content) as src:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im.getchannel("A")), np.asarray(src.getchannel("A")))


def test_the_command_line_says_each_warning_once_in_its_own_words(
    bug_inputs, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = bug_inputs
    gif = folder / "B05_animated_3frames_red_green_blue_128.gif"
    out = folder / "gif.png"
    assert cli.main(["stylize", str(gif), str(STYLE), "-o", str(out), *QUICK]) == 0
    err = capsys.readouterr().err
    assert err.count("painterly: warning:") == 1 and "first frame" in err
    assert "UserWarning" not in err
