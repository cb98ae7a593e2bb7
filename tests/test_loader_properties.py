"""A property test of the loader: any mode, size and EXIF orientation gives the upright picture.

The expected pixels are computed here with numpy alone (the EXIF spec's eight orientations and
each mode's meaning), not with the Pillow calls the loader itself uses.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from painterly.images import load_image

#: EXIF orientation k → the stored pixels for a picture that displays as ``d`` (H, W, …).
TO_STORED = {
    1: lambda d: d,
    2: lambda d: d[:, ::-1],
    3: lambda d: d[::-1, ::-1],
    4: lambda d: d[::-1, :],
    5: lambda d: d.swapaxes(0, 1),
    6: lambda d: np.rot90(d, k=1),  # displayed after a 90° clockwise turn
    7: lambda d: np.rot90(d, k=2).swapaxes(0, 1),
    8: lambda d: np.rot90(d, k=-1),
}

MODES = ["1", "L", "LA", "P", "PA-trns", "RGB", "RGBA", "I;16"]


def _make(mode: str, display: np.ndarray, rng: np.random.Generator):
    """(stored Pillow image, expected RGB floats in [0, 1] as displayed) for a mode."""
    h, w = display.shape[:2]
    if mode == "1":
        bits = display[..., 0] > 127
        expected = np.repeat(bits[..., None].astype(np.float32), 3, axis=2)
        return bits, "1", expected
    if mode == "L":
        gray = display[..., 0]
        return gray, "L", np.repeat(gray[..., None] / 255.0, 3, axis=2)
    if mode == "I;16":
        deep = rng.integers(0, 65536, size=(h, w), dtype=np.uint16)
        return deep, "I;16", np.repeat(deep[..., None] / 65535.0, 3, axis=2)
    if mode in ("P", "PA-trns"):
        palette = rng.integers(0, 256, size=(256, 3), dtype=np.uint8)
        index = display[..., 0]
        expected = palette[index] / 255.0
        if mode == "PA-trns":  # index 0 is transparent: white shows through
            expected[index == 0] = 1.0
        return (index, palette, mode == "PA-trns"), "P", expected
    if mode in ("LA", "RGBA"):
        alpha = display[..., 3].astype(np.float64) / 255.0
        colour = display[..., :1] if mode == "LA" else display[..., :3]
        over_white = colour / 255.0 * alpha[..., None] + (1.0 - alpha[..., None])
        expected = np.broadcast_to(over_white, (h, w, 3)) if mode == "LA" else over_white
        pixels = display[..., [0, 3]] if mode == "LA" else display
        return pixels, mode, expected
    return display[..., :3], "RGB", display[..., :3] / 255.0


def _encode(data, mode: str, orientation: int) -> bytes:
    if mode == "P":
        index, palette, transparent = data
        img = Image.fromarray(np.ascontiguousarray(TO_STORED[orientation](index)), "L")
        img = img.convert("P")
        img.putpalette(palette.flatten().tolist())
        if transparent:
            img.info["transparency"] = 0
    elif mode in ("1", "I;16"):  # from bool and uint16 arrays: Pillow infers 1 / I;16
        img = Image.fromarray(np.ascontiguousarray(TO_STORED[orientation](data)))
    else:
        img = Image.fromarray(np.ascontiguousarray(TO_STORED[orientation](data)), mode)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    options = {"transparency": 0} if mode == "P" and data[2] else {}
    img.save(buffer, format="PNG", exif=exif, **options)
    return buffer.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(MODES),
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    orientation=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_mode_size_and_orientation_loads_upright_with_its_true_values(
    tmp_path_factory, mode: str, height: int, width: int, orientation: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    display = rng.integers(0, 256, size=(height, width, 4), dtype=np.uint8)
    data, pil_mode, expected = _make(mode, display, rng)
    path = tmp_path_factory.mktemp("prop") / "image.png"
    path.write_bytes(_encode(data, pil_mode, orientation))

    t = load_image(path)

    assert t.shape == (1, 3, height, width) and t.dtype == torch.float32
    got = t[0].permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() <= 1.01 / 255, (mode, orientation)
