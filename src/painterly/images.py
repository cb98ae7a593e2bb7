"""Images in and out: decode any common file to an RGB float tensor, resize, save atomically.

Tensors here are RGB, shape (1, 3, H, W), float32, values in [0, 1].

Decoding: EXIF orientation is applied; an embedded ICC profile is converted to sRGB; 16-bit
and 32-bit integer data are scaled by their real bit depth; alpha (RGBA, LA, PA, palette with
transparency) is composited over a white background; animated files give their first frame
with a warning.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps

from .files import atomic_write

__all__ = [
    "BACKGROUND",
    "ImageError",
    "ImageSource",
    "edge_statistics",
    "load_alpha",
    "load_image",
    "output_format",
    "resize_longest",
    "resize_to",
    "save_image",
    "to_pil",
    "to_tensor",
]

ImageSource: TypeAlias = "str | os.PathLike[str] | Image.Image | torch.Tensor"

#: Colour that transparent pixels are composited over (white, like paper).
BACKGROUND = (255, 255, 255)


class ImageError(ValueError):
    """An image cannot be read, or an output path cannot take an image. Names the file."""


def _to_srgb(img: Image.Image) -> Image.Image:
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L", "LA"):
        return img
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        dst = ImageCms.createProfile("sRGB")
        out_mode = "RGBA" if img.mode in ("RGBA", "LA") else "RGB"
        if img.mode == "LA":
            img = img.convert("RGBA")
        converted = ImageCms.profileToProfile(img, src, dst, outputMode=out_mode)
        return converted if converted is not None else img
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img  # a broken profile: keep the pixels as they are


def _pil_to_array(img: Image.Image) -> np.ndarray:
    """RGB float32 array (H, W, 3) in [0, 1] from any Pillow mode."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        data = np.asarray(img, dtype=np.float64)
        depth = (
            65535.0 if img.mode.startswith("I;16") or data.max(initial=0) <= 65535 else 2**32 - 1
        )
        gray = np.clip(data / depth, 0.0, 1.0).astype(np.float32)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "F":
        data = np.asarray(img, dtype=np.float32)
        gray = np.clip(data / (255.0 if data.max(initial=0) > 1.0 else 1.0), 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    elif img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.float32) / 255.0


# ISO-BMFF brands (bytes 8-12 after "ftyp") of formats Pillow cannot read without a plugin.
_BMFF_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


def _unsupported_container(path: Path) -> str | None:
    """Name the format of a file Pillow could not identify, when its header says what it is."""
    with path.open("rb") as f:
        head = f.read(16)
    if head[4:8] == b"ftyp":
        return _BMFF_BRANDS.get(head[8:12], "an ISO media file")
    return None


