"""The typed Python API: `stylize(content, style, **options) -> PIL.Image`.

It wires the pieces: images -> VGG features -> loss targets per scale -> pixel optimisation,
coarse to fine. It never prints; progress goes to the optional callback.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from PIL import Image

from .config import StyleConfig
from .errors import ImpastoError
from .guided import Controls, prepare
from .imageio import ImageLike, fit_size, load_image, pil_to_tensor, resize_longest, tensor_to_pil
from .losses import ContentLoss, StyleLoss
from .optimize import Objective, StepInfo, Term, optimise
from .pyramid import Scale, schedule
from .runtime import Runtime, resolve
from .vgg import VGGFeatures, VGGWeights, load_weights

log = logging.getLogger("impasto")


@dataclass
class Progress:
    """Handed to the callback after every iteration."""

    scale: int  # 1-based
    scales: int
    size: tuple[int, int]  # (width, height) of this scale
    iteration: int  # within this scale, 1-based
    iterations: int  # budget of this scale
    step: int  # over all scales, 1-based
    total_steps: int  # budget over all scales
    loss: float
    terms: dict[str, float]
    elapsed: float
    eta: float  # seconds left if every scale runs its full budget (early stops make it shorter)
    pixels: torch.Tensor = field(repr=False)  # what is optimised (grey with preserve_color='luminance')
    finish: Callable[[torch.Tensor], torch.Tensor] = field(default=lambda p: p, repr=False)

    def image(self) -> Image.Image:
        """The current image as PIL, colours as in the output (converted on demand: it costs a copy)."""
        return tensor_to_pil(self.finish(self.pixels))


Callback = Callable[[Progress], bool | None]
"""Return True to stop early; the best image so far is returned."""


@dataclass
class Result:
    image: Image.Image
    config: StyleConfig
    trace: list[dict[str, float]]  # one row per iteration: scale, step, seconds, loss and its terms
    stopped: str  # why the last scale ended: iterations, converged, callback, interrupted, nonfinite
    seconds: float
    runtime: str

    @property
    def interrupted(self) -> bool:
        return self.stopped in ("interrupted", "callback")


@functools.lru_cache(maxsize=4)
def _cached_weights(path: str | None) -> VGGWeights:
    return load_weights(path)


def frozen_network(cfg: StyleConfig, runtime: Runtime) -> VGGFeatures:
    """The truncated, frozen VGG-19 for cfg's layers, in the runtime's device, dtype and layout."""
    layers = list(cfg.content_layers) + list(cfg.style_layers)
    vgg = VGGFeatures(_cached_weights(cfg.weights), layers, cfg.pooling)
    return vgg.to(runtime.device, runtime.dtype).to(memory_format=torch.channels_last)


@torch.no_grad()
def features(vgg: VGGFeatures, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Activations of a target image (no graph), as float32 for the losses."""
    return {k: v.float() for k, v in vgg(pixels.contiguous(memory_format=torch.channels_last)).items()}


def content_terms(cfg: StyleConfig, content_features: dict[str, torch.Tensor]) -> list[Term]:
    return [
        Term("content", layer, cfg.content_weight * w, ContentLoss(content_features[layer], cfg.normalize_losses))
        for layer, w in cfg.content_layers.items()
    ]


