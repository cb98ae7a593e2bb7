"""Which kernels to run on this machine: chosen by measurement, cached per machine (issue 17).

The fastest way to compute VGG19's 3×3 convolutions depends on the CPU in ways its flags do not
tell: with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` a CPU still reports AVX-512, but
bf16 then runs emulated, 40× slower than float32; Winograd pays from ``conv3_1`` on in bf16 on one
CPU and from another layer in float32 on another. So ``auto`` times the candidates once per
machine, on random tensors of each layer's shape at a small size (about 1–3 s in all), and keeps
the fastest:

- float32, NCHW, direct (``F.conv2d``): the exact reference and the baseline;
- float32, channels_last, per layer direct or Winograd F(2×2), F(4×4) or F(6×6)
  (:mod:`painterly.winograd`; in float32 each is within ~1e-5 relative of the exact
  convolution, which the optimisation cannot notice), with :meth:`VGG19Features.set_plan`'s
  fused forward;
- bf16, channels_last, direct up to a layer and Winograd F(4×4) from it on (not before
  ``conv3_1``), or direct everywhere, whichever is fastest, and only where it is faster than the
  best float32 plan. The path before issue 17 was Winograd from ``conv3_1`` always; with AMX
  direct bf16 is faster on every layer (Intel Xeon, avx512_bf16 + amx_bf16: 512 px step 0.57
  s against 0.64 s). A short probe runs
  first, and bf16 is timed no further where it is slower there (emulated bf16).

Each layer shape's time is scaled to the layer's size at 512 × 384 px and multiplied by the
number of layers of that shape, so the totals estimate one forward + backward pass at that size.
The result is cached in ``kernels.json`` of the user's cache folder, under a key of CPU model,
torch version, thread count and the variables that cap the libraries' instruction sets (the
two above and ``MKL_ENABLE_INSTRUCTIONS``, which MKL, running float32 ``bmm``, reads). On CUDA
nothing is timed: bf16 from compute capability 8 (Ampere) on, direct convolutions (cuDNN
chooses its own algorithms).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from math import inf
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .vgg import VGG19Features
from .weights import CONV_NAMES
from .winograd import WinogradConv2d

__all__ = [
    "KernelPlan",
    "apply_plan",
    "cache_path",
    "choose_kernels",
    "cpu_flags",
    "cpu_model",
    "default_threads",
    "doctor_report",
    "plan_from_record",
    "plan_from_timings",
    "plan_record",
]

_FORMAT = "painterly-kernels"
#: 2: every candidate timed twice (a first call builds oneDNN's primitives; bf16 Winograd's
#: first calls made it look 6× slower than it is); 3: F(6×6) among the candidates, trial
#: patches of whole tiles (:data:`_TRIAL_SIDE`). Earlier versions' timings are measured again.
_VERSION = 3
#: The variables that cap the vector instructions of the three kernel libraries: ATen's own
#: kernels, oneDNN (convolutions) and MKL (``bmm``: Winograd's products). The first two leave
#: MKL on AVX-512 (``MKL_VERBOSE=1``; Intel Xeon, avx512f yes), so an AVX2 laptop is all three.
_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")

BF16_CANDIDATES = ("bf16-direct", "bf16-winograd4")

#: (C_in, C_out) of each conv layer of VGG19, and its feature maps' downscaling (1, 2, ... 16).
_SHAPES: dict[str, tuple[int, int, int]] = {}
for _name in CONV_NAMES:
    _block, _index = int(_name[4]), int(_name[6])
    _out = min(64 << (_block - 1), 512)
    _in = 3 if _name == "conv1_1" else (_out if _index > 1 else min(32 << (_block - 1), 512))
    _SHAPES[_name] = (_in, _out, 1 << (_block - 1))
#: Side of the square patch each block's layers are timed on: multiples of 12, whole tiles of
#: every F(m×m) (m = 2, 4, 6). At 32 and 16 px F(6×6) computed 27 % padding (6 tiles of 6 for
#: 32 px), and ``auto`` took it for slower than F(4×4) where it was not (issue 17).
_TRIAL_SIDE = {1: 60, 2: 48, 3: 36, 4: 24, 5: 24}
#: The size the estimates are for: the demo's 512 px picture at 4:3.
_REFERENCE = (384, 512)
#: bf16's path of before: Winograd F(4×4) from this layer on.
BF16_WINOGRAD_FROM = "conv3_1"

FP32_CANDIDATES = ("fp32-nchw-direct", "fp32-direct", "fp32-winograd2", "fp32-winograd4",
                   "fp32-winograd6")  # fmt: skip
#: What ``auto`` times. F(2×2) is left out: on the AMD EPYC (Zen 3, AVX2) of
#: benchmarks/README.md and on an Intel Xeon (avx512f yes, avx512_bf16 no) it was slower than
#: F(4×4) on every layer, and each candidate costs ~0.7 s of the first run. F(6×6) is in since
#: 2026-12-03: on that Xeon it made conv2_1/conv2_2 the fastest (a 512 px step 0.96-1.07 s
#: against 1.15-1.20 s with F(4×4) from conv1_2, benchmarks/README.md); its kernel transforms
#: take 64/36 of F(4×4)'s memory (:data:`painterly.winograd.KERNEL_CACHE_BYTES`).
#: ``measure_candidates`` takes F(2×2) too.
AUTO_CANDIDATES = (
    "fp32-nchw-direct",
    "fp32-direct",
    "fp32-winograd4",
    "fp32-winograd6",
    *BF16_CANDIDATES,
)

#: {(conv layer of a distinct shape, candidate): estimated ms at 512 × 384 px, all its layers}.
Timings = dict[tuple[str, str], float]


@dataclass(frozen=True)
class KernelPlan:
    """How to compute the network on one device.

    Attributes:
        precision: ``"fp32"`` or ``"bf16"`` (the convolutions; Grams and losses stay float32).
        algorithms: ``(conv layer, algorithm)`` for every layer not computed ``"direct"``;
            algorithms are those of :data:`painterly.vgg.ALGORITHMS`.
        channels_last: the network runs in channels_last memory format.
        decided: ``"measured"`` (timed now), ``"cached"`` (timed before, on this machine),
            ``"given"`` (precision and convolution both asked for), ``"rule"`` (CUDA) or
            ``"recipe"`` (the plan a picture's recipe recorded, for ``painterly reproduce``).
        timings: ``(layer, candidate, ms)``: the measurements it was chosen from, ms estimated
            for one forward + backward of all layers of that shape at 512 × 384 px.
    """

    precision: str
    algorithms: tuple[tuple[str, str], ...] = ()
    channels_last: bool = False
    decided: str = "given"
    timings: tuple[tuple[str, str, float], ...] = ()

    @property
    def convolution(self) -> str:
        """``"winograd"`` if any layer is computed by Winograd, else ``"direct"``."""
        return "winograd" if self.algorithms else "direct"

    @property
    def winograd_from(self) -> str | None:
        """The first conv layer not computed directly, or ``None``."""
        return self.algorithms[0][0] if self.algorithms else None

    def algorithm(self, layer: str) -> str:
        """The algorithm of a conv layer (``"direct"`` unless :attr:`algorithms` names it)."""
        return dict(self.algorithms).get(layer, "direct")

    def describe(self) -> str:
        """One line for a run's first line, e.g. ``fp32 channels_last, Winograd F(4×4) from
        conv3_1, measured``."""
        fmt = "channels_last" if self.channels_last else "NCHW"
        if not self.algorithms:
            conv = "direct"
        else:
            kinds = sorted({a for _, a in self.algorithms})
            tiles = "/".join(f"F({k[-1]}×{k[-1]})" for k in kinds)
            conv = f"Winograd {tiles} from {self.winograd_from}"
        return f"{self.precision} {fmt}, {conv}, {self.decided}"


def _plan_json(plan: KernelPlan) -> dict[str, Any]:
    return asdict(plan)


def _plan_from_json(data: Mapping[str, Any]) -> KernelPlan:
    """Raises KeyError, TypeError or ValueError on anything but :func:`_plan_json`'s output."""
    plan = KernelPlan(
        precision=str(data["precision"]),
        algorithms=tuple((str(n), str(a)) for n, a in data["algorithms"]),
        channels_last=bool(data["channels_last"]),
        decided=str(data["decided"]),
        timings=tuple((str(n), str(c), float(t)) for n, c, t in data["timings"]),
    )
    if plan.precision not in ("fp32", "bf16") or any(n not in _SHAPES for n, _ in plan.algorithms):
        raise ValueError("not a kernel plan")
    return plan


def plan_record(plan: KernelPlan) -> dict[str, Any]:
    """The plan as a recipe records it (JSON types; no timings): what a run computed with.

    ``{"precision": "fp32", "channels_last": True, "algorithms": [["conv3_1", "winograd4"], …],
    "decided": "measured", "describe": "fp32 channels_last, Winograd F(4×4) from conv3_1, …"}``
    """
    return {
        "precision": plan.precision,
        "channels_last": plan.channels_last,
        "algorithms": [list(pair) for pair in plan.algorithms],
        "decided": plan.decided,
        "describe": plan.describe(),
    }


def plan_from_record(record: Mapping[str, Any]) -> KernelPlan | None:
    """The plan a recipe recorded (:func:`plan_record`), marked ``decided="recipe"``, so that
    ``painterly reproduce`` computes with the kernels the picture was made with (a plan measured
    again could differ near a tie, and the pixels with it). ``None`` for a record that is not
    one (older recipes have none; a hand-edited one is not trusted)."""
    try:
        data = {**record, "decided": "recipe", "timings": ()}
        return _plan_from_json(data)
    except (KeyError, TypeError, ValueError):
        return None


# --- the machine ------------------------------------------------------------------------------


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per logical CPU ([] where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    cpus = []
    for block in text.strip().split("\n\n"):
        entry = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            entry[key.strip()] = value.strip()
        cpus.append(entry)
    return cpus


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere ``platform.processor()``)."""
    for cpu in _cpuinfo():
        if cpu.get("model name"):
            return cpu["model name"]
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> dict[str, bool]:
    """Whether the CPU reports avx2, avx512f, avx512_bf16 and amx (AMX tiles). Reported flags
    only: what runs fast is measured (module docstring)."""
    cpus = _cpuinfo()
    flags = set(cpus[0].get("flags", "").split()) if cpus else set()
    amx = "amx_tile" in flags or bool(getattr(torch.cpu, "_is_amx_tile_supported", bool)())
    bf16 = "avx512_bf16" in flags or bool(getattr(torch.cpu, "_is_avx512_bf16_supported", bool)())
    return {"avx2": "avx2" in flags, "avx512f": "avx512f" in flags, "avx512_bf16": bf16, "amx": amx}


def default_threads() -> int:
    """The physical cores this process may run on (one thread per core: the second hardware
    thread of a core only competes for its vector units); ``torch.get_num_threads()`` where
    ``/proc/cpuinfo`` does not tell."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    cores = {
        (cpu.get("physical id"), cpu.get("core id"))
        for cpu in _cpuinfo()
        if cpu.get("processor", "").isdigit() and int(cpu["processor"]) in allowed
    }
    if not cores or (None, None) in cores:
        return max(1, torch.get_num_threads())
    return len(cores)


