"""Recipes: every output carries what made it, so that it can be made again.

A recipe is a JSON object: the resolved :class:`~painterly.config.Config` (seed and precision
included), the inputs (name, absolute path and SHA-256 of each file; the SHA-256 of the decoded
pixels), the weights (source and file hash), the painterly, torch and Python versions, the
device, timings and how the run ended. :func:`painterly.images.save_image` embeds it:

* PNG: an ``iTXt`` chunk with the key ``painterly:recipe``;
* JPEG and WebP: the EXIF ``UserComment`` tag (0x9286, ASCII JSON);
* any other format: a sidecar file beside the image, ``OUT.tiff.json``.

:func:`read_recipe` finds it again in any of those places; ``painterly reproduce`` re-runs it.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .config import INIT_KEYWORDS, Config
from .files import file_digest

__all__ = [
    "RECIPE_KEY",
    "RecipeError",
    "input_record",
    "make_recipe",
    "painterly_version",
    "pixels_digest",
    "read_recipe",
    "recipe_config",
    "sidecar_path",
]

#: The PNG text key (and the recipe's "format" value).
RECIPE_KEY = "painterly:recipe"
_VERSION = 1
_EXIF_IFD, _USER_COMMENT = 0x8769, 0x9286
_ASCII = b"ASCII\0\0\0"  # EXIF's 8-byte character-code prefix of a UserComment


class RecipeError(ValueError):
    """An image has no readable recipe, or its recipe cannot be used here. Names the file."""


def pixels_digest(image: torch.Tensor) -> str:
    """SHA-256 of an image tensor's float32 values (any shape, on any device), as hex."""
    data = image.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.sha256(data).hexdigest()


def input_record(
    image: torch.Tensor, path: str | os.PathLike[str] | None = None, name: str | None = None
) -> dict[str, Any]:
    """How one input is described in a recipe.

    Args:
        image: the decoded input as given to the run, (1, 3, H, W) in [0, 1].
        path: its file, if it came from one (recorded as an absolute path with its SHA-256).
        name: a display name (default: the file's name).
    """
    record: dict[str, Any] = {
        "name": name or (Path(path).name if path is not None else None),
        "width": int(image.shape[-1]),
        "height": int(image.shape[-2]),
        "pixels_sha256": pixels_digest(image),
    }
    if path is not None:
        record["path"] = str(Path(path).resolve())
        record["sha256"] = file_digest(path)
    return record


