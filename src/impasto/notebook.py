"""impasto in Jupyter: a progress bar that draws itself where the code runs, and the picture forming.

`impasto.stylize` shows `ProgressBar` by default inside a Jupyter kernel only (`progress=None`):
tqdm.auto makes it a notebook widget there (with ipywidgets; text without), and a text bar on stderr
anywhere else it is asked for. `LivePreview()` is a callback that shows the best image so far in
one output, updated in place (`impasto.stylize(photo, painting, callback=LivePreview())`).
The library itself never prints.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import ImpastoError

if TYPE_CHECKING:
    from .stylize import Progress

Callback = Callable[["Progress"], "bool | None"]


def in_jupyter() -> bool:
    """Whether this code runs in a Jupyter kernel (notebook, JupyterLab, VS Code), not a terminal IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class ProgressBar:
    """A callback: a tqdm.auto bar over all evaluations with the scale, loss and ETA; then `then`'s say."""

    def __init__(self, then: Callback | None = None):
        self.then = then
        self.bar: Any = None

    def __call__(self, progress: Progress) -> bool:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=progress.total_steps, unit="it", bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} "
                            "[{elapsed}{postfix}]")  # fmt: skip
        self.bar.update(progress.step - self.bar.n)
        self.bar.set_description(f"scale {progress.scale}/{progress.scales} {progress.size[0]}x{progress.size[1]}",
                                 refresh=False)  # fmt: skip
        eta = self.bar.format_interval(progress.eta)  # impasto's own: later scales cost more per step
        self.bar.set_postfix_str(f"ETA {eta}, loss {progress.loss:.4g}")
        return bool(self.then(progress)) if self.then is not None else False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def with_progress(show: bool | None, callback: Callback | None) -> Iterator[Callback | None]:
    """`callback`, behind a progress bar if `show` (None: in Jupyter only); the bar is closed after the run."""
    if not (in_jupyter() if show is None else show):
        yield callback
        return
    bar = ProgressBar(callback)
    try:
        yield bar
    finally:
        bar.close()


class LivePreview:
    """A callback that shows the best image so far in one notebook output, redrawn every `every` steps.

    `shown` counts the redraws. Checked when made, not mid-run: `every` must be a whole number of steps.
    Outside a Jupyter kernel it shows nothing (IPython's display would print the image's repr to stdout,
    and without IPython it would fail in the middle of the run), so a script that uses it runs quietly."""

    def __init__(self, every: int = 10):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ImpastoError(f"live preview: every must be a whole number of steps, at least 1, got {every!r}")
        self.every, self.shown = every, 0
        self.active = in_jupyter()  # a kernel has IPython: only there is it imported
        self._handle: Any = None

    def __call__(self, progress: Progress) -> bool:
        if not self.active or (progress.step % self.every and progress.step != progress.total_steps):
            return False
        from IPython.display import display

        image = progress.image()
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
        self.shown += 1
        return False
