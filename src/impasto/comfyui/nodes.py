"""The ComfyUI nodes as ComfyUI sees them: their inputs, every default, range and figure in the tooltips
read from impasto's one place (`StyleConfig`'s defaults, config's limits, the schedule); `paint.py` paints."""

from __future__ import annotations

from typing import Any

import torch

from .. import memory
from ..color import PRESERVE_COLOR
from ..config import INITS, MAX_SEED, MAX_SIZE, MIN_SIZE, STYLE_WEIGHTS, default
from ..errors import ImpastoError
from ..pyramid import schedule
from .paint import paint_batch

CATEGORY = "impasto"
NO_COLOUR = "none"
COLOURS = [NO_COLOUR, *PRESERVE_COLOR]
PRINT_INCHES, PRINT_DPI = 8.0, 300
"""The print node's default size: 8 inches at 300 dpi, 2400 px."""

Inputs = dict[str, dict[str, tuple[Any, ...]]]


def schedule_text(size: int) -> str:
    """impasto's own schedule at `size` px, as the tooltip states it: evaluations per scale and the scales."""
    scales = schedule(size, default("min_size"), default("scales"), None)
    counts, sides = (", ".join(str(getattr(s, key)) for s in scales) for key in ("iterations", "longest"))
    return f"at {size} px {counts} (at {sides} px)"


def _inputs(
    size: dict[str, tuple[Any, ...]], default_size: int, extra: dict[str, tuple[Any, ...]] | None = None
) -> Inputs:
    """The inputs both nodes share, with the size inputs of each (and the print node's tile settings)."""
    colour, init = default("preserve_color") or NO_COLOUR, default("init")
    required: dict[str, tuple[Any, ...]] = {
        "content": ("IMAGE", {"tooltip": "The photo(s) to paint; a batch is painted one image after another."}),
        "style": ("IMAGE", {"tooltip": "The painting whose style is taken (a batch: one per content image)."}),
        "strength": ("FLOAT", {"default": default("style_weight"), "min": 0.0, "max": 1000.0, "step": 0.1,
                               "tooltip": f"Style weight: {STYLE_WEIGHTS[0]:g} a hint of style, "
                                          f"{default('style_weight'):g} the default, {STYLE_WEIGHTS[1]:g} little "
                                          "of the photo left."}),
        **size,
        "preserve_color": (COLOURS, {"default": colour,
                                     "tooltip": "luminance: the photo's colours exactly; histogram: the painting "
                                                "recoloured to the photo's palette first."}),
        "init": (list(INITS), {"default": init,
                               "tooltip": f"What the painting starts from: content, the photo (it keeps its "
                                          "structure); noise, random noise around the photo's colour (the "
                                          f"classic; its seed is `seed`). Default: {init}."}),
        # The frontend re-rolls an INT named seed after every Queue unless told not to: it would repaint the same
        # picture (the seed counts only with init noise) instead of reusing ComfyUI's cached result.
        "seed": ("INT", {"default": default("seed"), "min": 0, "max": MAX_SEED, "control_after_generate": False,
                         "tooltip": f"The noise's seed, with init noise: same seed, same machine, same picture "
                                    f"(0 to {MAX_SEED}). From the photo (init content) it changes nothing."}),
        "iterations": ("INT", {"default": 0, "min": 0, "max": 10_000,
                               "tooltip": f"Evaluations at every scale (fewer where a scale stops improving); "
                                          f"0: impasto's schedule, {schedule_text(default_size)}."}),
        **(extra or {}),
    }  # fmt: skip
    optional: dict[str, tuple[Any, ...]] = {
        "style_2": ("IMAGE", {"tooltip": "A second painting, blended with the first (or, with a mask, "
                                         "painted where the mask is 0)."}),
        "blend": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05,
                            "tooltip": "Share of style 2 in the blend (without a mask)."}),
        "mask": ("MASK", {"tooltip": "Where the style goes (1) and where the photo stays (0); with style_2, "
                                     "style_2 goes where it is 0. LoadImage's mask is 1 where its picture is "
                                     "transparent (what the mask editor paints); another size is stretched to "
                                     "the content; a mask 0 everywhere (LoadImage's for a picture without "
                                     "alpha) counts as no mask."}),
    }  # fmt: skip
    return {"required": required, "optional": optional}


