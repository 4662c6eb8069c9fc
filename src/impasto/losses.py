"""Composable loss modules: content (features), style (Gram matrices or W2), total variation.

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


class _GramPullback(torch.autograd.Function):
    """A zero whose gradient with respect to X is that of <S, X^T X> for a fixed S: X (S + S^T).

    Where the slope S of a loss with respect to a Gram is already known (tiles' pass 2), the Gram's
    value is not needed again, only this gradient: skipping the forward product saves its float32
    copy of the activations and the product itself.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, slope)
        return x.new_zeros((), dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        x, slope = ctx.saved_tensors
        return torch.bmm(x, ((slope + slope.transpose(1, 2)) * grad).to(x.dtype)), None


def gram_pullback(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """Back-propagating this zero gives X's share of d<slope, X^T X>: see _GramPullback."""
    return _GramPullback.apply(x, slope)


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


STYLE_LOSSES = ("gram", "w2")


def moments(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The (C+1) x (C+1) second-moment matrix of [x, 1]: the Gram, the mean in the last column, 1.

    One matrix holds what the W2 loss needs (mean and covariance) and, like a Gram, it is an average
    over positions: blends of styles and sums over tiles combine it the same way.
    """
    n, c, h, w = features.shape
    weights = features.new_ones((n, h * w, 1), dtype=torch.float32) if mask is None else mask.reshape(n, h * w, 1)
    return moment_sums(_positions(features), weights.float()) / weights.float().square().sum().clamp_min(1e-8)


def moment_sums(positions: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Un-normalised moments of positions x weights (N x P x C, N x P x 1): what `moments` averages,
    and what tiles add up before dividing once by the picture's mass."""
    weighted = positions * weights.to(positions.dtype)
    gram = _Gram.apply(weighted, 1.0)
    return augment(gram, (weighted.float() * weights).sum(1), weights.square().sum((1, 2)))


def augment(gram: torch.Tensor, mean: torch.Tensor, corner: torch.Tensor) -> torch.Tensor:
    """[[G, m], [m^T, corner]] for N x C x C G, N x C m and N corners."""
    top = torch.cat([gram, mean.unsqueeze(2)], dim=2)
    bottom = torch.cat([mean, corner.reshape(-1, 1)], dim=1).unsqueeze(1)
    return torch.cat([top, bottom], dim=1)


def _mean_and_covariance(stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c = stats.shape[-1] - 1
    corner = stats[..., c : c + 1, c : c + 1]
    mean = stats[..., :c, c:] / corner  # N x C x 1
    return mean, stats[..., :c, :c] / corner - mean @ mean.transpose(-1, -2)


class StyleLoss(nn.Module):
    """The distance of the image's style statistics at one layer to a target's (computed once).

    * 'gram' (Gatys et al.): mean squared error between Gram matrices; with `normalize`, divided by
      the target Gram's mean square so that layers of very different magnitude weigh alike.
    * 'w2': the squared 2-Wasserstein distance between Gaussians with the features' mean and
      covariance (as in crowsonkb/style-transfer-pytorch); the target is a `moments` matrix.
      With `normalize`, divided by the target features' mean square (the trace of its Gram).
      It matches the whole covariance, not mostly its largest entries as the Gram's MSE does.

    `target` may be a blend of several styles' statistics. `statistics` is what the image's
    features are reduced to (Gram or moments), so tiles can sum them (tiles.py) and call `compare`.
    """

    target: torch.Tensor
    target_mean: torch.Tensor
    target_root: torch.Tensor
    scale: float

    def __init__(self, target: torch.Tensor, normalize: bool, mask: torch.Tensor | None = None, kind: str = "gram"):
        super().__init__()
        target = target.detach().float()
        self.kind = kind
        self.register_buffer("target", target)
        self.mask: torch.Tensor | None = mask
        if kind == "gram":
            self.scale = 1.0 / (target.square().mean().item() + 1e-8) if normalize else 1.0
            return
        mean, cov = _mean_and_covariance(target.double())
        values, vectors = torch.linalg.eigh(cov)
        root = (vectors * values.clamp_min(0).sqrt().unsqueeze(-2)) @ vectors.transpose(-1, -2)
        self.register_buffer("target_mean", mean)
        self.register_buffer("target_root", root)
        self.target_trace = float(cov.diagonal(dim1=-2, dim2=-1).sum())
        c = cov.shape[-1]
        self.scale = 1.0 / (float(target[..., :c, :c].diagonal(dim1=-2, dim2=-1).sum()) + 1e-8) if normalize else 1.0

    def statistics(self, features: torch.Tensor) -> torch.Tensor:
        """The image's statistics at this layer (Gram or moments), float32."""
        mask = self.mask
        if mask is not None and mask.shape[-2:] != features.shape[-2:]:
            raise ValueError("mask size does not match the features")
        return gram_matrix(features, mask) if self.kind == "gram" else moments(features, mask)

    def compare(self, stats: torch.Tensor) -> torch.Tensor:
        """The (normalised) loss for the image's statistics."""
        if self.kind == "gram":
            return self.scale * (stats - self.target).square().mean()
        mean, cov = _mean_and_covariance(stats.double())  # float64: the covariance is a small difference
        root = self.target_root
        inner = torch.linalg.eigvalsh(root @ cov @ root).clamp_min(1e-12).sqrt().sum(-1)
        trace = cov.diagonal(dim1=-2, dim2=-1).sum(-1)
        w2 = (mean - self.target_mean).square().sum((-2, -1)) + trace + self.target_trace - 2 * inner
        return (self.scale * w2.mean()).float()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.compare(self.statistics(features))


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

    @torch.no_grad()
    def accumulate(self, image: torch.Tensor, weight: float, grad: torch.Tensor) -> torch.Tensor:
        """weight x TV, adding its gradient into `grad` in place, with one difference image alive at a
        time: autograd holds about six image-sized tensors, 3.6 GiB at 8192x6144 (a tiled run's peak)."""
        value = image.new_zeros((), dtype=torch.float32)
        for dim in (-1, -2):
            diff = image.diff(dim=dim)
            flat = diff.reshape(-1)
            value += torch.dot(flat, flat) / flat.numel()
            diff.mul_(2 * weight / diff.numel())
            length = image.shape[dim]
            grad.narrow(dim, 1, length - 1).add_(diff)
            grad.narrow(dim, 0, length - 1).sub_(diff)
        return weight * value
