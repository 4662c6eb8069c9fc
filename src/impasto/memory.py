"""How much memory a scale needs, and how to fit it in a budget: tiles and L-BFGS history.

The model, per pixel of the picture at a scale (measured on this project's benchmark machine,
docs/speed.md "Large pictures"):

* the network's activations kept for the backward pass, per pixel of what one evaluation sees
  (the whole picture, or one tile's crop with its halo): ACTIVATION_BYTES;
* the optimiser's state (pixels, gradient, direction, trial point, start) and the targets:
  STATE_BYTES per pixel of the picture, tiled or not (measured at 4096x3072 in 12 tiles: 91);
* L-BFGS history: two images per remembered pair, HISTORY_BYTES per pixel and pair (float32,
  or bf16 once the budget is tight);
* a fixed BASE_BYTES (the interpreter, torch, the weights), and the Winograd layers' transformed filters
  (4x their weights in float32: 0.09 GiB to relu5_1). Winograd's transient buffers (the transformed
  tiles of one layer while it runs) stay within the float32 activations' bytes as measured (docs/speed.md);
* for a whole picture, WHOLE_SLACK on its activations: the heap's fragmentation.

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
from typing import NamedTuple

import torch

from .errors import ImpastoError
from .runtime import release_free_memory, resident_bytes

GIB = 1 << 30
ACTIVATION_BYTES = {torch.bfloat16: 2000, torch.float32: 4000}
STATE_BYTES = 100
HISTORY_BYTES = {torch.float32: 24, torch.bfloat16: 12}
"""Per pixel and L-BFGS pair: s and y, three channels each."""
NARROW = torch.bfloat16
"""How the history is stored once the budget is tight: half the bytes (optimize._History)."""
BASE_BYTES = 0.8 * GIB
WHOLE_SLACK = 1.15
"""On the activations of a whole (untiled) picture: its evaluations free and allocate hundreds of
large tensors, which do not all fit the holes that the targets' forward and the previous scale left
in the heap, and nothing trims between evaluations. At 2048x1536 with 15 bf16 pairs, a single-scale
run peaked at 7.0 GiB and full multi-scale runs at 7.6-8.3 GiB, against the model's 7.5 without this
factor; with it, the highest is covered. Tiles need none: their heap guard trims when it must."""
MIN_HISTORY = 5
DEFAULT_SHARE = {"cuda": 0.5, "cpu": 1 / 3}
"""The automatic budget: this share of the memory free when the run starts. A third on the CPU
(other programs share the RAM, and swapping would cost far more than tiles): 4096x3072 then runs
under 8 GiB on a 24 GiB machine. Half of a GPU, whose memory nothing else needs."""
FRUGAL_SHARE = {"cpu": 1 / 6}
"""On the CPU, a plan that costs little time keeps to this share (2048x1536 then runs in split tiles
in 3.3 GiB at 1.07x the time end to end, rather than whole in 8.4 GiB). Not on a GPU, where nothing else needs
the memory."""
STRETCH_SHARE = 0.5
"""What the automatic budget may grow to for a picture that cannot fit the default share at all."""
MIN_TILE = 128
DEEP_SHARE = {"pool1": 0.45, "pool2": 0.3}
"""Activations beyond each cut per pixel of the picture, as a share of ACTIVATION_BYTES (measured at
2048x1536, docs/speed.md: 830 and 520 bytes against 1880 for the whole network to relu4_2). Not
pool3: a split there saves little work (pass 1 skips conv4_1 alone) and at 4096x3072 ran no faster
than the whole network in tiles, in more memory."""
SPLIT_TILE = 256
"""Split tiles have narrow halos (16 px at pool2), so small ones cost little: 30 tiles of 368 px ran
an evaluation at 2048x1536 as fast as 12 of 528."""
SPLIT_HISTORY = 10
"""A split is not bought with a shorter history than this: 9-10 bf16 pairs ended within 0.5% of 20
float32 pairs' loss at 2048 px (docs/speed.md); fewer are untested."""


def automatic_share(device: torch.device) -> float:
    """The share of the free memory that the automatic budget takes on `device` (DEFAULT_SHARE)."""
    return DEFAULT_SHARE.get(device.type, DEFAULT_SHARE["cpu"])


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


class Budget(NamedTuple):
    bytes: float
    cheap_only: bool = False  # only a plan that costs little time: untiled, or split tiles


def budgets(max_memory_gib: float | None, device: torch.device) -> list[Budget]:
    """Budgets to plan a scale within, in order: the user's alone; or shares of what is free. On the
    CPU first FRUGAL_SHARE for the plans that cost little time (the whole picture, or split tiles at
    about 1.26x per evaluation), then DEFAULT_SHARE for any (tiles through the whole network cost 1.3x or more,
    worth it only where the picture would crowd the machine) and, for a picture that cannot fit even
    that (8192x6144 on a 24 GiB machine), STRETCH_SHARE."""
    if max_memory_gib is not None:
        return [Budget(max_memory_gib * GIB)]
    free = available_bytes(device)
    share = automatic_share(device)
    frugal = [Budget(FRUGAL_SHARE[device.type] * free, True)] if device.type in FRUGAL_SHARE else []
    return [*frugal, Budget(share * free), Budget(max(share, STRETCH_SHARE) * free)]


def _share(fraction: float) -> str:
    words = {2: "half", 3: "a third", 4: "a quarter", 6: "a sixth"}
    whole = round(1 / fraction)
    return words[whole] if whole in words and math.isclose(fraction, 1 / whole) else f"{fraction:.2g}"


