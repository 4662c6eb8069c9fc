"""The CPU's fused 3x3 convolution + ReLU of the frozen network: oneDNN's direct algorithm or Winograd.

Both give relu(conv(x)) and its gradient to x alone (the weights are frozen); `FusedConvReLU` picks one
per layer and keeps each layer's transformed Winograd filters.
"""

from __future__ import annotations

import torch
from torch import nn

from . import winograd

CONVS = ("auto", "direct", "winograd")
"""How the CPU runs the 3x3 convolutions: oneDNN's direct algorithm, Winograd F(4x4, 3x3) (winograd.py),
or auto: Winograd at the layers where it is faster (winograd.pays)."""


class FusedConvReLU:
    """relu(conv(x)) for the layers of one network, by the algorithm `conv` names (CONVS)."""

    def __init__(self, conv: str):
        self.conv = conv
        self._filters: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    def apply(self, name: str, layer: nn.Conv2d, x: torch.Tensor, stride: int) -> torch.Tensor:
        """Layer `name` (of `stride` pixels per position) on x: Winograd where asked, or for auto where it pays."""
        if not self.takes_winograd(layer):
            return conv_relu(x, layer)
        filters = self._winograd_filters(name, layer)
        return winograd.ConvReLU.apply(x, filters, layer.bias.float(), stride)  # type: ignore[union-attr]

    def takes_winograd(self, layer: nn.Conv2d) -> bool:
        return self.conv == "winograd" or (
            self.conv == "auto" and winograd.pays(layer.in_channels, layer.out_channels, layer.weight.dtype)
        )

    def filter_bytes(self, layers: list[nn.Conv2d]) -> int:
        """What the transformed filters of those of `layers` that run Winograd take, once all are made."""
        return sum(winograd.FILTER_GROWTH * layer.weight.numel() * 4 for layer in layers if self.takes_winograd(layer))

    def _winograd_filters(self, name: str, layer: nn.Conv2d) -> torch.Tensor:
        """Each layer's transformed filters (4x its weights, float32, on the weights' device), made once."""
        key = (name, layer.weight.dtype, layer.weight.device)
        if key not in self._filters:
            self._filters[key] = winograd.transform_filters(layer.weight.float())
        return self._filters[key]


class _ConvReLU(torch.autograd.Function):
    """relu(conv3x3(x)) in one oneDNN call on the CPU, and its gradient to x alone (frozen weights).

    The fused call writes each activation once instead of writing it and then rewriting it in
    place: a forward pass at 1024 px took 0.24 s instead of 0.31. Its output equals the pair's to
    float rounding (bit for bit at the default layers; oneDNN may pick another algorithm for some
    shapes). The backward is autograd's own for the pair: the ReLU's mask, then the convolution's
    input gradient, from the same saved tensors (the input and the output) that the pair kept before.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = _fused(x, weight, bias)
        ctx.save_for_backward(x, weight, y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        x, weight, y = ctx.saved_tensors
        masked = torch.ops.aten.threshold_backward(grad, y, 0)
        one = [1, 1]
        (dx, _, _) = torch.ops.aten.convolution_backward(
            masked, x, weight, None, one, one, one, False, [0, 0], 1, [True, False, False]
        )
        return dx, None, None


def _fused(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    one = [1, 1]
    return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, one, one, one, 1, "relu", [], "")


def conv_relu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """relu(conv(x)) for a 3x3, padding 1 convolution of this network, fused on the CPU (_ConvReLU)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _ConvReLU.apply(x, conv.weight, conv.bias)
    return _fused(x, conv.weight, conv.bias)  # type: ignore[arg-type]
