"""Bundled defaults, so the demo and the web studio run with no images of the user's.

Content: scikit-image's sample photo of Chelsea the cat (read from the installed package's data
folder, without importing scikit-image). Style: a swirling brush-stroke painting this module
paints itself, deterministically, so nothing is downloaded and nothing is copied in.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .errors import ImpastoError
from .imageio import load_image

CONTENT_NAME = "chelsea.png"
# A night-sky palette: deep blues, teal, ochre and lemon yellow.
_PALETTE = np.array(
    [
        (18, 32, 74),
        (31, 62, 130),
        (54, 101, 171),
        (92, 146, 196),
        (40, 96, 104),
        (215, 178, 72),
        (240, 218, 110),
        (20, 24, 40),
    ],
    dtype=np.float64,
)


def _skimage_data() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ImpastoError("the bundled sample photo needs scikit-image: pip install scikit-image")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def default_content() -> Image.Image:
    """scikit-image's 'chelsea' photo (451x300)."""
    return load_image(_skimage_data() / CONTENT_NAME)


def _flow_angle(x: np.ndarray, y: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Direction of a field of a few vortices plus a gentle horizontal wind."""
    vx, vy = np.full_like(x, 0.6), np.zeros_like(y)
    for cx, cy, strength in centres:
        dx, dy = x - cx, y - cy
        r2 = dx * dx + dy * dy + 400.0
        vx += -strength * dy / r2 * 60
        vy += strength * dx / r2 * 60
    return np.arctan2(vy, vx)


def default_style(size: int = 512, seed: int = 7) -> Image.Image:
    """A generated 'starry' painting: short, thick strokes along swirling flow lines."""
    rng = np.random.default_rng(seed)
    width, height = size, round(size * 0.75)
    base = np.linspace(0, 1, height)[:, None, None]
    sky = (1 - base) * _PALETTE[1] + base * _PALETTE[0]
    canvas = Image.fromarray(np.repeat(sky, width, axis=1).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    centres = np.array(
        [(0.3 * width, 0.35 * height, 1.0), (0.72 * width, 0.3 * height, -0.8), (0.55 * width, 0.75 * height, 0.6)]
    )
    count = int(6 * width * height / 64)
    xs, ys = rng.uniform(0, width, count), rng.uniform(0, height, count)
    angles = _flow_angle(xs, ys, centres)
    near = np.min([np.hypot(xs - cx, ys - cy) for cx, cy, _ in centres], axis=0) / width
    for x, y, angle, dist in zip(xs, ys, angles, near):
        warm = rng.random() < math.exp(-dist * 9)  # yellow halos around the vortex centres
        colour = _PALETTE[rng.choice([5, 6])] if warm else _PALETTE[rng.choice([1, 2, 3, 4, 7])]
        colour = np.clip(colour + rng.normal(0, 14, 3), 0, 255).astype(int)
        length = rng.uniform(0.012, 0.03) * width
        dx, dy = math.cos(angle) * length, math.sin(angle) * length
        draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=tuple(colour), width=max(2, round(width / 110)))
    return canvas.filter(ImageFilter.SMOOTH)
