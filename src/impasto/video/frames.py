"""The per-frame loop of Ruder, Dosovitskiy & Brox 2016: warm starts and a temporal term.

Frame 0 is a still (`impasto.run`: the full coarse-to-fine schedule). Every later frame is solved
at the final size only, starting from the previous stylized frame warped onto it by the optical
flow of the input frames, and its objective adds a temporal term: the mean squared difference to
that warped frame, weighted per pixel by the flow's reliability (0 where the content was hidden or
the flow is wrong). A warm start near a good answer needs far fewer evaluations than a still, and
the temporal term keeps each frame from settling into a different local optimum (flicker).

The previous frame is always taken as written (8-bit), so a resumed run paints exactly what an
uninterrupted one would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..builder import build_objective
from ..config import StyleConfig
from ..guided import prepare
from ..imageio import tensor_to_pil
from ..objective import frozen_network
from ..optimize import StepInfo, optimise_as
from ..runtime import Runtime
from ..stylize import Progress, run
from ..terms import Term
from . import DEFAULT_FRAME_ITERATIONS, DEFAULT_TEMPORAL_WEIGHT
from . import flow as flows
from .io import Frame


class TemporalLoss(nn.Module):
    """Mean over pixels of c(x) |image(x) - warped(x)|^2: Ruder et al.'s short-term consistency term."""

    warped: torch.Tensor
    weights: torch.Tensor

    def __init__(self, warped: torch.Tensor, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("warped", warped.detach().float())
        self.register_buffer("weights", weights.detach().float())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (self.weights * (pixels.float() - self.warped).square()).mean()


@dataclass
class FrameProgress:
    """Handed to the callback after every objective evaluation of every frame."""

    frame: int  # 0-based index of the frame being painted
    frames: int  # frames in the window (an estimate until decoding reaches the end)
    iteration: int  # evaluations within this frame, 1-based
    iterations: int  # this frame's budget (frame 0: all its scales)
    loss: float
    terms: dict[str, float]
    elapsed: float  # seconds since the run started
    eta: float  # seconds left for the whole window
    image: Callable[[], Image.Image] = field(repr=False)  # the frame so far, as it would be written


FrameCallback = Callable[[FrameProgress], bool | None]
"""Return True to stop after this evaluation: the frame is dropped, the frames done are kept."""


class Stopped(Exception):
    """The caller's callback or Ctrl-C ended the run inside a frame; the frames before it stand."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Timing:
    """Seconds per frame, for the ETA and the report: the first frame apart (it runs the full schedule)."""

    start: float = field(default_factory=time.perf_counter)
    first: float | None = None
    later: list[float] = field(default_factory=list)

    def later_eta(self, frames_left: int, fraction: float, per_frame: float) -> float:
        """Time left: this (later) frame's remaining part and the frames after it; measured frames' mean first."""
        per_frame = float(np.mean(self.later)) if self.later else per_frame
        return (1 - fraction) * per_frame + frames_left * per_frame


@dataclass
class Painter:
    """Paints frames one after another; holds the network, the styles and the previous frame."""

    styles: list[Image.Image]
    cfg: StyleConfig
    runtime: Runtime
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT
    frame_iterations: int = DEFAULT_FRAME_ITERATIONS
    callback: FrameCallback | None = None
    frames: int = 0
    timing: Timing = field(default_factory=Timing)

    def __post_init__(self) -> None:
        self.vgg = frozen_network(self.cfg, self.runtime)
        self._final_pixels = 1

    def paint(self, frames: Iterable[Frame], done: Callable[[int], Image.Image | None]) -> Iterator[Image.Image]:
        """Stylized frames in order; `done(i)` returns frame i if an earlier run already painted it."""
        previous: tuple[Image.Image, Image.Image] | None = None  # (input frame, stylized frame)
        for frame in frames:
            self._final_pixels = frame.image.width * frame.image.height
            began = time.perf_counter()
            out = done(frame.index)
            if out is None:
                out = self._first(frame) if previous is None else self._next(frame, *previous)
                seconds = time.perf_counter() - began
                if previous is None:
                    self.timing.first = seconds
                else:
                    self.timing.later.append(seconds)
            previous = (frame.image, out)
            yield out

    def _first(self, frame: Frame) -> Image.Image:
        scale_began = [0, time.perf_counter()]  # scale index, when it began

        def report(progress: Progress) -> bool:
            now = time.perf_counter()
            if progress.scale != scale_began[0]:
                scale_began[:] = [progress.scale, now]
            # A later frame costs frame_iterations evaluations at the final size; scale this scale's rate.
            pixels = progress.size[0] * progress.size[1]
            per_eval = (now - scale_began[1]) / progress.iteration * self._final_pixels / pixels
            eta = progress.eta + max(0, self.frames - 1) * self.frame_iterations * per_eval
            return self._report(frame.index, progress.step, progress.total_steps, progress.loss, progress.terms,
                                eta, progress.image)  # fmt: skip

        result = run(frame.image, self.styles, config=self.cfg, callback=report)
        if result.stopped in ("interrupted", "callback"):
            raise Stopped(result.stopped)
        return result.image

    def _next(self, frame: Frame, previous_input: Image.Image, previous_output: Image.Image) -> Image.Image:
        controls = prepare(frame.image, self.styles, self.cfg)
        backward = flows.flow(frame.image, previous_input)  # this frame's pixel x shows previous x + d(x)
        weights = flows.consistency(backward, flows.flow(previous_input, frame.image))
        warped = flows.warp(flows.to_array(controls.as_seen(previous_output)), backward)
        content = flows.to_array(controls.content)
        start = np.where(weights[..., None] > 0, warped, content)  # disoccluded: start from this frame's content
        device = self.runtime.device
        warped_t, weights_t = flows.to_tensor(warped).to(device), flows.to_tensor(weights[..., None]).to(device)
        term = Term("temporal", None, self.temporal_weight, TemporalLoss(warped_t, weights_t))
        objective = build_objective(self.cfg, self.vgg, controls, self.cfg.size, extra_terms=[term])
        began = time.perf_counter()

        def hook(info: StepInfo) -> bool:
            per_frame = (time.perf_counter() - began) / info.iteration * self.frame_iterations
            frames_left = max(0, self.frames - frame.index - 1)
            eta = self.timing.later_eta(frames_left, info.iteration / self.frame_iterations, per_frame)
            image = lambda: tensor_to_pil(controls.finish(info.image))  # noqa: E731
            return self._report(frame.index, info.iteration, self.frame_iterations, info.loss, info.terms, eta, image)

        loop = optimise_as(
            self.cfg, flows.to_tensor(start).to(device), objective, iterations=self.frame_iterations, hook=hook,
            where=f"frame {frame.index + 1}", weights="--style-weight, --temporal-weight",
        )  # fmt: skip
        if loop.stopped in ("interrupted", "callback"):
            raise Stopped(loop.stopped)
        return tensor_to_pil(controls.finish(loop.best))

    def _report(self, index: int, iteration: int, iterations: int, loss: float, terms: dict[str, float], eta: float,
                image: Callable[[], Image.Image]) -> bool:  # fmt: skip
        if self.callback is None:
            return False
        elapsed = time.perf_counter() - self.timing.start
        progress = FrameProgress(index, self.frames, iteration, iterations, loss, terms, elapsed, eta, image)
        return bool(self.callback(progress))
