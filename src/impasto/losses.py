"""Composable loss modules: content (features), style (Gram matrices), total variation.

Each loss holds its target, fixed once per scale, and returns a scalar for the current
activations. Losses are computed in float32 even when the network runs in bfloat16, so the
objective the optimiser sees keeps its precision.
"""

from __future__ import annotations

import torch
from torch import nn


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Channel correlations, location-free: G = F F^T / (number of positions).

    With a mask (1 x 1 x H x W, values in [0, 1]) this is the guided Gram of Gatys et al. 2017:
    features are weighted by the mask and normalised by the mask's mass.
    """
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w).float()
    if mask is None:
        return flat @ flat.transpose(1, 2) / (h * w)
    m = mask.reshape(n, 1, h * w).float()
    weighted = flat * m
    return weighted @ weighted.transpose(1, 2) / m.square().sum().clamp_min(1e-8)


class ContentLoss(nn.Module):
    """Mean squared error between feature maps; optionally divided by the target's mean square."""

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

    def __init__(self, target_gram: torch.Tensor, normalize: bool, mask: torch.Tensor | None = None):
        super().__init__()
        target_gram = target_gram.detach().float()
        self.register_buffer("target", target_gram)
        self.mask = mask
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
