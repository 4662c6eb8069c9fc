"""Where the tiles of a picture lie: interiors that partition it, crops with the halo the network needs.

A tile's origin keeps to the grid of the network's poolings and its crop reaches as far as the
deepest layer's receptive field (or the cut's, where only the layers up to a pooling run in tiles),
so that the features of its interior are exactly those of the whole picture (tiles.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import winograd
from .errors import ImpastoError
from .vgg import VGGFeatures, stride


@dataclass(frozen=True)
class Tile:
    """Interior rows/cols [y0, y1) x [x0, x1) and the crop with its halo, in pixels."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int


def grid(vgg: VGGFeatures, until: str | None = None) -> int:
    """The pixel grid tile origins keep to, so that a crop pools as the whole picture does: every
    pooling of the network, or only those up to `until` where tiles stop there."""
    return stride(until) if until else vgg.min_side


def halo(vgg: VGGFeatures, until: str | None = None) -> int:
    """Pixels of context a crop needs around its interior: the receptive-field radius of the
    deepest layer (or of `until`, where tiles stop: a 3x3 conv at stride s adds s, a 2x2 pool adds s),
    rounded up to the grid."""
    radius, step = 0, 1
    for name in vgg.names[: vgg.names.index(until) + 1 if until else None]:
        if name.startswith(("conv", "pool")):
            radius += step
        if name.startswith("pool"):
            step *= 2
    align = grid(vgg, until)
    return math.ceil(radius / align) * align


def plan_tiles(height: int, width: int, tile: int, margin: int, align: int) -> list[Tile]:
    """Interiors of at most `tile` px (a multiple of `align`) covering the picture, crops with `margin`."""
    if tile < align or tile % align:
        raise ImpastoError(f"tile size must be a multiple of {align} px, got {tile}")

    def spans(length: int) -> list[tuple[int, int]]:
        count = math.ceil(length / tile)
        step = math.ceil(length / count / align) * align  # even tiles, aligned
        return [(a, min(a + step, length)) for a in range(0, length, step)]

    return [
        Tile(
            y0, y1, x0, x1, max(0, y0 - margin), min(height, y1 + margin), max(0, x0 - margin), min(width, x1 + margin)
        )
        for y0, y1 in spans(height)
        for x0, x1 in spans(width)
    ]


def network_tiles(vgg: VGGFeatures, height: int, width: int, tile: int, cut: str | None = None) -> list[Tile]:
    """The tiles of a picture for `vgg` run up to `cut` (or whole) in tiles: halo and grid to match."""
    return plan_tiles(height, width, tile, halo(vgg, cut), grid(vgg, cut))


def interior(features: torch.Tensor, tile: Tile, s: int) -> torch.Tensor:
    """The rows and columns of a crop's feature map that lie in the tile's interior."""
    return features[
        ...,
        (tile.y0 - tile.cy0) // s : (tile.y1 - tile.cy0) // s,
        (tile.x0 - tile.cx0) // s : (tile.x1 - tile.cx0) // s,
    ]


def region(full: torch.Tensor, tile: Tile, s: int) -> torch.Tensor:
    """The same rows and columns of a map the size of the whole picture's features."""
    return full[..., tile.y0 // s : tile.y1 // s, tile.x0 // s : tile.x1 // s]


def crop_of(pixels: torch.Tensor, tile: Tile) -> torch.Tensor:
    """The tile's crop, halo included, of a picture."""
    return pixels[..., tile.cy0 : tile.cy1, tile.cx0 : tile.cx1]


def run_crop(vgg: VGGFeatures, crop: torch.Tensor, tile: Tile, until: str | None) -> dict[str, torch.Tensor]:
    """The network on a tile's crop, laying Winograd's tiles where the whole picture's fall (same rounding)."""
    with winograd.origin(tile.cy0, tile.cx0):
        return vgg(crop.contiguous(memory_format=torch.channels_last), until=until)
