"""The typed Python API: `stylize(content, style, **options) -> PIL.Image`.

It wires the pieces: images -> VGG features -> loss targets per scale -> pixel optimisation,
coarse to fine. It never prints; progress goes to the optional callback.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image

from . import memory
from .builder import build_objective
from .config import MAX_SIZE, StyleConfig, configure
from .errors import ImpastoError
from .eta import RunClock
from .guided import Controls, prepare
from .imageio import ImageLike, fit_size, load_image, longest_for_short_side, pil_to_tensor, tensor_to_pil
from .notebook import with_progress
from .objective import evaluate, frozen_network
from .optimize import LoopResult, StepInfo, optimise_as
from .pyramid import Scale, picture_scale, schedule
from .runtime import Runtime, release_free_memory, resolve
from .terms import Evaluator
from .tile_grid import halo, network_tiles
from .vgg import VGGFeatures

clock = time.perf_counter  # the run's clock (a module name, so that the ETA's test can fake it)

log = logging.getLogger("impasto")


@dataclass
class Progress:
    """Handed to the callback after every iteration."""

    scale: int  # 1-based
    scales: int
    size: tuple[int, int]  # (width, height) of this scale
    iteration: int  # objective evaluations within this scale, 1-based
    iterations: int  # evaluation budget of this scale
    step: int  # evaluations over all scales, 1-based
    total_steps: int  # budget over all scales
    loss: float  # of the best image so far (what `image()` shows)
    terms: dict[str, float]
    elapsed: float
    eta: float  # seconds left if every scale runs its full budget (early stops make it shorter)
    pixels: torch.Tensor = field(repr=False)  # best so far, as optimised (grey with preserve_color='luminance')
    finish: Callable[[torch.Tensor], torch.Tensor] = field(default=lambda p: p, repr=False)
    tiles: int = 1  # how many tiles one evaluation of this scale runs in (1: the whole picture)
    tile: int | None = None  # their interior side in pixels (None: untiled)
    budget_note: str = ""  # what the memory budget chose at this scale, where it changed anything

    def image(self) -> Image.Image:
        """The current image as PIL, colours as in the output (converted on demand: it costs a copy)."""
        return tensor_to_pil(self.finish(self.pixels))


Callback = Callable[[Progress], bool | None]
"""Return True to stop early; the best image so far is returned."""


@dataclass
class Result:
    image: Image.Image
    config: StyleConfig
    trace: list[dict[str, float]]  # per evaluation: scale, step, seconds, best loss so far, its terms, trial
    stopped: str  # why the last scale ended: iterations, converged, callback, interrupted
    seconds: float
    runtime: str
    loss: float | None = None  # the objective at the image as returned (None if stopped before the last scale)
    terms: dict[str, float] = field(default_factory=dict)  # its content, style and tv parts
    pixels: torch.Tensor | None = field(default=None, repr=False)  # the image as floats (for 16-bit output)

    @property
    def interrupted(self) -> bool:
        return self.stopped in ("interrupted", "callback")


def as_list(style: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    """One style image or several, as a list (a str is one path, not a sequence of them)."""
    if isinstance(style, (list, tuple)):
        if not style:
            raise ImpastoError("at least one style image is needed")
        return list(style)
    return [style]  # type: ignore[list-item]


class _Painter:
    """State of one stylization: images, network, schedule; paints scale after scale."""

    def __init__(self, controls: Controls, cfg: StyleConfig, runtime: Runtime, callback: Callback | None):
        self.controls, self.cfg, self.rt, self.callback = controls, cfg, runtime, callback
        self.content = controls.content
        self.vgg = frozen_network(cfg, runtime)
        self.plan = _fitting_plan(cfg, self.content.size, self.vgg.min_side)
        self.layout_scales = picture_scale([scale.longest for scale in self.plan])  # held by layout_weight
        sizes = [fit_size(self.content.size, s.longest) for s in self.plan]
        self.memory = _memory_plans(cfg, runtime, self.vgg, sizes)
        self.budget_notes = [fit.describe() if fit.constrained else "" for fit in self.memory]  # for Progress
        self.tiles = [self._count_tiles(fit, size) for fit, size in zip(self.memory, sizes)]  # for Progress
        self.total_steps = sum(s.iterations for s in self.plan)
        self.eta = RunClock([w * h for w, h in sizes], [s.iterations for s in self.plan])
        self.trace: list[dict[str, float]] = []
        self.start = clock()
        self.best: torch.Tensor | None = None
        self.objective: Evaluator | None = None  # the last scale's, once built

    def _start_image(self, size: tuple[int, int]) -> torch.Tensor:
        width, height = size
        if self.best is not None:
            return self._upsampled(size)
        init = self.cfg.init
        content = self._photo(size)
        if init == "content":
            return content
        if init == "noise":
            gen = torch.Generator()  # its own generator: the caller's global RNG is left alone
            if self.cfg.seed is None:
                gen.seed()
            else:
                gen.manual_seed(self.cfg.seed)
            noise = torch.randn((1, 3, height, width), generator=gen).to(self.rt.device)
            mean = content.mean(dim=(2, 3), keepdim=True)
            return (mean + 0.2 * noise).clamp(0, 1)
        image = self.controls.as_seen(load_image(init))
        return pil_to_tensor(image.resize(size, Image.Resampling.LANCZOS)).to(self.rt.device)

    def _upsampled(self, size: tuple[int, int]) -> torch.Tensor:
        """The last scale's painting at `size`; with 'detail', plus the band of the photo it could not hold."""
        assert self.best is not None
        up = _resize(self.best, size)
        if self.cfg.upsample != "detail":
            return up
        coarse = (int(self.best.shape[-1]), int(self.best.shape[-2]))
        fine, low = self._photo(size).to(up), _resize(self._photo(coarse).to(up), size)
        return (up + fine - low).clamp_(0.0, 1.0)

    def _photo(self, size: tuple[int, int]) -> torch.Tensor:
        """The photo (as the network sees it) at `size`, on the device."""
        return pil_to_tensor(self.content.resize(size, Image.Resampling.LANCZOS)).to(self.rt.device)

    def paint(self) -> Result:
        stopped, step_base = "iterations", 0
        for index, scale in enumerate(self.plan):
            size, fit = fit_size(self.content.size, scale.longest), self.memory[index]
            log.info("scale %d/%d %dx%d: %s", index + 1, len(self.plan), *size, fit.describe())
            try:
                loop = self._paint_scale(index, scale, size, fit, step_base)
            except KeyboardInterrupt:  # outside the optimiser's own handling: while targets were measured
                if self.best is None:
                    raise
                stopped = "interrupted"  # keep the scales already painted
                break
            self.best, stopped = loop.best, loop.stopped
            step_base += scale.iterations
            log.info("scale %d/%d %dx%d: %s after %d evaluations, loss %.4g",
                     index + 1, len(self.plan), *size, stopped, len(loop.trace), loop.best_loss)  # fmt: skip
            if stopped in ("interrupted", "callback"):
                break
        return self._result(stopped)

    def _paint_scale(
        self, index: int, scale: Scale, size: tuple[int, int], fit: memory.MemoryPlan, step_base: int
    ) -> LoopResult:
        self.objective = None  # the last scale's targets go, and their heap with them: a new scale's
        release_free_memory()  # tensors are larger and would not reuse its holes (memory.WHOLE_SLACK)
        self.eta.setting_up(index, clock())
        objective = build_objective(
            self.cfg, self.vgg, self.controls, scale.longest, tile=fit.tile, budget=fit.budget, cut=fit.cut,
            content_factor=self.cfg.layout_weight if index < self.layout_scales else 1.0,
        )  # fmt: skip
        self.eta.ready(index, clock())
        hook = functools.partial(self._hook, index, scale, size, step_base)
        loop = optimise_as(
            self.cfg, self._start_image(size), objective, iterations=scale.iterations, lbfgs_history=fit.history,
            history_dtype=fit.history_dtype, hook=hook, where=f"scale {index + 1} ({size[0]}x{size[1]})",
            weights="--style-weight, --content-weight, --tv-weight",
        )  # fmt: skip
        self.objective = objective
        return loop

    def _result(self, stopped: str) -> Result:
        final = fit_size(self.content.size, self.cfg.size)
        assert self.best is not None
        pixels = self.controls.finish(_resize(self.best, final)).detach().float().cpu()
        image = tensor_to_pil(pixels)
        loss: float | None = None
        terms: dict[str, float] = {}
        if self.objective is not None and self.best.shape[-2:] == (final[1], final[0]):
            loss, terms = loss_of_image(self.objective, self.controls, image, self.rt.device)
        return Result(image, self.cfg, self.trace, stopped, clock() - self.start, self.rt.label, loss, terms, pixels)

    def _count_tiles(self, fit: memory.MemoryPlan, size: tuple[int, int]) -> int:
        if fit.tile is None:
            return 1
        return len(network_tiles(self.vgg, size[1], size[0], fit.tile, fit.cut))

    def _hook(self, index: int, scale: Scale, size: tuple[int, int], step_base: int, info: StepInfo) -> bool:
        now = clock()
        elapsed = now - self.start
        step = step_base + info.iteration
        self.trace.append({"scale": index + 1, "step": step, "seconds": elapsed, "loss": info.loss, **info.terms,
                           "trial": info.trial})  # fmt: skip
        self.eta.evaluated(index, info.iteration, now)
        if self.callback is None:
            return False
        eta = self.eta.left(index)
        progress = Progress(
            index + 1, len(self.plan), size, info.iteration, scale.iterations, step, self.total_steps,
            info.loss, info.terms, elapsed, eta, info.image, self.controls.finish, self.tiles[index],
            self.memory[index].tile, self.budget_notes[index],
        )  # fmt: skip
        return bool(self.callback(progress))


