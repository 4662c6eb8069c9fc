"""The objective, built in one place: what `run()` minimises and what `score()` evaluates.

`build_objective` turns a configuration and its perceptual controls into the terms for one scale
(terms.Term), their targets measured once (`Measure`: whole, or tile by tile in bounded memory),
and picks the evaluator: `objective.Objective` on the whole picture, or `tiles.TiledObjective`.
A new kind of term, or a new way to evaluate, is an addition here rather than a second builder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from .config import StyleConfig
from .guided import Controls, Features, fit_mask
from .losses import ContentLoss, StyleLoss, TotalVariation, gram_matrix, moments
from .objective import Objective, PixelsOf, resized_pixels
from .terms import Evaluator, Term
from .tile_grid import Tile, crop_of, interior, network_tiles, region, run_crop, stride
from .tiles import TiledObjective, gram_sums, mass
from .vgg import VGGFeatures, target_features


class Measure:
    """Targets of an image without a graph, whole or (with `tile`) tile by tile in bounded memory."""

    def __init__(self, vgg: VGGFeatures, tile: int | None):
        self.vgg, self.tile = vgg, tile
        self.device = next(vgg.parameters()).device

    def _tiles(self, pixels: torch.Tensor) -> list[Tile]:
        assert self.tile is not None
        return network_tiles(self.vgg, pixels.shape[-2], pixels.shape[-1], self.tile)

    def shapes(self, pixels: torch.Tensor, layers: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Each layer's H x W for this image: every 2x2 pooling floors the size by half."""
        return {layer: (pixels.shape[-2] // stride(layer), pixels.shape[-1] // stride(layer)) for layer in layers}

    def features(self, pixels: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Activations (float32) of `layers`, assembled from tile interiors when tiled."""
        if self.tile is None:
            return target_features(self.vgg, pixels)
        out = {layer: pixels.new_zeros((1, 0, h, w)) for layer, (h, w) in self.shapes(pixels, layers).items()}
        with torch.no_grad():
            for tile in self._tiles(pixels):
                features = run_crop(self.vgg, crop_of(pixels, tile), tile, None)
                for layer in layers:
                    part = interior(features[layer], tile, stride(layer)).float()
                    if out[layer].shape[1] == 0:
                        out[layer] = pixels.new_zeros((1, part.shape[1], *out[layer].shape[-2:]))
                    region(out[layer], tile, stride(layer)).copy_(part)
        return out

    def grams(
        self, pixels: torch.Tensor, mask: torch.Tensor | None, layers: Sequence[str], with_mean: bool = False
    ) -> dict[str, torch.Tensor]:
        """Each layer's (guided, with `mask` of this image) Gram matrix, or with_mean its moments."""
        shapes = self.shapes(pixels, layers)
        masks = {layer: fit_mask(mask, shapes[layer], self.device) for layer in layers}
        if self.tile is None:
            features = target_features(self.vgg, pixels)
            reduce = moments if with_mean else gram_matrix
            return {layer: reduce(features[layer], masks[layer]) for layer in layers}
        wanted = [(layer, masks[layer], with_mean) for layer in layers]
        sums = gram_sums(self.vgg, pixels, self._tiles(pixels), wanted).sums
        height, width = pixels.shape[-2:]
        return {layer: g / mass(layer, m, height, width) for (layer, m, _), g in zip(wanted, sums)}


def build_objective(
    cfg: StyleConfig,
    vgg: VGGFeatures,
    controls: Controls,
    longest: int,
    *,
    pixels_of: PixelsOf | None = None,
    extra_terms: Sequence[Term] = (),
    tile: int | None = None,
    budget: float | None = None,
    cut: str | None = None,
    content_factor: float = 1.0,
) -> Evaluator:
    """The terms of cfg at one scale (output's longest side `longest`), targets computed once.

    `pixels_of` decides how target images are resampled (score() passes exact sizes to match
    another tool's pixels); by default they are resized to `longest` times their scale factors.
    `extra_terms` are added as they are (e.g. video's temporal term on the pixels). With `tile`,
    targets and the objective are evaluated in tiles of that many pixels (tiles.py): same values,
    bounded memory (`budget` bytes: the heap is trimmed between tiles only where needed); with `cut`,
    only the layers up to it in tiles and the rest on the whole picture (TiledObjective).
    `content_factor` multiplies the content weight (run() passes cfg.layout_weight below the picture scale).
    """
    device = next(vgg.parameters()).device
    pixels_of = pixels_of or resized_pixels(device, vgg.min_side)
    measure = Measure(vgg, tile)
    content_pixels = pixels_of(controls.content, longest)
    content = measure.features(content_pixels, list(cfg.content_layers))
    content_weight = cfg.content_weight * content_factor
    terms = [
        Term("content", layer, content_weight * w, ContentLoss(content[layer], cfg.normalize_losses))
        for layer, w in cfg.content_layers.items()
    ]

    def grams_of(image: Image.Image, side: int, mask: torch.Tensor | None, layers: Sequence[str]) -> Features:
        return measure.grams(pixels_of(image, side), mask, layers, with_mean=cfg.style_loss == "w2")

    shapes = measure.shapes(content_pixels, list(cfg.style_layers))
    targets = controls.style_targets(grams_of, longest, cfg.style_scale, list(cfg.style_layers), shapes, device)
    for layer, w in cfg.style_layers.items():
        for target, mask in targets[layer]:  # several with content masks: one per region
            terms.append(
                Term(
                    "style", layer, cfg.style_weight * w, StyleLoss(target, cfg.normalize_losses, mask, cfg.style_loss)
                )
            )
    if cfg.tv_weight:
        terms.append(Term("tv", None, cfg.tv_weight, TotalVariation()))
    terms += list(extra_terms)
    if tile is None:
        return Objective(vgg, terms)
    return TiledObjective(vgg, terms, tile, budget, cut)
