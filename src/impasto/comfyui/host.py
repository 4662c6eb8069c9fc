"""What the nodes ask of ComfyUI and tell it: the device, memory, progress with a preview, whether to stop.

ComfyUI's modules are looked up when a node runs, and only if they are there: the nodes work (and
are tested) without ComfyUI, and a `comfy` package put in place later is still found.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch

from ..config import DEVICES
from ..stylize import Progress

log = logging.getLogger("impasto")

PREVIEW_EVERY = 10
"""Steps between previews in ComfyUI's progress bar (each costs a copy of the picture)."""
PREVIEW_SIDE = 512
"""Longest side of the preview, as ComfyUI's own samplers send it."""


def _comfy(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"comfy.{name}")
    except ImportError:
        return None


def device() -> str:
    """ComfyUI's device (`--cpu`, `--cuda-device`, ...) as impasto names it; outside ComfyUI impasto's `auto`.

    A CUDA device is named `cuda`, torch's current one, which is the device ComfyUI sets; a kind impasto does not
    run on (xpu, DirectML, ...) falls back to the CPU, with a notice."""
    chosen = getattr(_comfy("model_management"), "get_torch_device", None)
    if chosen is None:
        return "auto"
    kind = torch.device(chosen()).type
    if kind in DEVICES:
        return kind
    log.warning("ComfyUI runs on %s, which impasto does not support: painting on the CPU", kind)
    return "cpu"


def make_room(where: torch.device, room: float) -> None:
    """Ask ComfyUI to unload the models it keeps on a GPU until `room` bytes are free there (it unloads
    what it must, least recently used first, and no more). On the CPU nothing is unloaded: tiles fit the
    painting to the RAM that is free, at little cost."""
    free = getattr(_comfy("model_management"), "free_memory", None)
    if free is not None and where.type != "cpu":
        free(room, where)


def release() -> None:
    """Hand the GPU memory the painting's allocator cached back to ComfyUI's models (nothing on the CPU)."""
    empty = getattr(_comfy("model_management"), "soft_empty_cache", None)
    if empty is not None:
        empty()


def placed(image: torch.Tensor) -> torch.Tensor:
    """The IMAGE on ComfyUI's intermediate device and dtype, where its own nodes put theirs (CPU float32 here)."""
    management = _comfy("model_management")
    where = getattr(management, "intermediate_device", None)
    dtype = getattr(management, "intermediate_dtype", None)
    return image.to(device=where() if where else None, dtype=dtype() if dtype else None)


class Reporter:
    """The impasto callback for a batch of `count` paintings made one after another.

    Progress goes to `comfy.utils.ProgressBar` over the whole batch; every step first asks ComfyUI
    whether the user pressed Cancel (`throw_exception_if_processing_interrupted` raises if so, and
    the exception ends the run: ComfyUI reports it as interrupted).
    """

    def __init__(self, count: int):
        self.count, self.index = count, 0
        utils, management = _comfy("utils"), _comfy("model_management")
        self._bar_type: Callable[[int], Any] | None = getattr(utils, "ProgressBar", None)
        self._interrupted: Callable[[], None] | None = getattr(
            management, "throw_exception_if_processing_interrupted", None
        )
        self._bar: Any = None

    def start(self, index: int) -> None:
        """Painting `index` of the batch begins (a Cancel between two paintings stops here)."""
        self.index = index
        self.check()

    def check(self) -> None:
        if self._interrupted is not None:
            self._interrupted()

    def __call__(self, progress: Progress) -> bool:
        self.check()
        if self._bar_type is not None:
            total = progress.total_steps * self.count
            if self._bar is None:
                self._bar = self._bar_type(total)
            last = progress.step == progress.total_steps
            preview = ("JPEG", progress.image(), PREVIEW_SIDE) if last or progress.step % PREVIEW_EVERY == 0 else None
            self._bar.update_absolute(self.index * progress.total_steps + progress.step, total, preview)
        return False
