"""The objective evaluated whole, and the network and pixels it is evaluated with.

`Objective` runs the network once per evaluation and sums the terms (terms.Term). The tiled
evaluator (tiles.TiledObjective) is its peer; builder.build_objective makes the terms of a
configuration and picks one of the two.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from PIL import Image
from torch import nn

from .config import StyleConfig
from .errors import ImpastoError
from .imageio import fit_size, pil_to_tensor
from .runtime import Runtime
from .terms import Evaluator, Term, add_part
from .vgg import LAYER_NAMES, VGGFeatures, VGGWeights, load_weights, stride, target_features

PixelsOf = Callable[[Image.Image, int], torch.Tensor]
"""(image, longest side) -> 1 x 3 x H x W pixels in [0, 1] on the network's device."""


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
            add_part(parts, term.kind, term.weight * term.loss(image if term.layer is None else features[term.layer]))
        total = sum(parts.values())
        return total, parts  # type: ignore[return-value]


@functools.lru_cache(maxsize=4)
def _cached_weights(path: str | None) -> VGGWeights:
    return load_weights(path)


def frozen_network(cfg: StyleConfig, runtime: Runtime) -> VGGFeatures:
    """The truncated, frozen VGG-19 for cfg's layers, in the runtime's device, dtype and layout."""
    layers = list(cfg.content_layers) + list(cfg.style_layers)
    vgg = VGGFeatures(_cached_weights(cfg.weights), layers, cfg.pooling, cfg.conv)
    vgg = vgg.to(runtime.device, runtime.dtype)
    return vgg.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


features = target_features  # activations of a target image (no graph), float32


def min_side_of(cfg: StyleConfig) -> int:
    """`VGGFeatures.min_side` of cfg's network without building it (no weights decoded): the studio checks
    an upload with it before any network is loaded."""
    last = max(LAYER_NAMES.index(layer) for layer in [*cfg.content_layers, *cfg.style_layers])
    return stride(LAYER_NAMES[last])


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


@torch.no_grad()
def evaluate(objective: Evaluator, pixels: torch.Tensor) -> tuple[float, dict[str, float]]:
    """Total and parts of the objective at `pixels`, as plain floats (no graph)."""
    total, parts = objective(pixels)
    return float(total), {k: float(v) for k, v in parts.items()}


__all__ = ["Objective", "PixelsOf", "Term", "evaluate", "features", "frozen_network", "min_side_of", "resized_pixels"]
