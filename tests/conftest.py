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