def _decode(path: Path) -> torch.Tensor:
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        with Image.open(path) as img:
            if getattr(img, "is_animated", False):
                warnings.warn(f"{path} is animated; using its first frame", stacklevel=3)
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img) or img
            img = _to_srgb(img)
            array = _pil_to_array(img)
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{path}: refusing a decompression bomb ({exc}); use a smaller image"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        if path.stat().st_size == 0:
            reason = "empty file"
        elif container := _unsupported_container(path):
            reason = (
                f"unsupported format ({container}): this Pillow has no decoder for it; "
                "convert it to PNG or JPEG"
            )
        else:
            reason = f"not a readable image ({exc})"
        raise ImageError(f"{path}: {reason}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_tensor(image: Image.Image) -> torch.Tensor:
    """A Pillow image as RGB (1, 3, H, W) float32 in [0, 1] (same rules as :func:`load_image`)."""
    img = ImageOps.exif_transpose(image) or image
    array = _pil_to_array(_to_srgb(img))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()


def load_image(source: ImageSource) -> torch.Tensor:
    """Decode an image to RGB, shape (1, 3, H, W), float32, values in [0, 1].

    Args:
        source: a file path, a Pillow image, or a tensor of shape (3, H, W) or (1, 3, H, W)
            with values in [0, 1].

    Raises:
        ImageError: missing, empty, truncated or non-image file, or a tensor of the wrong
            shape or range. The message names the file.
    """
    if isinstance(source, torch.Tensor):
        t = source.detach().to("cpu", torch.float32)
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[:2] != (1, 3):
            raise ImageError(
                f"expected a tensor of shape (3, H, W) or (1, 3, H, W), got {tuple(source.shape)}"
            )
        if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1:
            raise ImageError("tensor images must be finite with values in [0, 1]")
        return t.contiguous()
    if isinstance(source, Image.Image):
        return to_tensor(source)
    return _decode(Path(source))


def load_alpha(path: str | os.PathLike[str]) -> torch.Tensor | None:
    """The alpha channel of an image file, upright like :func:`load_image`'s pixels.

    Returns:
        (1, 1, H, W) float32 in [0, 1] (1 = opaque), or ``None`` when the image has no alpha
        (modes RGBA, LA, PA, RGBa, La, and palette images with a transparent colour have one).

    Raises:
        ImageError: as :func:`load_image`.
    """
    load_image(path)  # the same checks and messages
    with Image.open(path) as img:
        img.seek(0)
        img.load()
        img = ImageOps.exif_transpose(img) or img
        has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            img.mode == "P" and "transparency" in img.info
        )
        if not has_alpha:
            return None
        alpha = np.asarray(img.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
    return torch.from_numpy(alpha.copy())[None, None]


def resize_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize (1, 3, H, W) to (1, 3, height, width): bicubic, antialiased, clamped to [0, 1]."""
    if image.shape[-2:] == (height, width):
        return image
    out = F.interpolate(
        image, size=(height, width), mode="bicubic", antialias=True, align_corners=False
    )
    return out.clamp_(0.0, 1.0)


def resize_longest(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so the longest side is ``size`` pixels, keeping the aspect ratio (up or down)."""
    h, w = image.shape[-2:]
    scale = size / max(h, w)
    return resize_to(image, max(1, round(h * scale)), max(1, round(w * scale)))


def to_pil(image: torch.Tensor) -> Image.Image:
    """A Pillow image from (1, C, H, W) or (C, H, W) in [0, 1], rounded to 8 bits: RGB for
    C = 3, RGBA for C = 4 (the fourth channel is alpha)."""
    t = image.detach().to("cpu", torch.float32)
    if t.dim() == 4:
        t = t[0]
    mode = {3: "RGB", 4: "RGBA"}.get(t.shape[0])
    if mode is None:
        raise ValueError(f"expected 3 or 4 channels, got a tensor of shape {tuple(image.shape)}")
    array = (t.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(array), mode)


def output_format(path: str | os.PathLike[str]) -> str:
    """The Pillow format an output path's extension asks for.

    Raises:
        ImageError: no extension, or one Pillow cannot write.
    """
    suffix = Path(path).suffix.lower()
    if not suffix:
        raise ImageError(f"{path}: add an extension (.png, .jpg, .webp, .tiff) to choose a format")
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise ImageError(f"{path}: cannot write {suffix} images; use .png, .jpg, .webp or .tiff")
    return fmt


def save_image(
    image: torch.Tensor | Image.Image,
    path: str | os.PathLike[str],
    recipe: dict[str, Any] | None = None,
) -> Path:
    """Write an image atomically (temporary file in the same folder, then rename).

    Args:
        image: (1, 3, H, W) / (3, H, W) tensor in [0, 1] (4 channels: RGBA), or a Pillow
            image.
        path: destination; the format follows the extension (png, jpg, webp, tiff, …).
        recipe: what made the image (:mod:`painterly.recipe`): embedded in PNG, JPEG and WebP
            files, written beside other formats as ``path + ".json"``. Default: the one a
            Pillow image from :func:`painterly.stylize` carries in ``image.info``, if any.

    Returns:
        The path written.

    Raises:
        ImageError: unknown extension, or the folder cannot be written.
    """
    from .recipe import RECIPE_KEY, embed_options, sidecar_path

    if recipe is None and isinstance(image, Image.Image) and RECIPE_KEY in image.info:
        recipe = json.loads(image.info[RECIPE_KEY])  # from painterly.stylize
    target = Path(path)
    fmt = output_format(target)
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    options: dict[str, Any] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    extra = embed_options(recipe, fmt) if recipe is not None else {}
    if target.is_dir():
        raise ImageError(f"{target}: is a folder; give a file name")
    try:
        atomic_write(target, lambda f: pil.save(f, format=fmt, **options, **(extra or {})))
        if extra is None:  # no room in this format: a sidecar
            text = json.dumps(recipe, indent=1).encode()
            atomic_write(sidecar_path(target), lambda f: f.write(text))
    except OSError as exc:
        raise ImageError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    return target


def edge_statistics(image: torch.Tensor, lines: int = 1, band: int = 8) -> dict[str, float]:
    """How the picture's outermost lines differ from the picture inside them, per side.

    For each side (``top``, ``bottom``, ``left``, ``right``), on the luminance Y = 0.299 R +
    0.587 G + 0.114 B (BT.601):

    - ``"<side>_brightness"``: the mean Y of the outer ``lines`` lines minus the mean Y of the
      ``band`` lines just inside them (a bright line along the edge: > 0; in [-1, 1]);
    - ``"<side>_energy"``: the mean squared difference of neighbouring pixels along the edge in
      the outer ``lines`` lines, divided by the same along the lines of the interior (more
      than ``lines + band`` from every edge): 1 where the edge is as busy as the interior.

    Args:
        image: (1, 3, H, W) or (3, H, W) in [0, 1], with H, W > 2 (lines + band).

    Raises:
        ValueError: an image too small for ``lines`` and ``band``.
    """
    x = image[0] if image.dim() == 4 else image
    y = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    inner = lines + band
    if min(y.shape) <= 2 * inner + 1:
        raise ValueError(f"image of {tuple(y.shape)} px is too small for {lines} + {band} lines")
    stats: dict[str, float] = {}
    sides = {"top": y, "bottom": y.flip(0), "left": y.T, "right": y.T.flip(0)}
    for side, t in sides.items():
        along = (t[:, 1:] - t[:, :-1]).square()  # row r: differences along line r
        stats[f"{side}_brightness"] = float(t[:lines].mean() - t[lines:inner].mean())
        stats[f"{side}_energy"] = float(along[:lines].mean() / along[inner:-inner].mean())
    return stats
