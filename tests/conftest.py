"""Shared fixtures: the real embedded weights and tiny real images (64-128 px)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from painterly.images import load_image, resize_longest
from painterly.weights import VGGWeights, load_weights

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CONTENT = EXAMPLES / "content" / "chelsea_cat.jpg"
STYLE = EXAMPLES / "style" / "starry_night.jpg"


def pan_frames(frames: int, shift: int = 2, size: int = 64) -> list[torch.Tensor]:
    """A bundled photo panned ``shift`` px per frame: ``frames`` windows of ``size`` × 48 px
    sliding right, each (1, 3, 48, size) in [0, 1] (the video tests' synthetic clip)."""
    wide = resize_longest(load_image(EXAMPLES / "content" / "tubingen.jpg"), size + shift * frames)
    return [wide[..., :48, k * shift : k * shift + size].contiguous() for k in range(frames)]


@pytest.fixture(scope="session")
def local_ray() -> Iterator[object]:
    """One local Ray cluster for the whole test session (batch's and video's Ray tests), on
    loopback only (see painterly.workers): the tests' cluster uses no network address."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def weights() -> VGGWeights:
    return load_weights("embedded")


@pytest.fixture(scope="session")
def content_small() -> torch.Tensor:
    return resize_longest(load_image(CONTENT), 96)


@pytest.fixture(scope="session")
def style_small() -> torch.Tensor:
    return resize_longest(load_image(STYLE), 96)


@pytest.fixture(scope="session", autouse=True)
def private_turns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests' runs take turns on the cores with each other (CLI subprocesses inherit the
    folder), not with a `painterly serve` or a run elsewhere on this computer (painterly.turns)."""
    before = os.environ.get("PAINTERLY_LOCK_DIR")
    os.environ["PAINTERLY_LOCK_DIR"] = str(tmp_path_factory.mktemp("locks"))
    yield
    if before is None:
        del os.environ["PAINTERLY_LOCK_DIR"]
    else:
        os.environ["PAINTERLY_LOCK_DIR"] = before


@pytest.fixture(scope="session", autouse=True)
def private_kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The kernel choice is measured once per test session into its own cache folder (CLI
    subprocesses inherit it), never read from or written to the user's."""
    before = os.environ.get("PAINTERLY_CACHE_DIR")
    os.environ["PAINTERLY_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("PAINTERLY_CACHE_DIR", None)
    else:
        os.environ["PAINTERLY_CACHE_DIR"] = before
