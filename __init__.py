"""ComfyUI's entry to this repository, cloned as `ComfyUI/custom_nodes/impasto`: the node pack.

ComfyUI runs this file as a module of its own (older ComfyUI names it `impasto`, after the folder,
which would hide the real package); it loads `impasto.comfyui` from this clone's `src/` and
exports its node mappings. The package's dependencies must be installed in ComfyUI's Python:
`python -m pip install -e custom_nodes/impasto` (see the README's ComfyUI section).
"""

import importlib
import os
import sys

_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")


def _node_pack():  # type: ignore[no-untyped-def]
    shim = sys.modules.get("impasto")
    if shim is not None and getattr(shim, "__file__", None) == os.path.abspath(__file__):
        del sys.modules["impasto"]  # this file, registered under the package's name: make way for the package
    if _SRC not in sys.path:
        sys.path.insert(0, _SRC)  # this clone's code, ahead of any other installed copy
    try:
        return importlib.import_module("impasto.comfyui")
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"impasto's node pack needs {exc.name!r}: run `python -m pip install -e {os.path.dirname(_SRC)}` "
            "with ComfyUI's Python"
        ) from exc


_pack = _node_pack()
NODE_CLASS_MAPPINGS = _pack.NODE_CLASS_MAPPINGS
NODE_DISPLAY_NAME_MAPPINGS = _pack.NODE_DISPLAY_NAME_MAPPINGS
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
