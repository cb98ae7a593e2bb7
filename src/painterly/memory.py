"""How much memory a run needs and how much there is, checked before any compute.

The estimate is a model fitted to whole-process peaks measured by benchmarks/bench_speed.py on
the CPU (2026-11-29: 0.74 / 1.73 GiB at 512 / 1024 px in bf16, 0.96 / 2.22 GiB in fp32): bytes
per output pixel for the network's activations and their gradients, plus the optimiser's
vectors. Checked on 2026-11-30 with Winograd and the Grams keeping bf16 features: a whole
default 1024 × 768 run (L-BFGS history full) peaked at 2.17 GiB; this model says 2.16 GiB.

Refitted for float32 on 2026-12-04 (Intel Xeon, avx2 and avx512f yes, avx512_bf16 and amx no;
one scale, 3–6 steps, peak resident memory of the whole process): issue 17's float32 fast path
(channels_last, Winograd F(4×4)/F(6×6)) peaked at 1.21 / 1.89 / 4.07 / 7.44 GiB at 256 / 512 /
1024 / 1536 px, float32 NCHW direct at 0.67 / 1.14 / 3.45 / 6.00 GiB, where the model of before
said 0.56 / 0.90 / 2.26 / 4.40 GiB: ~3700–4000 bytes a pixel from 512 px on, and the
transformed kernels a fixed ~0.7 GiB (:data:`_KERNEL_BYTES`). A model that underestimates lets
a run start that the memory cannot hold, so it is fitted to the larger of the two paths.
Every face (command line, web app, batch) checks through :func:`check_memory`.
"""

from __future__ import annotations

import ctypes
import gc
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .config import Config
from .layers import tile_halo

__all__ = [
    "LIBRARY_CACHE_CAPACITIES",
    "MemoryCheck",
    "NotEnoughMemoryError",
    "available_memory",
    "bound_library_caches",
    "check_memory",
    "choose_tile",
    "estimate_peak_memory",
    "estimate_tiled_peak",
    "keep_freed_pages",
    "release_memory",
    "resident_memory",
]

_GIB = 2**30
#: The process before any picture: Python, torch's libraries, the network's weights.
_BASE_BYTES = 0.5 * _GIB
#: The Winograd kernel transforms a plan keeps, at most
#: :data:`painterly.winograd.KERNEL_CACHE_BYTES` (768 MiB: a float32 plan with F(6×6) from
#: conv2_1 and its backward's kernels holds 700 MiB); bf16's Winograd from conv3_1, ~100 MiB.
#: A float32 direct plan keeps none, and is overestimated by this much.
_KERNEL_BYTES = {"bf16": 0.1 * _GIB, "fp32": 0.75 * _GIB}
#: The network's activations and their gradients, bytes per pixel of the scale (bf16: fitted
#: 2026-11-29; fp32: 2026-12-04, the fast path of issue 17, the module docstring).
_ACTIVATION_BYTES_PER_PIXEL = {"bf16": 1800, "fp32": 4000}
#: A tiled run's bytes per pixel of the whole picture besides the optimiser's vectors: the
#: content and style images, the content features P^l, the gradient being summed, the masks.
_TILED_WHOLE_BYTES_PER_PIXEL = 160
#: The smallest owned tile :func:`choose_tile` offers, in halos: below it the halos' work
#: outweighs the tile's own.
_MIN_TILE_HALOS = 2


class NotEnoughMemoryError(Exception):
    """The run would not fit in the memory available (the command line's exit code 3).

    Attributes:
        check: the numbers behind the refusal.
    """

    def __init__(self, message: str, check: MemoryCheck) -> None:
        super().__init__(message)
        self.check = check


def estimate_peak_memory(config: Config, height: int, width: int, precision: str) -> int:
    """Estimated peak memory in bytes of a run whose final scale is ``height`` × ``width`` px.

    The largest scale dominates: activations (bf16 or fp32) plus the optimiser's state, which
    for L-BFGS is up to 2·history vectors of the image's size (float32, :func:`_vectors`) and
    for Adam 2; on top, a fixed part: the process and the kernel transforms
    (:data:`_KERNEL_BYTES`).
    """
    pixels = height * width
    vectors = _vectors(config)
    per_pixel = _ACTIVATION_BYTES_PER_PIXEL.get(precision, 4000) + vectors * 3 * 4
    return int(_fixed_bytes(precision) + per_pixel * pixels)


