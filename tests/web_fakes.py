"""A stand-in for `impasto.run` for the studio's tests: progress events under the test's control.

The live-progress tests must not depend on how fast the machine paints: `SteppedRunner` emits
exactly `steps` progress events and, after each one, waits until the test has seen it and calls
`release()`. So the event stream (or the page) sees every step, on a GPU as on a slow CPU.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import torch
from PIL import Image

from impasto.errors import ImpastoError
from impasto.imageio import fit_size, pil_to_tensor, tensor_to_pil
from impasto.stylize import Progress, Result


class SteppedRunner:
    """Paints by blending content into style, one step per `release()`; same signature as impasto.run."""

    def __init__(self, steps: int, timeout: float = 60.0):
        self.steps, self.timeout = steps, timeout
        self._go = threading.Semaphore(0)
        self.calls = 0
        self.fail_with: str | None = None  # the next call raises ImpastoError with this message, as a real run can

    def release(self) -> None:
        """Let the runner go on past the step it last reported."""
        self._go.release()

    def __call__(self, content: Image.Image, style: Any, *, config: Any, callback: Any) -> Result:
        self.calls += 1
        if self.fail_with is not None:
            message, self.fail_with = self.fail_with, None
            raise ImpastoError(message)
        start = time.perf_counter()
        size = fit_size(content.size, config.size)
        a = pil_to_tensor(content.resize(size))
        b = pil_to_tensor((style[0] if isinstance(style, list) else style).resize(size))
        trace: list[dict[str, float]] = []
        stopped = "iterations"
        pixels = a
        for step in range(1, self.steps + 1):
            pixels = torch.lerp(a, b, step / self.steps)
            loss = 1.0 / step
            trace.append({"scale": 1, "step": step, "seconds": time.perf_counter() - start, "loss": loss})
            progress = Progress(
                1, 1, size, step, self.steps, step, self.steps, loss, {}, 0.01 * step, self.steps - step, pixels
            )
            stop = callback(progress)
            if not self._go.acquire(timeout=self.timeout):
                raise TimeoutError(f"the test never released step {step}")
            if stop:
                stopped = "callback"
                break
        return Result(tensor_to_pil(pixels), config, trace, stopped, time.perf_counter() - start, "fake")
