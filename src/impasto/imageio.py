"""Reading and writing images: any Pillow format in, PNG/JPEG/WebP/TIFF out, atomically.

Every failure becomes an `ImpastoError` with one line that names the file and the problem.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Union

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import ImpastoError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]  # noqa: UP007 (a runtime alias: 3.10-safe)

OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}


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
    """An existing, non-empty file, or a one-line error saying which of those it is not."""
    if not path.exists():
        raise ImpastoError(f"{path}: no such file")
    if path.is_dir():
        raise ImpastoError(f"{path}: is a directory, not {what}")
    if path.stat().st_size == 0:
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
        if not np.isfinite(array).all():
            raise ImpastoError(f"a {kind} array image must hold finite values in [0, 1], got NaN or infinity")
        levels = array.astype(np.float64) * 255.0 + 0.5  # within half a level of [0, 1] rounds into 0-255
        if levels.min() < 0 or levels.max() >= 256:
            raise ImpastoError(f"a {kind} array image must hold values in [0, 1], got values from {array.min():g} to "
                               f"{array.max():g} (0-255 values: divide by 255, or pass uint8)")  # fmt: skip
        return levels.astype(np.uint8)
    raise ImpastoError(f"an array image must be {ARRAY_TYPES}; got dtype {kind}")


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


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ImpastoError(f"{path}: unknown output type {suffix or '(none)'}; use .png, .jpg, .webp or .tif")
    return OUTPUT_FORMATS[suffix]


def _temp_prefix(path: Path) -> str:
    """Hidden, and short enough that a long (but legal) output name still leaves room for the temp's."""
    return f".{path.name[:64]}."


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # not POSIX, or the system does not say
        return 255


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two names are one file, links and hard links included (False where either does not exist)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_input_as_output(name: str, output: str | os.PathLike, sources: Sequence[object]) -> None:
    """ImpastoError where `output` is one of the files the run reads: writing it would destroy an input."""
    for source in sources:
        if isinstance(source, (str, os.PathLike)) and same_file(output, source):
            raise ImpastoError(f"{name} {output} is the same file as the input {source}; choose another name")


def check_writable(path: str | os.PathLike) -> None:
    """Fail before a long run, not after it, if the output cannot be written.

    Permission bits do not tell everything (root on /sys, read-only mounts, name length), so
    the temp file the write will use is created and removed here, for real.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        if not folder.is_dir():
            raise ImpastoError(f"{path}: folder {folder} does not exist")
        if path.is_dir():
            raise ImpastoError(f"{path}: is a directory")
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise ImpastoError(f"{path}: not writable")
        if len(os.fsencode(path.name)) > _name_max(folder):
            raise ImpastoError(f"{path}: file name too long (at most {_name_max(folder)} bytes here)")
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ImpastoError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temp file in the same folder, then rename: never a half-written file,
    and an existing file is only replaced once the new one is complete (Ctrl-C included)."""
    path = Path(path)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ImpastoError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise


def save_image(
    image: Image.Image,
    path: str | os.PathLike,
    metadata: Mapping[str, str] | None = None,
    *,
    pixels: torch.Tensor | None = None,
    bit_depth: int = 8,
) -> None:
    """Save by extension, atomically. PNG files carry `metadata` as text chunks (the parameters used).

    With bit_depth 16 (PNG or TIFF only), `pixels` (the float image, 1x3xHxW in [0, 1]) are written
    with 65536 levels per channel, so that a large print's smooth skies do not band.
    """
    fmt = output_format(path)
    check_writable(path)
    if bit_depth == 16:
        array = _sixteen_bit(image if pixels is None else pixels)
        writer = _png16 if fmt == "PNG" else _tiff16 if fmt == "TIFF" else None
        if writer is None:
            raise ImpastoError(f"{path}: 16-bit output needs a .png or .tif file")
        atomic_write(path, lambda handle: writer(handle, array, metadata or {}))
        return
    options: dict = {}
    if fmt == "PNG" and metadata:
        info = PngImagePlugin.PngInfo()
        for key, value in metadata.items():
            info.add_itxt(key, str(value))
        options["pnginfo"] = info
    elif fmt in ("JPEG", "WEBP"):
        options["quality"] = 95
    atomic_write(path, lambda handle: image.save(handle, format=fmt, **options))


def _sixteen_bit(source: Image.Image | torch.Tensor) -> np.ndarray:
    """H x W x 3 uint16 from float pixels (or an 8-bit image, scaled so that 255 -> 65535)."""
    if isinstance(source, Image.Image):
        return np.asarray(source.convert("RGB"), np.uint16) * 257
    x = source.detach().float().cpu().clamp(0, 1)
    return (x[0] if x.dim() == 4 else x).permute(1, 2, 0).mul(65535.0).add(0.5).numpy().astype(np.uint16)


def _png16(handle: IO[bytes], array: np.ndarray, metadata: Mapping[str, str]) -> None:
    """A 16-bit RGB PNG (pypng: Pillow writes no 16-bit colour PNG) with the metadata as iTXt chunks."""
    import io

    import png

    height, width, _ = array.shape
    plain = io.BytesIO()
    png.Writer(width, height, greyscale=False, bitdepth=16, compression=6).write(plain, array.reshape(height, -1))
    chunks = list(png.Reader(bytes=plain.getvalue()).chunks())
    texts = [(b"iTXt", k.encode("latin-1", "replace") + b"\0\0\0\0\0" + str(v).encode()) for k, v in metadata.items()]
    png.write_chunks(handle, chunks[:-1] + texts + chunks[-1:])  # text before IEND


def _tiff16(handle: IO[bytes], array: np.ndarray, metadata: Mapping[str, str]) -> None:
    """A 16-bit RGB TIFF (deflate-compressed), the parameters as its JSON image description."""
    import io
    import json

    import tifffile

    data = io.BytesIO()  # tifffile wants a named file or a buffer, not a bare descriptor
    tifffile.imwrite(data, array, photometric="rgb", compression="zlib", description=json.dumps(dict(metadata)))
    handle.write(data.getvalue())
