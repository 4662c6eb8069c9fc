"""The ComfyUI nodes: a thin layer over `impasto.run`, one painting per content image of the batch.

ComfyUI runs every node inside `torch.inference_mode()`; painting optimises the pixels by their
gradient, so the nodes leave inference mode (ComfyUI's own advice for nodes that need autograd).
The VGG-19 weights are decoded once per process and kept (`objective._cached_weights`).
"""

from __future__ import annotations

from typing import Any

import torch

from ..color import PRESERVE_COLOR
from ..config import MAX_SEED, MAX_SIZE, MIN_SIZE, STYLE_WEIGHTS, default
from ..errors import ImpastoError
from ..stylize import run
from . import convert
from .host import Reporter

CATEGORY = "impasto"
COLOURS = ["none", *PRESERVE_COLOR]

Inputs = dict[str, dict[str, tuple[Any, ...]]]


def _inputs(size: dict[str, tuple[Any, ...]], extra: dict[str, tuple[Any, ...]] | None = None) -> Inputs:
    """The inputs both nodes share, with the size inputs of each (and the print node's tile settings)."""
    required: dict[str, tuple[Any, ...]] = {
        "content": ("IMAGE", {"tooltip": "The photo(s) to paint; a batch is painted one image after another."}),
        "style": ("IMAGE", {"tooltip": "The painting whose style is taken (a batch: one per content image)."}),
        "strength": ("FLOAT", {"default": default("style_weight"), "min": 0.0, "max": 1000.0, "step": 0.1,
                               "tooltip": f"Style weight: {STYLE_WEIGHTS[0]:g} a hint of style, "
                                          f"{default('style_weight'):g} the default, {STYLE_WEIGHTS[1]:g} little "
                                          "of the photo left."}),
        **size,
        "preserve_color": (COLOURS, {"default": "none",
                                     "tooltip": "luminance: the photo's colours exactly; histogram: the painting "
                                                "recoloured to the photo's palette first."}),
        "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED,  # what painting takes: a larger seed was refused
                         "tooltip": f"Same seed, same machine: same picture (0 to {MAX_SEED})."}),
        "iterations": ("INT", {"default": 0, "min": 0, "max": 10_000,
                               "tooltip": "Evaluations per scale; 0: impasto's schedule (300, 150, 75, ...)."}),
        **(extra or {}),
    }  # fmt: skip
    optional: dict[str, tuple[Any, ...]] = {
        "style_2": ("IMAGE", {"tooltip": "A second painting, blended with the first (or, with a mask, "
                                         "painted outside it)."}),
        "blend": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05,
                            "tooltip": "Share of style 2 in the blend (without a mask)."}),
        "mask": ("MASK", {"tooltip": "Where the style goes (1) and where the photo stays (0); with style 2, "
                                     "style 2 fills the rest."}),
    }  # fmt: skip
    return {"required": required, "optional": optional}


def paint_batch(
    content: Any,
    style: Any,
    *,
    style_2: Any = None,
    blend: float = 0.5,
    mask: Any = None,
    preserve_color: str = "none",
    iterations: int = 0,
    **options: Any,
) -> torch.Tensor:
    """Paint each content image of the IMAGE batch; returns the IMAGE batch [B, H, W, 3] in 0-1."""
    contents = convert.images(content, "content")
    count = len(contents)
    styles = _styles(style, "style", count)
    seconds = _styles(style_2, "style_2", count) if style_2 is not None else None
    regions = convert.masks(mask, "mask", count) if mask is not None else None
    if not 0.0 <= blend <= 1.0:
        raise ImpastoError(f"blend must be from 0 to 1, got {blend}")
    options.update(preserve_color=None if preserve_color == "none" else preserve_color)
    if iterations:
        options.update(iterations=[iterations])
    reporter, painted = Reporter(count), []
    with torch.inference_mode(False), torch.enable_grad():
        for index, image in enumerate(contents):
            reporter.start(index)
            chosen = [styles[index]] + ([seconds[index]] if seconds else [])
            if regions is not None:
                options["content_masks"] = [regions[index]] + ([1.0 - regions[index]] if seconds else [])
            elif seconds:
                options["style_blend"] = [1.0 - blend, blend]
            result = run(image, chosen, callback=reporter, **options)
            assert result.pixels is not None
            painted.append(result.pixels)
    return convert.to_image(painted)


def _styles(value: Any, name: str, count: int) -> list[Any]:
    styles = convert.images(value, name)
    return [styles[i] for i in convert.pick(len(styles), count, name)]


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
        size = {"size": ("INT", {"default": default("size"), "min": 64, "max": MAX_SIZE, "step": 8,
                                 "tooltip": "Longest side of the result in pixels."})}  # fmt: skip
        return _inputs(size)

    def paint(self, content: Any, style: Any, strength: float, size: int, **rest: Any) -> tuple[torch.Tensor]:
        return (paint_batch(content, style, style_weight=strength, size=size, **rest),)


class StylizePrint(_ImageNode):
    """The same at print size: longest side in inches x dpi, evaluated in tiles where memory asks for it."""

    DESCRIPTION = "Style transfer at print size: large pictures evaluated tile by tile, with the same result."

    @classmethod
    def INPUT_TYPES(cls) -> Inputs:
        size = {
            "inches": ("FLOAT", {"default": 8.0, "min": 0.1, "max": 100.0, "step": 0.1,
                                 "tooltip": "Longest side of the print."}),
            "dpi": ("INT", {"default": 300, "min": 10, "max": 1200, "tooltip": "Pixels per inch of the print."}),
        }  # fmt: skip
        tiles = {
            "tile_size": ("INT", {"default": 0, "min": 0, "max": MAX_SIZE, "step": 16,
                                  "tooltip": "Tiles of this many pixels (a multiple of 16); 0: as memory needs."}),
            "max_memory": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1024.0, "step": 0.5,
                                     "tooltip": "Memory budget in GiB; 0: impasto's automatic budget."}),
        }  # fmt: skip
        return _inputs(size, tiles)

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
