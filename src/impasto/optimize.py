"""The pixel optimisers: box-constrained L-BFGS and projected Adam, and the loop around them.

Only the image's pixels are optimised, bounded to the displayable range [0, 1]. The loop keeps
the best image seen, stops early when the loss stops falling, and leaves cleanly on Ctrl-C or
when the caller's callback asks it to. The budget counts objective *evaluations*: L-BFGS's
line-search trials included, since each costs a full forward and backward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .config import StyleConfig
from .errors import ImpastoError

Evaluate = Callable[[torch.Tensor], tuple[float, torch.Tensor]]
"""pixels -> (loss, gradient); what the optimisers minimise."""


@dataclass
class StepInfo:
    """What the loop reports after each evaluation: the best image so far and its loss.

    The best, not the evaluated point: an L-BFGS line-search trial may be rejected, and the
    preview and the loss shown should be those of the image that would be written.
    """

    iteration: int  # evaluations so far in this loop, 1-based
    loss: float  # of the best image so far
    terms: dict[str, float]  # of the best image so far
    image: torch.Tensor  # the best pixels so far (do not modify)
    trial: float  # the loss at the point just evaluated


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


def value_and_grad(
    objective: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]], pixels: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Total, parts and gradient at `pixels`: the objective's own way if it has one (tiles), else autograd."""
    own = getattr(objective, "value_and_grad", None)
    if own is not None:
        return own(pixels)
    pixels = pixels.detach().requires_grad_(True)
    total, parts = objective(pixels)
    total.backward()
    assert pixels.grad is not None
    return total.detach(), {k: v.detach() for k, v in parts.items()}, pixels.grad


class Evaluator:
    """Loss and gradient at given pixels; records the trace, keeps the best image, decides stops.

    The optimisers call it and check `done` after every evaluation: the budget is exactly
    `iterations` evaluations, whatever the optimiser counts.
    """

    def __init__(
        self,
        objective: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]],
        start: torch.Tensor,
        iterations: int,
        tolerance: float = 0.0,
        window: int = 20,
        hook: StepHook | None = None,
        copy_best: bool = True,
    ):
        self.objective, self.tolerance, self.window, self.hook = objective, tolerance, window, hook
        self.copy_best = copy_best  # False where the optimiser never writes into evaluated pixels (L-BFGS)
        self.iterations = iterations
        self.result = LoopResult(best=start.detach().clone(), best_loss=math.inf)
        self.best_terms: dict[str, float] = {}
        self.best_trace: list[float] = []
        self.stopped: str | None = None if iterations > 0 else "iterations"

    @property
    def done(self) -> bool:
        return self.stopped is not None

    def __call__(self, pixels: torch.Tensor) -> tuple[float, torch.Tensor]:
        total, parts, grad = value_and_grad(self.objective, pixels)
        value = total.item()
        if not math.isfinite(value):
            self.stopped = "nonfinite"
            return value, grad
        result = self.result
        if value < result.best_loss:
            result.best_loss, result.best = value, pixels.detach().clone() if self.copy_best else pixels.detach()
            self.best_terms = {k: v.item() for k, v in parts.items()}
        result.trace.append({"loss": result.best_loss, **self.best_terms, "trial": value})
        self.best_trace.append(result.best_loss)
        info = StepInfo(len(result.trace), result.best_loss, self.best_terms, result.best, value)
        if self.hook is not None and self.hook(info):
            self.stopped = "callback"
        elif _converged(self.best_trace, self.window, self.tolerance):
            self.stopped = "converged"
        elif len(result.trace) >= self.iterations:
            self.stopped = "iterations"
        return value, grad


def adam_box(evaluate: Evaluate, start: torch.Tensor, *, lr: float, done: Callable[[], bool]) -> torch.Tensor:
    """Adam, projected onto [0, 1] after each step, until `done()`; returns the last iterate."""
    pixels = start.detach().clone().clamp_(0.0, 1.0)
    opt = torch.optim.Adam([pixels], lr=lr)
    while True:
        _, pixels.grad = evaluate(pixels)
        if done():
            return pixels
        opt.step()
        with torch.no_grad():
            pixels.clamp_(0.0, 1.0)


class _History:
    """The last m curvature pairs (s, y) of L-BFGS, applied by the two-loop recursion.

    Pairs may be stored in a narrower `dtype` (bf16: half the memory of a print-size history, where
    the memory plan asks for it); the recursion itself runs in the gradient's precision, and s.y
    is taken from the stored vectors so that each pair stays consistent with its curvature.
    """

    def __init__(self, size: int, dtype: torch.dtype = torch.float32):
        self.size, self.dtype = size, dtype
        self.pairs: list[tuple[torch.Tensor, torch.Tensor, float]] = []  # s, y, 1 / (s.y)

    def add(self, x_new: torch.Tensor, x_old: torch.Tensor, g_new: torch.Tensor, g_old: torch.Tensor) -> None:
        """Remember s = x_new - x_old and y = g_new - g_old (one full-precision difference alive at a time)."""
        s = (x_new - x_old).to(self.dtype)
        y = (g_new - g_old).to(self.dtype)
        sy, yy = _dot(s, y), _dot(y, y)
        if sy <= 1e-10 * yy:  # no positive curvature along s: keep H positive definite
            return
        self.pairs.append((s, y, 1.0 / sy))
        if len(self.pairs) > self.size:
            self.pairs.pop(0)

    def forget(self) -> None:
        self.pairs.clear()

    def apply(self, q: torch.Tensor) -> torch.Tensor:
        """H @ q for the inverse Hessian estimate H, computed in q's place (no image-sized copy)."""
        alphas = []
        for s, y, rho in reversed(self.pairs):
            alpha = rho * _dot(s, q)
            q.add_(y, alpha=-alpha)
            alphas.append(alpha)
        s, y, rho = self.pairs[-1]
        q.mul_(1.0 / (rho * _dot(y, y)))  # gamma = s.y / y.y scales the initial H
        for (s, y, rho), alpha in zip(self.pairs, reversed(alphas)):
            q.add_(s, alpha=alpha - rho * _dot(y, q))
        return q


