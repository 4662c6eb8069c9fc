"""The objective (weighted sum of loss modules over one VGG pass) and the pixel optimiser loop.

Only the image's pixels are optimised. The loop keeps the best image seen, stops early when the
loss stops falling, and leaves cleanly on Ctrl-C or when the caller's callback asks it to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from .losses import total_variation
from .runtime import Runtime
from .vgg import VGGFeatures


@dataclass
class Term:
    """One weighted loss on one layer's activations: kind is 'content' or 'style'."""

    kind: str
    layer: str
    weight: float
    loss: nn.Module


class Objective(nn.Module):
    """Total = sum of weighted content and style terms + tv_weight * total variation."""

    def __init__(self, vgg: VGGFeatures, terms: list[Term], tv_weight: float, runtime: Runtime):
        super().__init__()
        self.vgg = vgg
        self.terms = terms
        self.term_modules = nn.ModuleList(t.loss for t in terms)
        self.tv_weight = tv_weight
        self.runtime = runtime

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = self.vgg(image.contiguous(memory_format=torch.channels_last))
        parts: dict[str, torch.Tensor] = {}
        for term in self.terms:
            value = term.weight * term.loss(features[term.layer])
            parts[term.kind] = parts[term.kind] + value if term.kind in parts else value
        if self.tv_weight:
            parts["tv"] = self.tv_weight * total_variation(image)
        total = sum(parts.values())
        return total, parts  # type: ignore[return-value]


@dataclass
class StepInfo:
    """What the loop reports after each evaluation of the objective."""

    iteration: int
    loss: float
    terms: dict[str, float]
    image: torch.Tensor  # the pixels this loss was measured at (do not modify)


StepHook = Callable[[StepInfo], bool]
"""Called after every evaluation; returning True stops the loop (the best image is kept)."""


@dataclass
class LoopResult:
    best: torch.Tensor
    best_loss: float
    trace: list[dict[str, float]] = field(default_factory=list)
    stopped: str = "iterations"  # 'iterations', 'converged', 'callback', 'interrupted', 'nonfinite'


def _converged(best_trace: list[float], window: int, tolerance: float) -> bool:
    if tolerance <= 0 or len(best_trace) <= window:
        return False
    before, now = best_trace[-window - 1], best_trace[-1]
    return (before - now) <= tolerance * abs(before)


def _make_optimizer(name: str, pixels: torch.Tensor, lr: float, history: int) -> torch.optim.Optimizer:
    if name == "lbfgs":
        return torch.optim.LBFGS([pixels], lr=1.0, max_iter=1, history_size=history,
                                 tolerance_grad=0.0, tolerance_change=0.0)
    return torch.optim.Adam([pixels], lr=lr)


def optimise(
    start: torch.Tensor,
    objective: Objective,
    *,
    iterations: int,
    optimizer: str,
    lr: float,
    lbfgs_history: int,
    tolerance: float,
    window: int,
    hook: Optional[StepHook] = None,
) -> LoopResult:
    """Minimise the objective over the pixels, starting from `start`; returns the best image seen."""
    pixels = start.detach().clone().requires_grad_(True)
    opt = _make_optimizer(optimizer, pixels, lr, lbfgs_history)
    result = LoopResult(best=start.detach().clone(), best_loss=math.inf)
    best_trace: list[float] = []
    stop: list[str] = []

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        total, parts = objective(pixels)
        total.backward()
        total, parts = total.detach(), {k: v.detach() for k, v in parts.items()}
        value = total.item()
        terms = {k: v.item() for k, v in parts.items()}
        if not math.isfinite(value):
            stop.append("nonfinite")
            pixels.grad = torch.zeros_like(pixels)  # make the pending step a no-op
            return total.detach()
        if value < result.best_loss:
            result.best_loss = value
            result.best = pixels.detach().clone()
        result.trace.append({"loss": value, **terms})
        best_trace.append(result.best_loss)
        if hook is not None and hook(StepInfo(len(result.trace), value, terms, pixels.detach())):
            stop.append("callback")
        elif _converged(best_trace, window, tolerance):
            stop.append("converged")
        return total.detach()

    try:
        for _ in range(iterations):
            opt.step(closure)
            if stop:
                result.stopped = stop[0]
                break
    except KeyboardInterrupt:
        result.stopped = "interrupted"
    return result
