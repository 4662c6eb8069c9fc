"""The pixel optimiser against SciPy's L-BFGS-B on box-constrained problems with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

from impasto.optimize import _Evaluator, _lbfgs_box, _Stop


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


def minimise_box(objective: Quadratic, n: int, iterations: int, history: int) -> _Evaluator:
    """Run the box L-BFGS from the box's centre until its budget stops it; the evaluator holds the result."""
    start = torch.full((1, 1, 1, n), 0.5)
    evaluate = _Evaluator(objective, start, iterations, tolerance=0.0, window=20, hook=None)
    with pytest.raises(_Stop):
        _lbfgs_box(evaluate, start, history=history)
    return evaluate


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
    result = minimise_box(objective, n, iterations=400, history=10).result
    best, loss = result.best.reshape(-1).double(), result.best_loss
    expected_x, expected_loss = reference(objective, n)
    assert float(best.min()) >= 0.0 and float(best.max()) <= 1.0  # never leaves the box
    at_bounds = (expected_x <= 1e-6) | (expected_x >= 1 - 1e-6)
    assert at_bounds.sum() >= 5  # the problem really is constrained
    assert loss <= expected_loss + 1e-3 * max(1.0, expected_loss)
    assert np.abs(best.numpy() - expected_x).max() < 0.02


def test_box_lbfgs_makes_fast_progress_on_an_ill_conditioned_problem():
    evaluate = minimise_box(Quadratic(40, 3), 40, iterations=80, history=5)
    best = np.minimum.accumulate([row["loss"] for row in evaluate.result.trace])
    assert best[-1] < 0.01 * best[0]
