"""The command line end to end."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly import cli, job
from painterly.cli import common
from painterly.cli.options import config_from_args
from painterly.sheet import sheet_size

from .conftest import CONTENT, STYLE

FAST = ["--size", "64", "--iterations", "3", "--seed", "0", "--precision", "fp32", "-q"]


def _command(output: Path, *options: str) -> list[str]:
    """`python -m painterly stylize CONTENT STYLE -o OUTPUT --size 64 --seed 0 OPTIONS`."""
    head = [sys.executable, "-m", "painterly", "stylize", str(CONTENT), str(STYLE)]
    return [*head, "-o", str(output), "--size", "64", "--seed", "0", *options]


def test_stylize_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "out" / "cat.jpg"
    proc = subprocess.run(
        _command(out, "--iterations", "3", "--save-every", "2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.mode == "RGB" and max(im.size) == 64
    assert "seed 0" in proc.stderr
    assert [p.name for p in (tmp_path / "out" / "cat_steps").iterdir()] == ["step_00002.png"]


def test_missing_input_exits_2_before_loading_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        ["stylize", str(tmp_path / "nope.jpg"), str(STYLE), "-o", str(tmp_path / "o.png")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.jpg" in err and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--style-weight", "-1"], "style_weight"),
        (["--style-weight", "nan"], "style_weight"),
        (["--style-layers", "relu4_6"], "did you mean"),
        (["--init", "missing.png"], "missing.png"),
        (["--init", "nosie"], "did you mean 'noise'"),
        (["--save-dir", "x"], "--save-every"),
        (["--device", "cuda:7"], "CUDA|GPU"),
        (["--device", "cuda:x"], "device"),
        (["--tolerance", "1.5"], "tolerance"),
        (["--scales", "6"], "first scale"),
        (["--scales", "2", "--scale-iterations", "2,2"], "not both"),
        (["--patience", "none", "--tolerance", "0.01"], "no effect"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], match: str
) -> None:
    code = cli.main(
        ["stylize", str(CONTENT), str(STYLE), "-o", str(tmp_path / "o.png"), *FAST, *extra]
    )
    assert code == 2
    assert re.search(match, capsys.readouterr().err)


def test_sweep_refuses_options_it_would_ignore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [
        "sweep",
        str(CONTENT),
        str(STYLE),
        "--content-weights",
        "1,2",
        "-o",
        str(tmp_path / "s.png"),
    ]
    assert cli.main([*base, "--content-weight", "5", *FAST]) == 2
    assert cli.main([*base, "--save-every", "5", *FAST]) == 2
    assert "--content-weight" in capsys.readouterr().err


def test_bad_outputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "looks_like.png"
    folder.mkdir()
    assert cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(folder), *FAST]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert (
        cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(tmp_path / "o.xyz"), *FAST]) == 2
    )
    assert (
        cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(tmp_path / "noext"), *FAST]) == 2
    )
    assert cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(CONTENT), *FAST]) == 2
    err = capsys.readouterr().err
    assert "overwrite an input" in err and ".xyz" in err


def test_sweep_writes_a_sheet_of_the_right_size(tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    code = cli.main(
        [
            "sweep",
            str(CONTENT),
            str(STYLE),
            "--content-weights",
            "1e1,1e4",
            "--style-weight",
            "1e-2",
            "-o",
            str(out),
            *FAST,
        ]
    )
    assert code == 0
    tiles = sorted((tmp_path / "sheet_tiles").iterdir())
    assert [t.name for t in tiles] == ["01_alpha_1e1.png", "02_alpha_1e4.png"]
    images = [Image.open(p) for p in (CONTENT, STYLE, *tiles)]
    height = images[-1].height
    with Image.open(out) as sheet:
        labels = ["content", "style", "α=1e1 β=1e-2\nα/β=1e3", "α=1e4 β=1e-2\nα/β=1e6"]
        assert sheet.size == sheet_size(images, labels, height)


def test_layers_lists_names_and_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["layers"]) == 0
    out = capsys.readouterr().out
    assert "relu5_2" in out and "block5_conv2" in out and "pool5" in out


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_the_best_image_so_far(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    out, steps = tmp_path / "out.png", tmp_path / "steps"
    proc = subprocess.Popen(
        _command(
            out,
            "--iterations",
            "100000",
            "--patience",
            "none",
            "--save-every",
            "1",
            "--save-dir",
            str(steps),
            "-q",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (steps / "step_00002.png").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the run never got going"
            time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "saved the best image so far" in err and "Traceback" not in err
    with Image.open(out) as im:
        assert im.size == (64, 43) and im.mode == "RGB"


def test_near_constant_output_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(flat)
    args = ["stylize", str(CONTENT), str(STYLE), "-o", str(tmp_path / "o.png"), *FAST]
    assert (
        cli.main([*args, "--init", str(flat), "--content-weight", "0", "--style-weight", "0"]) == 0
    )
    assert "nearly uniform" in capsys.readouterr().err
    assert cli.main(args) == 0
    assert "nearly uniform" not in capsys.readouterr().err


def test_a_run_too_big_for_memory_is_refused_with_a_size_that_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1.5 GiB free: the process and its kernels fit, 2048 px does not, whole or in tiles
    monkeypatch.setattr(job, "available_memory", lambda *device: 3 * 2**29)
    out = tmp_path / "o.png"
    code = cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(out), "--size", "2048", "-q"])
    assert code == 3 and not out.exists()
    message = capsys.readouterr().err
    fits = int(re.search(r"--size (\d+) should fit", message).group(1))  # type: ignore[union-attr]
    assert 64 <= fits < 2048
    assert cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(out), *FAST]) == 0


def test_a_machine_without_room_even_for_the_smallest_run_is_told_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job, "available_memory", lambda *device: 2**28)  # 256 MiB free
    out = tmp_path / "o.png"
    code = cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(out), *FAST])
    assert code == 3 and not out.exists()
    message = capsys.readouterr().err
    assert "no size fits" in message and "--size 0" not in message, message


def test_patience_none_really_switches_the_rule_off() -> None:
    args = cli.build_parser().parse_args(
        ["stylize", "c.jpg", "s.jpg", "-o", "o.png", "--patience", "none", "--seed", "1"]
    )
    assert config_from_args(args).patience is None
    args = cli.build_parser().parse_args(
        ["stylize", "c.jpg", "s.jpg", "-o", "o.png", "--patience", "7"]
    )
    assert config_from_args(args).patience == 7


def test_a_non_finite_loss_exits_4_and_saves_a_finite_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from painterly import losses

    real = losses.total_variation
    monkeypatch.setattr(losses, "total_variation", lambda x, n: real(x, n) * float("inf"))
    out = tmp_path / "o.png"
    args = ["stylize", str(CONTENT), str(STYLE), "-o", str(out), *FAST, "--tv-weight", "1"]
    assert cli.main(args) == 4
    err = capsys.readouterr().err
    assert "step 1" in err and "Traceback" not in err
    with Image.open(out) as im:
        assert im.size == (64, 43)


def test_keep_alpha_needs_transparency_and_a_format_that_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rgba = np.zeros((48, 64, 4), dtype=np.uint8)
    rgba[..., :3] = 120
    rgba[:, 32:, 3] = 255
    cutout = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(cutout)
    head = ["stylize", str(cutout), str(STYLE), "--keep-alpha", *FAST]
    assert cli.main([*head, "-o", str(tmp_path / "o.jpg")]) == 2
    assert "transparency" in capsys.readouterr().err
    opaque = ["stylize", str(CONTENT), str(STYLE), "--keep-alpha", *FAST]
    assert cli.main([*opaque, "-o", str(tmp_path / "o.png")]) == 2
    assert "no transparency" in capsys.readouterr().err
    assert cli.main([*head, "-o", str(tmp_path / "o.webp")]) == 0
    with Image.open(tmp_path / "o.webp") as im:
        alpha = np.asarray(im.convert("RGBA").getchannel("A"))
    assert alpha[:, :30].max() == 0 and alpha[:, 34:].min() == 255


def test_downscale_to_fit_paints_at_a_size_that_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job, "available_memory", lambda *device: int(1.6 * 2**30))
    out = tmp_path / "o.png"
    args = ["stylize", str(CONTENT), str(STYLE), "-o", str(out), "--iterations", "1", "-q"]
    assert cli.main([*args, "--size", "2048", "--downscale-to-fit"]) == 0
    assert "painting at --size" in capsys.readouterr().err
    with Image.open(out) as im:
        assert 16 <= max(im.size) < 2048 and max(im.size) % 16 == 0


def test_no_file_the_run_writes_may_be_one_it_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "StyleTransfer", None)  # the model must not be reached
    photo = tmp_path / "photo.png"
    Image.open(CONTENT).save(photo)
    start = tmp_path / "start.png"
    Image.open(CONTENT).save(start)
    before = photo.read_bytes(), start.read_bytes()
    head = ["stylize", str(photo), str(STYLE), *FAST]
    cases = [
        ["-o", str(tmp_path / "out.png"), "--init", str(start), "--plot", str(photo)],
        ["-o", str(start), "--init", str(start)],  # the start image is an input too
        ["-o", str(tmp_path / "photo"), "--plot", str(tmp_path / "x.png")],  # no extension
    ]
    for extra in cases[:2]:
        assert cli.main([*head, *extra]) == 2
        assert "overwrite an input" in capsys.readouterr().err
    assert cli.main([*head, *cases[2]]) == 2
    assert (photo.read_bytes(), start.read_bytes()) == before


def test_an_absurd_size_is_refused_for_memory_before_anything_is_resized(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.png"
    assert cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(out), "--size", "100000"]) == 3
    assert "GiB" in capsys.readouterr().err and not out.exists()


def test_an_output_under_a_file_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "taken.png"
    a_file.write_bytes(b"x")
    assert cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(a_file / "o.png"), *FAST]) == 2
    assert f"{a_file} is a file, not a folder" in capsys.readouterr().err
    assert cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(tmp_path), *FAST]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_the_readme_option_table_matches_the_options_derived_from_config() -> None:
    """README's `stylize` table names every Config option and no flag the parser lacks."""
    from painterly.config import command_options

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("`stylize` options", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in section.splitlines() if line.startswith("| `-")]
    listed = {flag for row in rows for flag in re.findall(r"`(--[a-z-]+)", row.split(" | ")[0])}
    derived = {spec.flag for spec in command_options()}
    assert derived - listed == set(), "add these options to README's table"
    parser = cli.build_parser()
    stylize = parser._subparsers._group_actions[0].choices["stylize"]
    known = {flag for action in stylize._actions for flag in action.option_strings}
    assert listed - known == set(), "README lists options the command does not have"


def test_doctor_names_the_flags_the_candidates_and_the_choice(capsys) -> None:
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "CPU: " in out and "avx2=" in out and "avx512_bf16=" in out and "amx=" in out
    assert "choice: fp32 " in out or "choice: bf16 " in out