def _as_list(style: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(style, (list, tuple)):
        if not style:
            raise ImpastoError("at least one style image is needed")
        return list(style)
    return [style]


class _Painter:
    """State of one stylization: images, network, schedule; paints scale after scale."""

    def __init__(self, controls: Controls, cfg: StyleConfig, runtime: Runtime, callback: Callback | None):
        self.controls, self.cfg, self.rt, self.callback = controls, cfg, runtime, callback
        self.content = controls.content
        self.vgg = frozen_network(cfg, runtime)
        self.plan: list[Scale] = schedule(cfg.size, cfg.min_size, cfg.scales, cfg.iterations)
        self.total_steps = sum(s.iterations for s in self.plan)
        self.trace: list[dict[str, float]] = []
        self.start = time.perf_counter()
        self.best: torch.Tensor | None = None

    def _tensor(self, image: Image.Image, longest: int) -> torch.Tensor:
        return pil_to_tensor(resize_longest(image, longest)).to(self.rt.device)

    def _objective(self, longest: int) -> Objective:
        cfg = self.cfg
        content_feats = features(self.vgg, self._tensor(self.content, longest))
        targets = self.controls.style_targets(
            lambda image, side: features(self.vgg, self._tensor(image, side)),
            longest,
            cfg.style_scale,
            list(cfg.style_layers),
            content_feats,
        )
        terms = content_terms(cfg, content_feats)
        for layer, w in cfg.style_layers.items():
            for target, mask in targets[layer]:  # several with content masks: one per region
                loss = StyleLoss(target, cfg.normalize_losses, mask)
                terms.append(Term("style", layer, cfg.style_weight * w, loss))
        return Objective(self.vgg, terms, cfg.tv_weight)

    def _start_image(self, size: tuple[int, int]) -> torch.Tensor:
        width, height = size
        if self.best is not None:
            return F.interpolate(self.best, size=(height, width), mode="bicubic", align_corners=False)
        init = self.cfg.init
        content = pil_to_tensor(self.content.resize(size, Image.Resampling.LANCZOS)).to(self.rt.device)
        if init == "content":
            return content
        if init == "noise":
            gen = torch.Generator().manual_seed(self.cfg.seed if self.cfg.seed is not None else torch.seed())
            noise = torch.randn((1, 3, height, width), generator=gen).to(self.rt.device)
            mean = content.mean(dim=(2, 3), keepdim=True)
            return (mean + 0.2 * noise).clamp(0, 1)
        return pil_to_tensor(load_image(init).resize(size, Image.Resampling.LANCZOS)).to(self.rt.device)

    def paint(self) -> Result:
        stopped = "iterations"
        step_base = 0
        for index, scale in enumerate(self.plan):
            size = fit_size(self.content.size, scale.longest)
            objective = self._objective(scale.longest)
            start = self._start_image(size)
            self.scale_start = time.perf_counter()
            hook = functools.partial(self._hook, index, scale, size, step_base)
            loop = optimise(
                start,
                objective,
                iterations=scale.iterations,
                optimizer=self.cfg.optimizer,
                lr=self.cfg.lr,
                lbfgs_history=self.cfg.lbfgs_history,
                tolerance=self.cfg.tolerance,
                window=self.cfg.window,
                hook=hook,
            )
            self.best, stopped = loop.best, loop.stopped
            step_base += scale.iterations
            log.info(
                "scale %d/%d %dx%d: %s after %d iterations, loss %.4g",
                index + 1,
                len(self.plan),
                *size,
                stopped,
                len(loop.trace),
                loop.best_loss,
            )
            if stopped in ("interrupted", "callback"):
                break
        assert self.best is not None
        final = fit_size(self.content.size, self.cfg.size)
        image = tensor_to_pil(self.controls.finish(self._resize(self.best, final)))
        return Result(image, self.cfg, self.trace, stopped, time.perf_counter() - self.start, self.rt.label)

    @staticmethod
    def _resize(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(pixels.shape[-2:]) == (size[1], size[0]):
            return pixels
        return F.interpolate(pixels, size=(size[1], size[0]), mode="bicubic", align_corners=False)

    def _eta(self, index: int, iteration: int, size: tuple[int, int]) -> float:
        """Remaining time, from this scale's measured seconds per pixel-iteration (cost grows with pixels)."""
        per_pixel_step = (time.perf_counter() - self.scale_start) / (iteration * size[0] * size[1])
        work = (self.plan[index].iterations - iteration) * size[0] * size[1]
        for later in self.plan[index + 1 :]:
            w, h = fit_size(self.content.size, later.longest)
            work += later.iterations * w * h
        return work * per_pixel_step

    def _hook(self, index: int, scale: Scale, size: tuple[int, int], step_base: int, info: StepInfo) -> bool:
        elapsed = time.perf_counter() - self.start
        self.trace.append(
            {
                "scale": index + 1,
                "step": step_base + info.iteration,
                "seconds": elapsed,
                "loss": info.loss,
                **info.terms,
            }
        )
        if self.callback is None:
            return False
        progress = Progress(
            index + 1,
            len(self.plan),
            size,
            info.iteration,
            scale.iterations,
            step_base + info.iteration,
            self.total_steps,
            info.loss,
            info.terms,
            elapsed,
            self._eta(index, info.iteration, size),
            info.image,
            self.controls.finish,
        )
        return bool(self.callback(progress))


def run(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    config: StyleConfig | None = None,
    callback: Callback | None = None,
    **options,
) -> Result:
    """Stylize and return the image with its loss trace and timings. Options override `config`."""
    try:
        cfg = replace(config or StyleConfig(), **options)
    except TypeError as exc:
        raise ImpastoError(str(exc).replace("__init__()", "stylize()")) from None
    cfg.validate()
    runtime = resolve(cfg.device, cfg.precision)
    content_image = load_image(content)
    style_images = [load_image(s) for s in _as_list(style)]
    if cfg.init not in ("noise", "content"):
        load_image(cfg.init)  # fail now, not after the first scale
    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
    controls = prepare(content_image, style_images, cfg)  # checks masks and weights before the long run
    return _Painter(controls, cfg, runtime, callback).paint()


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    config: StyleConfig | None = None,
    callback: Callback | None = None,
    **options,
) -> Image.Image:
    """Paint `content` in the style of `style` (a path, PIL image or array; or a list of them).

    Keyword options are the fields of `StyleConfig` (size, style_weight, init, ...).
    """
    return run(content, style, config=config, callback=callback, **options).image
