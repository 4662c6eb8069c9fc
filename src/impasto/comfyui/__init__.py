"""impasto's ComfyUI node pack: `Stylize (impasto)` and `Stylize at print size (impasto)`.

ComfyUI finds it through the repository's own `__init__.py` (cloned into `custom_nodes/impasto`)
or, for ComfyUI installs that load node packs from installed wheels, the `comfyui.custom_nodes`
entry point. See the README's ComfyUI section.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