def _resize(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(pixels.shape[-2:]) == (size[1], size[0]):
        return pixels
    return F.interpolate(pixels, size=(size[1], size[0]), mode="bicubic", align_corners=False)


def _memory_plans(
    cfg: StyleConfig, runtime: Runtime, vgg: VGGFeatures, sizes: list[tuple[int, int]]
) -> list[memory.MemoryPlan]:
    """Tiles and L-BFGS history per scale, within the memory budget; checked for every scale before the run."""
    budgets = memory.budgets(cfg.max_memory, runtime.device)
    splits = {cut: halo(vgg, cut) for cut in vgg.split_points()}
    options = dict(
        history=cfg.lbfgs_history,
        margin=halo(vgg),
        align=vgg.min_side,
        tile_size=cfg.tile_size,
        splits=splits,
        network_bytes=vgg.winograd_filter_bytes(),
    )
    return [memory.plan_within(budgets, size, runtime.dtype, **options) for size in sizes]


def check_fits(content_size: tuple[int, int], size: int, min_side: int, largest: int = MAX_SIZE) -> None:
    """Refuse a content image too thin to paint at `size`, with the size that would do (if any up to `largest`):
    the studio asks this of a job before queueing it (up to its own limit), a run before it starts."""
    width, height = fit_size(content_size, size)
    if min(width, height) >= min_side:
        return
    needed = longest_for_short_side(content_size, min_side)
    fix = (f"use a larger size (at least {needed}) or a less elongated image" if needed <= largest else
           f"no size up to {largest} gives it that: use a less elongated image")  # fmt: skip
    raise ImpastoError(
        f"the output would be {width}x{height}, but the network's layers need at least {min_side} px on the "
        f"short side: {fix}"
    )


def _fitting_plan(cfg: StyleConfig, content_size: tuple[int, int], min_side: int) -> list[Scale]:
    """The schedule without the coarse scales at which a thin image would be narrower than the network takes."""
    check_fits(content_size, cfg.size, min_side)
    plan = schedule(cfg.size, cfg.min_size, cfg.scales, cfg.iterations)
    fitting = [s for s in plan if min(fit_size(content_size, s.longest)) >= min_side]
    if len(fitting) < len(plan):
        log.info("skipping %d coarse scale(s) too small for the network", len(plan) - len(fitting))
    return fitting


def loss_of_image(
    objective: Evaluator, controls: Controls, image: Image.Image, device: torch.device
) -> tuple[float, dict[str, float]]:
    """The objective at a finished RGB image (8-bit, colours as written), as the network sees it."""
    return evaluate(objective, pil_to_tensor(controls.as_seen(image)).to(device))


def run(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    config: StyleConfig | None = None,
    callback: Callback | None = None,
    **options,
) -> Result:
    """Stylize and return the image with its loss trace and timings. Options override `config`."""
    cfg = configure(config, **options)
    if callback is not None and not callable(callback):
        raise ImpastoError(f"callback must be a function taking a Progress (or None), got {type(callback).__name__}")
    runtime = resolve(cfg.device, cfg.precision)
    content_image = load_image(content)
    style_images = [load_image(s) for s in as_list(style)]
    if cfg.init not in ("noise", "content"):
        load_image(cfg.init)  # fail now, not after the first scale
    controls = prepare(content_image, style_images, cfg)  # checks masks and weights before the long run
    with runtime.reproducible(cfg.seed):
        return _Painter(controls, cfg, runtime, callback).paint()


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    config: StyleConfig | None = None,
    callback: Callback | None = None,
    progress: bool | None = None,
    **options,
) -> Image.Image:
    """Paint `content` in the style of `style` (a path, PIL image or array; or a list of them).

    Keyword options are the fields of `StyleConfig` (size, style_weight, init, ...). `progress`: a
    progress bar (tqdm.auto: a widget in Jupyter, text on stderr elsewhere); None shows it in Jupyter only.
    """
    with with_progress(progress, callback) as report:
        return run(content, style, config=config, callback=report, **options).image
