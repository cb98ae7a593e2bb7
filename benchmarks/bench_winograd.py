"""Per-layer benchmark (not a test): direct bf16 convolution against Winograd F(4×4, 3×3).

For each distinct 3×3 layer shape of VGG19 at 512 × 384 px (the demo's Tübingen at 512 px),
prints the forward time of ``F.conv2d`` on bf16 channels_last tensors and of
:func:`painterly.winograd.winograd_conv2d`, their ratio, and each one's error against a float64
convolution of the same bf16 input (relative L2). This is where ``WINOGRAD_FROM`` comes from.

    python benchmarks/bench_winograd.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from painterly.winograd import transform_kernel, winograd_conv2d

# (first layer of that shape, C_in, C_out, H, W) at 512 × 384 px.
SHAPES = [
    ("conv1_2", 64, 64, 384, 512),
    ("conv2_1", 64, 128, 192, 256),
    ("conv2_2", 128, 128, 192, 256),
    ("conv3_1", 128, 256, 96, 128),
    ("conv3_2", 256, 256, 96, 128),
    ("conv4_1", 256, 512, 48, 64),
    ("conv4_2", 512, 512, 48, 64),
    ("conv5_1", 512, 512, 24, 32),
]


def _median_ms(fn: Callable[[], object], repeats: int = 7) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16, 512 x 384 px")
    print(f"{'layer':<8} {'shape':<22} {'direct ms':>10} {'winograd ms':>12} {'ratio':>6} "
          f"{'error direct':>13} {'error winograd':>15}")  # fmt: skip
    for name, c_in, c_out, h, w in SHAPES:
        x = torch.relu(torch.randn(1, c_in, h, w)).bfloat16()
        x = x.contiguous(memory_format=torch.channels_last)
        kernel = torch.randn(c_out, c_in, 3, 3) * (2 / (9 * c_in)) ** 0.5
        k16 = kernel.bfloat16().contiguous(memory_format=torch.channels_last)
        u = transform_kernel(kernel, torch.bfloat16)
        exact = F.conv2d(x.double(), kernel.double(), padding=1)

        def error(y: torch.Tensor, exact: torch.Tensor = exact) -> float:
            return ((y.double() - exact).norm() / exact.norm()).item()

        direct = _median_ms(lambda x=x, k16=k16: F.conv2d(x, k16, padding=1))
        winograd = _median_ms(lambda x=x, u=u: winograd_conv2d(x, u))
        print(
            f"{name:<8} {f'{c_in}->{c_out} @ {h}x{w}':<22} {direct:>10.1f} {winograd:>12.1f} "
            f"{direct / winograd:>5.2f}x {error(F.conv2d(x, k16, padding=1)):>13.1e} "
            f"{error(winograd_conv2d(x, u)):>15.1e}"
        )


if __name__ == "__main__":
    main()
