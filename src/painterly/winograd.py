"""Winograd convolutions F(m×m, 3×3), m = 2, 4 or 6, for the frozen 3×3 layers of VGG19.

A 3×3 convolution (stride 1, zero padding 1) computed as in Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks" (CVPR 2016), eq. 9: the image is cut into 6×6 tiles that overlap
by 2 pixels, each tile d and each kernel g are moved into the transform domain,

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,

and the element-wise products summed over input channels become 36 independent matrix products
(one per position of the 6×6 tile) of shape (tiles × C_in) @ (C_in × C_out). Each 4×4 output
tile then costs 36 multiplications per channel pair instead of 144: the products need 4× fewer
FLOPs than direct convolution. The matrices are the paper's, from the interpolation points
0, ±1, ±2 and ∞ (section 4.2).

Why here: on a CPU with AVX512-BF16 but no AMX the direct bf16 convolutions of VGG19 already
run at ~430 GFLOP/s on 2 cores (measured), about half the vector units' peak, so only less
arithmetic makes them much faster. The transforms are memory-bound, so the trade pays where
channels are many and pixels few: from ``conv3_1`` on (benchmarks/README.md). The price is
precision: in bf16 the output of one layer differs from the exact convolution by ~2.6 %
(relative L2) instead of ~0.24 % for a direct bf16 convolution, because the transforms amplify
the rounding of the tile values and of the products. The optimisation does not notice
(tests/test_winograd.py compares final losses, evaluated in float32); in float32 the error is
~2e-6 (:mod:`painterly.kernels` chooses per layer by measurement).

The 2-D transforms are Kronecker products, vec(Bᵀ d B) = (Bᵀ ⊗ Bᵀ) vec(d). In bf16 they are
applied as that one dense matrix, which rounds the transformed tile once; in float32 as the two
1-D transforms they are (rows, then columns: 2(m + 2) products a value instead of (m + 2)²),
the first reading the image's tile rows in place, and the bias is added to the products at the
tile position whose Aᵀ column is all ones, so that it costs no pass over the output. The
transforms are memory-bound; the separable ones made a layer 1.1–1.4× faster and a 512 px step
1.12–1.16× (AMD EPYC, Zen 3, AVX2, no AVX-512; benchmarks/README.md).

The kernels are frozen, so their transforms are computed once, in float64, and kept
(:func:`transform_kernel`). The backward pass runs the forward's steps transposed, in reverse
order, with the same transformed kernels.

The other tile sizes, for float32 (issue 17): F(2×2, 3×3) (4×4 tiles, 2.25× fewer products,
the smallest error) and F(6×6, 3×3) (8×8 tiles, 5.1× fewer products, ~10× F(4×4)'s error, still
~1e-5 relative in float32). Their matrices come from the Toom-Cook construction of Lavin & Gray
2016, section 4 (:func:`_toom_cook`), with the interpolation points 0, ±1 and 0, ±1, ±2, ±½; the
size of a transform is the kernel transform's first dimension ((m + 2)², 16, 36 or 64), so the
functions below infer m from ``u``. F(4×4, 3×3) keeps the paper's printed matrices.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = [
    "KERNEL_CACHE_BYTES",
    "TILE_SIZES",
    "WinogradConv2d",
    "transform_kernel",
    "winograd_conv2d",
    "winograd_conv2d_input_grad",
]

#: The output tile sides m of F(m×m, 3×3) implemented here.
TILE_SIZES = (2, 4, 6)

_M = 4  # output tile side of the default, F(4×4, 3×3)
_A = _M + 2  # input tile side, m + r − 1 with r = 3

# Lavin & Gray 2016, section 4.2, F(4×4, 3×3).
_BT = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
_G = (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
_AT = (
    (1, 1, 1, 1, 1, 0),
    (0, 1, -1, 2, -2, 0),
    (0, 1, 1, 4, 4, 0),
    (0, 1, -1, 8, -8, 1),
)


def _matrix(rows: tuple[tuple[float, ...], ...]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# Both 2-D transforms as one matrix each on vectorised tiles: vec(Bᵀ d B) = (Bᵀ ⊗ Bᵀ) vec(d).
# Their entries are small integers and powers of two, exact in bf16.
_KRON_B = torch.kron(_matrix(_BT), _matrix(_BT))  # (36, 36)
_KRON_A = torch.kron(_matrix(_AT), _matrix(_AT))  # (16, 36)


def _toom_cook(points: tuple[float, ...], m: int) -> tuple[torch.Tensor, ...]:
    """Aᵀ (m × n), G (n × 3), Bᵀ (n × n) of F(m, 3) from n − 1 = m + 1 finite interpolation
    points and ∞ (Lavin & Gray 2016, section 4: the transpose of Toom-Cook's linear
    convolution). With V the (n × n) evaluation matrix of polynomials of degree n − 1 at the
    points (its ∞ row: the leading coefficient), V_k its first k columns with the ∞ row moved to
    column k − 1, a correlation is y = V_mᵀ [(V_3 g) ⊙ (V⁻ᵀ d)]: Aᵀ = V_mᵀ, G = V_3, Bᵀ = V⁻ᵀ.
    Each row of Bᵀ is scaled to a largest entry of 1 and G's row by the inverse (exactly the
    same product)."""
    n = m + 2
    p = torch.tensor(points, dtype=torch.float64)

    def evaluation(k: int) -> torch.Tensor:
        v = torch.zeros(n, k, dtype=torch.float64)
        v[:-1] = p.unsqueeze(1) ** torch.arange(k, dtype=torch.float64)
        v[-1, k - 1] = 1.0
        return v

    bt = torch.linalg.inv(evaluation(n)).t()
    g = evaluation(3)
    scale = bt.abs().amax(dim=1, keepdim=True)
    return evaluation(m).t(), g * scale, bt / scale


_POINTS = {2: (0.0, 1.0, -1.0), 6: (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)}


def _factors(m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Aᵀ, G, Bᵀ) of F(m, 3) in float64: (m × n), (n × 3), (n × n), n = m + 2."""
    if m == _M:
        return _matrix(_AT), _matrix(_G), _matrix(_BT)
    at, g, bt = _toom_cook(_POINTS[m], m)
    return at, g, bt


