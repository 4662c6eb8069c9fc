"""The objective (weighted sum of loss modules over one VGG pass) and the pixel optimiser loop.

Only the image's pixels are optimised, bounded to the displayable range [0, 1]. The loop keeps
the best image seen, stops early when the loss stops falling, and leaves cleanly on Ctrl-C or
when the caller's callback asks it to.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .losses import total_variation
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

    def __init__(self, vgg: VGGFeatures, terms: list[Term], tv_weight: float):
        super().__init__()
        self.vgg = vgg
        self.terms = terms
        self.term_modules = nn.ModuleList(t.loss for t in terms)
        self.tv_weight = tv_weight

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


class _Stop(Exception):
    """Raised from inside an evaluation to leave the optimiser; carries why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Evaluator:
    """Loss and gradient at given pixels; records the trace, keeps the best image, decides stops."""

    def __init__(
        self,
        objective: Objective,
        start: torch.Tensor,
        iterations: int,
        tolerance: float,
        window: int,
        hook: StepHook | None,
    ):
        self.objective, self.tolerance, self.window, self.hook = objective, tolerance, window, hook
        self.iterations = iterations
        self.result = LoopResult(best=start.detach().clone(), best_loss=math.inf)
        self.best_trace: list[float] = []

    def __call__(self, pixels: torch.Tensor) -> tuple[float, torch.Tensor]:
        pixels = pixels.detach().requires_grad_(True)
        total, parts = self.objective(pixels)
        total.backward()
        value = total.item()
        if not math.isfinite(value):
            raise _Stop("nonfinite")
        terms = {k: v.item() for k, v in parts.items()}
        result = self.result
        if value < result.best_loss:
            result.best_loss, result.best = value, pixels.detach().clone()
        result.trace.append({"loss": value, **terms})
        self.best_trace.append(result.best_loss)
        if self.hook is not None and self.hook(StepInfo(len(result.trace), value, terms, pixels.detach())):
            raise _Stop("callback")
        if _converged(self.best_trace, self.window, self.tolerance):
            raise _Stop("converged")
        if len(result.trace) >= self.iterations:  # exactly the budget, whatever the optimiser counts
            raise _Stop("iterations")
        assert pixels.grad is not None
        return value, pixels.grad


def _adam(evaluate: _Evaluator, start: torch.Tensor, lr: float) -> None:
    """Adam, projected onto [0, 1] after each step."""
    pixels = start.detach().clone().clamp_(0.0, 1.0)
    opt = torch.optim.Adam([pixels], lr=lr)
    while True:  # the evaluator stops the loop when the budget is spent
        _, pixels.grad = evaluate(pixels)
        opt.step()
        with torch.no_grad():
            pixels.clamp_(0.0, 1.0)


class _History:
    """The last m curvature pairs (s, y) of L-BFGS, applied by the two-loop recursion."""

    def __init__(self, size: int):
        self.size = size
        self.pairs: list[tuple[torch.Tensor, torch.Tensor, float]] = []  # s, y, 1 / (s.y)

    def add(self, s: torch.Tensor, y: torch.Tensor) -> None:
        sy = float(torch.dot(s, y))
        if sy <= 1e-10 * float(torch.dot(y, y)):  # no positive curvature along s: keep H positive definite
            return
        self.pairs.append((s, y, 1.0 / sy))
        if len(self.pairs) > self.size:
            self.pairs.pop(0)

    def forget(self) -> None:
        self.pairs.clear()

    def apply(self, grad: torch.Tensor) -> torch.Tensor:
        """H @ grad for the inverse Hessian estimate H."""
        q = grad.clone()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            alpha = rho * float(torch.dot(s, q))
            q.add_(y, alpha=-alpha)
            alphas.append(alpha)
        s, y, rho = self.pairs[-1]
        q.mul_(1.0 / (rho * float(torch.dot(y, y))))  # gamma = s.y / y.y scales the initial H
        for (s, y, rho), alpha in zip(self.pairs, reversed(alphas)):
            q.add_(s, alpha=alpha - rho * float(torch.dot(y, q)))
        return q


def _free(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """1 where a pixel may move along -grad, 0 where it sits at a bound and the gradient pushes it out."""
    blocked = ((x <= 0.0) & (grad > 0)) | ((x >= 1.0) & (grad < 0))
    return (~blocked).to(x.dtype)


def _direction(
    pairs: _History, grad: torch.Tensor, free: torch.Tensor, first_step: float
) -> tuple[torch.Tensor, float]:
    """Search direction and first trial step along it.

    Quasi-Newton where curvature pairs exist and give a descent direction (its natural step is 1);
    otherwise steepest descent, scaled so that no pixel moves more than first_step.
    """
    if pairs.pairs:
        direction = pairs.apply(grad * free).mul_(-free)
        if float(torch.dot(grad, direction)) < 0:
            return direction, 1.0
        pairs.forget()  # the curvature estimate no longer points downhill
    direction = -grad * free
    return direction, first_step / max(float(direction.abs().max()), 1e-12)


def _lbfgs_box(evaluate: _Evaluator, start: torch.Tensor, history: int, first_step: float = 0.05) -> None:
    """L-BFGS with the pixels kept in [0, 1] by projection, in torch on the image's device.

    Bounds matter: unconstrained L-BFGS drifts out of the displayable range, and the image that is
    finally clipped and saved is then much worse than the loss said. Here a step is projected onto
    the box, pixels held at a bound by their gradient are left out of the search direction, and a
    backtracking (Armijo) search along the projected path keeps every accepted step a descent.
    Runs in float32 on the device (no float64 copies, no CPU round trip on a GPU).
    """
    shape = start.shape
    x = start.detach().reshape(-1).clamp(0.0, 1.0)
    loss, grad = evaluate(x.view(shape))
    grad = grad.reshape(-1)
    pairs = _History(history)
    while True:  # the evaluator stops the loop when the budget is spent
        direction, step = _direction(pairs, grad, _free(x, grad), first_step)
        for _ in range(20):
            candidate = (x + step * direction).clamp_(0.0, 1.0)
            new_loss, new_grad = evaluate(candidate.view(shape))
            moved = candidate - x
            if new_loss <= loss + 1e-4 * float(torch.dot(grad, moved)):  # Armijo: enough decrease
                break
            step *= 0.5
        else:
            pairs.forget()
            continue
        new_grad = new_grad.reshape(-1)
        pairs.add(moved, new_grad - grad)
        x, loss, grad = candidate, new_loss, new_grad


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
    hook: StepHook | None = None,
) -> LoopResult:
    """Minimise the objective over the pixels, starting from `start`; returns the best image seen."""
    evaluate = _Evaluator(objective, start, iterations, tolerance, window, hook)
    if iterations <= 0:
        return evaluate.result
    try:
        if optimizer == "lbfgs":
            _lbfgs_box(evaluate, start, lbfgs_history)
        else:
            _adam(evaluate, start, lr)
    except _Stop as stop:
        evaluate.result.stopped = stop.reason
    except KeyboardInterrupt:
        evaluate.result.stopped = "interrupted"
    return evaluate.result
