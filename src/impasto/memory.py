"""How much memory a scale needs, and how to fit it in a budget: tiles and L-BFGS history.

The model, per pixel of the picture at a scale (measured on this project's benchmark machine,
docs/speed.md "Large pictures"):

* the network's activations kept for the backward pass, per pixel of what one evaluation sees
  (the whole picture, or one tile's crop with its halo): ACTIVATION_BYTES;
* the optimiser's state (pixels, gradient, direction, trial point, best image) and the targets:
  STATE_BYTES per pixel of the picture, tiled or not;
* L-BFGS history: two float32 images per remembered pair, HISTORY_BYTES per pixel and pair;
* a fixed BASE_BYTES (the interpreter, torch, the weights).

Within the budget nothing changes. Over it, the history shrinks first (to no fewer than
MIN_HISTORY pairs, taking at most half of what is left), then tiles take what remains.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from .errors import ImpastoError

GIB = 1 << 30
ACTIVATION_BYTES = {torch.bfloat16: 2000, torch.float32: 4000}
STATE_BYTES = 190
HISTORY_BYTES = 24
BASE_BYTES = 0.8 * GIB
MIN_HISTORY = 5
DEFAULT_SHARE = 0.5
"""The automatic budget: this share of the memory free when the run starts."""
MIN_TILE = 128


@dataclass(frozen=True)
class MemoryPlan:
    tile: int | None  # interior side of the tiles in pixels; None: the whole picture at once
    history: int  # L-BFGS pairs
    estimate: float  # bytes at peak, by the model

    def describe(self) -> str:
        tiles = f"tiles of {self.tile} px" if self.tile else "untiled"
        return f"{tiles}, L-BFGS history {self.history}, ~{self.estimate / GIB:.1f} GiB"


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


def default_budget(device: torch.device) -> float:
    """A safe share of what is free: tiles only where the picture would crowd the machine, since
    they cost time (a tiled scale repeats its forward pass, and each crop carries a halo)."""
    return DEFAULT_SHARE * available_bytes(device)


def plan(
    size: tuple[int, int],
    dtype: torch.dtype,
    budget: float,
    history: int,
    margin: int,
    align: int,
    tile_size: int | None = None,
) -> MemoryPlan:
    """Tiles and history for a width x height picture within `budget` bytes (see the module docstring)."""
    width, height = size
    pixels = width * height
    per_pixel = ACTIVATION_BYTES.get(dtype, ACTIVATION_BYTES[torch.float32])
    fixed = BASE_BYTES + STATE_BYTES * pixels
    if tile_size is not None:  # the user's choice: only the history is sized by the budget
        tile = tile_size if max(width, height) > tile_size else None
        crop = pixels if tile is None else min(pixels, (tile + 2 * margin) ** 2)
        pairs = _pairs(budget - fixed - per_pixel * crop, pixels, history)
        return MemoryPlan(tile, pairs, fixed + per_pixel * crop + HISTORY_BYTES * pixels * pairs)
    whole = fixed + (per_pixel + HISTORY_BYTES * history) * pixels
    if whole <= budget:
        return MemoryPlan(None, history, whole)
    pairs = _pairs(0.5 * (budget - fixed), pixels, history)
    room = budget - fixed - HISTORY_BYTES * pixels * pairs
    tile = (math.isqrt(max(0, int(room / per_pixel))) - 2 * margin) // align * align
    if tile < MIN_TILE:
        need = fixed + HISTORY_BYTES * pixels * MIN_HISTORY + per_pixel * (MIN_TILE + 2 * margin) ** 2
        raise ImpastoError(
            f"a memory budget of {budget / GIB:.2f} GiB is too small for a {width}x{height} picture: "
            f"one tile needs at least {math.ceil(need / GIB * 100) / 100:.2f} GiB (--max-memory)"
        )
    estimate = fixed + HISTORY_BYTES * pixels * pairs + per_pixel * (tile + 2 * margin) ** 2
    return MemoryPlan(tile, pairs, estimate)


def _pairs(room: float, pixels: int, history: int) -> int:
    """As many L-BFGS pairs as fit in `room` bytes, between MIN_HISTORY and the asked-for history."""
    fitting = int(room // (HISTORY_BYTES * pixels)) if room > 0 else 0
    return max(min(history, MIN_HISTORY), min(history, fitting))