def _cache_key(threads: int) -> str:
    parts = [cpu_model(), f"torch {torch.__version__}", f"{threads} threads"]
    parts += [f"{v}={os.environ.get(v, '')}" for v in _ENV]
    return " | ".join(parts)


def cache_path(cache_dir: Path | None = None) -> Path:
    """``kernels.json`` in ``cache_dir``, else ``$PAINTERLY_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/painterly``, else ``~/.cache/painterly``."""
    if cache_dir is None:
        if os.environ.get("PAINTERLY_CACHE_DIR"):
            cache_dir = Path(os.environ["PAINTERLY_CACHE_DIR"])
        elif os.environ.get("XDG_CACHE_HOME"):
            cache_dir = Path(os.environ["XDG_CACHE_HOME"]) / "painterly"
        else:
            cache_dir = Path.home() / ".cache" / "painterly"
    return Path(cache_dir) / "kernels.json"


def _read_cache(path: Path) -> dict[str, Any]:
    """The cache's entries ({key: timings}); {} for a missing, broken or foreign file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return {}
    if data.get("version") != _VERSION or not isinstance(data.get("entries"), dict):
        return {}
    entries: dict[str, Any] = data["entries"]
    return entries


def _cached_timings(path: Path, key: str) -> Timings | None:
    entry = _read_cache(path).get(key)
    try:
        timings = {(str(n), str(c)): float(t) for n, c, t in entry}  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    ok = all(n in _SHAPES and c in (*FP32_CANDIDATES, *BF16_CANDIDATES) for n, c in timings)
    return timings if timings and ok else None


def _write_cache(path: Path, key: str, timings: Timings) -> None:
    """Add this machine's timings, atomically (a temporary file renamed over the old one); a
    broken or foreign file is replaced. A cache that cannot be written is no error."""
    entries = _read_cache(path)
    entries[key] = [[n, c, t] for (n, c), t in sorted(timings.items())]
    data = {"format": _FORMAT, "version": _VERSION, "entries": entries}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kernels-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except OSError:
        return


# --- measuring --------------------------------------------------------------------------------


def _distinct_shapes() -> dict[str, list[str]]:
    """{first layer of a shape: all layers of that (C_in, C_out, scale)}."""
    groups: dict[tuple[int, int, int], list[str]] = {}
    for name in CONV_NAMES:
        groups.setdefault(_SHAPES[name], []).append(name)
    return {layers[0]: layers for layers in groups.values()}


def _module(candidate: str, c_in: int, c_out: int) -> tuple[nn.Module, torch.dtype, bool]:
    """(the layer, its dtype, channels_last) of a candidate, with random He-scaled kernels."""
    conv = nn.Conv2d(c_in, c_out, 3, padding=1).requires_grad_(False)
    dtype = torch.bfloat16 if candidate.startswith("bf16") else torch.float32
    if "winograd" in candidate:
        return WinogradConv2d(conv, dtype, m=int(candidate[-1]), keep=False), dtype, True
    cl = candidate != "fp32-nchw-direct"
    fmt = torch.channels_last if cl else torch.contiguous_format
    return conv.to(dtype=dtype, memory_format=fmt), dtype, cl  # type: ignore[call-overload]


def _trial_seconds(layer: str, candidate: str, cap_s: float) -> float:
    """Seconds of one forward + backward of ``layer``'s shape by ``candidate`` on its trial
    patch: the better of a first call (which builds oneDNN's primitives) and a second one,
    which is skipped where the first took more than ``cap_s``."""
    c_in, c_out, scale = _SHAPES[layer]
    side = _TRIAL_SIDE[scale.bit_length()]
    module, dtype, cl = _module(candidate, c_in, c_out)
    fmt = torch.channels_last if cl else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, c_in, side, side, generator=gen).relu().to(dtype, memory_format=fmt)
    x.requires_grad_(True)
    grad = torch.randn(1, c_out, side, side, generator=gen).to(dtype, memory_format=fmt)
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        module(x).backward(grad)
        best = min(best, time.perf_counter() - started)
        if best > cap_s:
            break
    return best


def _estimate_ms(layer: str, layers: list[str], seconds: float, candidate: str) -> float:
    """A trial's seconds → ms for all ``layers`` of that shape at 512 × 384 px: scaled by the
    positions computed, which for F(m×m) are whole m × m tiles (a side of n px: ⌈n / m⌉ · m)."""
    scale = _SHAPES[layer][2]
    side = _TRIAL_SIDE[scale.bit_length()]
    m = int(candidate[-1]) if "winograd" in candidate else 1
    h, w = (-(-(n // scale) // m) * m for n in _REFERENCE)
    return 1e3 * seconds * len(layers) * h * w / (side * side)


def _bf16_is_faster() -> bool:
    """A probe of a few ms: one small layer (64 → 64 channels, 16 × 16) forward + backward in
    bf16 and in float32, best of three each. Emulated bf16 (no AVX512-BF16, AMX or AVX512-FP16
    path in oneDNN) is 3–40× slower and fails here without being timed at any size."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, 16, 16, generator=gen).relu()
    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        conv = nn.Conv2d(64, 64, 3, padding=1).requires_grad_(False)
        conv = conv.to(dtype=dtype, memory_format=torch.channels_last)  # type: ignore[call-overload]
        xd = x.to(dtype, memory_format=torch.channels_last).requires_grad_(True)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            conv(xd).sum().backward()
            best = min(best, time.perf_counter() - started)
        times[dtype] = best
    return times[torch.bfloat16] < times[torch.float32]


def measure_candidates(candidates: tuple[str, ...] = AUTO_CANDIDATES) -> Timings:
    """Time the candidates (of :data:`FP32_CANDIDATES` and :data:`BF16_CANDIDATES`) on every
    distinct layer shape (module docstring). A candidate whose first call takes over 8× the
    best so far on that shape is not called again (a first call also builds oneDNN's
    primitives: up to 6× a second one); bf16 is timed only where
    :func:`_bf16_is_faster`.

    Returns:
        {(layer, candidate): ms estimated at 512 × 384 px for all layers of that shape}.
    """
    timings: Timings = {}
    shapes = _distinct_shapes()
    if any(c.startswith("bf16") for c in candidates) and not _bf16_is_faster():
        candidates = tuple(c for c in candidates if not c.startswith("bf16"))
    for layer, layers in shapes.items():
        best = float("inf")
        for candidate in candidates:
            if "winograd" in candidate and layer == "conv1_1":
                continue  # 3 input channels: the transforms cost more than any product
            if candidate == "bf16-winograd4" and CONV_NAMES.index(layer) < 4:
                continue  # bf16 stays direct before conv3_1, as before
            seconds = _trial_seconds(layer, candidate, 8 * best)
            best = min(best, seconds)
            timings[layer, candidate] = _estimate_ms(layer, layers, seconds, candidate)
    return timings


# --- choosing ---------------------------------------------------------------------------------


def _fp32_plan(timings: Timings, convolution: str) -> tuple[float, KernelPlan]:
    """The fastest float32 plan the timings allow, and its estimated total ms."""
    shapes = _distinct_shapes()
    nchw = sum(timings.get((n, "fp32-nchw-direct"), float("inf")) for n in shapes)
    allowed = ["fp32-direct"]
    if convolution != "direct":
        allowed += ["fp32-winograd2", "fp32-winograd4", "fp32-winograd6"]
    total, algorithms = 0.0, []
    for first, layers in shapes.items():
        options = {c: timings[first, c] for c in allowed if (first, c) in timings}
        if not options:
            return nchw, KernelPlan("fp32")
        best = min(options, key=options.__getitem__)
        total += options[best]
        if best != "fp32-direct":
            algorithms += [(n, best.removeprefix("fp32-")) for n in layers]
    order = {n: i for i, n in enumerate(CONV_NAMES)}
    plan = KernelPlan("fp32", tuple(sorted(algorithms, key=lambda a: order[a[0]])), True)
    return (nchw, KernelPlan("fp32")) if nchw <= total else (total, plan)


def _bf16_plan(timings: Timings, convolution: str) -> tuple[float, KernelPlan]:
    """The fastest bf16 plan the timings allow: direct up to a layer, Winograd F(4×4) from it
    on (never before ``conv3_1``, the path of before's first: bf16's rounding there is too
    coarse for the transforms), or direct everywhere; and its estimated total ms (infinite
    where bf16 was not timed). ``convolution`` ``"direct"`` allows only the last; ``"winograd"``
    only the others (from ``conv3_1`` where none pays). Ties go to the later start (fewer
    Winograd layers, more precise)."""
    per_layer: dict[str, dict[str, float]] = {}
    for shape, layers in _distinct_shapes().items():
        for candidate in BF16_CANDIDATES:
            share = timings.get((shape, candidate), inf) / len(layers)
            for name in layers:
                per_layer.setdefault(name, {})[candidate] = share

    def total(start: int) -> float:
        kinds = ["bf16-direct"] * start + ["bf16-winograd4"] * (len(CONV_NAMES) - start)
        return sum(per_layer[n][k] for n, k in zip(CONV_NAMES, kinds, strict=True))

    first, direct = CONV_NAMES.index(BF16_WINOGRAD_FROM), len(CONV_NAMES)
    # Direct first, then ever earlier starts: min keeps the first of equals, the later start.
    starts = [direct] if convolution == "direct" else [direct, *range(direct - 1, first - 1, -1)]
    best_start = min(starts, key=total)
    if convolution == "winograd" and best_start == direct:
        best_start = first  # asked for where none pays: from conv3_1, as before
    winograd = tuple((n, "winograd4") for n in CONV_NAMES[best_start:])
    return total(best_start), KernelPlan("bf16", winograd, True)


def plan_from_timings(
    timings: Timings, precision: str = "auto", convolution: str = "auto", decided: str = "measured"
) -> KernelPlan:
    """The fastest plan the timings allow for the request; bf16 only where it is faster than
    the best float32 plan (ties go to float32, the more precise).

    Args:
        timings: from :func:`measure_candidates` (or the cache).
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"``.
        convolution: ``"auto"``, ``"direct"`` or ``"winograd"`` (``"winograd"``: Winograd
            layers allowed where they are faster; float32 Winograd F(4×4) from conv3_1 where
            no layer is).
        decided: recorded in the plan.
    """
    fp32_ms, fp32 = _fp32_plan(timings, convolution)
    if convolution == "winograd" and not fp32.algorithms:
        fp32 = _given("fp32", "winograd")
    bf16_ms, bf16 = _bf16_plan(timings, convolution)
    plan = bf16 if precision == "bf16" or (precision == "auto" and bf16_ms < fp32_ms) else fp32
    stamped = tuple((n, c, round(t, 3)) for (n, c), t in sorted(timings.items()))
    return KernelPlan(plan.precision, plan.algorithms, plan.channels_last, decided, stamped)


def _given(precision: str, convolution: str) -> KernelPlan:
    """The plan of an explicit request: fp32 direct is the plain NCHW network; bf16 is the path
    of before; fp32 Winograd is F(4×4) from conv3_1, channels_last."""
    layers = CONV_NAMES[CONV_NAMES.index(BF16_WINOGRAD_FROM) :]
    algorithms = tuple((n, "winograd4") for n in layers) if convolution == "winograd" else ()
    channels_last = precision == "bf16" or bool(algorithms)
    return KernelPlan(precision, algorithms, channels_last, "given")


@contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def choose_kernels(
    device: torch.device,
    precision: str = "auto",
    convolution: str = "auto",
    threads: int | None = None,
    *,
    cache_dir: Path | None = None,
    measure: Callable[[], Timings] | None = None,
) -> KernelPlan:
    """The kernels for this device: precision and convolution both given: as given; either of
    them ``auto``: the fastest measured plan for the other (cached per machine).

    Args:
        device: where the network runs.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"``.
        convolution: ``"auto"``, ``"direct"`` or ``"winograd"``.
        threads: the thread count the run will use (part of the cache key; measured with it);
            default ``torch.get_num_threads()``.
        cache_dir: the cache folder (default: :func:`cache_path`'s).
        measure: the measurement (default :func:`measure_candidates`; tests pass their own).

    Returns:
        The plan; ``decided`` says how it was found. On CUDA: bf16 from compute capability 8 on,
        direct convolutions, nothing timed.

    Raises:
        ValueError: an unknown precision or convolution.

    Warns:
        UserWarning: bf16 asked for on a CPU where it runs emulated (:func:`_bf16_is_faster`).
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', not {precision!r}")
    if convolution not in ("auto", "direct", "winograd"):
        raise ValueError(f"convolution must be 'auto', 'direct' or 'winograd', not {convolution!r}")
    if device.type != "cpu":
        if precision == "auto":
            native = device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8
            precision = "bf16" if native else "fp32"
        plan = _given(precision, "winograd" if convolution == "winograd" else "direct")
        return KernelPlan(plan.precision, plan.algorithms, plan.channels_last, "rule")
    if precision == "bf16" and not _bf16_is_faster():
        warnings.warn(
            "bf16 runs emulated on this CPU (no native bf16: AVX512-BF16 or AMX, or a"
            " configuration that hides them): it is several times slower than float32"
            " here; leave --precision at auto",
            stacklevel=2,
        )
    if precision != "auto" and convolution != "auto":
        return _given(precision, convolution)
    threads = threads or torch.get_num_threads()
    path, key = cache_path(cache_dir), _cache_key(threads)
    timings = _cached_timings(path, key)
    if timings is not None:
        return plan_from_timings(timings, precision, convolution, "cached")
    with _threads(threads):
        timings = (measure or measure_candidates)()
    _write_cache(path, key, timings)
    return plan_from_timings(timings, precision, convolution, "measured")


def apply_plan(vgg: VGG19Features, plan: KernelPlan) -> None:
    """Switch ``vgg``'s layers, dtype and memory format to ``plan`` (on the device it is on).

    bf16 takes exactly the steps of before: :meth:`VGG19Features.use_winograd` from
    :attr:`KernelPlan.winograd_from` with bf16 transforms, then ``.to(bfloat16,
    channels_last)``. Float32 direct NCHW leaves the network as built; any other float32 plan
    goes through :meth:`VGG19Features.set_plan`.
    """
    if plan.precision == "bf16":
        if plan.winograd_from is not None:
            vgg.use_winograd(plan.winograd_from, torch.bfloat16)
        vgg.to(dtype=torch.bfloat16, memory_format=torch.channels_last)  # type: ignore[call-overload]
        return
    if not plan.algorithms and not plan.channels_last:
        return
    layers = list(vgg.convs) if plan.channels_last else []
    vgg.set_plan(dict(plan.algorithms), channels_last=layers)


def doctor_report(
    device: torch.device | None = None,
    threads: int | None = None,
    *,
    cache_dir: Path | None = None,
    plan: KernelPlan | None = None,
) -> str:
    """A few lines for ``painterly doctor``: CPU model and flags, torch and its CPU capability,
    the variables that change the kernels' speed, threads, the cache file, every candidate's
    estimated time and the choice (measured now or read from the cache)."""
    device = device or torch.device("cpu")
    threads = threads or torch.get_num_threads()
    plan = plan or choose_kernels(device, threads=threads, cache_dir=cache_dir)
    flags = " ".join(f"{k}={'yes' if v else 'no'}" for k, v in cpu_flags().items())
    env = " ".join(f"{v}={os.environ.get(v, '(unset)')}" for v in _ENV)
    capability = torch.backends.cpu.get_cpu_capability()
    lines = [
        f"CPU: {cpu_model()}",
        f"flags: {flags}",
        f"torch {torch.__version__}, CPU capability {capability}; {env}",
        f"threads: {threads} (physical cores: {default_threads()})",
        f"kernel cache: {cache_path(cache_dir)}",
    ]
    if plan.timings:
        lines.append("candidates, ms per forward + backward at 512 x 384 px (per layer shape):")
        by_layer: dict[str, list[str]] = {}
        for layer, candidate, ms in plan.timings:
            by_layer.setdefault(layer, []).append(f"{candidate} {ms:.0f}")
        lines += [f"  {layer}: {', '.join(items)}" for layer, items in by_layer.items()]
    lines.append(f"choice: {plan.describe()}")
    return "\n".join(lines)
