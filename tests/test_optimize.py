"""The pixel optimiser against SciPy's L-BFGS-B on box-constrained problems with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

from impasto.optimize import lbfgs_box, optimise


class Quadratic(torch.nn.Module):
    """f(x) = 0.5 (x - c)^T A (x - c), A positive definite and ill-conditioned; c partly outside [0, 1]."""

    def __init__(self, n: int, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
        self.a = (q * torch.logspace(0, 3, n, dtype=torch.float64)) @ q.T  # condition number 1000
        self.c = torch.rand(n, generator=gen, dtype=torch.float64) * 1.6 - 0.3  # some targets beyond the box

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        d = x.double().reshape(-1) - self.c
        value = 0.5 * d @ (self.a @ d)
        return value.float(), {}


def minimise_box(
    objective: Quadratic, n: int, evaluations: int, history: int, history_dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, float, list]:
    """The plain box L-BFGS from the box's centre, stopped after `evaluations`; (x, loss, every loss evaluated)."""
    losses: list[float] = []

    def evaluate(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        x = x.detach().requires_grad_(True)
        value, _ = objective(x)
        value.backward()
        losses.append(float(value.detach()))
        return losses[-1], x.grad

    start = torch.full((1, 1, 1, n), 0.5)
    x, loss = lbfgs_box(
        evaluate, start, history=history, done=lambda: len(losses) >= evaluations, history_dtype=history_dtype
    )
    return x, loss, losses


def reference(objective: Quadratic, n: int) -> tuple[np.ndarray, float]:
    a, c = objective.a.numpy(), objective.c.numpy()
    res = scipy.optimize.minimize(
        lambda x: (0.5 * (x - c) @ a @ (x - c), a @ (x - c)),
        np.full(n, 0.5),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * n,
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000},
    )
    return res.x, float(res.fun)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_lbfgs_finds_the_constrained_minimum(seed):
    n = 60
    objective = Quadratic(n, seed)
    x, loss, losses = minimise_box(objective, n, evaluations=400, history=10)
    best = x.reshape(-1).double()
    assert len(losses) == 400 and loss == min(losses)  # stops on its condition; returns the best accepted point
    expected_x, expected_loss = reference(objective, n)
    assert float(best.min()) >= 0.0 and float(best.max()) <= 1.0  # never leaves the box
    at_bounds = (expected_x <= 1e-6) | (expected_x >= 1 - 1e-6)
    assert at_bounds.sum() >= 5  # the problem really is constrained
    assert loss <= expected_loss + 1e-3 * max(1.0, expected_loss)
    assert np.abs(best.numpy() - expected_x).max() < 0.02


def test_box_lbfgs_makes_fast_progress_on_an_ill_conditioned_problem():
    _, loss, losses = minimise_box(Quadratic(40, 3), 40, evaluations=80, history=5)
    assert loss < 0.01 * losses[0]


@pytest.mark.parametrize("n, seed", [(40, 3), (200, 1)])
def test_a_bf16_history_converges_as_fast_as_the_float32_one(n, seed):
    """Print sizes store the pairs in bf16 (half the memory); the descent must not suffer for it."""
    objective = Quadratic(n, seed)
    _, expected = reference(objective, n)
    _, wide, _ = minimise_box(objective, n, evaluations=40, history=5)
    _, narrow, _ = minimise_box(objective, n, evaluations=40, history=5, history_dtype=torch.bfloat16)
    assert narrow - expected <= 1.5 * (wide - expected)
    _, final, _ = minimise_box(objective, n, evaluations=400, history=5, history_dtype=torch.bfloat16)
    assert final <= expected + 1e-3 * max(1.0, expected)


def test_evaluator_counts_evaluations_and_reports_the_best_so_far():
    """The budget is exact; rejected line-search trials never show as the loss, the trace's loss never rises."""
    objective = Quadratic(30, 4)
    seen = []
    start = torch.full((1, 1, 1, 30), 0.5)
    result = optimise(
        start, objective, iterations=50, optimizer="lbfgs", lr=0.0, lbfgs_history=5, tolerance=0.0, window=5,
        hook=lambda info: seen.append((info.iteration, info.loss, info.trial)) and False,
    )  # fmt: skip
    assert [s[0] for s in seen] == list(range(1, 51)) and len(result.trace) == 50
    losses = [row["loss"] for row in result.trace]
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    assert any(trial > loss for _, loss, trial in seen)  # some trials were rejected, and not reported as the loss
    assert result.best_loss == losses[-1] == pytest.approx(float(objective(result.best)[0]))
