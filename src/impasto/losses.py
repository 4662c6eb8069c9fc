"""Composable loss modules: content (features), style (Gram matrices), total variation.

Each loss holds its target, fixed once per scale, and returns a scalar for the current
activations. Loss values are float32 even when the network runs in bfloat16, so the objective
the optimiser sees keeps its precision.

Speed notes (issue 3, 2-core CPU): the Gram is taken on a *view* of the activations as a
positions x channels matrix, which is contiguous for channels_last tensors (no copy), and its
backward is one matrix product returned in the activations' own dtype and layout, so autograd
adds it to the convolution's gradient without a layout-converting (slow, strided) add.
"""

from __future__ import annotations

import torch
from torch import nn


def _positions(features: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> N x (H*W) x C, a view (contiguous when the input is channels_last)."""
    return features.flatten(2).transpose(1, 2)


_CHUNK = 1 << 15  # positions per float32 block of the Gram's forward (8 MiB at 64 channels)


class _Gram(torch.autograd.Function):
    """G = X^T X * scale for X = positions x channels; G is float32, the gradient X's dtype.

    Forward multiplies in float32 (a bfloat16 product would round every entry of G to 3
    significant digits, which shows in the loss near convergence). Backward needs one product,
    dX = X (dG + dG^T) * scale, where autograd's matmul rule would do two plus an add.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.scale = scale
        dtype = torch.promote_types(x.dtype, torch.float32)
        n, positions, c = x.shape
        gram = torch.zeros(n, c, c, dtype=dtype, device=x.device)
        for start in range(0, positions, _CHUNK):  # chunks bound the float32 copy's size
            part = x[:, start : start + _CHUNK].to(dtype)
            gram.baddbmm_(part.transpose(1, 2), part)
        return gram.mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        sym = (grad + grad.transpose(1, 2)).mul_(ctx.scale).to(x.dtype)
        return torch.bmm(x, sym), None


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Channel correlations, location-free: G = F F^T / (number of positions), in float32.

    With a mask (1 x 1 x H x W, values in [0, 1]) this is the guided Gram of Gatys et al. 2017:
    features are weighted by the mask and normalised by the mask's mass.
    """
    n, c, h, w = features.shape
    x = _positions(features)
    if mask is None:
        return _Gram.apply(x, 1.0 / (h * w))
    m = mask.reshape(n, h * w, 1).to(x.dtype)
    return _Gram.apply(x * m, 1.0) / mask.float().square().sum().clamp_min(1e-8)


class ContentLoss(nn.Module):
    """Mean squared error between feature maps; optionally divided by the target's mean square."""

    target: torch.Tensor
    scale: float

    def __init__(self, target: torch.Tensor, normalize: bool):
        super().__init__()
        target = target.detach().float()
        self.register_buffer("target", target)
        self.scale = 1.0 / (target.square().mean().item() + 1e-8) if normalize else 1.0

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * (features.float() - self.target).square().mean()


class StyleLoss(nn.Module):
    """Mean squared error between Gram matrices, the style's Gram computed once (cached).

    `target_gram` may be a blend of several styles' Grams. With `normalize`, the loss is divided
    by the target Gram's mean square so that layers of very different magnitude weigh alike.
    """

    target: torch.Tensor
    scale: float

    def __init__(self, target_gram: torch.Tensor, normalize: bool, mask: torch.Tensor | None = None):
        super().__init__()
        target_gram = target_gram.detach().float()
        self.register_buffer("target", target_gram)
        self.mask: torch.Tensor | None = mask
        self.scale = 1.0 / (target_gram.square().mean().item() + 1e-8) if normalize else 1.0

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mask = self.mask
        if mask is not None and mask.shape[-2:] != features.shape[-2:]:
            raise ValueError("mask size does not match the features")
        return self.scale * (gram_matrix(features, mask) - self.target).square().mean()


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Smooth (squared) total variation: mean squared difference of neighbouring pixels.

    The squared form is differentiable everywhere, which L-BFGS needs.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.square().mean() + dy.square().mean()


class TotalVariation(nn.Module):
    """`total_variation` as a loss module, so that it is one more term of the objective (on pixels)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return total_variation(image)
