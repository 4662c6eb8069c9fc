"""A frame as players show it: the display matrix (rotation and flip) applied to the stored pixels.

A phone held upright stores landscape pixels and a display matrix that says "turn by -90 degrees";
FFmpeg's decoder hands out the stored pixels with the matrix as side data, so without this a portrait
clip would be painted, and written, lying on its side. Stills get the same from their EXIF
orientation (`imageio.to_rgb`). The frames are painted upright and written upright with no matrix,
so every player shows the output the way it showed the input.

The matrix's 2x2 part maps a stored pixel (x, y), y down, to its place on screen: x' = a x + c y,
y' = b x + d y (FFmpeg's display.h, entries 0, 1, 3 and 4). Rounded to the nearest quarter turn
(cameras write nothing else), its signs are one of the eight orientations, each one PIL transpose;
this is what ffmpeg and ffplay do with it (fftools: transpose, hflip and vflip by the same signs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

_TRANSPOSES: dict[tuple[int, int, int, int], Image.Transpose | None] = {
    (1, 0, 0, 1): None,
    (-1, 0, 0, 1): Image.Transpose.FLIP_LEFT_RIGHT,
    (1, 0, 0, -1): Image.Transpose.FLIP_TOP_BOTTOM,
    (-1, 0, 0, -1): Image.Transpose.ROTATE_180,
    (0, -1, 1, 0): Image.Transpose.ROTATE_90,  # rotation 90: a quarter turn counter-clockwise
    (0, 1, -1, 0): Image.Transpose.ROTATE_270,  # rotation -90: the phone held upright
    (0, 1, 1, 0): Image.Transpose.TRANSPOSE,
    (0, -1, -1, 0): Image.Transpose.TRANSVERSE,
}
_SIDEWAYS = {Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE,
             Image.Transpose.TRANSVERSE}  # fmt: skip


def transpose_of(frame: Any) -> Image.Transpose | None:
    """The transpose that shows a decoded PyAV frame as players do (None: as stored)."""
    data = frame.side_data.get("DISPLAYMATRIX")
    if data is None:
        return None
    a, b, _, c, d = np.frombuffer(bytes(data), np.int32)[:5].astype(np.int64)
    if abs(a) + abs(d) >= abs(b) + abs(c):  # nearest quarter turn: keep the larger diagonal
        signs = (int(np.sign(a)), 0, 0, int(np.sign(d)))
    else:
        signs = (0, int(np.sign(b)), int(np.sign(c)), 0)
    return _TRANSPOSES.get(signs)


def upright(frame: Any) -> Image.Image:
    """A decoded PyAV frame as an RGB image the way it is shown."""
    turn = transpose_of(frame)
    image = frame.to_image()
    return image if turn is None else image.transpose(turn)


def shown_size(width: int, height: int, turn: Image.Transpose | None) -> tuple[int, int]:
    """The stored size as shown: a quarter turn swaps the sides."""
    return (height, width) if turn in _SIDEWAYS else (width, height)
