"""``painterly reproduce PICTURE -o AGAIN``: make a picture again from the recipe in it."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..config import Config
from ..files import file_digest
from ..images import ImageError, load_image, output_format, resize_longest, to_pil
from ..job import Job
from ..kernels import KernelPlan, plan_from_record
from ..recipe import pixels_digest, read_recipe, recipe_config
from . import common
from .options import UsageError

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``reproduce`` command's arguments."""
    rp = sub.add_parser(
        "reproduce", help="make a picture again from the recipe painterly stored in it"
    )
    rp.add_argument("image", type=Path, help="a picture painterly made (or its .json sidecar's)")
    rp.add_argument("-o", "--output", type=Path, required=True, help="where to write it")
    rp.add_argument("--content", type=Path, help="the photo, if it moved since")
    rp.add_argument(
        "--style", type=Path, nargs="+", help="the painting(s), in order, if they moved since"
    )
    rp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Find the inputs the recipe names, check they are the same pixels, paint, compare."""
    recipe = read_recipe(args.image)
    config = _config_here(recipe)
    style_roles = [r for r in recipe["inputs"] if r.startswith("style")]
    if args.style and len(args.style) != len(style_roles):
        raise UsageError(f"this picture was made from {len(style_roles)} style image(s)")
    given = {"content": args.content, **dict(zip(style_roles, args.style or [], strict=False))}
    sources = {
        role: _find_input(recipe, role, given.get(role)) for role in ["content", *style_roles]
    }
    _check_files_left(config)
    stop_at = _stop_at(recipe, args.quiet)
    job = Job(
        config,
        sources["content"][1],
        [sources[r][1] for r in style_roles],
        args.output,
        checkpoint_every=0,
        stop_at=stop_at,
    )
    for role, (pixels, path, side) in sources.items():
        if side is not None:  # inputs given as pixels: name their files
            job.sources[role] = pixels
            job.describe_input(
                role, name=path.name, path=str(path), sha256=file_digest(path), max_side=side
            )
    job.check_files()
    runner = common.load_runner(config, _recorded_kernels(recipe, config))
    job.check_memory(runner)
    code, _ = common.paint(runner, job, args.quiet)
    if code == common.EXIT_OK:
        _compare(args.image, args.output)
    return code


def _config_here(recipe: dict[str, Any]) -> Config:
    """The recipe's config, on the CPU when it was made on a GPU this machine lacks."""
    config = recipe_config(recipe)
    device = str(recipe.get("device", "auto"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        common.warn(
            f"the picture was made on {device}; painting on the CPU here, so it will differ "
            "slightly"
        )
        device = "cpu"
    return config.replace(device=device)


def _recorded_kernels(recipe: dict[str, Any], config: Config) -> KernelPlan | None:
    """The kernels the picture was computed with, when it was made on a CPU and is made again
    on one (the machine's own measured choice could differ near a tie, and the pixels with it);
    ``None`` (the machine's choice) otherwise."""
    record = recipe.get("kernels")
    if not isinstance(record, dict) or recipe.get("device") != "cpu" or config.device != "cpu":
        return None
    return plan_from_record(record)


def _find_input(
    recipe: dict[str, Any], role: str, given: Path | None
) -> tuple[Path | torch.Tensor, Path, int | None]:
    """(what the job reads, the file, the side the web app shrank it to) for one input, its
    pixels checked against the recipe's digest.

    Raises:
        UsageError: the file is not named, gone, or holds other pixels.
    """
    flag = "--content" if role == "content" else "--style"
    record = recipe["inputs"].get(role, {})
    if given is None and not record.get("path"):
        raise UsageError(
            f"the recipe does not say where the {role} image is ({record.get('name')}, "
            f"{record.get('width')}x{record.get('height')} px); give {flag} FILE"
        )
    path = given if given is not None else Path(record["path"])
    if given is None and not path.is_file():
        raise UsageError(f"the {role} image {path} is gone; give {flag} FILE")
    pixels = load_image(path)
    side = record.get("max_side")
    if side and max(pixels.shape[-2:]) > side:  # the web app shrinks what it is given
        pixels = resize_longest(pixels, side)
    if pixels_digest(pixels) != record.get("pixels_sha256"):
        raise UsageError(
            f"{path} is not the {role} image of this picture (its pixels differ from "
            f"{record.get('name')}'s)"
        )
    return (pixels if side else path), path, (int(side) if side else None)


def _check_files_left(config: Config) -> None:
    if config.init not in ("content", "noise", "style") and not Path(config.init).is_file():
        raise UsageError(f"the init image {config.init} of this recipe is gone")
    for mask in config.style_masks or ():
        if not Path(mask).is_file():
            raise UsageError(f"the style mask {mask} of this recipe is gone")


def _stop_at(recipe: dict[str, Any], quiet: bool) -> int | None:
    """The step a stopped original ended at (so is this run), or None."""
    run = recipe.get("run", {})
    if run.get("complete", True) or run.get("stop_reason") not in ("stopped", "interrupted"):
        return None
    stop_at = int(run.get("steps", 0)) or None
    common.say(quiet, f"painterly: the original run was stopped at step {stop_at}; so is this")
    return stop_at


def _compare(original: Path, remade: Path) -> None:
    """Say how far the re-made picture is from the original, pixel by pixel; when the original
    is in another format (a lossy JPEG, say), the re-made one encoded the same way."""
    try:
        a, b = load_image(original), load_image(remade)
        with Image.open(original) as im:
            fmt = im.format
        if fmt and fmt != output_format(remade):  # like for like: the same compression
            buffer = io.BytesIO()
            options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
            to_pil(b).save(buffer, format=fmt, **options)
            b = load_image(Image.open(buffer))
    except (ImageError, OSError, ValueError):
        return
    if a.shape != b.shape:
        print(
            f"painterly: the original is {tuple(a.shape[-2:])} px: not comparable", file=sys.stderr
        )
        return
    worst = round(float((a - b).abs().max()) * 255)
    like = f" (both as {fmt})" if fmt and fmt != output_format(remade) else ""
    print(f"painterly: largest difference from {original}{like}: {worst}/255", file=sys.stderr)
