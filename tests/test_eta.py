"""The ETA of a default 512 px run holds at 25%, 50% and 75% of it (issue 23), on a fake clock.

The real network and schedule plan the run; the objective is replaced by one whose loss keeps
falling (no early stop) and which moves a fake clock on by a cost law per evaluation: the one
measured on this kind of CPU (seconds = fixed + per-pixel) in bf16 and in fp32, and a GPU-like one that is nearly all
fixed cost, where seconds per pixel at the coarse scales would overstate the fine ones many times.
While only the coarsest scale is measured the clock can only scale by pixels (right on a CPU); on
the GPU-like law that overstates the first second of the run, and from the second scale on (before
half of the run) the fitted law holds.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from PIL import Image

import impasto
from impasto.eta import RunClock

stylize_module = importlib.import_module("impasto.stylize")  # the module, not impasto.stylize the function

# (fixed s, s per pixel) per evaluation, measured on 2-core EPYCs. bf16: 0.023 s at 128x96, 0.235 s at
# 512x384 (AVX-512). fp32 (issue 38, on the AVX2 path with Winograd): 0.09-0.11 s, 0.27 s at 256x192, 1.02 s.
LAWS = {"cpu bf16": (0.011, 1.14e-6), "cpu fp32": (0.02, 5.1e-6), "gpu-like": (0.03, 2e-8)}
QUARTERS = {"cpu bf16": (0.25, 0.5, 0.75), "cpu fp32": (0.25, 0.5, 0.75), "gpu-like": (0.5, 0.75)}
SETUP_EVALUATIONS = 1.5  # building a scale's targets costs about this many of its evaluations


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fake_objective(clock: FakeClock, law: tuple[float, float], longest: int):
    fixed, per_pixel = law
    calls = [0]

    def objective(pixels: torch.Tensor):
        calls[0] += 1
        clock.now += fixed + per_pixel * pixels.shape[-1] * pixels.shape[-2]
        total = (pixels * 0).sum() + 1.0 / (calls[0] + 10) ** 0.5  # falls too fast to stop early
        return total, {"style": total}

    clock.now += SETUP_EVALUATIONS * (fixed + per_pixel * longest * longest * 3 // 4)
    return objective


@pytest.mark.parametrize("name", LAWS)
def test_eta_of_a_default_run_holds_at_quarters(monkeypatch, name):
    law = LAWS[name]
    clock = FakeClock()
    monkeypatch.setattr(stylize_module, "clock", clock)
    monkeypatch.setattr(
        stylize_module, "build_objective", lambda cfg, vgg, controls, longest, **_: _fake_objective(clock, law, longest)
    )
    seen: list[tuple[float, float]] = []  # (elapsed, eta) after each evaluation
    photo = Image.new("RGB", (1024, 768), (120, 140, 160))
    result = impasto.run(
        photo, Image.new("RGB", (256, 256), (200, 80, 40)), callback=lambda p: seen.append((p.elapsed, p.eta))
    )
    assert [sum(t["scale"] == s for t in result.trace) for s in (1, 2, 3)] == [40, 30, 60]  # no early stop
    end = result.seconds
    for quarter in QUARTERS[name]:
        elapsed, eta = next((e, left) for e, left in seen if e >= quarter * end)
        assert elapsed + eta == pytest.approx(end, rel=0.15), (
            f"at {quarter:.0%}: predicted {elapsed + eta:.1f} s of {end:.1f} s"
        )


def test_clock_fits_fixed_and_per_pixel_cost():
    """Two scales measured at 1 s + 1e-5 s/px price a third at 1e6 px exactly: 11 s per evaluation."""
    run = RunClock([10_000, 40_000, 1_000_000], [10, 10, 5])
    now = 0.0
    for index, pixels in enumerate((10_000, 40_000)):
        run.setting_up(index, now)
        run.ready(index, now)
        for step in range(1, 11):
            now += 1 + 1e-5 * pixels
            run.evaluated(index, step, now)
    assert run.left(1) == pytest.approx(5 * 11.0)


def test_clock_with_one_scale_measured_scales_by_pixels():
    run = RunClock([100, 400], [4, 2])
    run.setting_up(0, 0.0)
    run.ready(0, 1.0)  # one evaluation's worth of set-up
    run.evaluated(0, 1, 2.0)
    run.evaluated(0, 2, 3.0)  # 1 s per evaluation at 100 px
    assert run.left(0) == pytest.approx(2 * 1.0 + (2 + 1) * 4.0)


def test_first_evaluation_of_a_size_counts_as_set_up():
    """A first evaluation slowed by one-off costs (3 s, then 1 s each) does not inflate the rate."""
    run = RunClock([100, 100], [10, 10])
    run.setting_up(0, 0.0)
    run.ready(0, 1.0)  # targets: 1 s
    for step, now in enumerate((4.0, 5.0, 6.0), start=1):
        run.evaluated(0, step, now)
    # 7 more at 1 s; the next scale: its 10 plus the set-up seen here (1 s of targets + 2 s excess = 3 evaluations)
    assert run.left(0) == pytest.approx(7 * 1.0 + (10 + 3) * 1.0)


# Seconds per evaluation measured per scale on the 2-core test machine (2026-12-07, issue 23's
# schedules): the cost per pixel rises again once a picture outgrows the caches, and a new large
# scale's first steps are slower (warm-up).
MEASURED = {
    1024: ([12288, 49152, 196608, 786432], [40, 30, 30, 30], [0.023, 0.067, 0.254, 1.575]),
    2048: ([12288, 49152, 196608, 786432, 3145728], [40, 30, 30, 30, 15], [0.023, 0.067, 0.27, 1.35, 7.65]),
}
WARM_UP = (1.3, 1.35, 1.1)  # a scale's first evaluations, as multiples of its rate


def _replay(pixels: list[int], budgets: list[int], rates: list[float]) -> tuple[list[tuple[float, float]], float]:
    """Drive a RunClock through a run of these rates; (elapsed, predicted seconds left) after each evaluation."""
    run, now, seen = RunClock(pixels, budgets), 0.0, []
    for index, (budget, rate) in enumerate(zip(budgets, rates)):
        run.setting_up(index, now)
        now += SETUP_EVALUATIONS * rate
        run.ready(index, now)
        for step in range(1, budget + 1):
            now += rate * (WARM_UP[step - 1] if step <= len(WARM_UP) else 1.0)
            run.evaluated(index, step, now)
            seen.append((now, run.left(index)))
    return seen, now


@pytest.mark.parametrize("size", MEASURED)
def test_eta_holds_where_the_largest_scale_costs_more_per_pixel(size):
    """At 1024 and 2048 px the largest scale is most of the run: priced by a straight line through
    the small scales it is 25% short, and priced by its own first, warm-up steps 25% long."""
    seen, end = _replay(*MEASURED[size])
    for quarter in (0.25, 0.5, 0.75):
        elapsed, left = next((e, left) for e, left in seen if e >= quarter * end)
        assert elapsed + left == pytest.approx(end, rel=0.15), f"at {quarter:.0%}: {elapsed + left:.1f} s of {end:.1f}"
