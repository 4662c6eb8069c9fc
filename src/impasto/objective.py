"""The objective, built in one place: what `run()` minimises and what `score()` evaluates.

A `Term` is one weighted loss module on one VGG layer's activations, or on the pixels themselves
(layer None: total variation today; a temporal term for video tomorrow). `Objective` runs the
network once per evaluation and sums the terms. `build_objective` turns a configuration and its
perceptual controls into the terms for one scale, so that a new kind of term, or an objective
evaluated tile by tile, is an addition here rather than a second builder elsewhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn

from .config import StyleConfig
from .errors import ImpastoError
from .guided import Controls, Features
from .imageio import fit_size, pil_to_tensor
from .losses import ContentLoss, StyleLoss, TotalVariation
from .runtime import Runtime
from .tiles import Measure, TiledObjective
from .vgg import VGGFeatures, VGGWeights, load_weights, target_features

PixelsOf = Callable[[Image.Image, int], torch.Tensor]
"""(image, longest side) -> 1 x 3 x H x W pixels in [0, 1] on the network's device."""


@dataclass
class Term:
    """One weighted loss: kind is 'content', 'style', 'tv', ...; layer None means on the pixels."""

    kind: str
    layer: str | None
    weight: float
    loss: nn.Module


class Objective(nn.Module):
    """Total = sum of weighted terms over one forward pass of the frozen network."""

    def __init__(self, vgg: VGGFeatures, terms: list[Term]):
        super().__init__()
        self.vgg = vgg
        self.terms = terms
        self.term_modules = nn.ModuleList(t.loss for t in terms)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = self.vgg(image.contiguous(memory_format=torch.channels_last))
        parts: dict[str, torch.Tensor] = {}
        for term in self.terms:
            value = term.weight * term.loss(image if term.layer is None else features[term.layer])
            parts[term.kind] = parts[term.kind] + value if term.kind in parts else value
        total = sum(parts.values())
        return total, parts  # type: ignore[return-value]


@functools.lru_cache(maxsize=4)
def _cached_weights(path: str | None) -> VGGWeights:
    return load_weights(path)


def frozen_network(cfg: StyleConfig, runtime: Runtime) -> VGGFeatures:
    """The truncated, frozen VGG-19 for cfg's layers, in the runtime's device, dtype and layout."""
    layers = list(cfg.content_layers) + list(cfg.style_layers)
    vgg = VGGFeatures(_cached_weights(cfg.weights), layers, cfg.pooling)
    vgg = vgg.to(runtime.device, runtime.dtype)
    return vgg.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


features = target_features  # activations of a target image (no graph), float32


def resized_pixels(device: torch.device, min_side: int = 1) -> PixelsOf:
    """The default sizing: the image's longest side set to `longest` (Lanczos), aspect kept.

    An image so thin that its short side would fall under `min_side` (what the network's poolings
    need) is refused with the sizes named, rather than failing deep inside the network.
    """

    def pixels_of(image: Image.Image, longest: int) -> torch.Tensor:
        size = fit_size(image.size, longest)
        if min(size) < min_side:
            raise ImpastoError(
                f"an image of {image.width}x{image.height} px is too thin: at {size[0]}x{size[1]} its short side "
                f"is under the {min_side} px the network needs; use a larger size or style scale, or a less "
                "elongated image"
            )
        return pil_to_tensor(image.resize(size, Image.Resampling.LANCZOS)).to(device)

    return pixels_of


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
) -> Objective:
    """The terms of cfg at one scale (output's longest side `longest`), targets computed once.

    `pixels_of` decides how target images are resampled (score() passes exact sizes to match
    another tool's pixels); by default they are resized to `longest` times their scale factors.
    `extra_terms` are added as they are (e.g. video's temporal term on the pixels). With `tile`,
    targets and the objective are evaluated in tiles of that many pixels (tiles.py): same values,
    bounded memory (`budget` bytes: the heap is trimmed between tiles only where needed); with `cut`,
    only the layers up to it in tiles and the rest on the whole picture (TiledObjective).
    """
    device = next(vgg.parameters()).device
    pixels_of = pixels_of or resized_pixels(device, vgg.min_side)
    measure = Measure(vgg, tile)
    content_pixels = pixels_of(controls.content, longest)
    content = measure.features(content_pixels, list(cfg.content_layers))
    terms = [
        Term("content", layer, cfg.content_weight * w, ContentLoss(content[layer], cfg.normalize_losses))
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
    return TiledObjective(vgg, terms, tile, budget, cut)  # type: ignore[return-value]


@torch.no_grad()
def evaluate(objective: Objective, pixels: torch.Tensor) -> tuple[float, dict[str, float]]:
    """Total and parts of the objective at `pixels`, as plain floats (no graph)."""
    total, parts = objective(pixels)
    return float(total), {k: float(v) for k, v in parts.items()}