def make_recipe(
    config: Config,
    *,
    seed: int,
    device: str,
    precision: str,
    inputs: dict[str, dict[str, Any]],
    elapsed: float,
    steps: int,
    stop_reason: str,
    loss: float,
    weights: dict[str, str],
    threads: int | None = None,
    kernels: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The recipe of a finished (or stopped) run.

    The config is stored as resolved: ``seed``, ``precision`` and ``device`` as the run used
    them, file options (``init``, ``weights``, ``style_masks``) as absolute paths. ``weights``
    is ``{"source": …, "sha256": …}`` of the weights the network was built from; ``threads``
    the CPU threads it ran on (recorded as the config's ``threads``); ``kernels`` the kernel
    plan it computed with (:func:`painterly.kernels.plan_record`), or ``None``.
    """
    resolved = config.replace(seed=seed, precision=precision, device=device, threads=threads)
    if resolved.init not in INIT_KEYWORDS:
        resolved = resolved.replace(init=str(Path(resolved.init).resolve()))
    if resolved.weights not in ("embedded", "torchvision"):
        resolved = resolved.replace(weights=str(Path(resolved.weights).resolve()))
    for name in ("temporal_target", "temporal_mask"):  # a video frame's files
        if getattr(resolved, name) is not None:
            resolved = resolved.replace(**{name: str(Path(getattr(resolved, name)).resolve())})
    if resolved.style_masks:
        masks = tuple(str(Path(m).resolve()) for m in resolved.style_masks)
        resolved = resolved.replace(style_masks=masks)
    return {
        "format": RECIPE_KEY,
        "version": _VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": resolved.to_dict(),
        "inputs": inputs,
        "weights": dict(weights),
        "versions": {
            "painterly": painterly_version(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "device": device,
        "precision": precision,
        "kernels": dict(kernels) if kernels is not None else None,
        "run": {
            "seconds": round(elapsed, 3),
            "steps": steps,
            "stop_reason": stop_reason,
            "loss": loss,
            "complete": stop_reason not in ("interrupted", "stopped", "non-finite"),
        },
    }


def painterly_version() -> str:
    """This painterly's version ("0.0.0" when run from a source tree that is not installed)."""
    try:
        return importlib.metadata.version("painterly")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "0.0.0"


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where the recipe of an image in a format without metadata goes: ``out.tiff.json``."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def embed_options(recipe: dict[str, Any], fmt: str) -> dict[str, Any] | None:
    """Pillow ``save`` keyword arguments that carry ``recipe`` in format ``fmt``; ``None`` when
    the format has no place for it (then a sidecar is written)."""
    text = json.dumps(recipe, ensure_ascii=True, separators=(",", ":"))
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_itxt(RECIPE_KEY, text)
        return {"pnginfo": info}
    if fmt in ("JPEG", "WEBP") and len(text) < 60_000:  # EXIF lives in one 64 KiB segment
        exif = Image.Exif()
        exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = _ASCII + text.encode("ascii")
        return {"exif": exif}
    return None


def read_recipe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The recipe of an image written by painterly: from its PNG text, its EXIF UserComment or
    its sidecar ``.json`` (``path`` may also be the sidecar itself).

    Raises:
        RecipeError: no recipe found, or not one this version reads.
    """
    p = Path(path)
    text: str | None = None
    if p.suffix.lower() == ".json" and p.is_file():  # the sidecar itself
        return _parse(p.read_text(encoding="utf-8"), p)
    try:
        with Image.open(p) as img:
            text = img.info.get(RECIPE_KEY) or getattr(img, "text", {}).get(RECIPE_KEY)
            if text is None:
                comment = img.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
                if isinstance(comment, bytes) and comment.startswith(_ASCII):
                    text = comment[len(_ASCII) :].decode("ascii", "replace")
    except (OSError, SyntaxError, ValueError) as exc:
        if not sidecar_path(p).is_file():
            raise RecipeError(f"{p}: cannot read this image ({exc})") from None
    if text is None and sidecar_path(p).is_file():
        text = sidecar_path(p).read_text(encoding="utf-8")
    if text is None:
        raise RecipeError(f"{p}: no painterly recipe in this file (nor a {sidecar_path(p).name})")
    return _parse(text, p)


def _parse(text: str, p: Path) -> dict[str, Any]:
    """A recipe from its JSON text, checked for the parts ``reproduce`` relies on."""
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{p}: its recipe is not valid JSON ({exc})") from None
    if not isinstance(recipe, dict) or recipe.get("format") != RECIPE_KEY:
        raise RecipeError(f"{p}: not a painterly recipe")
    if recipe.get("version") != _VERSION:
        raise RecipeError(f"{p}: recipe version {recipe.get('version')!r}; this reads {_VERSION}")
    inputs = recipe.get("inputs")
    if not isinstance(recipe.get("config"), dict):
        raise RecipeError(f'{p}: its recipe has no options ("config")')
    if not isinstance(inputs, dict) or not all(isinstance(v, dict) for v in inputs.values()):
        raise RecipeError(f'{p}: its recipe does not describe its input images ("inputs")')
    if "content" not in inputs or "style" not in inputs:
        raise RecipeError(f"{p}: its recipe names no content or no style image")
    if not isinstance(recipe.get("run", {}), dict):
        raise RecipeError(f'{p}: its recipe\'s "run" is not an object')
    return recipe


def recipe_config(recipe: dict[str, Any]) -> Config:
    """The :class:`Config` a recipe was made with.

    Raises:
        RecipeError: options this painterly does not know or accept.
    """
    from .config import ConfigError

    try:
        return Config.from_dict(before_issue_12(recipe["config"]))
    except (KeyError, TypeError, ConfigError) as exc:
        raise RecipeError(f"the recipe's options do not work here: {exc}") from None


#: Options added with the recipe of issue 12, and the values that made the pictures before.
_ADDED_IN_ISSUE_12 = {"init_colors": "content", "tv_per_pixel": False, "hist_weight": 1.0}


def before_issue_12(options: dict[str, Any]) -> dict[str, Any]:
    """A recipe's options as they were meant when it was written: one made before issue 12's
    default (it lacks ``init_colors``) gets the values then in force for the new options, and
    its automatic ladder (``scales`` ``None``) spelled out as it was then: one scale up to
    1024 px; above, scales from 128–256 px with the steps halving, at least 20. Newer options
    are returned unchanged."""
    if not isinstance(options, dict) or "init_colors" in options:
        return options
    old = {**_ADDED_IN_ISSUE_12, **options}
    if old.get("scales", 0) is None and isinstance(old.get("size"), int):
        size, steps = old["size"], old.get("iterations", 150)
        count = 1 if size <= 1024 else 1 + math.ceil(math.log2(size / 256))
        floor = min(steps, 20)
        old["scales"] = count
        if old.get("scale_iterations") is None:
            old["scale_iterations"] = [max(round(steps / 2**i), floor) for i in range(count)]
    return old
