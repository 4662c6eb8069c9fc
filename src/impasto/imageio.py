"""Reading images: any Pillow format in, as RGB, within a pixel cap; and the image <-> tensor conversions.

Writing them (atomically, by extension) is `writing`.

Every failure becomes an `ImpastoError` with one line that names the file and the problem.
"""

from __future__ import annotations

import math
import os
import re
import stat
import threading
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImpastoError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]  # noqa: UP007 (a runtime alias: 3.10-safe)


class TooManyPixels(ImpastoError):
    """The image would decode to more pixels than allowed (Pillow's bomb guard or a caller's cap)."""


_OPEN_LOCK = threading.Lock()  # warnings filters are process-wide: one thread changes them at a time


def _open_lazy(path: Path) -> Image.Image:
    """Image.open (header only), with Pillow's DecompressionBombWarning raised as an error, not printed."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _too_many(
    path: str | os.PathLike, pixels: int, limit: float, whose: str, what: str = "image", dims: str = ""
) -> TooManyPixels:
    return TooManyPixels(f"{path}: {what} is too large ({dims}{pixels / 1e6:.1f} MP; {whose} is {limit / 1e6:.3g} MP)")


def check_pixels(path: str | os.PathLike, width: int, height: int, what: str = "image") -> None:
    """Refuse what Pillow's decompression-bomb guard refuses for a still (a video's frames too), before decoding."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise _too_many(path, width * height, limit, "the decompression-bomb guard", what, f"{width}x{height}, ")


def check_input_file(path: Path, what: str = "an image") -> None:
    """An existing, non-empty file, or a one-line error saying which of those it is not (a link that
    points nowhere is "no such file"; a loop of links says so)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise ImpastoError(f"{path}: no such file") from None
    except PermissionError:
        raise ImpastoError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ImpastoError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(status.st_mode):
        raise ImpastoError(f"{path}: is a directory, not {what}")
    if status.st_size == 0:
        raise ImpastoError(f"{path}: file is empty")


def _open(path: Path, max_pixels: int | None = None) -> Image.Image:
    try:
        check_input_file(path)
        image = _open_lazy(path)
        if max_pixels is not None and image.width * image.height > max_pixels:
            image.close()
            raise _too_many(path, image.width * image.height, max_pixels, "the limit")
        image.load()
    except PermissionError:
        raise ImpastoError(f"{path}: permission denied") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        pixels = int((re.findall(r"\d+", str(exc)) or ["0"])[0])  # Pillow's message starts with the count
        raise _too_many(path, pixels, Image.MAX_IMAGE_PIXELS or 0, "the decompression-bomb guard") from None
    except UnidentifiedImageError:
        raise ImpastoError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImpastoError(f"{path}: corrupt or truncated image ({exc})") from None
    return image


def _high_bit_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey (modes I;16*, I, F) scaled to 8-bit rather than clipped."""
    array = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode != "F" else max(1.0, float(array.max()))
    if image.mode == "I" and array.max() <= 255:
        top = 255.0
    array = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(array, mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB: EXIF orientation applied, alpha composited on white."""
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I") or image.mode == "F":
        image = _high_bit_to_8bit(image)
    if image.mode == "P" or image.mode == "LA" or image.mode == "PA" or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    return image.convert("RGB")


ARRAY_SHAPES = "HxW (grey), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA, composited on white)"
ARRAY_TYPES = "uint8 (0-255), uint16 (0-65535), bool, another integer type holding 0-255, or float in [0, 1]"


def _array_levels(array: np.ndarray) -> np.ndarray:
    """An array image's values as 8-bit levels, or a one-line error naming the range its type accepts."""
    kind = array.dtype
    if kind == np.uint8:
        return array
    if kind == np.bool_:
        return array.astype(np.uint8) * 255
    if kind == np.uint16:  # as a 16-bit file is read: 65535 is white
        return (array / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    if np.issubdtype(kind, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ImpastoError(f"an {kind} array image must hold values from 0 to 255, got values from {low} to {high} "
                               "(for other ranges use uint16, or float in [0, 1])")  # fmt: skip
        return array.astype(np.uint8)
    if np.issubdtype(kind, np.floating):
        check_unit_floats(array, f"a {kind} array image", "divide by 255, or pass uint8")
        return (array.astype(np.float64) * 255.0 + 0.5).astype(np.uint8)
    raise ImpastoError(f"an array image must be {ARRAY_TYPES}; got dtype {kind}")


def check_unit_floats(array: np.ndarray, what: str, fix: str = "divide by 255") -> None:
    """The one rule for float pixels, the API's arrays and ComfyUI's IMAGE and MASK alike: finite, and in [0, 1]
    to within half an 8-bit level (what rounds into 0-255), or one line naming `what` and the range it holds.
    A 0-255 float image is refused: clamped, it would paint a near-white picture without a word."""
    if not np.isfinite(array).all():
        raise ImpastoError(f"{what} must hold finite values in [0, 1], got NaN or infinity")
    low, high = float(array.min()), float(array.max())
    if low * 255.0 + 0.5 < 0 or high * 255.0 + 0.5 >= 256:
        raise ImpastoError(
            f"{what} must hold values in [0, 1], got values from {low:g} to {high:g} (0-255 values: {fix})"
        )


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImpastoError(f"an array image must be {ARRAY_SHAPES}, got shape {array.shape}")
    if array.size == 0:
        raise ImpastoError(f"the array image has no pixels (shape {array.shape})")
    return to_rgb(Image.fromarray(np.ascontiguousarray(_array_levels(array))))


def load_image(source: ImageLike, max_pixels: int | None = None) -> Image.Image:
    """Read a path, PIL image or array (ARRAY_SHAPES of ARRAY_TYPES) as an RGB PIL image.

    `max_pixels` caps a file's decoded size (checked from its header, before decoding).
    """
    if isinstance(source, Image.Image):
        image = to_rgb(source)
    elif isinstance(source, np.ndarray):
        image = _from_array(source)
    elif isinstance(source, (str, os.PathLike)):
        image = to_rgb(_open(Path(source), max_pixels))
    else:
        raise ImpastoError(f"cannot use {type(source).__name__} as an image")
    if image.width < 1 or image.height < 1:
        raise ImpastoError("image has no pixels")
    return image


def fit_size(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """(width, height) scaled so that the longest side is `longest`, aspect ratio kept."""
    width, height = size
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def longest_for_short_side(size: tuple[int, int], short: int) -> int:
    """The smallest longest side at which `fit_size` gives `size` a short side of at least `short`: the size to
    ask for. Not the linear guess: the short side is rounded, so a 20000x20 image needs 16000 for 16 px, not 512."""
    longest = max(1, math.ceil((short - 0.5) * max(size) / min(size)))  # round() reaches `short` from short - 0.5
    while min(fit_size(size, longest)) < short:
        longest += 1
    while longest > 1 and min(fit_size(size, longest - 1)) >= short:
        longest -= 1
    return longest


def resize_longest(image: Image.Image, longest: int) -> Image.Image:
    return image.resize(fit_size(image.size, longest), Image.Resampling.LANCZOS)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> 1x3xHxW float32 in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """1x3xHxW (or 3xHxW) tensor in [0, 1] -> RGB PIL image (values clamped)."""
    x = tensor.detach().float().cpu()
    if x.dim() == 4:
        x = x[0]
    array = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array, mode="RGB")
