"""The multi-scale (coarse-to-fine) schedule: which sizes to solve at, and for how long.

Solving at a small size first is cheap and fixes the large structures; each finer scale starts
from the upsampled result of the one before and only has to add detail, so most iterations
are spent where they cost little.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Iterations at the coarsest scale; each finer scale gets this fraction of the one before.
COARSE_ITERATIONS = 300
FINER_FRACTION = 0.5
MIN_ITERATIONS = 50


@dataclass(frozen=True)
class Scale:
    longest: int
    iterations: int


def scale_sizes(size: int, min_size: int, count: int | None = None) -> list[int]:
    """Geometric steps from min_size up to size, coarse to fine; the last is always `size`.

    With no count, steps are at most 2x apart; a single scale if size <= min_size.
    """
    if count is None:
        count = 1 if size <= min_size else math.ceil(math.log2(size / min_size)) + 1
    if count <= 1 or size <= min_size:
        return [size]
    steps = count - 1
    return [round(min_size * (size / min_size) ** (i / steps)) for i in range(steps)] + [size]


def default_iterations(count: int) -> list[int]:
    its, out = float(COARSE_ITERATIONS), []
    for _ in range(count):
        out.append(max(MIN_ITERATIONS, round(its)))
        its *= FINER_FRACTION
    return out


def schedule(size: int, min_size: int, scales: int | None, iterations: Sequence[int] | None) -> list[Scale]:
    sizes = scale_sizes(size, min_size, scales)
    if iterations is None:
        its = default_iterations(len(sizes))
    else:
        its = [int(iterations[min(i, len(iterations) - 1)]) for i in range(len(sizes))]
    return [Scale(s, n) for s, n in zip(sizes, its)]
