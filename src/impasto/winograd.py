"""Winograd F(4x4, 3x3) convolution for the frozen network's 3x3 layers (Lavin & Gray 2016).

Each 6x6 input tile and the 3x3 filter are moved into a space where the convolution is an elementwise
product: 36 multiplications give a 4x4 output tile that direct convolution computes with 144. Summed over
the input channels, the products are 36 matrix products (one per transform point) on MKL, where oneDNN's
direct convolution on an AVX2 CPU runs at a fraction of the machine's peak. The weights are frozen, so
their transform is made once; the input gradient of a 3x3 convolution is itself a 3x3 convolution (the
filters flipped and transposed), so the backward pass uses the same code.

The input and output transforms are written as adds over strided views of channels-last data (every
view's innermost axis is the channels), so no transform gathers tiles into a copy first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

import torch
import torch.nn.functional as F

_BIAS_POINT = 1 * 6 + 1
Views = Sequence[torch.Tensor] | torch.Tensor  # six (or four) views of equal shape, or a tensor of them
TILE = 4  # output pixels per tile side; each tile reads TILE + 2 input pixels per side
FILTER_GROWTH = 4  # a transformed 3x3 filter has 36 values (float32) for the weight's 9

# Filter transform G (6x3) of F(4x4, 3x3); the input transform B^T and output transform A^T are written
# out as adds in _input_1d and _output_1d below (their rows have two to five non-zero entries).
_G = (
    (1 / 4, 0.0, 0.0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0.0, 0.0, 1.0),
)


# Where the picture being run starts in the whole one (a tile's crop; (0, 0) for the whole picture), in
# pixels. Each layer lays its 4x4 tiles on the whole picture's grid from it, so a tile's features round
# as the whole picture's do (Winograd's rounding depends on where its tiles fall).
_ORIGIN: ContextVar[tuple[int, int]] = ContextVar("winograd_origin", default=(0, 0))


@contextlib.contextmanager
def origin(y: int, x: int) -> Iterator[None]:
    """Run the network on a crop whose top-left pixel is (y, x) of the whole picture (tiles.py)."""
    token = _ORIGIN.set((y, x))
    try:
        yield
    finally:
        _ORIGIN.reset(token)


def phase(stride: int) -> tuple[int, int]:
    """Rows and columns before the crop's first pixel, at a layer of `stride`, to the last tile line."""
    y, x = _ORIGIN.get()
    return (y // stride) % TILE, (x // stride) % TILE


def transform_filters(weight: torch.Tensor) -> torch.Tensor:
    """(out, in, 3, 3) filters -> (36, in, out) for the 36 matrix products, computed in float64 once."""
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = torch.einsum("ik,ockl,jl->ijco", g, weight.double(), g)
    return u.reshape(36, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def _input_1d(d: Views, out: Views, tmp: torch.Tensor) -> None:
    """out = B^T d along one axis, for six views d of equal shape; tmp holds two scratch views' room."""
    d0, d1, d2, d3, d4, d5 = d
    a, b = tmp[0], tmp[1]
    torch.add(d4, d0, alpha=4, out=out[0]).add_(d2, alpha=-5)
    torch.add(d5, d1, alpha=4, out=out[5]).add_(d3, alpha=-5)
    torch.add(d3, d4, out=a)
    torch.add(d1, d2, out=b)
    torch.add(a, b, alpha=-4, out=out[1])
    torch.sub(d4, d3, out=a)
    torch.sub(d1, d2, out=b)
    torch.add(a, b, alpha=4, out=out[2])
    torch.sub(d4, d2, out=a)
    torch.sub(d3, d1, out=b)
    torch.add(a, b, alpha=2, out=out[3])
    torch.add(a, b, alpha=-2, out=out[4])


def _output_1d(m: Views, out: Views, tmp: torch.Tensor) -> None:
    """out = A^T m along one axis: six views in, four out; tmp holds four scratch views' room."""
    m0, m1, m2, m3, m4, m5 = m
    plus, minus, plus2, minus2 = tmp[0], tmp[1], tmp[2], tmp[3]
    torch.add(m1, m2, out=plus)
    torch.sub(m1, m2, out=minus)
    torch.add(m3, m4, out=plus2)
    torch.sub(m3, m4, out=minus2)
    torch.add(m0, plus, out=out[0]).add_(plus2)
    torch.add(minus, minus2, alpha=2, out=out[1])
    torch.add(plus, plus2, alpha=4, out=out[2])
    torch.add(m5, minus, out=out[3]).add_(minus2, alpha=8)


def _tiles(x: torch.Tensor, phase: tuple[int, int], reverse: bool = False) -> torch.Tensor:
    """(N, C, H, W) channels-last -> the 36 transformed tiles as (36, N * tiles, C), one matrix per point;
    with `reverse`, those of each tile reversed in both axes (read in reverse order, nothing copied)."""
    n, c, h, w = x.shape
    (py, px), (th, tw) = phase, _tile_counts(h, w, phase)
    # zero padding: 1 pixel for the convolution, the phase before, and up to whole tiles after
    pads = (0, 0, 1 + px, TILE * tw + 1 - w - px, 1 + py, TILE * th + 1 - h - py)
    padded = F.pad(x.permute(0, 2, 3, 1), pads)
    rows = x.new_empty(6, n, th, padded.shape[2], c)
    order = range(5, -1, -1) if reverse else range(6)
    _input_1d([padded[:, k : k + TILE * th : TILE] for k in order], rows, x.new_empty(2, *rows.shape[1:]))
    tiles = x.new_empty(6, 6, n, th, tw, c)
    scratch = x.new_empty(2, n, th, tw, c)
    for i in range(6):
        _input_1d([rows[i][:, :, k : k + TILE * tw : TILE] for k in order], tiles[i], scratch)
    return tiles.view(36, n * th * tw, c)


def _tile_counts(h: int, w: int, phase: tuple[int, int]) -> tuple[int, int]:
    return -(-(h + phase[0]) // TILE), -(-(w + phase[1]) // TILE)


def _untile(
    products: torch.Tensor, n: int, h: int, w: int, phase: tuple[int, int], reverse: bool = False
) -> torch.Tensor:
    """(36, N * tiles, C) products -> the (N, H, W, C) output (the inverse transform, cropped to H x W);
    with `reverse`, each 4x4 output tile is written reversed in both axes."""
    c = products.shape[2]
    (py, px), (th, tw) = phase, _tile_counts(h, w, phase)
    m = products.view(6, 6, n, th, tw, c)
    half = products.new_empty(TILE, 6, n, th, tw, c)
    scratch = products.new_empty(4, n, th, tw, c)
    order = range(TILE - 1, -1, -1) if reverse else range(TILE)
    for j in range(6):
        _output_1d([m[k, j] for k in range(6)], [half[r, j] for r in order], scratch)
    out = products.new_empty(n, th, TILE, tw, TILE, c)
    for r in range(TILE):
        _output_1d([half[r, k] for k in range(6)], [out[:, :, r, :, col] for col in order], scratch)
    return out.view(n, TILE * th, TILE * tw, c)[:, py : py + h, px : px + w]


def conv3x3(
    x: torch.Tensor,
    filters: torch.Tensor,
    bias: torch.Tensor | None,
    relu: bool,
    phase: tuple[int, int] = (0, 0),
    reverse: bool = False,
) -> torch.Tensor:
    """A 3x3, padding 1 convolution (+ bias, + ReLU) of channels-last `x` with `transform_filters` output,
    its tiles starting `phase` rows and columns before x's first pixel; with `reverse`, every tile read and
    written reversed in both axes (`input_gradient`).

    Returns a channels-last (N, C, H, W) tensor, as oneDNN's convolution does.
    """
    n, _, h, w = x.shape
    products = torch.bmm(_tiles(x, phase, reverse), filters)
    if bias is not None:  # A^T's second column is all ones: the bias at point (1, 1) reaches all 16 pixels
        products[_BIAS_POINT].add_(bias)
    out = _untile(products, n, h, w, phase, reverse).contiguous()
    if relu:
        out.clamp_min_(0)
    return out.permute(0, 3, 1, 2)


def pays(in_channels: int, out_channels: int, dtype: torch.dtype) -> bool:
    """Where `auto` takes Winograd over oneDNN's direct convolution (docs/speed.md, per layer).

    By channels alone, not by image size, so a tile and the whole picture run the same arithmetic; and only
    on a CPU without AVX-512, where oneDNN's direct float32 kernels run at half the width (with AVX-512 the
    default 512 px run took 1.06-1.18x the time with Winograd).
    """
    return dtype == torch.float32 and out_channels >= MIN_CHANNELS and not direct_has_avx512()


def direct_has_avx512() -> bool:
    """Whether this CPU runs the direct kernels with AVX-512 (ATen's choice, which ATEN_CPU_CAPABILITY caps)."""
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


MIN_CHANNELS = 128


def input_gradient(grad: torch.Tensor, filters: torch.Tensor, phase: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """The gradient to x of conv3x3(x, filters, phase=phase), given the gradient to its (pre-ReLU) output.

    That is a convolution with the filters flipped in space and in and out swapped. A tile's correlation
    with flipped filters is the reversed correlation of the reversed tile with the filters themselves, so
    each tile is read and written reversed (on the forward pass's own grid) and the products use the same
    transformed filters, transposed (a view): no second filter set (4x the weights) and no flipped copies.
    """
    return conv3x3(grad, filters.transpose(1, 2), None, relu=False, phase=phase, reverse=True)


class ConvReLU(torch.autograd.Function):
    """relu(conv3x3(x)) by Winograd, and its gradient to x alone (the filters are frozen).

    It computes in float32 whatever the network's dtype (its transforms' coefficients, up to 8, would lose a
    bf16's bits).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor, stride: int):  # type: ignore[override]
        ctx.phase = phase(stride)
        y = conv3x3(x.float(), filters, bias, relu=True, phase=ctx.phase).to(x.dtype)
        ctx.save_for_backward(y, filters)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        y, filters = ctx.saved_tensors
        masked = torch.ops.aten.threshold_backward(grad, y, 0).float()
        dx = input_gradient(masked.contiguous(memory_format=torch.channels_last), filters, ctx.phase)
        return dx.to(grad.dtype).contiguous(memory_format=torch.channels_last), None, None, None
