"""Recipes in every output, `painterly reproduce`, loss plots and animations."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import painterly
from painterly import cli, transfer
from painterly.config import Config
from painterly.kernels import KernelPlan, plan_from_record, plan_record
from painterly.recipe import RecipeError, read_recipe, recipe_config, sidecar_path
from painterly.weights import load_weights

from .conftest import CONTENT, STYLE

RUN = ["--size", "64", "--iterations", "4", "--seed", "11", "-q"]


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("recipe")
    photo = folder / "photo.jpg"
    shutil.copy(CONTENT, photo)
    out = folder / "made.png"
    assert cli.main(["stylize", str(photo), str(STYLE), "-o", str(out), *RUN]) == 0
    return out


def test_the_output_carries_its_whole_recipe(made: Path) -> None:
    recipe = read_recipe(made)
    assert recipe["config"]["seed"] == 11 and recipe["config"]["size"] == 64
    assert recipe["config"]["precision"] in ("fp32", "bf16")  # resolved, never "auto"
    content = recipe["inputs"]["content"]
    assert content["path"] == str(made.parent / "photo.jpg") and len(content["sha256"]) == 64
    assert recipe["inputs"]["style"]["name"] == STYLE.name
    assert recipe["weights"]["sha256"] == load_weights("embedded").sha256
    assert recipe["versions"]["painterly"] == painterly.__version__
    assert recipe["run"]["steps"] == 4 and recipe["run"]["complete"]
    assert recipe["device"] == "cpu" and recipe["run"]["seconds"] > 0


def test_reproduce_remakes_the_same_picture(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = tmp_path / "again.png"
    assert cli.main(["reproduce", str(made), "-o", str(again), "-q"]) == 0
    assert np.array_equal(_pixels(again), _pixels(made))
    assert "largest difference from" in capsys.readouterr().err
    assert read_recipe(again)["config"] == read_recipe(made)["config"]


def test_reproduce_computes_with_the_recorded_kernels(
    made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipe records the kernel plan; ``reproduce`` computes with it even where the
    machine's own (measured, cached) choice is now another plan, so the pixels stay the same."""
    recorded = read_recipe(made)["kernels"]
    assert recorded["precision"] == read_recipe(made)["precision"]
    plan = plan_from_record(recorded)
    assert plan is not None and plan.decided == "recipe"
    assert plan_record(plan) == {**recorded, "decided": "recipe", "describe": plan.describe()}
    other = (
        KernelPlan(plan.precision, (), False, "measured")
        if plan.algorithms or plan.channels_last
        else KernelPlan(plan.precision, (("conv3_1", "winograd4"),), True, "measured")
    )
    monkeypatch.setattr(transfer, "choose_kernels", lambda *args, **kwargs: other)
    again = tmp_path / "again.png"
    assert cli.main(["reproduce", str(made), "-o", str(again), "-q"]) == 0
    remade = read_recipe(again)["kernels"]
    assert remade["algorithms"] == recorded["algorithms"] and remade["decided"] == "recipe"
    assert np.array_equal(_pixels(again), _pixels(made))
    for bad in ({}, {**recorded, "algorithms": [["conv9_9", "winograd4"]]}, {"precision": 1}):
        assert plan_from_record(bad) is None


def test_reproduce_finds_moved_inputs_only_when_told_and_checks_their_pixels(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = made.parent / "photo.jpg"
    moved = tmp_path / "moved.jpg"
    shutil.move(photo, moved)
    try:
        again = tmp_path / "again.png"
        assert cli.main(["reproduce", str(made), "-o", str(again), "-q"]) == 2
        assert "give --content" in capsys.readouterr().err
        args = ["reproduce", str(made), "-o", str(again), "-q"]
        assert cli.main([*args, "--content", str(STYLE)]) == 2  # another picture
        assert "not the content image" in capsys.readouterr().err
        assert cli.main([*args, "--content", str(moved)]) == 0
        assert np.array_equal(_pixels(again), _pixels(made))
    finally:
        shutil.move(moved, photo)


@pytest.mark.parametrize("ext", [".jpg", ".webp", ".tiff"])
def test_other_formats_carry_the_recipe_in_exif_or_a_sidecar(tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"o{ext}"
    assert cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(out), *RUN]) == 0
    assert read_recipe(out)["config"]["seed"] == 11
    assert sidecar_path(out).exists() == (ext == ".tiff")


def test_the_python_api_result_keeps_its_recipe(tmp_path: Path) -> None:
    picture = painterly.stylize(CONTENT, STYLE, size=64, iterations=2, seed=5)
    path = painterly.save_image(picture, tmp_path / "api.png")
    recipe = read_recipe(path)
    assert recipe["config"]["seed"] == 5 and recipe["inputs"]["content"]["name"] == CONTENT.name


def test_a_file_without_a_recipe_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["reproduce", str(CONTENT), "-o", str(tmp_path / "o.png")]) == 2
    assert "no painterly recipe" in capsys.readouterr().err
    with pytest.raises(RecipeError):
        read_recipe(tmp_path / "missing.png")


