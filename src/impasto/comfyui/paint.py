"""One painting per content image of an IMAGE batch, on ComfyUI's device: a thin layer over `impasto.run`.

ComfyUI runs every node inside `torch.inference_mode()`; painting optimises the pixels by their
gradient, so the nodes leave inference mode (ComfyUI's own advice for nodes that need autograd).
The VGG-19 weights are decoded once per process and kept (`objective._cached_weights`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from ..config import default
from ..errors import ImpastoError
from ..guided import MIN_MASS
from ..imageio import fit_size
from ..memory import GIB, automatic_share, plan
from ..runtime import Runtime, resolve
from ..stylize import run
from . import convert, host
from .host import Reporter

log = logging.getLogger("impasto")

EMPTY_MASK = (
    "{name} is 0 everywhere (the style nowhere), as LoadImage's mask of a picture without transparency is: "
    "painted as if no mask were connected"
)


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
    shapes = [image.shape[:2] for image in contents]
    regions = _regions(mask, shapes, second=seconds is not None) if mask is not None else [None] * count
    if not 0.0 <= blend <= 1.0:
        raise ImpastoError(f"blend must be from 0 to 1, got {blend}")
    options.update(preserve_color=None if preserve_color == "none" else preserve_color)
    if iterations:
        options.update(iterations=[iterations])
    runtime = resolve(host.device(), default("precision"))
    options.update(device=runtime.device.type)
    host.make_room(runtime.device, _room(shapes, runtime, options))
    reporter, painted = Reporter(count), []
    try:
        with torch.inference_mode(False), torch.enable_grad():
            for index, image in enumerate(contents):
                reporter.start(index)
                chosen = [styles[index]] + ([seconds[index]] if seconds else [])
                controls: dict[str, Any] = {}
                region = regions[index]
                if region is not None:
                    controls.update(content_masks=[region, 255 - region] if seconds else [region])
                elif seconds:
                    controls.update(style_blend=[1.0 - blend, blend])
                result = run(image, chosen, callback=reporter, **options, **controls)
                assert result.pixels is not None
                painted.append(result.pixels)
    finally:
        host.release()
    return host.placed(convert.to_image(painted))


def _styles(value: Any, name: str, count: int) -> list[Any]:
    styles = convert.images(value, name)
    return [styles[i] for i in convert.pick(len(styles), count, name)]


def _regions(mask: Any, shapes: list[tuple[int, int]], second: bool) -> list[np.ndarray | None]:
    """Where the style goes, per content image (1: style, 0: the photo; with style_2, style_2 fills the rest).

    ComfyUI's mask marks the area it selects: LoadImage's is 1 where its picture is transparent, which is what
    ComfyUI's mask editor paints. A mask that is 0 everywhere (LoadImage's 64x64 placeholder for a picture with
    no alpha) selects nothing: it is dropped with a notice rather than refused. Masks are judged in the 8-bit
    levels the painting reads them in, so what is kept here is never found empty there."""
    regions: list[np.ndarray | None] = []
    for index, fitted in enumerate(convert.masks(mask, "mask", shapes)):
        name = "mask" if len(shapes) == 1 else f"mask of content image {index + 1}"
        region = np.round(fitted * 255).astype(np.uint8)
        if region.sum() / 255 < MIN_MASS:
            log.warning(EMPTY_MASK.format(name=name))
            regions.append(None)
            continue
        if second and (255 - region).sum() / 255 < MIN_MASS:
            raise ImpastoError(f"{name} is 1 everywhere, which leaves style_2 nowhere to go: disconnect style_2, "
                               "or leave part of the mask at 0")  # fmt: skip
        regions.append(region)
    return regions


def _room(shapes: list[tuple[int, int]], runtime: Runtime, options: dict[str, Any]) -> float:
    """Bytes to have free before painting: the user's budget, or the largest picture's peak (memory.plan)
    over the share of the free memory impasto's automatic budget takes."""
    if options.get("max_memory"):
        return float(options["max_memory"]) * GIB
    sizes = [fit_size((width, height), options["size"]) for height, width in shapes]
    biggest = max(sizes, key=lambda size: size[0] * size[1])
    fit = plan(biggest, runtime.dtype, math.inf, default("lbfgs_history"), 0, 1, tile_size=options.get("tile_size"))
    return fit.estimate / automatic_share(runtime.device)
