"""Time left in a multi-scale run, learnt from the run itself.

An evaluation's cost grows with its pixels, but not in proportion: a small image pays fixed costs
per layer (and a GPU is nearly all fixed cost at these sizes), so seconds per pixel measured at the
coarse scales overstate the fine ones. The clock fits seconds per evaluation = fixed + per-pixel
to every scale measured so far and prices the scales still to come with it, each with the set-up
(style and content targets) its own scale cost, in evaluations. On a CPU the cost per pixel rises
again once a picture outgrows the caches (2-core EPYC: 1.4 us per pixel at 512 px, 1.7-2.0 at 1024,
2.4 at 2048), which a straight line through small scales misses: a scale larger than any measured
is priced at least as the power law through the two largest measured ones extrapolates. The first
steps of a new scale are slow (warm-up, 1.3x at 1024 px) and the law's price is a guess: the
current scale's rate is the law's, counted as PRIOR_STEPS evaluations beside those measured.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

PRIOR_STEPS = 1
"""The law's price for the current scale counts as this many of its measured evaluations."""


@dataclass
class _Scale:
    pixels: int
    budget: int
    began: float | None = None  # set-up starts (targets)
    ready: float | None = None  # first evaluation starts
    first: float | None = None  # first evaluation ends: it pays the new size's one-off costs (kernel set-up)
    evaluations: int = 0
    last: float = 0.0  # time of the latest evaluation
    steps: list[float] = field(default_factory=list)  # seconds between evaluations after the first


@dataclass
class RunClock:
    """Seconds left of a run of `budgets[i]` evaluations at `pixels[i]`, scale after scale."""

    pixels: Sequence[int]
    budgets: Sequence[int]
    scales: list[_Scale] = field(init=False)

    def __post_init__(self) -> None:
        self.scales = [_Scale(p, b) for p, b in zip(self.pixels, self.budgets)]

    def setting_up(self, index: int, now: float) -> None:
        self.scales[index].began = now

    def ready(self, index: int, now: float) -> None:
        self.scales[index].ready = now

    def evaluated(self, index: int, evaluations: int, now: float) -> None:
        scale = self.scales[index]
        if evaluations == 1:
            scale.first = now
        elif evaluations == scale.evaluations + 1:
            scale.steps.append(now - scale.last)
        scale.evaluations, scale.last = evaluations, now

    def left(self, index: int) -> float:
        """Seconds left after the latest evaluation at scale `index`, if every scale runs its budget."""
        current = self.scales[index]
        rate = self._rate(current)
        if rate is None:
            return 0.0
        if index > 0 and self._measured(index - 1):
            seen = current.evaluations
            rate = (PRIOR_STEPS * self._law(index - 1)(current.pixels) + seen * rate) / (PRIOR_STEPS + seen)
        per_eval = self._law(index)
        setup = self._setup_evaluations(index)
        seconds = max(0, current.budget - current.evaluations) * rate
        for later in self.scales[index + 1 :]:
            seconds += (later.budget + setup) * per_eval(later.pixels)
        return seconds

    @staticmethod
    def _rate(scale: _Scale) -> float | None:
        """Seconds per evaluation: the median step after the first (the first, and the warm-up steps that
        follow a new size, pay one-off costs; the median keeps them out of the rate)."""
        if scale.ready is None or scale.evaluations == 0:
            return None
        if not scale.steps:  # one evaluation, or the evaluations not reported one by one
            return (scale.last - scale.ready) / scale.evaluations
        return statistics.median(scale.steps)

    def _measured(self, index: int) -> list[tuple[int, float]]:
        rates = [(s.pixels, self._rate(s)) for s in self.scales[: index + 1]]
        return [(p, r) for p, r in rates if r is not None and r > 0]

    def _setup_evaluations(self, index: int) -> float:
        """Mean set-up time of the scales so far (targets, and the warm-up's excess), in their evaluations."""
        ratios = [
            (s.last - s.began) / rate - s.evaluations if s.steps else (s.ready - s.began) / rate
            for s in self.scales[: index + 1]
            if s.began is not None and s.ready is not None and (rate := self._rate(s))
        ]
        return sum(ratios) / len(ratios) if ratios else 0.0

    def _law(self, index: int):
        """Seconds per evaluation against pixels: the straight line through the scales measured, and
        beyond the largest of them at least the power law through the two largest."""
        points = sorted(self._measured(index))
        if not points:
            return lambda pixels: 0.0
        line = _line(points)
        (p0, r0), (p1, r1) = points[-2:] if len(points) > 1 else (points[0], points[0])
        power = max(0.0, math.log(r1 / r0) / math.log(p1 / p0)) if p1 > p0 else 1.0
        return lambda pixels: max(line(pixels), r1 * (pixels / p1) ** power) if pixels > p1 else line(pixels)


def _line(points: list[tuple[int, float]]):
    """fixed + per_pixel * pixels, fitted by least squares (through zero where a fit makes no sense)."""
    n = len(points)
    mean_p = sum(p for p, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    spread = sum((p - mean_p) ** 2 for p, _ in points)
    slope = sum((p - mean_p) * (r - mean_r) for p, r in points) / spread if spread > 0 else 0.0
    fixed = mean_r - slope * mean_p
    if spread == 0 or slope <= 0 or fixed < 0:  # one size measured, or a fit that makes no sense
        slope, fixed = sum(r * p for p, r in points) / sum(p * p for p, _ in points), 0.0
    return lambda pixels: fixed + slope * pixels
