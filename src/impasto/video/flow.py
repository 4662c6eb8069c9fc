"""Optical flow between input frames, its reliability, and warping (Ruder, Dosovitskiy & Brox 2016).

Flow is OpenCV's DIS (Kroeger et al. 2016): dense, a few milliseconds per frame on a CPU, nothing
to download. Conventions: `flow(a, b)` is the displacement field d with a(x) ~ b(x + d(x)), so
`warp(b, flow(a, b))` brings b onto a's pixels. A pixel of a is trusted (weight 1) unless the
forward-backward check fails there (it is disoccluded, or the flow is wrong) or it lies on a
motion boundary; those get weight 0, as in Ruder et al.'s consistency checker.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

Flow = np.ndarray
"""H x W x 2 float32 displacement (dx, dy) in pixels."""


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"))


def flow(a: Image.Image, b: Image.Image) -> Flow:
    """Dense flow d with a(x) ~ b(x + d(x)) (DIS, 'medium' preset: accurate enough, milliseconds per frame)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]
    return dis.calc(_grey(a), _grey(b), None)


def _sample(array: np.ndarray, displacement: Flow) -> np.ndarray:
    """array(x + d(x)), bicubic (bilinear blurs the strokes a little more at every frame); points outside
    the frame take the nearest edge value."""
    h, w = displacement.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = grid_x + displacement[..., 0], grid_y + displacement[..., 1]
    return cv2.remap(array, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def warp(image: np.ndarray, displacement: Flow) -> np.ndarray:
    """image (H x W x C float32) resampled at x + d(x): the other frame brought onto this frame's pixels."""
    out = _sample(np.ascontiguousarray(image, dtype=np.float32), displacement)
    return out if out.ndim == 3 else out[..., None]


def consistency(forward: Flow, backward: Flow) -> np.ndarray:
    """Weights (H x W float32, 0 or 1) for the pixels of frame a, from d = flow(a, b) and flow(b, a).

    Ruder et al.'s checks: going to b and back should return to the start,
    |d + d_back(x + d)|^2 <= 0.01 (|d|^2 + |d_back(x + d)|^2) + 0.5; and where the flow changes
    sharply (a motion boundary), |grad d|^2 > 0.01 |d|^2 + 0.002, it is not trusted either.
    Pixels whose flow leaves the frame have no counterpart in b: weight 0.
    """
    back = _sample(backward, forward)
    round_trip = np.square(forward + back).sum(-1)
    disoccluded = round_trip > 0.01 * (np.square(forward).sum(-1) + np.square(back).sum(-1)) + 0.5
    du_y, du_x = np.gradient(forward[..., 0])
    dv_y, dv_x = np.gradient(forward[..., 1])
    boundary = du_x**2 + du_y**2 + dv_x**2 + dv_y**2 > 0.01 * np.square(forward).sum(-1) + 0.002
    h, w = forward.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w), np.arange(h))
    x, y = grid_x + forward[..., 0], grid_y + forward[..., 1]
    outside = (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)
    return (~(disoccluded | boundary | outside)).astype(np.float32)


def to_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """H x W x C float array -> 1 x C x H x W tensor."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def warping_error(frames: list[Image.Image], outputs: list[Image.Image]) -> float:
    """Lai et al. 2018's temporal warping error of `outputs`, with the flow of the input `frames`.

    Per pair: mean over trusted pixels of frame t of the squared difference (RGB in [0, 1], averaged
    over channels) between output t and output t+1 warped back onto t; the mean over all pairs.
    """
    errors = []
    for t in range(len(frames) - 1):
        forward, backward = flow(frames[t], frames[t + 1]), flow(frames[t + 1], frames[t])
        weights = consistency(forward, backward)
        warped = warp(to_array(outputs[t + 1]), forward)
        diff = np.square(to_array(outputs[t]) - warped).mean(-1)
        errors.append(float((weights * diff).sum() / max(float(weights.sum()), 1.0)))
    return float(np.mean(errors)) if errors else 0.0
