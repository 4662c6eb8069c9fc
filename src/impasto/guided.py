"""Perceptual controls of Gatys et al. 2017 turned into style targets: blends, masks, scale, colour.

`prepare` validates every control against the images (before the long run starts) and returns a
`Controls`; per scale, `Controls.style_targets` gives each style layer its list of
(target Gram, content mask or None) pairs, one StyleLoss each.

Semantics, with N style images:

* No masks: one target per layer, the blend sum_k w_k G_k (w = style_blend normalised, default equal).
* content_masks: N regions, region k <-> style k (guided Gram matrices: each region's Gram is
  taken over that region only and matched to style k's). Areas that no region covers get content
  loss only: they stay the content. A label image with N colours gives regions in ascending colour
  order (as (R, G, B) tuples, so black first); with N + 1 colours the lowest colour (e.g. black) is
  the "no style" region and the others map to styles 1..N.
* style_masks: one mask (or None: the whole image) per style; style k's Gram is taken over its
  mask only. With content_masks this gives "region k of the output from region k of style k"; to
  take several regions from one painting, pass that painting once per region.
* coarse_style: style layers from `coarse_from` upwards (relu3_1 by default) take their Gram from
  this image instead; finer layers keep the style images' (fine strokes from one, coarse from the other).
Masks are any grey image (white = in, black = out, grey = partial) of the same aspect ratio as
their image; they are resized with the image and area-averaged to each layer's H x W.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import color
from .config import StyleConfig
from .errors import ImpastoError
from .imageio import ImageLike, load_image, pil_to_tensor
from .vgg import LAYER_NAMES

ASPECT_TOLERANCE = 0.02  # relative difference of width/height allowed between a mask and its image
MIN_MASS = 1.0
"""A mask covering less than one pixel's worth (its values summed) is empty: it would select nothing."""
MAX_LABELS = 16

Features = dict[str, torch.Tensor]
GramsOf = Callable[[Image.Image, int, torch.Tensor | None, Sequence[str]], dict[str, torch.Tensor]]
"""(image, longest side, mask of that image or None, layers) -> each layer's (guided) Gram matrix."""
Shapes = dict[str, tuple[int, int]]
"""Layer -> H x W of its activations."""
Target = tuple[torch.Tensor, torch.Tensor | None]
"""A target Gram and the mask (at the layer's H x W) of the output region it applies to."""


@dataclass
class Controls:
    """The images to optimise with, and what each style layer must match."""

    content: Image.Image  # what the network sees (grey luminance in 'luminance' mode)
    styles: list[Image.Image]
    original: Image.Image  # the content as given, whose chroma 'luminance' mode puts back
    luminance: bool = False
    blend: list[float] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    content_masks: list[torch.Tensor] | None = None  # 1 x 1 x H x W in [0, 1], one per style
    style_masks: list[torch.Tensor | None] = field(default_factory=list)
    coarse: Image.Image | None = None
    coarse_layers: frozenset[str] = frozenset()
    _chroma_cache: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict, repr=False)

    def style_targets(
        self,
        grams_of: GramsOf,
        longest: int,
        style_scale: float,
        layers: Sequence[str],
        shapes: Shapes,
        device: torch.device | None = None,
    ) -> dict[str, list[Target]]:
        """Per style layer, the (Gram, output mask) pairs to match at this scale.

        `shapes` gives each layer's H x W for the output at this scale (content masks are fitted to it).
        """
        used = [k for k, w in enumerate(self.blend) if w > 0 or self.content_masks is not None]
        fine_layers = [layer for layer in layers if layer not in self.coarse_layers]
        grams = {
            k: grams_of(self.styles[k], _side(longest, style_scale * self.scales[k]), self.style_masks[k], fine_layers)
            for k in (used if fine_layers else [])
        }
        targets: dict[str, list[Target]] = {}
        for layer in fine_layers:
            if self.content_masks is None:
                targets[layer] = [(sum(self.blend[k] * grams[k][layer] for k in used), None)]  # type: ignore[list-item]
            else:
                targets[layer] = [
                    (grams[k][layer], fit_mask(self.content_masks[k], shapes[layer], device)) for k in used
                ]
        coarse_layers = [layer for layer in layers if layer in self.coarse_layers]
        if self.coarse is not None and coarse_layers:
            coarse = grams_of(self.coarse, _side(longest, style_scale), None, coarse_layers)
            targets.update({layer: [(coarse[layer], None)] for layer in coarse_layers})
        return targets

    def as_seen(self, image: Image.Image) -> Image.Image:
        """An image (init, or one to score) as the network sees it: grey luminance in 'luminance' mode."""
        return color.grey_luminance(image) if self.luminance else image

    def finish(self, pixels: torch.Tensor) -> torch.Tensor:
        """Optimised pixels -> output pixels: in 'luminance' mode, the content's chroma put back."""
        if not self.luminance:
            return pixels
        size = (pixels.shape[-1], pixels.shape[-2])
        if size not in self._chroma_cache:
            self._chroma_cache[size] = pil_to_tensor(self.original.resize(size, Image.Resampling.LANCZOS))
        content = self._chroma_cache[size].to(pixels.device)
        return color.recombine(pixels.detach().float(), content)


def _side(longest: int, scale: float) -> int:
    return max(16, round(longest * scale))


def fit_mask(mask: torch.Tensor | None, shape: tuple[int, int], device: torch.device | None) -> torch.Tensor | None:
    """A mask resized to a layer's H x W: area-averaged when shrinking (as pooling shrinks features)."""
    if mask is None:
        return None
    h, w = shape
    mask = mask.to(device)
    if mask.shape[-2] >= h and mask.shape[-1] >= w:
        return F.adaptive_avg_pool2d(mask, (h, w))
    return F.interpolate(mask, size=(h, w), mode="bilinear", align_corners=False)