def _transforms(m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(G, Bᵀ ⊗ Bᵀ, Aᵀ ⊗ Aᵀ) of F(m×m, 3×3) in float64."""
    at, g, bt = _factors(m)
    if m == _M:
        return g, _KRON_B, _KRON_A
    return g, torch.kron(bt, bt), torch.kron(at, at)


def _ones_column(at: torch.Tensor) -> int:
    """The column of Aᵀ that is all ones (the interpolation point 1): a value added to the
    products at tile position (k, k) of it reaches every output pixel of the tile once, as
    Aᵀ[:, k] ⊗ Aᵀ[:, k] = 1, so that is where the bias goes."""
    return int(torch.nonzero((at == 1).all(dim=0))[0])


def _separable(m: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(Bᵀ, Aᵀ, Aᵀ's column of ones) of F(m×m, 3×3), for the separable float32 path."""
    at, _, bt = _factors(m)
    return bt, at, _ones_column(at)


_TRANSFORMS = {m: _transforms(m) for m in TILE_SIZES}
_SEPARABLE = {m: _separable(m) for m in TILE_SIZES}
_TILE_OF = {(m + 2) ** 2: m for m in TILE_SIZES}  # transform size → m


def _tile(u: torch.Tensor) -> tuple[int, int, torch.Tensor, torch.Tensor]:
    """m, m + 2 and the two vectorised transforms of the kernel transform ``u``."""
    m = _TILE_OF.get(u.shape[0])
    if m is None:
        raise ValueError(f"a kernel transform has (m + 2)² = 16, 36 or 64 rows, not {u.shape[0]}")
    _, kron_b, kron_a = _TRANSFORMS[m]
    return m, m + 2, kron_b, kron_a


def transform_kernel(
    weight: torch.Tensor, dtype: torch.dtype | None = None, m: int = _M, keep: bool = True
) -> torch.Tensor:
    """Kernels in the Winograd domain, U = G g Gᵀ (Lavin & Gray 2016, eq. 9), computed in
    float64 as one matrix product, vec(U) = (G ⊗ G) vec(g).

    The kernels are frozen, so the result is kept (:data:`KERNEL_CACHE_BYTES`), addressed by
    the kernel's bytes: the networks of one process that share weights share these tensors
    too, and a network is made again without computing them (0.2 s and 75 MB a 512-channel
    layer in float64 on the project's AMD EPYC, AVX2 and no AVX-512). Never change a returned
    tensor in place.

    Args:
        weight: (C_out, C_in, 3, 3), any float dtype.
        dtype: of the result; default ``weight``'s.
        m: the output tile side of F(m×m, 3×3), one of :data:`TILE_SIZES`.
        keep: False for kernels used once (the random ones :mod:`painterly.kernels` times):
            computed without looking them up or keeping them.

    Returns:
        ((m + 2)², C_in, C_out), contiguous: for each of the tile positions (36 for m = 4),
        the matrix that maps input to output channels.

    Raises:
        ValueError: a kernel that is not 3×3, or another m.
    """
    if m not in TILE_SIZES:
        raise ValueError(f"Winograd tile side m must be one of {TILE_SIZES}, not {m}")
    if weight.dim() != 4 or tuple(weight.shape[-2:]) != (3, 3):
        shape = tuple(weight.shape)
        raise ValueError(f"expected kernels of shape (C_out, C_in, 3, 3), got {shape}")
    weight = weight.detach()
    dtype = dtype or weight.dtype
    if not keep:
        return _transformed(weight, dtype, m)
    key = (_digest(weight), tuple(weight.shape), weight.dtype, dtype, m, weight.device)
    with _KERNELS_LOCK:
        u = _KERNELS.pop(key, None)
    if u is None:
        u = _transformed(weight, dtype, m)
    with _KERNELS_LOCK:
        _KERNELS[key] = u  # the most recently used last
        while sum(t.numel() * t.element_size() for t in _KERNELS.values()) > KERNEL_CACHE_BYTES:
            _KERNELS.popitem(last=False)
    return u


#: The most bytes of transformed kernels :func:`transform_kernel` keeps, the least recently
#: used dropped first: a float32 plan of VGG19 to ``relu5_1`` with its backward's kernels holds
#: 394 MiB with F(4×4) from conv2_1, 700 MiB with F(6×6) from there (a plan of
#: :mod:`painterly.kernels` can choose it), a bf16 one 100 MiB.
KERNEL_CACHE_BYTES = 768 * 2**20
_KERNELS: OrderedDict[tuple[object, ...], torch.Tensor] = OrderedDict()
_KERNELS_LOCK = threading.Lock()


def _transformed(weight: torch.Tensor, dtype: torch.dtype, m: int) -> torch.Tensor:
    """U = G g Gᵀ of (C_out, C_in, 3, 3) kernels as ((m + 2)², C_in, C_out) in ``dtype``."""
    g = _TRANSFORMS[m][0].to(weight.device)
    taps = weight.permute(2, 3, 1, 0).reshape(9, -1).double()  # (9, C_in · C_out)
    return (torch.kron(g, g) @ taps).to(dtype).reshape(-1, *weight.shape[1::-1])


def _digest(weight: torch.Tensor) -> bytes:
    """BLAKE2b of a tensor's values (its bytes in C order, on the CPU): ~20 ms for 9 MB."""
    values = weight.cpu().contiguous()
    data = values.view(torch.uint8) if values.dtype != torch.uint8 else values
    return hashlib.blake2b(data.reshape(-1).numpy().data, digest_size=16).digest()


def _band_rows(batch: int, tiles_across: int, channels: int) -> int:
    """Tile rows per band: the intermediates of one band stay near 32 Ki elements per tile
    position (a few MB, about what the caches hold), but at least 256 tiles, so that the
    products are not too thin. Whole-image intermediates made the transforms slower than
    linear in the pixels: at 1024 px conv3_2 took 121 ms whole, 67 ms in bands, 127 ms direct
    (bf16, 2 cores; benchmarks/README.md). 32 Ki rather than 64 Ki made float32 conv1_2 and
    conv2_2 at 512 px ~1.1× faster (AMD EPYC, AVX2) and changes no band of 256 channels or
    more (there the 256 tiles decide)."""
    per_row = batch * tiles_across
    return max(1, -(-256 // per_row), (32 * 1024) // (per_row * channels))


def _band_product(
    d: torch.Tensor,
    u: torch.Tensor,
    kron_b: torch.Tensor,
    kron_a: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """One band's Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A (Lavin & Gray 2016, eq. 9) with the transforms as
    Kronecker products: d ((m+2)², tiles · C_in) → (m², tiles · C_out), bias added."""
    a2, c, c_out = u.shape
    tiles = d.shape[1] // c
    v = torch.mm(kron_b, d).view(a2, tiles, c)
    products = torch.bmm(v, u).view(a2, tiles * c_out)
    if bias is None:
        return torch.mm(kron_a, products)
    return torch.addmm(bias.to(d.dtype).repeat(tiles), kron_a, products)


def _tiles(padded: torch.Tensor, m: int, r0: int, rows: int) -> torch.Tensor:
    """The overlapping (m + 2)² tiles of tile rows r0 … r0 + rows − 1 of ``padded`` (B,
    m·th + 2, m·tw + 2, C), a view: (m + 2, m + 2, B, rows, tw, C), tile position first, each
    position one (tiles, C) matrix."""
    b, _, wp, c = padded.shape
    sb, sh, sw, sc = padded.stride()
    a, tw = m + 2, (wp - 2) // m
    return padded.as_strided(
        (a, a, b, rows, tw, c),
        (sh, sw, sb, m * sh, m * sw, sc),
        padded.storage_offset() + m * r0 * sh,
    )


def _input_transform(
    padded: torch.Tensor, bt: torch.Tensor, m: int, r0: int, rows: int
) -> torch.Tensor:
    """Bᵀ d B of the tiles of tile rows r0 … r0 + rows − 1 of ``padded`` (B, m·th + 2,
    m·tw + 2, C), contiguous as :func:`_padded` makes it, computed as the two 1-D transforms it
    is (Bᵀ acting on a tile's rows, then on its columns): 2·(m + 2) products per value instead
    of the (m + 2)² of vec(d) ↦ (Bᵀ ⊗ Bᵀ) vec(d), and with one image the first reads the image
    in place (a tile row's m + 2 image rows are one strided matrix). Returns ((m + 2)²,
    tiles · C) in ``padded``'s dtype, tile position first (row-major), then tiles (image, row,
    column) and channels."""
    b, _, wp, c = padded.shape
    a, tw = m + 2, (wp - 2) // m
    sh = padded.stride(1)
    n = b * rows * tw * c
    if b == 1:  # (rows, a, W' · C): each tile row's a image rows, without a copy
        offset = padded.storage_offset() + m * r0 * sh
        strip = padded.as_strided((rows, a, wp * c), (m * sh, sh, 1), offset)
        s = torch.matmul(bt, strip)
        st = s.stride()  # Bᵀ d for every tile: (i, l, rows, tw, C), gathered
        half = s.as_strided((a, a, rows, tw, c), (st[1], c, st[0], m * c, 1)).reshape(a, a, n)
    else:
        half = torch.mm(bt, _tiles(padded, m, r0, rows).reshape(a, a * n)).view(a, a, n)
    return torch.bmm(bt.expand(a, a, a), half).view(a * a, n)  # (Bᵀ d) B


def _products_back(
    v: torch.Tensor, u: torch.Tensor, at: torch.Tensor, ones: int, bias: torch.Tensor | None
) -> torch.Tensor:
    """Aᵀ [U ⊙ V] A + bias for V ((m + 2)², tiles · C_in) from :func:`_input_transform`: the
    products, the bias added once at tile position (ones, ones) (:func:`_ones_column`), and Aᵀ
    applied to rows, then columns. Returns (m², tiles · C_out)."""
    a2, c, c_out = u.shape
    m, a = at.shape
    tiles = v.shape[1] // c
    products = torch.bmm(v.view(a2, tiles, c), u)
    if bias is not None:
        products[ones * a + ones].add_(bias.to(products.dtype))
    n = tiles * c_out
    half = torch.mm(at, products.view(a, a * n))  # (p, j, tiles · C_out)
    return torch.bmm(at.expand(m, m, a), half.view(m, a, n)).view(m * m, n)


def _band_function(
    padded: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None
) -> Callable[[int, int], torch.Tensor]:
    """f(r0, rows) → the (m², tiles · C_out) outputs of tile rows r0 … r0 + rows − 1 of
    ``padded`` (B, m·th + 2, m·tw + 2, C). In float32 (and float64) by separable transforms
    (:func:`_input_transform`, :func:`_products_back`; 1.1–1.4× faster a layer than the dense
    ones on the project's AMD EPYC, AVX2, no AVX-512); in bf16 by the dense Kronecker ones
    (:func:`_band_product`), which round the transformed tiles once, not twice."""
    m, a, kron_b, kron_a = _tile(u)
    if padded.dtype != torch.bfloat16:
        bt, at, ones = _SEPARABLE[m]
        bt, at = bt.to(padded), at.to(padded)
        return lambda r0, rows: _products_back(
            _input_transform(padded, bt, m, r0, rows), u, at, ones, bias
        )
    kron_b, kron_a = kron_b.to(padded), kron_a.to(padded)
    return lambda r0, rows: _band_product(
        _tiles(padded, m, r0, rows).reshape(a * a, -1), u, kron_b, kron_a, bias
    )


def _padded(x: torch.Tensor, m: int, th: int, tw: int, gate: torch.Tensor | None) -> torch.Tensor:
    """(B, m·th + 2, m·tw + 2, C): ``x`` in (B, H, W, C) order with one pixel of zeros around it
    and zeros filling the last tiles; only the border is zeroed, not the whole buffer. With a
    ``gate`` (x's shape), ``x`` where ``gate > 0`` and 0 elsewhere: the backward pass of a ReLU
    whose output is ``gate``, fused into this copy."""
    b, c, h, w = x.shape
    padded = x.new_empty(b, m * th + 2, m * tw + 2, c)
    padded[:, 0].zero_()
    padded[:, h + 1 :].zero_()
    padded[:, 1 : h + 1, 0].zero_()
    padded[:, 1 : h + 1, w + 1 :].zero_()
    inside = padded[:, 1 : h + 1, 1 : w + 1]
    if gate is None:
        inside.copy_(x.permute(0, 2, 3, 1))
    else:
        torch.ops.aten.threshold_backward.grad_input(
            x.permute(0, 2, 3, 1), gate.permute(0, 2, 3, 1), 0, grad_input=inside
        )
    return padded


def _store(target: torch.Tensor, y: torch.Tensor, relu: bool) -> None:
    """``target`` ← ``y`` (same shape, any strides), rectified with ``relu``: ReLU fused into
    the copy that lays the output out."""
    if relu:
        torch.clamp_min(y, 0, out=target)
    else:
        target.copy_(y)


def _outputs(
    x: torch.Tensor, c_out: int, tiled_h: int, tiled_w: int
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(result (B, C_out, H, W) channels_last, the (B, tiled_h, tiled_w, C_out) buffer the
    tiles are written to, whether that is the result itself): where the tiles cover the image
    exactly, they are written into the result, else into a buffer cut to it afterwards. The
    result is allocated as itself, not a view of a buffer: a custom Function's view output
    could not be rectified in place."""
    b, _, h, w = x.shape
    result = torch.empty(
        (b, c_out, h, w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last
    )
    whole = tiled_h == h and tiled_w == w
    out = result.permute(0, 2, 3, 1) if whole else x.new_empty(b, tiled_h, tiled_w, c_out)
    return result, out, whole


def winograd_conv2d(
    x: torch.Tensor,
    u: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    relu: bool = False,
    gate: torch.Tensor | None = None,
) -> torch.Tensor:
    """3×3 convolution, stride 1, zero padding 1, by Winograd F(m×m, 3×3), in bands of tile
    rows (:func:`_band_rows`), each band's tiles transformed, multiplied and transformed back
    while in cache. Not differentiable by itself (:class:`WinogradConv2d` is).

    Args:
        x: (B, C_in, H, W), either memory format.
        u: ((m + 2)², C_in, C_out), from :func:`transform_kernel`, same dtype as ``x``; its
            size gives m.
        bias: (C_out,) or ``None``.
        relu: rectify the result as it is written: ``relu(conv(x))``, one pass less.
        gate: (B, C_in, H, W) or ``None``: convolve ``x`` where ``gate > 0`` and 0 elsewhere
            (the backward pass of a ReLU whose output is ``gate``, fused into the padding).

    Returns:
        (B, C_out, H, W) in ``x``'s dtype, channels_last in memory. Matches
        ``F.conv2d(x, weight, bias, padding=1)`` up to rounding (module docstring).

    Raises:
        ValueError: ``x`` and ``u`` disagree on the number of input channels, or ``u`` is
            no kernel transform.
    """
    b, c, h, w = x.shape
    if u.shape[1] != c:
        raise ValueError(f"kernel transform is for {u.shape[1]} input channels, image has {c}")
    c_out = u.shape[2]
    m = _tile(u)[0]
    th, tw = -(-h // m), -(-w // m)  # tiles down and across
    padded = _padded(x, m, th, tw, gate)
    result, out, whole = _outputs(x, c_out, m * th, m * tw)
    band_product = _band_function(padded, u, bias)
    step = _band_rows(b, tw, max(c, c_out))
    for r0 in range(0, th, step):
        rows = min(step, th - r0)
        y = band_product(r0, rows)
        # (m, m, B, rows, tw, C_out) → (B, rows, m, tw, m, C_out), the band of the output.
        band = out[:, m * r0 : m * (r0 + rows)].view(b, rows, m, tw, m, c_out)
        _store(band, y.view(m, m, b, rows, tw, c_out).permute(2, 3, 0, 4, 1, 5), relu and whole)
    if not whole:
        _store(result.permute(0, 2, 3, 1), out[:, :h, :w], relu)
    return result


def winograd_conv2d_input_grad(
    grad: torch.Tensor, u: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """The gradient of :func:`winograd_conv2d` with respect to its input: the exact adjoint of
    the computed map, each step of the forward pass transposed in reverse order (untiling →
    tiling, Aᵀ → A, U → Uᵀ, Bᵀ → B, tiling → summing the overlapping tiles back), in the same
    bands.

    Args:
        grad: ∂L/∂y, (B, C_out, H, W), either memory format.
        u: the forward pass's ((m + 2)², C_in, C_out).
        height, width: H and W (the input's, equal to the output's).

    Returns:
        ∂L/∂x, (B, C_in, H, W) in ``grad``'s dtype, channels_last in memory.
    """
    b, c_out, h, w = grad.shape
    c = u.shape[1]
    m, a, kron_b, kron_a = _tile(u)
    th, tw = -(-height // m), -(-width // m)
    # Output tiles: (B, H', W', C_out) zero-extended to whole tiles, (B, th, m, tw, m, C_out).
    g = grad.new_zeros(b, m * th, m * tw, c_out)
    g[:, :h, :w] = grad.permute(0, 2, 3, 1)
    g = g.view(b, th, m, tw, m, c_out)
    # Tiles overlap by 2 pixels: rows m and m + 1 of a tile are rows 0 and 1 of the next one.
    d_padded = grad.new_zeros(b, th + 1, m, tw + 1, m, c)
    kron_a_t, kron_b_t = kron_a.to(grad).t(), kron_b.to(grad).t()
    u_t = u.transpose(1, 2)
    step = _band_rows(b, tw, max(c, c_out))
    for r0 in range(0, th, step):
        rows = min(step, th - r0)
        tiles = b * rows * tw
        g_band = g[:, r0 : r0 + rows].permute(2, 4, 0, 1, 3, 5)  # (m, m, B, rows, tw, C_out)
        d_products = torch.mm(kron_a_t, g_band.reshape(m * m, tiles * c_out))
        d_v = torch.bmm(d_products.view(a * a, tiles, c_out), u_t)
        d_tiles = torch.mm(kron_b_t, d_v.view(a * a, tiles * c))
        d_tiles = d_tiles.view(a, a, b, rows, tw, c).permute(2, 3, 0, 4, 1, 5)
        for part, down in ((slice(0, m), 0), (slice(m, a), 1)):
            for cols, right in ((slice(0, m), 0), (slice(m, a), 1)):
                n_rows, n_cols = part.stop - part.start, cols.stop - cols.start
                top = r0 + down
                d_padded[:, top : top + rows, :n_rows, right : right + tw, :n_cols] += d_tiles[
                    :, :, part, :, cols
                ]
    d_padded = d_padded.view(b, m * (th + 1), m * (tw + 1), c)
    return d_padded[:, 1 : height + 1, 1 : width + 1].contiguous().permute(0, 3, 1, 2)


class _Winograd(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        u: torch.Tensor,
        bias: torch.Tensor,
        u_transposed: torch.Tensor | None,
        relu: bool,
    ) -> torch.Tensor:
        y = winograd_conv2d(x, u, bias, relu=relu)
        ctx.save_for_backward(u, u_transposed, y if relu else None)
        ctx.size = x.shape[-2:]
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        u, u_transposed, y = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        if u_transposed is not None:  # the forward's algorithm, with the transposed kernels
            return winograd_conv2d(grad, u_transposed, gate=y), None, None, None, None
        if y is not None:
            grad = torch.ops.aten.threshold_backward(grad, y, 0)
        return winograd_conv2d_input_grad(grad, u, *ctx.size), None, None, None, None


_winograd: Callable[..., torch.Tensor] = _Winograd.apply


class WinogradConv2d(nn.Module):
    """A frozen 3×3, stride-1, padding-1 ``nn.Conv2d`` computed by Winograd F(m×m, 3×3).

    Differentiable with respect to its input only (the kernels are constants). The gradient of
    a 3×3 convolution with respect to its input is the convolution of the output's gradient
    with the kernels flipped and transposed (C_out ↔ C_in), so in float32 (and float64) the
    backward pass is :func:`winograd_conv2d` again with those kernels' transform: the same
    cost as the forward pass, and ~2e-6 relative from the exact gradient, below what the
    optimisation can notice (tests/test_winograd.py). In bf16, where one layer is ~2.6 % off,
    it is the exact adjoint of the forward pass instead (:func:`winograd_conv2d_input_grad`,
    about twice the forward's cost), so that the optimiser sees the gradient of the function
    it evaluates. The kernel transforms are made once, in ``dtype`` and on the conv's
    device, and shared by every layer of the same kernels (``keep``); they take 4× the
    memory of the kernel (8× with the float32 transposed one).

    Args:
        conv: the convolution to replace; kernel 3×3, stride 1, padding 1, no groups/dilation.
        dtype: of the kernel transform and bias; default the conv's.
        m: the output tile side, one of :data:`TILE_SIZES` (default 4).
        keep: whether the transforms are kept for the next layer of the same kernels
            (:func:`transform_kernel`).

    Raises:
        ValueError: any other convolution, or another m.
    """

    def __init__(
        self, conv: nn.Conv2d, dtype: torch.dtype | None = None, m: int = _M, keep: bool = True
    ) -> None:
        super().__init__()
        if (
            conv.kernel_size != (3, 3)
            or conv.stride != (1, 1)
            or conv.padding != (1, 1)
            or conv.dilation != (1, 1)
            or conv.groups != 1
            or conv.padding_mode != "zeros"
        ):
            raise ValueError(f"Winograd F(4x4, 3x3) needs a 3x3/stride 1/padding 1 conv: {conv}")
        weight = conv.weight.detach()
        self.in_channels, self.out_channels, self.m = conv.in_channels, conv.out_channels, m
        self.u: torch.Tensor
        self.bias: torch.Tensor
        self.u_transposed: torch.Tensor | None
        self.register_buffer("u", transform_kernel(weight, dtype, m, keep))
        transposed = None
        if (dtype or weight.dtype) != torch.bfloat16:
            transposed = transform_kernel(weight.flip(2, 3).transpose(0, 1), dtype, m, keep)
        self.register_buffer("u_transposed", transposed)
        bias = conv.bias.detach() if conv.bias is not None else weight.new_zeros(conv.out_channels)
        self.register_buffer("bias", bias.to(dtype or bias.dtype, copy=True))

    def forward(self, x: torch.Tensor, relu: bool = False) -> torch.Tensor:
        """(B, C_in, H, W) → (B, C_out, H, W), channels_last, rectified with ``relu`` (ReLU
        fused into the forward and backward passes); see :func:`winograd_conv2d`."""
        transposed = self.u_transposed
        if transposed is not None and transposed.dtype == torch.bfloat16:
            transposed = None  # made in float32 and cast since: bf16 takes the exact adjoint
        return _winograd(x, self.u, self.bias, transposed, relu)

    def extra_repr(self) -> str:
        m = self.m
        return f"{self.in_channels}, {self.out_channels}, kernel_size=(3, 3), F({m}x{m}, 3x3)"
