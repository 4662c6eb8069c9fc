"""The multi-scale (coarse-to-fine) schedule: which sizes to solve at, and for how long.

Solving at a small size first is cheap and fixes the large structures; each finer scale starts
from the upsampled result of the one before and only has to add detail. Evaluations at the
output size cost the most, so the schedule spends few there beyond the 512 px picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Iterations per scale (issue 23, benchmarks/frontier.py). The picture is settled at PICTURE_SIZE:
# the coarsest scale lays out the large strokes, the scales between only carry them up (each starts
# sharp, see StyleConfig.upsample), and the last scale up to PICTURE_SIZE gets the most when it is
# the output. When finer scales follow it is only one more scale between (the first one above does
# its work at 4x the cost per evaluation: 1024 px, 40/30/30/30, is the 40/30/60/30 picture in 0.86x
# the time). Scales above it refine brushwork the eye sees at print size: the first gets half of
# PICTURE_ITERATIONS, each after it half of the one before, at least ABOVE_MIN.
PICTURE_SIZE = 768  # the 512 px default, and sizes not far above it, end on their picture scale
COARSEST_ITERATIONS = 40
BETWEEN_ITERATIONS = 30
PICTURE_ITERATIONS = 60
ABOVE_MIN = 15


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


def picture_scale(sizes: Sequence[int]) -> int:
    """Index of the scale that settles the picture: the last one up to PICTURE_SIZE (else the first).
    The scales before it lay the picture out (StyleConfig.layout_weight)."""
    return max([i for i, size in enumerate(sizes) if size <= PICTURE_SIZE], default=0)


def default_iterations(sizes: Sequence[int]) -> list[int]:
    """Iterations for each of `sizes` (coarse to fine), by the law above."""
    picture = picture_scale(sizes)
    up_to_picture = [COARSEST_ITERATIONS] + [BETWEEN_ITERATIONS] * picture
    if picture == len(sizes) - 1:
        return up_to_picture[:-1] + [PICTURE_ITERATIONS]
    out, iterations = up_to_picture, PICTURE_ITERATIONS
    for _ in sizes[picture + 1 :]:
        iterations = max(ABOVE_MIN, iterations // 2)
        out.append(iterations)
    return out


def schedule(size: int, min_size: int, scales: int | None, iterations: Sequence[int] | None) -> list[Scale]:
    sizes = scale_sizes(size, min_size, scales)
    if iterations is None:
        its = default_iterations(sizes)
    else:
        its = [int(iterations[min(i, len(iterations) - 1)]) for i in range(len(sizes))]
    return [Scale(s, n) for s, n in zip(sizes, its)]


def rule() -> str:
    """The automatic iterations in words, from the constants above: what help texts and the README state."""
    return (
        f"{COARSEST_ITERATIONS} at the coarsest scale, {BETWEEN_ITERATIONS} at each one between, "
        f"{PICTURE_ITERATIONS} at the last if it is at most {PICTURE_SIZE} px; the first scale above "
        f"{PICTURE_SIZE} px takes {max(ABOVE_MIN, PICTURE_ITERATIONS // 2)}, each after it half the one before "
        f"(at least {ABOVE_MIN})"
    )


def default_counts(size: int, min_size: int) -> str:
    """The automatic iterations of a run of `size` px, as --iterations takes them (e.g. '40,30,60')."""
    return ",".join(str(scale.iterations) for scale in schedule(size, min_size, None, None))
