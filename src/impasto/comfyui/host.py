"""What the nodes tell ComfyUI while they paint: progress with a preview, and whether to stop.

ComfyUI's modules are looked up when a node runs, and only if they are there: the nodes work (and
are tested) without ComfyUI, and a `comfy` package put in place later is still found.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..stylize import Progress

PREVIEW_EVERY = 10
"""Steps between previews in ComfyUI's progress bar (each costs a copy of the picture)."""
PREVIEW_SIDE = 512
"""Longest side of the preview, as ComfyUI's own samplers send it."""


def _comfy(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"comfy.{name}")
    except ImportError:
        return None


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