class _ImageNode:
    """What ComfyUI reads of every impasto node: its menu, the method it calls and the one IMAGE it returns."""

    CATEGORY = CATEGORY
    FUNCTION = "paint"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)


class Stylize(_ImageNode):
    """Paint the content image(s) in the style of a painting (Gatys et al.), at a size in pixels."""

    DESCRIPTION = "Neural style transfer (impasto): the photo's composition, the painting's colours and strokes."

    @classmethod
    def INPUT_TYPES(cls) -> Inputs:
        size = {"size": ("INT", {"default": default("size"), "min": MIN_SIZE, "max": MAX_SIZE, "step": 8,
                                 "tooltip": "Longest side of the result in pixels."})}  # fmt: skip
        return _inputs(size, default("size"))

    def paint(self, content: Any, style: Any, strength: float, size: int, **rest: Any) -> tuple[torch.Tensor]:
        return (paint_batch(content, style, style_weight=strength, size=size, **rest),)


class StylizePrint(_ImageNode):
    """The same at print size: longest side in inches x dpi, evaluated in tiles where memory asks for it."""

    DESCRIPTION = "Style transfer at print size: large pictures evaluated tile by tile, with the same result."

    @classmethod
    def INPUT_TYPES(cls) -> Inputs:
        size = {
            "inches": ("FLOAT", {"default": PRINT_INCHES, "min": 0.1, "max": 100.0, "step": 0.1,
                                 "tooltip": "Longest side of the print."}),
            "dpi": ("INT", {"default": PRINT_DPI, "min": 10, "max": 1200, "tooltip": "Pixels per inch of the print."}),
        }  # fmt: skip
        tiles = {
            "tile_size": ("INT", {"default": default("tile_size") or 0, "min": 0, "max": MAX_SIZE, "step": 16,
                                  "tooltip": "Tiles of this many pixels (a multiple of 16, from 64); 0: as "
                                             "memory needs."}),
            "max_memory": ("FLOAT", {"default": default("max_memory") or 0.0, "min": 0.0, "max": 1024.0, "step": 0.5,
                                     "tooltip": "Memory budget in GiB; 0: impasto's automatic budget, from the "
                                                f"memory free at the start: {memory.rule()}."}),
        }  # fmt: skip
        return _inputs(size, round(PRINT_INCHES * PRINT_DPI), tiles)

    def paint(
        self, content: Any, style: Any, strength: float, inches: float, dpi: int, tile_size: int = 0,
        max_memory: float = 0.0, **rest: Any,
    ) -> tuple[torch.Tensor]:  # fmt: skip
        size = round(inches * dpi)
        if not MIN_SIZE <= size <= MAX_SIZE:  # in the node's own inputs: it has no `size`
            change = "lower" if size > MAX_SIZE else "raise"
            raise ImpastoError(f"{inches:g} in at {dpi} dpi is {size} px; the print node paints {MIN_SIZE} to "
                               f"{MAX_SIZE} px: {change} the dpi")  # fmt: skip
        tiles: dict[str, Any] = dict(tile_size=tile_size or None, max_memory=max_memory or None)
        return (paint_batch(content, style, style_weight=strength, size=size, **rest, **tiles),)


NODE_CLASS_MAPPINGS = {"ImpastoStylize": Stylize, "ImpastoStylizePrint": StylizePrint}
NODE_DISPLAY_NAME_MAPPINGS = {
    "ImpastoStylize": "Stylize (impasto)",
    "ImpastoStylizePrint": "Stylize at print size (impasto)",
}
