"""impasto's ComfyUI node pack: `Stylize (impasto)` and `Stylize at print size (impasto)`.

ComfyUI finds it through the repository's own `__init__.py` (cloned or linked into `custom_nodes/`, or
installed there by ComfyUI-Manager from the Registry); only hiddenswitch's pip-installable ComfyUI reads
the wheel's `comfyui.custom_nodes` entry point. See the README's ComfyUI section. `nodes.py` declares the
nodes, `paint.py` paints, `convert.py` turns ComfyUI's tensors into impasto's, `host.py` talks to ComfyUI.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
