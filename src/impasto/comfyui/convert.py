"""ComfyUI's tensors <-> what impasto takes: IMAGE is float [B, H, W, C] in 0-1, MASK is [B, H, W].

Checked here, so a wrong input is one line naming the input, not a traceback from deep in torch; float
values by the same rule as the Python API's arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ImpastoError
from ..imageio import check_unit_floats


def _as_tensor(value: Any, name: str, kind: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ImpastoError(f"{name} must be a ComfyUI {kind} tensor, got {type(value).__name__}")
    if not (value.is_floating_point() or value.dtype == torch.uint8):
        raise ImpastoError(f"{name} must hold floats in 0-1, got {value.dtype}")
    if value.numel() == 0:
        raise ImpastoError(f"{name} is empty (shape {tuple(value.shape)})")
    return value


def images(value: Any, name: str) -> list[np.ndarray]:
    """An IMAGE batch as one H x W x 3 float array (0-1) per image; alpha is dropped, grey repeated."""
    tensor = _as_tensor(value, name, "IMAGE")
    if tensor.dim() == 3:  # one image without its batch axis
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 4 or tensor.shape[-1] not in (1, 3, 4):
        raise ImpastoError(f"{name} must be an IMAGE of shape [B, H, W, 3], got {list(tensor.shape)}")
    array = _to_float_array(tensor, name)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return [np.ascontiguousarray(item[..., :3]) for item in array]


def masks(value: Any, name: str, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    """A MASK ([B, H, W] or [H, W]) as one array per content image (one mask each, or one for all), each at its
    image's (H, W): a mask of another size is stretched to it, bilinear, as ComfyUI's own nodes fit masks (so
    LoadImage's 64x64 placeholder and a mask drawn at another resolution both fit)."""
    tensor = _as_tensor(value, name, "MASK")
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() == 4 and tensor.shape[-1] == 1:  # an IMAGE-like [B, H, W, 1] passed as a mask
        tensor = tensor[..., 0]
    if tensor.dim() != 3:
        raise ImpastoError(f"{name} must be a MASK of shape [B, H, W], got {list(tensor.shape)}")
    array = _to_float_array(tensor, name)
    return [_fitted(array[i], shape) for i, shape in zip(pick(len(array), len(shapes), name), shapes)]


def _fitted(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    grid = torch.from_numpy(np.ascontiguousarray(mask))[None, None]
    return F.interpolate(grid, size=shape, mode="bilinear", align_corners=False)[0, 0].clamp(0, 1).numpy()


def pick(have: int, want: int, name: str) -> list[int]:
    """Which of `have` batch items goes with each of `want` contents: one each, or the first for all."""
    if have == want:
        return list(range(want))
    if have == 1:
        return [0] * want
    if want == 1:
        raise ImpastoError(f"{name} has a batch of {have}; give 1, as there is one content image")
    raise ImpastoError(f"{name} has a batch of {have}; give 1 (used for all) or {want} (one per content image)")


def to_image(pixels: list[torch.Tensor]) -> torch.Tensor:
    """Painted 1 x 3 x H x W tensors -> one IMAGE batch [B, H, W, 3], float32 on the CPU, 0-1."""
    batch = torch.cat([p.detach().float().cpu() for p in pixels], dim=0)
    return batch.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def _to_float_array(tensor: torch.Tensor, name: str) -> np.ndarray:
    """Floats in 0-1 by the Python API's rule (`imageio.check_unit_floats`: a 0-255 IMAGE is refused, not clamped
    to near white); what is within half an 8-bit level of the range is clamped into it."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.uint8:
        return tensor.numpy().astype(np.float32) / 255.0
    array = tensor.float().numpy()
    check_unit_floats(array, name)
    return array.clip(0, 1)
