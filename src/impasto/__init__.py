"""impasto: paint one picture in the style of another (Gatys et al. neural style transfer).

The names below are imported on first use, so `import impasto` is instant: the command line then
loads torch inside its own guard (a Ctrl-C while it loads is one line, not a traceback).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .errors import ImpastoError

if TYPE_CHECKING:
    from .batch import batch
    from .config import StyleConfig
    from .stylize import Progress, Result, run, stylize
    from .video import video

__all__ = ["StyleConfig", "ImpastoError", "Progress", "Result", "run", "stylize", "batch", "video"]
__version__ = "0.1.0"

_LAZY = {
    "StyleConfig": ".config",
    "Progress": ".stylize",
    "Result": ".stylize",
    "run": ".stylize",
    "stylize": ".stylize",
    "batch": ".batch",  # the function of the subpackage impasto.batch
    "video": ".video",  # the function of the subpackage impasto.video (PyAV and OpenCV load on the first video)
}


class _Package(types.ModuleType):
    """The package, with the API names loaded on first use."""

    def __getattr__(self, name: str) -> Any:
        if name not in _LAZY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        super().__setattr__(name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # Importing the submodule impasto.stylize binds it here; the function of that name wins, as before.
        if not (name in _LAZY and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