def _fixed_bytes(precision: str) -> int:
    """Bytes a run of ``precision`` holds whatever its size: the process and the kernels."""
    return int(_BASE_BYTES + _KERNEL_BYTES.get(precision, _KERNEL_BYTES["fp32"]))


def _vectors(config: Config) -> int:
    """Image-sized float32 vectors (of 3 channels) the optimiser keeps at the top scale.

    L-BFGS (torch's, one iteration per step, a new optimiser per scale) adds one pair (s, y)
    per step after the first, at most ``lbfgs_history`` pairs: 2·min(history, steps − 1) pairs
    of the top scale's steps, + 4 (direction, previous and current gradient, the line search's
    start). The default ladder's top scale has 10 steps, so its 20-pair history holds 9 pairs
    (22 vectors, not 44: 3.1 GiB at 4096 × 3072 px, not 6.2). Adam: 6.
    """
    if config.optimizer != "lbfgs":
        return 6
    steps = config.ladder[-1][1]
    return 2 * min(config.lbfgs_history, max(steps - 1, 0)) + 4


def estimate_tiled_peak(config: Config, height: int, width: int, precision: str, tile: int) -> int:
    """Estimated peak memory in bytes of a run whose final scale is ``height`` × ``width`` px,
    evaluated in tiles of ``tile`` px (:mod:`painterly.tiles`).

    The network's activations are those of one tile's input, the owned block plus the halo on
    each side (:func:`painterly.layers.tile_halo`, 80 px for ``relu5_1``), at the untiled
    model's bytes per pixel; the whole picture keeps the optimiser's vectors and the images
    and features the passes read (:data:`_TILED_WHOLE_BYTES_PER_PIXEL`).
    """
    layers = (*config.content_layers, *config.style_layers)
    halo = tile_halo(layers)
    side = max(config.min_side, tile // config.min_side * config.min_side)
    crop = min(height, side + 2 * halo) * min(width, side + 2 * halo)
    activations = _ACTIVATION_BYTES_PER_PIXEL.get(precision, 4000) * crop
    whole = (_vectors(config) * 3 * 4 + _TILED_WHOLE_BYTES_PER_PIXEL) * height * width
    return int(_fixed_bytes(precision) + activations + whole)


def choose_tile(config: Config, height: int, width: int, precision: str, have: int) -> int | None:
    """The largest tile (px, a multiple of the deepest stride) whose tiled estimate fits in
    ``have`` bytes, trying 2, 3, 4, … tiles along the longest side (equal tiles, so that
    none is a thin strip); None when even tiles of :data:`_MIN_TILE_HALOS` halos do not fit
    (the whole-image vectors alone are too many), and for ``style_loss="gram+hist"``, whose
    histogram loss is no sum over positions (it sorts each channel over the whole picture)."""
    if config.style_loss == "gram+hist":
        return None
    stride = config.min_side
    smallest = _MIN_TILE_HALOS * max(tile_halo((*config.content_layers, *config.style_layers)), 1)
    longest = max(height, width)
    for count in range(2, longest // stride + 2):
        tile = -(-longest // (count * stride)) * stride
        if tile < smallest:
            return None
        if estimate_tiled_peak(config, height, width, precision, tile) <= have:
            return tile
    return None


def available_memory(device_type: str, device_index: int | None = None) -> int | None:
    """Bytes free for a run: CUDA's free memory, or Linux's ``MemAvailable``; None if unknown.

    Args:
        device_type: ``"cpu"`` or ``"cuda"``; device_index: the GPU, for CUDA.
    """
    if device_type == "cuda":
        import torch  # only for a GPU; the CPU path stays torch-free

        return int(torch.cuda.mem_get_info(device_index)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def resident_memory() -> int | None:
    """This process's resident memory in bytes (Linux's ``VmRSS``), or None where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _find_glibc(name: str, *argtypes: type) -> Callable[..., int] | None:
    """glibc's function ``name`` (``malloc_trim``, ``mallopt``), or None (musl, macOS,
    Windows: nothing to call)."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - no C library to open (Windows)
        return None
    function = getattr(libc, name, None)
    if function is not None:
        function.argtypes, function.restype = list(argtypes), ctypes.c_int
    return function


_MALLOC_TRIM = _find_glibc("malloc_trim", ctypes.c_size_t)
_MALLOPT = _find_glibc("mallopt", ctypes.c_int, ctypes.c_int)
#: mallopt's parameters (malloc.h) and glibc's defaults for them.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_KEEP = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2**31 - 1}
_GLIBC_DEFAULT = {_M_MMAP_MAX: 65536, _M_TRIM_THRESHOLD: 128 * 1024}
_KEEPING = {"runs": 0}
_KEEPING_LOCK = threading.Lock()


@contextmanager
def keep_freed_pages() -> Iterator[None]:
    """While inside (a run), freed memory stays mapped for the next tensor to reuse: glibc's
    ``mallopt`` puts every block in its heaps (``M_MMAP_MAX`` 0) and never shrinks them
    (``M_TRIM_THRESHOLD`` 2 GiB); on leaving the last of overlapping runs, glibc's defaults
    come back and the run's :func:`release_memory` returns what is free. Where there is no
    glibc it does nothing.

    Why (issue 17): glibc gives each block over 32 MiB (a 512 px run's first-block feature
    maps and their gradients: 50 MB each) its own mmap and unmaps it when freed, so every
    step faulted ~0.7 GB of fresh pages in again, 160k–190k page faults: ~0.5 s of a 2.2 s
    step at 512 px on the project's 2-core AMD EPYC (AVX2, no AVX-512;
    benchmarks/bench_kernels.py). Kept, a step after the first faults no page in.
    """
    if _MALLOPT is None:
        yield
        return
    with _KEEPING_LOCK:
        _KEEPING["runs"] += 1
        if _KEEPING["runs"] == 1:
            for parameter, value in _KEEP.items():
                _MALLOPT(parameter, value)
    try:
        yield
    finally:
        with _KEEPING_LOCK:
            _KEEPING["runs"] -= 1
            if not _KEEPING["runs"]:
                for parameter, value in _GLIBC_DEFAULT.items():
                    _MALLOPT(parameter, value)


#: Bounds on the per-shape caches of PyTorch's CPU kernel libraries, applied by
#: :func:`bound_library_caches` unless the environment already sets them. oneDNN keeps every
#: primitive it built (1024 by default) and ideep, PyTorch's layer over it, keeps its own
#: computations (1024), each holding its primitive: a process painting pictures of many sizes
#: grew ~4 MB a job with bf16 (AMD EPYC Zen 4: avx2, avx512f, avx512_bf16 yes, amx no; 40
#: jobs of 48–160 px: +150 MB, still climbing) and ~1 MB with float32. Bounded, it levelled
#: off after ~6 jobs (+12 MB). One 512 px step uses 57 distinct primitives (bf16 Winograd)
#: to 104 (float32 direct), and at most 26 convolutions (13 layers, forward and backward) of
#: ideep's; none is built again in a step after the first two.
LIBRARY_CACHE_CAPACITIES = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "256", "LRU_CACHE_CAPACITY": "64"}


def bound_library_caches() -> dict[str, str]:
    """Bound oneDNN's and ideep's per-shape caches (:data:`LIBRARY_CACHE_CAPACITIES`) where the
    environment does not set them already. Both libraries read these variables once, when
    their first primitive is built, so this must run before a process's first convolution
    (importing :mod:`painterly` does it). Returns the variables' values now in force."""
    for name, value in LIBRARY_CACHE_CAPACITIES.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in LIBRARY_CACHE_CAPACITIES}


#: :func:`release_memory` trims once the resident memory is this far above its level after
#: the last trim: a long-lived process stays within it of its trimmed level. 32 MiB made the
#: test suite's many small runs 35 % slower (each trim's pages faulted in again by the next run,
#: 0.15 s of collection); 256 MiB trims a new-network-per-call loop every ~6 calls.
TRIM_ABOVE = 256 * 2**20
_AFTER_TRIM = {"bytes": 0}


def release_memory(force: bool = False) -> bool:
    """Hand the memory a finished run freed back to the operating system, once the resident
    memory is :data:`TRIM_ABOVE` (256 MiB) above its level after the last trim (or always, with
    ``force``): Python's reference cycles collected, then glibc's ``malloc_trim(0)``, which
    returns the free pages of every malloc arena (not only the top of the heap). Returns
    whether it trimmed.

    Why (issue 16): a run's tensors of many sizes are freed into glibc's heaps, which keep the
    pages; once its mmap threshold has grown (glibc raises it to the largest block freed, up to
    32 MiB), later large tensors come from the heaps too, and jobs of different sizes leave
    holes no later job fits. On the project's 2-core AMD EPYC 30 ``painterly.stylize`` calls
    at 48–160 px grew by 43 MB a call; trimmed, they level off
    (``benchmarks/bench_memory.py``). A trim takes ~15 ms and the collection ~0.15 s, and the
    next run faults its pages in again: hence the threshold. Without the collection the trim
    freed too little (a 7-job test grew 138 MB). Where there is no glibc it does nothing.
    """
    if _MALLOC_TRIM is None:
        return False
    now = resident_memory()
    if not force and now is not None and now < _AFTER_TRIM["bytes"] + TRIM_ABOVE:
        return False
    gc.collect()  # a network or targets held only by a reference cycle: freed first
    _MALLOC_TRIM(0)
    _AFTER_TRIM["bytes"] = resident_memory() or 0
    return True


@dataclass(frozen=True)
class MemoryCheck:
    """The outcome of :func:`check_memory`.

    Attributes:
        width, height: the final output's size in px. need: estimated peak, bytes.
        have: bytes available (None: unknown, then the run is allowed).
        fits: the largest ``size`` (px, a multiple of 16) whose untiled estimate fits.
        tile: the tile (px) the run is evaluated in (``config.tile``, or chosen here because
            the untiled run would not fit), None for an untiled run; ``need`` is then the
            tiled estimate. whole: the untiled estimate, bytes.
    """

    width: int
    height: int
    need: int
    have: int | None
    fits: int
    tile: int | None = None
    whole: int | None = None

    @property
    def ok(self) -> bool:
        """True when the run fits (or the memory available is unknown)."""
        return self.have is None or self.need <= self.have

    def describe(self, where: str) -> str:
        """The numbers in one clause: "a 1024x768 px run needs about 2.2 GiB, but 0.7 GiB is
        available on cpu"."""
        have = 0 if self.have is None else self.have
        return (
            f"a {self.width}x{self.height} px run needs about {self.need / _GIB:.1f} GiB, but "
            f"{have / _GIB:.1f} GiB is available on {where}"
        )


def check_memory(
    config: Config,
    precision: str,
    content_size: tuple[int, int],
    have: int | None,
    downscale: bool = False,
    where: str = "this machine",
) -> tuple[int, MemoryCheck]:
    """Check a run against the memory available, before any compute.

    Args:
        config: the run's options (``size``, optimiser, history, ladder).
        precision: ``"fp32"`` or ``"bf16"``, as resolved for the run.
        content_size: the content image's (width, height) in px, e.g. from the file's header.
        have: bytes available (:func:`available_memory`); None skips the check.
        downscale: instead of refusing, return the largest size that fits.
        where: the device, for the message (``"cpu"``, ``"cuda:0"``).

    When the untiled run would not fit and ``config.tile`` is None, the run is evaluated in
    tiles (:func:`choose_tile`) if some tile fits: ``check.tile`` says which, and the caller
    sets ``config.tile`` to it. Only when no tile fits either is the run refused or shrunk.

    Returns:
        (the size to paint at, the check's numbers).

    Raises:
        NotEnoughMemoryError: the estimate exceeds ``have`` (and ``downscale`` is off, or even
            the smallest useful size would not fit); the message names both numbers and a
            ``--size`` that fits, or says that none does.
    """
    w, h = content_size
    scale = config.size / max(w, h)
    width, height = max(1, round(w * scale)), max(1, round(h * scale))
    whole = estimate_peak_memory(config, height, width, precision)
    fixed = estimate_peak_memory(config, 0, 0, precision)
    fits = config.size
    if have is not None and whole > have:
        ratio = max(have - fixed, 0) / max(whole - fixed, 1)
        fits = int(config.size * math.sqrt(ratio)) // 16 * 16
    tile = config.tile
    if tile is None and have is not None and whole > have:
        tile = choose_tile(config, height, width, precision, have)
    need = whole
    if tile is not None and max(height, width) > tile:
        need = estimate_tiled_peak(config, height, width, precision, tile)
    check = MemoryCheck(width, height, need, have, fits, tile, whole)
    if check.ok:
        return config.size, check
    check = MemoryCheck(width, height, whole, have, fits)
    if downscale and fits >= config.min_side * 2 ** (len(config.ladder) - 1):
        return fits, check
    if fits >= config.min_side:
        hint = f"--size {fits} should fit (or add --downscale-to-fit)"
    else:  # the process and the kernels alone would not fit
        hint = f"no size fits: even the smallest run needs about {fixed / _GIB:.1f} GiB"
    raise NotEnoughMemoryError(f"{check.describe(where)}; {hint}", check)
