"""A fake ComfyUI for the node pack's tests: the `comfy.utils` and `comfy.model_management` the nodes look up.

Only what the nodes call, each recording its calls: the progress bar, the Cancel check, the device ComfyUI
chose (`get_torch_device`), its memory calls (`free_memory`, `soft_empty_cache`) and where its nodes keep
IMAGE tensors (`intermediate_device` / `intermediate_dtype`). Signatures as in ComfyUI 0.33.0.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
import torch


class Interrupted(Exception):
    """Stands in for comfy.model_management.InterruptProcessingException."""


def install(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Put the fake `comfy` package in sys.modules; returns its state (what to answer, what was called)."""
    state = types.SimpleNamespace(
        bars=[], updates=[], checks=0, cancel_after=None,  # progress and Cancel
        device=torch.device("cpu"), frees=[], emptied=0, dtype=torch.float32,  # device and memory
    )  # fmt: skip

    class ProgressBar:
        def __init__(self, total: int):
            state.bars.append(total)

        def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
            state.updates.append((value, total, preview))

    def throw_exception_if_processing_interrupted() -> None:
        state.checks += 1
        if state.cancel_after is not None and state.checks > state.cancel_after:
            raise Interrupted

    def free_memory(memory_required: float, device: torch.device, keep_loaded: Any = ()) -> list[Any]:
        state.frees.append((memory_required, device))
        return []

    def soft_empty_cache(force: bool = False) -> None:
        state.emptied += 1

    utils = types.ModuleType("comfy.utils")
    utils.ProgressBar = ProgressBar  # type: ignore[attr-defined]
    management = types.ModuleType("comfy.model_management")
    for function in (throw_exception_if_processing_interrupted, free_memory, soft_empty_cache):
        setattr(management, function.__name__, function)
    management.get_torch_device = lambda: state.device  # type: ignore[attr-defined]
    management.intermediate_device = lambda: torch.device("cpu")  # type: ignore[attr-defined]
    management.intermediate_dtype = lambda: state.dtype  # type: ignore[attr-defined]
    package = types.ModuleType("comfy")
    for name, module in (("comfy", package), ("comfy.utils", utils), ("comfy.model_management", management)):
        monkeypatch.setitem(sys.modules, name, module)
    return state