def prepare(content: Image.Image, styles: list[Image.Image], cfg: StyleConfig) -> Controls:
    """Check every control against the images and build the `Controls` (fast: no network)."""
    n = len(styles)
    coarse = load_image(cfg.coarse_style) if cfg.coarse_style is not None else None
    if coarse is not None and cfg.content_masks is not None:
        raise ImpastoError("coarse_style cannot be combined with content_masks")
    if cfg.style_blend is not None and cfg.content_masks is not None:
        raise ImpastoError("style_blend cannot be combined with content_masks (region k takes style k)")
    blend = _per_style("style_blend", cfg.style_blend, n, 1.0)
    total = sum(blend)
    controls = Controls(
        content=content,
        styles=styles,
        original=content,
        blend=[w / total for w in blend],
        scales=_per_style("style_scales", cfg.style_scales, n, 1.0),
        content_masks=None if cfg.content_masks is None else content_masks(cfg.content_masks, n, content.size),
        style_masks=style_masks(cfg.style_masks, styles),
        coarse=coarse,
        coarse_layers=frozenset(coarse_layers(cfg.coarse_from) if coarse is not None else ()),
    )
    return _recolour(controls, cfg.preserve_color)


def coarse_layers(first: str) -> list[str]:
    """Layers from `first` upwards (in network order): those a coarse style drives."""
    return list(LAYER_NAMES[LAYER_NAMES.index(first) :])


def _recolour(controls: Controls, mode: str | None) -> Controls:
    """Apply colour preservation to the images the network will see."""
    if mode is None:
        return controls
    content = controls.original
    if mode == "luminance":
        controls.content = color.grey_luminance(content)
        recolour = color.match_luminance
        controls.luminance = True
    else:
        recolour = color.match_histogram
    controls.styles = [recolour(s, content) for s in controls.styles]
    if controls.coarse is not None:
        controls.coarse = recolour(controls.coarse, content)
    return controls


def check_count(name: str, count: int, n: int) -> None:
    """Per-style lists must have one entry per style image (the CLI checks with this too)."""
    if count != n:
        raise ImpastoError(f"{name.replace('_', ' ')}: {count} given for {n} style image(s); give one per style image")


def _per_style(name: str, values: Sequence[float] | None, n: int, default: float) -> list[float]:
    if values is None:
        return [default] * n
    check_count(name, len(values), n)
    return [float(v) for v in values]


def _is_many(spec: object) -> bool:
    return isinstance(spec, (list, tuple))


def _check_aspect(what: str, mask_size: tuple[int, int], image_size: tuple[int, int], image: str) -> None:
    mw, mh = mask_size
    iw, ih = image_size
    if abs((mw / mh) / (iw / ih) - 1) > ASPECT_TOLERANCE:
        raise ImpastoError(f"{what} is {mw}x{mh} but the {image} is {iw}x{ih}: aspect ratios differ")


def _grey(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy())[None, None]


def _check_mass(what: str, mask: torch.Tensor) -> torch.Tensor:
    if float(mask.sum()) < MIN_MASS:
        raise ImpastoError(f"{what} is empty (all black)")
    return mask


def label_masks(label: Image.Image, what: str) -> list[torch.Tensor]:
    """One binary mask per distinct colour of a label image, in ascending (R, G, B) order."""
    pixels = np.asarray(label.convert("RGB")).reshape(-1, 3)
    colours, index = np.unique(pixels, axis=0, return_inverse=True)
    if len(colours) > MAX_LABELS:
        raise ImpastoError(
            f"{what} has {len(colours)} colours; a label image needs one flat colour per "
            "region (save it as PNG, not JPEG)"
        )
    index = index.reshape(label.height, label.width)
    return [torch.from_numpy((index == k).astype(np.float32))[None, None] for k in range(len(colours))]


def content_masks(spec: ImageLike | Sequence[ImageLike], n: int, size: tuple[int, int]) -> list[torch.Tensor]:
    """N region masks for N styles, from a label image or a list of N masks (see module docstring)."""
    if _is_many(spec):
        items = list(spec)  # type: ignore[arg-type]
        check_count("content_masks", len(items), n)
        images = [load_image(m) for m in items]
        for k, image in enumerate(images, start=1):
            _check_aspect(f"content mask {k}", image.size, size, "content image")
        return [_check_mass(f"content mask {k}", _grey(im)) for k, im in enumerate(images, start=1)]
    label = load_image(spec)  # type: ignore[arg-type]
    _check_aspect("content label image", label.size, size, "content image")
    masks = label_masks(label, "content label image")
    if len(masks) not in (n, n + 1):
        raise ImpastoError(
            f"content label image has {len(masks)} colours for {n} style image(s); "
            f"use {n} (one per style) or {n + 1} (the lowest RGB, e.g. black: no style)"
        )
    return masks[len(masks) - n :]


def style_masks(
    spec: ImageLike | Sequence[ImageLike | None] | None, styles: list[Image.Image]
) -> list[torch.Tensor | None]:
    """One mask per style (None: the whole style image)."""
    if spec is None:
        return [None] * len(styles)
    items = list(spec) if _is_many(spec) else [spec]  # type: ignore[arg-type]
    check_count("style_masks", len(items), len(styles))
    out: list[torch.Tensor | None] = []
    for k, (item, style) in enumerate(zip(items, styles), start=1):
        if item is None:
            out.append(None)
            continue
        image = load_image(item)  # type: ignore[arg-type]
        _check_aspect(f"style mask {k}", image.size, style.size, f"style image {k}")
        out.append(_check_mass(f"style mask {k}", _grey(image)))
    return out
