"""ComfyUI as the node pack's tests drive it: its IMAGE layout, a node run as ComfyUI runs one, and a fake
`comfy` package with only what the nodes call, each call recorded: the progress bar, the Cancel check, the
device ComfyUI chose (`get_torch_device`), its memory calls (`free_memory`, `soft_empty_cache`) and where its
nodes keep IMAGE tensors (`intermediate_device` / `intermediate_dtype`). Signatures as in ComfyUI 0.33.0.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image


def as_image(*images: Image.Image) -> torch.Tensor:
    """PIL images -> a ComfyUI IMAGE batch."""
    return torch.stack([torch.from_numpy(np.asarray(i, dtype=np.float32) / 255.0) for i in images])


def paint(node: type, **inputs: Any) -> torch.Tensor:
    """Run a node as ComfyUI does: an instance, inputs by name, in inference mode; one IMAGE out."""
    with torch.inference_mode():
        outputs = getattr(node(), node.FUNCTION)(**inputs)
    assert isinstance(outputs, tuple) and len(outputs) == len(node.RETURN_TYPES)
    return outputs[0]


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