def rule() -> str:
    """The automatic budget of `budgets` in words, from the shares above: what help texts and the README state."""
    return (
        f"{_share(FRUGAL_SHARE['cpu'])} of the free RAM for the whole picture or split tiles, "
        f"{_share(DEFAULT_SHARE['cpu'])} for tiles through the whole network, {_share(STRETCH_SHARE)} for a "
        f"picture that cannot fit {_share(DEFAULT_SHARE['cpu'])}; {_share(DEFAULT_SHARE['cuda'])} of a GPU's"
    )


def activation_bytes(dtype: torch.dtype) -> int:
    """The model's activation bytes per pixel through the whole network, for the network's dtype."""
    return ACTIVATION_BYTES.get(dtype, ACTIVATION_BYTES[torch.float32])


def deep_bytes(cut: str, dtype: torch.dtype, pixels: int) -> float:
    """The model's bytes for the activations beyond a cut over a whole picture of `pixels`."""
    return DEEP_SHARE.get(cut, 1.0) * activation_bytes(dtype) * pixels


def shallow_bytes(cut: str | None, dtype: torch.dtype, pixels: int) -> float:
    """The model's bytes for a crop of `pixels` run up to a cut (None: through the whole network)."""
    return (1.0 - DEEP_SHARE.get(cut or "", 0.0)) * activation_bytes(dtype) * pixels


def plan_within(budgets: list[Budget], size: tuple[int, int], dtype: torch.dtype, **options) -> MemoryPlan:
    """`plan` within the first budget that fits a plan of its kind; the last one's error if none does."""
    for budget in budgets[:-1]:
        try:
            return plan(size, dtype, budget.bytes, cheap_only=budget.cheap_only, **options)
        except ImpastoError:
            continue
    return plan(size, dtype, budgets[-1].bytes, cheap_only=budgets[-1].cheap_only, **options)


def plan(
    size: tuple[int, int],
    dtype: torch.dtype,
    budget: float,
    history: int,
    margin: int,
    align: int,
    tile_size: int | None = None,
    splits: Mapping[str, int] | None = None,
    cheap_only: bool = False,
    network_bytes: float = 0.0,
) -> MemoryPlan:
    """Tiles and history for a width x height picture within `budget` bytes (see the module docstring).
    `margin`: the halo of tiles through the whole network; `splits`: the halo of each cut, shallowest first;
    `cheap_only`: refuse (ImpastoError) rather than run the whole network in tiles; `network_bytes`: what the
    network keeps beyond its weights (Winograd's transformed filters)."""
    width, height = size
    pixels = width * height
    per_pixel = activation_bytes(dtype)
    fixed = BASE_BYTES + network_bytes + STATE_BYTES * pixels
    cuts = [(cut, halo, deep_bytes(cut, dtype, pixels)) for cut, halo in (splits or {}).items() if cut in DEEP_SHARE]
    if tile_size is not None:  # the user's choice: only the history (and the split) is sized by the budget
        tile = tile_size if max(width, height) > tile_size else None
        for cut, halo, deep in [*cuts, (None, margin, 0.0)] if tile else [(None, margin, 0.0)]:
            crop = WHOLE_SLACK * pixels if tile is None else min(pixels, (tile + 2 * halo) ** 2)
            fit = _history_plan(tile, fixed + deep + per_pixel * crop, budget, pixels, history, cut)
            if cut is None or (fit.estimate <= budget and fit.history >= min(history, SPLIT_HISTORY)):
                return fit
    untiled = _history_plan(None, fixed + WHOLE_SLACK * per_pixel * pixels, budget, pixels, history)
    if untiled.estimate <= budget:
        return untiled
    for cut, halo, deep in cuts:
        split = _tiled_plan(fixed + deep, budget, pixels, history, per_pixel, halo, align, cut, SPLIT_HISTORY)
        if split is not None and split.tile is not None and split.tile >= SPLIT_TILE:
            return split
    if cheap_only:
        raise ImpastoError(f"no untiled or split plan fits {budget / GIB:.2f} GiB")
    tiled = _tiled_plan(fixed, budget, pixels, history, per_pixel, margin, align, None)
    if tiled is None:
        least = HISTORY_BYTES[NARROW] * pixels * min(history, MIN_HISTORY)
        need = fixed + least + per_pixel * (MIN_TILE + 2 * margin) ** 2
        raise ImpastoError(
            f"a memory budget of {budget / GIB:.2f} GiB is too small for a {width}x{height} picture: "
            f"one tile needs at least {math.ceil(need / GIB * 100) / 100:.2f} GiB (--max-memory)"
        )
    return tiled


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


class HeapGuard:
    """Trims the heap between tiles only where the next tile might not fit the budget otherwise.

    Crops of different sizes fragment the heap (see runtime.release_free_memory), but a trim after
    every tile makes the next tile fault all its pages back in. So after a tile, the heap is trimmed
    only if the resident size plus one crop's activations (memory.py's model) would pass `budget`
    bytes; with no budget, always.
    """

    def __init__(self, budget: float | None, need: float):
        self.budget, self.need = budget, need

    def __call__(self, need: float | None = None) -> None:
        """Before the next crop (or before `need` bytes of something else: a split's deep layers)."""
        if self.budget is None or resident_bytes() + (self.need if need is None else need) > self.budget:
            release_free_memory()
