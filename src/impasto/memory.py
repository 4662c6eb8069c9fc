"""How much memory a scale needs, and how to fit it in a budget: tiles and L-BFGS history.

The model, per pixel of the picture at a scale (measured on this project's benchmark machine,
docs/speed.md "Large pictures"):

* the network's activations kept for the backward pass, per pixel of what one evaluation sees
  (the whole picture, or one tile's crop with its halo): ACTIVATION_BYTES;
* the optimiser's state (pixels, gradient, direction, trial point, start) and the targets:
  STATE_BYTES per pixel of the picture, tiled or not (measured at 4096x3072 in 12 tiles: 91);
* L-BFGS history: two images per remembered pair, HISTORY_BYTES per pixel and pair (float32,
  or bf16 once the budget is tight);
* a fixed BASE_BYTES (the interpreter, torch, the weights).

Within the budget nothing changes. Over it, the history is stored in bf16 and shrinks (to no
fewer than MIN_HISTORY pairs) before anything is tiled, since tiles cost time: a whole picture
with a short history is faster than tiles with a long one. Only then do tiles come, the history
taking at most half of what is left and the tiles the rest.

Tiles come split where they can (tiles.TiledObjective's `cut`): the network's layers up to a
pooling run in tiles and the deeper ones on the whole picture, whose activations beyond the cut
take DEEP_SHARE of the whole network's per pixel. The shallowest cut that leaves tiles of at least
SPLIT_TILE px beside at least SPLIT_HISTORY pairs is taken (it repeats the least work); where none
does, the whole network runs in tiles.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .errors import ImpastoError

GIB = 1 << 30
ACTIVATION_BYTES = {torch.bfloat16: 2000, torch.float32: 4000}
STATE_BYTES = 100
HISTORY_BYTES = {torch.float32: 24, torch.bfloat16: 12}
"""Per pixel and L-BFGS pair: s and y, three channels each."""
NARROW = torch.bfloat16
"""How the history is stored once the budget is tight: half the bytes (optimize._History)."""
BASE_BYTES = 0.8 * GIB
MIN_HISTORY = 5
DEFAULT_SHARE = {"cuda": 0.5, "cpu": 1 / 3}
"""The automatic budget: this share of the memory free when the run starts. A third on the CPU
(other programs share the RAM, and swapping would cost far more than tiles): 4096x3072 then runs
under 8 GiB on a 24 GiB machine, and 2048x1536 whole with a shorter bf16 history (its final loss
within 0.5% of 20 float32 pairs', docs/speed.md). Half of a GPU, whose memory nothing else needs."""
STRETCH_SHARE = 0.5
"""What the automatic budget may grow to for a picture that cannot fit the default share at all."""
MIN_TILE = 128
DEEP_SHARE = {"pool1": 0.45, "pool2": 0.3, "pool3": 0.15}
"""Activations beyond each cut per pixel of the picture, as a share of ACTIVATION_BYTES (measured at
2048x1536, docs/speed.md: 830, 520 and 250 bytes against 1880 for the whole network to relu4_2)."""
SPLIT_TILE = 256
"""Split tiles have narrow halos (16 px at pool2), so small ones cost little: 30 tiles of 368 px ran
an evaluation at 2048x1536 as fast as 12 of 528."""
SPLIT_HISTORY = 10
"""A split is not bought with a shorter history than this: 9-10 bf16 pairs ended within 0.5% of 20
float32 pairs' loss at 2048 px (docs/speed.md); fewer are untested."""


@dataclass(frozen=True)
class MemoryPlan:
    tile: int | None  # interior side of the tiles in pixels; None: the whole picture at once
    history: int  # L-BFGS pairs
    estimate: float  # bytes at peak, by the model
    history_dtype: torch.dtype = torch.float32
    budget: float = math.inf  # bytes: what the plan was fitted to (tiles trim the heap to keep under it)
    cut: str | None = None  # tiles run the network up to this pooling, the rest whole; None: all of it

    @property
    def constrained(self) -> bool:
        """Whether the budget changed anything (tiles, or a narrower or shorter history)."""
        return self.tile is not None or self.history_dtype != torch.float32

    def describe(self) -> str:
        split = f" up to {self.cut}" if self.cut else ""
        tiles = f"tiles of {self.tile} px{split}" if self.tile else "untiled"
        stored = " (bf16)" if self.history_dtype == torch.bfloat16 else ""
        within = f" of a {self.budget / GIB:.1f} GiB budget" if math.isfinite(self.budget) else ""
        return f"{tiles}, L-BFGS history {self.history}{stored}, ~{self.estimate / GIB:.1f} GiB{within}"


def available_bytes(device: torch.device) -> float:
    """Memory the process may still take: the GPU's free memory, or the OS's MemAvailable."""
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    return float(pages * os.sysconf("SC_PAGE_SIZE")) / 2 if pages else 8.0 * GIB


def budgets(max_memory_gib: float | None, device: torch.device) -> list[float]:
    """Budgets in bytes to plan a scale within, in order: the user's alone; or a safe share of what
    is free (DEFAULT_SHARE: tiles only where the picture would crowd the machine, since they cost
    time) and, for a picture that cannot fit it at all (8192x6144 on a 24 GiB machine), STRETCH_SHARE."""
    if max_memory_gib is not None:
        return [max_memory_gib * GIB]
    free = available_bytes(device)
    share = DEFAULT_SHARE.get(device.type, DEFAULT_SHARE["cpu"])
    return [share * free, max(share, STRETCH_SHARE) * free]


def plan_within(budgets: list[float], size: tuple[int, int], dtype: torch.dtype, **options) -> MemoryPlan:
    """`plan` within the first budget that one tile fits; the last one's error if none does."""
    for budget in budgets[:-1]:
        try:
            return plan(size, dtype, budget, **options)
        except ImpastoError:
            continue
    return plan(size, dtype, budgets[-1], **options)


def plan(
    size: tuple[int, int],
    dtype: torch.dtype,
    budget: float,
    history: int,
    margin: int,
    align: int,
    tile_size: int | None = None,
    splits: Mapping[str, int] | None = None,
) -> MemoryPlan:
    """Tiles and history for a width x height picture within `budget` bytes (see the module docstring).
    `margin`: the halo of tiles through the whole network; `splits`: the halo of each cut, shallowest first."""
    width, height = size
    pixels = width * height
    per_pixel = ACTIVATION_BYTES.get(dtype, ACTIVATION_BYTES[torch.float32])
    fixed = BASE_BYTES + STATE_BYTES * pixels
    cuts = [(cut, halo, DEEP_SHARE.get(cut, 1.0) * per_pixel * pixels) for cut, halo in (splits or {}).items()]
    if tile_size is not None:  # the user's choice: only the history (and the split) is sized by the budget
        tile = tile_size if max(width, height) > tile_size else None
        for cut, halo, deep in [*cuts, (None, margin, 0.0)] if tile else [(None, margin, 0.0)]:
            crop = pixels if tile is None else min(pixels, (tile + 2 * halo) ** 2)
            fit = _history_plan(tile, fixed + deep + per_pixel * crop, budget, pixels, history, cut)
            if fit.estimate <= budget or cut is None:
                return fit
    untiled = _history_plan(None, fixed + per_pixel * pixels, budget, pixels, history)
    if untiled.estimate <= budget:
        return untiled
    for cut, halo, deep in cuts:
        fit = _tiled_plan(fixed + deep, budget, pixels, history, per_pixel, halo, align, cut, SPLIT_HISTORY)
        if fit is not None and fit.tile >= SPLIT_TILE:  # type: ignore[operator]
            return fit
    fit = _tiled_plan(fixed, budget, pixels, history, per_pixel, margin, align, None)
    if fit is None:
        least = HISTORY_BYTES[NARROW] * pixels * min(history, MIN_HISTORY)
        need = fixed + least + per_pixel * (MIN_TILE + 2 * margin) ** 2
        raise ImpastoError(
            f"a memory budget of {budget / GIB:.2f} GiB is too small for a {width}x{height} picture: "
            f"one tile needs at least {math.ceil(need / GIB * 100) / 100:.2f} GiB (--max-memory)"
        )
    return fit


def _tiled_plan(
    fixed: float,
    budget: float,
    pixels: int,
    history: int,
    per_pixel: int,
    margin: int,
    align: int,
    cut: str | None,
    least: int = MIN_HISTORY,
) -> MemoryPlan | None:
    """Tiles beside `fixed` bytes: the history takes half of the rest (but at least `least` pairs),
    tiles the remainder; None if not even a MIN_TILE tile fits."""
    pairs = max(min(history, least), _pairs(0.5 * (budget - fixed), pixels, history, NARROW))
    room = budget - fixed - HISTORY_BYTES[NARROW] * pixels * pairs
    tile = (math.isqrt(max(0, int(room / per_pixel))) - 2 * margin) // align * align
    if tile < MIN_TILE:
        return None
    estimate = fixed + HISTORY_BYTES[NARROW] * pixels * pairs + per_pixel * (tile + 2 * margin) ** 2
    return MemoryPlan(tile, pairs, estimate, NARROW, budget, cut)


def _history_plan(
    tile: int | None, rest: float, budget: float, pixels: int, history: int, cut: str | None = None
) -> MemoryPlan:
    """The whole float32 history if it fits beside `rest` bytes; else as many bf16 pairs as fit (at least
    MIN_HISTORY: the estimate then says whether that is over the budget)."""
    wide = rest + HISTORY_BYTES[torch.float32] * pixels * history
    if wide <= budget:
        return MemoryPlan(tile, history, wide, budget=budget, cut=cut)
    pairs = _pairs(budget - rest, pixels, history, NARROW)
    return MemoryPlan(tile, pairs, rest + HISTORY_BYTES[NARROW] * pixels * pairs, NARROW, budget, cut)


def _pairs(room: float, pixels: int, history: int, dtype: torch.dtype) -> int:
    """As many L-BFGS pairs as fit in `room` bytes, between MIN_HISTORY and the asked-for history."""
    fitting = int(room // (HISTORY_BYTES[dtype] * pixels)) if room > 0 else 0
    return max(min(history, MIN_HISTORY), min(history, fitting))