def test_plot_draws_every_term_and_animate_makes_one_frame_per_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.png"
    args = ["stylize", str(CONTENT), str(STYLE), "-o", str(out), "--size", "96", "--seed", "1"]
    extra = ["--scales", "2", "--iterations", "3", "--save-every", "1", "--plot", "-q"]
    assert cli.main([*args, *extra]) == 0
    plot = tmp_path / "run_losses.png"
    with Image.open(plot) as im:
        assert im.size[0] > 600 and im.size[1] > 300
        ink = np.asarray(im.convert("RGB"), dtype=np.int16)
    red, blue = np.array([214, 39, 40]), np.array([31, 119, 180])  # the style and content lines
    for colour in (red, blue):
        assert (np.abs(ink - colour).sum(axis=2) < 30).sum() > 200
    gif = tmp_path / "run.gif"
    assert cli.main(["animate", str(tmp_path / "run_steps"), "-o", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 6 and im.size == (96, 64)  # the 48 px frames scaled up
    assert cli.main(["animate", str(tmp_path), "-o", str(tmp_path / "x.gif")]) == 2
    assert cli.main(["animate", str(tmp_path / "run_steps"), "-o", str(tmp_path / "x.jpg")]) == 2
    assert cli.main([*args, "--plot", str(tmp_path / "p.txt"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "no step_NNNNN.png" in err and ".gif" in err and ".svg" in err


def test_the_web_apps_download_reproduces(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from painterly.web import create_app

    from .test_web import _upload, _wait

    with TestClient(create_app()) as client:
        content = _upload(client, CONTENT)
        body = {"content": content, "style": "style-starry_night", "size": 64, "iterations": 3}
        job = client.post("/api/jobs", json=body).json()
        assert _wait(client, job["id"])["state"] == "done"
        data = client.get(f"/api/jobs/{job['id']}/result").content
    made = tmp_path / "web.png"
    made.write_bytes(data)
    recipe = read_recipe(made)
    assert recipe["inputs"]["style"]["name"] and recipe["run"]["steps"] == 3
    again = tmp_path / "again.png"
    args = ["reproduce", str(made), "-o", str(again), "--content", str(CONTENT)]
    assert cli.main([*args, "--style", str(STYLE), "-q"]) == 0
    assert np.array_equal(_pixels(again), _pixels(made))
    assert json.loads(Image.open(io.BytesIO(data)).info["painterly:recipe"]) == recipe


def test_a_stopped_picture_is_remade_up_to_the_same_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = painterly.Config(size=64, iterations=30, seed=4, patience=None)
    result = painterly.StyleTransfer(cfg).run(CONTENT, STYLE, lambda e: e.step == 6)
    assert result.stop_reason == "stopped" and not result.recipe["run"]["complete"]
    made = painterly.save_image(result.image, tmp_path / "stopped.png", result.recipe)
    again = tmp_path / "again.png"
    assert cli.main(["reproduce", str(made), "-o", str(again)]) == 0
    err = capsys.readouterr().err
    assert "stopped at step 6; so is this" in err and "6 steps" in err
    assert np.array_equal(_pixels(again), _pixels(made))


def test_a_lossy_original_is_compared_like_for_like(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = tmp_path / "made.jpg"
    assert cli.main(["stylize", str(CONTENT), str(STYLE), "-o", str(made), *RUN]) == 0
    assert cli.main(["reproduce", str(made), "-o", str(tmp_path / "again.png"), "-q"]) == 0
    assert "(both as JPEG): 0/255" in capsys.readouterr().err


def test_damaged_recipes_are_refused_in_one_line(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL.PngImagePlugin import PngInfo

    recipe = read_recipe(made)
    cases = {
        "inputs": {k: v for k, v in recipe.items() if k != "inputs"},
        "options": {**recipe, "config": None},
        "size": {**recipe, "config": {**recipe["config"], "size": 100_000}},
    }
    for name, broken in cases.items():
        info = PngInfo()
        info.add_itxt("painterly:recipe", json.dumps(broken))
        path = tmp_path / f"{name}.png"
        Image.open(made).save(path, pnginfo=info)
        code = cli.main(["reproduce", str(path), "-o", str(tmp_path / "o.png"), "-q"])
        err = capsys.readouterr().err
        assert code == (3 if name == "size" else 2), (name, err)
        assert name in err or "GiB" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_recipe_from_before_issue_12_keeps_its_ladder_and_start() -> None:
    old = Config(size=512).to_dict()
    for name in ("init_colors", "tv_per_pixel", "hist_weight"):
        del old[name]
    config = recipe_config({"config": {**old, "scales": None, "iterations": 150}})
    assert config.ladder == [(512, 150)] and config.init_colors == "content"
    assert not config.tv_per_pixel
    big = recipe_config({"config": {**old, "size": 1536, "scales": None, "iterations": 150}})
    assert big.ladder == [(192, 150), (384, 75), (768, 38), (1536, 20)]
    new = Config(size=512).to_dict()
    assert recipe_config({"config": new}).ladder == Config(size=512).ladder  # as it is now