_CHUNK = 1 << 20


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """a.b in float32 whatever the vectors are stored in, upcast a chunk at a time (not a print-size copy)."""
    if a.dtype == b.dtype == torch.float32:
        return float(torch.dot(a, b))
    return sum(
        float(torch.dot(a[i : i + _CHUNK].float(), b[i : i + _CHUNK].float())) for i in range(0, a.numel(), _CHUNK)
    )


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
        direction = pairs.apply(grad * free).mul_(free).neg_()
        if float(torch.dot(grad, direction)) < 0:
            return direction, 1.0
        pairs.forget()  # the curvature estimate no longer points downhill
    direction = -grad * free
    return direction, first_step / max(float(direction.abs().max()), 1e-12)


def lbfgs_box(
    evaluate: Evaluate,
    start: torch.Tensor,
    *,
    history: int,
    done: Callable[[], bool],
    first_step: float = 0.05,
    history_dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, float]:
    """L-BFGS with the pixels kept in [0, 1] by projection, in torch on the image's device.

    Bounds matter: unconstrained L-BFGS drifts out of the displayable range, and the image that is
    finally clipped and saved is then much worse than the loss said. Here a step is projected onto
    the box, pixels held at a bound by their gradient are left out of the search direction, and a
    backtracking (Armijo) search along the projected path keeps every accepted step a descent.
    Runs in float32 on the device (no float64 copies, no CPU round trip on a GPU). Stops when
    `done()` says so after an evaluation; returns the last accepted point and its loss.
    """
    shape = start.shape
    x = start.detach().reshape(-1).clamp(0.0, 1.0)
    loss, grad = evaluate(x.view(shape))
    grad = grad.reshape(-1)
    pairs = _History(history, history_dtype)
    while not done():
        direction, step = _direction(pairs, grad, _free(x, grad), first_step)
        for _ in range(20):
            candidate = (x + step * direction).clamp_(0.0, 1.0)
            new_loss, new_grad = evaluate(candidate.view(shape))
            if done():
                return x.view(shape), loss
            if new_loss <= loss + 1e-4 * float(torch.dot(grad, candidate - x)):  # Armijo: enough decrease
                break
            del new_grad  # a rejected trial's gradient is not kept through the next evaluation
            step *= 0.5
        else:
            pairs.forget()
            continue
        new_grad = new_grad.reshape(-1)
        pairs.add(candidate, x, new_grad, grad)
        x, loss, grad = candidate, new_loss, new_grad
    return x.view(shape), loss


def optimise(
    start: torch.Tensor,
    objective: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    *,
    iterations: int,
    optimizer: str,
    lr: float,
    lbfgs_history: int,
    tolerance: float,
    window: int,
    hook: StepHook | None = None,
    history_dtype: torch.dtype = torch.float32,
) -> LoopResult:
    """Minimise the objective over the pixels, starting from `start`; returns the best image seen.

    `iterations` is the budget of objective evaluations; Ctrl-C ends the loop with the best so far.
    """
    # L-BFGS evaluates fresh tensors and never writes into them: the best needs no copy (an image's worth
    # of memory at print size); Adam steps its pixels in place
    evaluate = Evaluator(objective, start, iterations, tolerance, window, hook, copy_best=optimizer != "lbfgs")
    try:
        if evaluate.done:
            pass
        elif optimizer == "lbfgs":
            lbfgs_box(evaluate, start, history=lbfgs_history, done=lambda: evaluate.done, history_dtype=history_dtype)
        else:
            adam_box(evaluate, start, lr=lr, done=lambda: evaluate.done)
    except KeyboardInterrupt:
        evaluate.stopped = "interrupted"
    evaluate.result.stopped = evaluate.stopped or "iterations"
    return evaluate.result


def optimise_as(
    cfg: StyleConfig,
    start: torch.Tensor,
    objective: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    *,
    iterations: int,
    where: str,
    weights: str,
    lbfgs_history: int | None = None,
    history_dtype: torch.dtype = torch.float32,
    hook: StepHook | None = None,
) -> LoopResult:
    """`optimise` with cfg's optimiser settings; a non-finite loss is an error naming `where` and the
    `weights` to lower (the picture would be the untouched start: nothing is written)."""
    loop = optimise(
        start, objective, iterations=iterations, optimizer=cfg.optimizer, lr=cfg.lr,
        lbfgs_history=cfg.lbfgs_history if lbfgs_history is None else lbfgs_history,
        tolerance=cfg.tolerance, window=cfg.window, hook=hook, history_dtype=history_dtype,
    )  # fmt: skip
    if loop.stopped == "nonfinite":
        raise ImpastoError(
            f"the loss became infinite or NaN at {where}; lower the weights ({weights}); nothing written"
        )
    return loop
