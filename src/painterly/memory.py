"""How much memory a run needs, estimated before any compute (no torch here).

The job runner and the faces compare :func:`estimate_peak_memory` with the memory available
before they load the model; the constants are fitted to measured peaks (see below).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config

__all__ = ["estimate_peak_memory"]

# Peak memory model, fitted to whole-process peaks measured by benchmarks/bench_speed.py on the
# CPU (2026-11-29: 0.74 / 1.73 GiB at 512 / 1024 px in bf16, 0.96 / 2.22 GiB in fp32), per
# output pixel for the network's activations and their gradients, plus the optimiser's vectors.
# Checked on 2026-11-30 with Winograd and the Grams keeping bf16 features: a whole default
# 1024 × 768 run (L-BFGS history full) peaked at 2.17 GiB; this model says 2.16 GiB.
_BASE_BYTES = 0.45 * 2**30
_ACTIVATION_BYTES_PER_PIXEL = {"bf16": 1800, "fp32": 2300}


def estimate_peak_memory(config: Config, height: int, width: int, precision: str) -> int:
    """Estimated peak memory in bytes of a run whose final scale is ``height`` × ``width`` px.

    The largest scale dominates: activations (bf16 or fp32) plus the optimiser's state, which
    for L-BFGS is 2·history vectors of the image's size (float32) and for Adam 2.
    """
    pixels = height * width
    vectors = 2 * config.lbfgs_history + 4 if config.optimizer == "lbfgs" else 6
    per_pixel = _ACTIVATION_BYTES_PER_PIXEL.get(precision, 2300) + vectors * 3 * 4
    return int(_BASE_BYTES + per_pixel * pixels)
