"""Writing outputs without losing a user's files: PNG/JPEG/WebP/TIFF by extension (8 or 16 bits),
always through a temp file renamed into place, and checked to be writable before a long run; a folder
that a run writes into is locked, so that a second run on it refuses at once.

Every failure becomes an `ImpastoError` with one line that names the file and the problem.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two runs on one folder are the user's to avoid
    fcntl = None  # type: ignore[assignment]

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from .errors import ImpastoError

OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}


def output_type_problem(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be an output by its type, or None; without the name, for a line that names it already."""
    suffix = Path(path).suffix.lower()
    if suffix in OUTPUT_FORMATS:
        return None
    return f"unknown output type {suffix or '(none)'}; use .png, .jpg, .webp or .tif"


def output_format(path: str | os.PathLike) -> str:
    problem = output_type_problem(path)
    if problem is not None:
        raise ImpastoError(f"{path}: {problem}")
    return OUTPUT_FORMATS[Path(path).suffix.lower()]


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


LOCK = ".impasto-lock"


class FolderLock:
    """An exclusive lock on a folder while one run writes into it (the video work folder, a batch's output
    folder): a second run on it refuses at once with one line, instead of painting the same work again or
    deleting the first one's files. `what` and `flag` word that line ("work folder", "--work-dir").

    Opening creates the folder (so an unwritable one fails before any painting); `release()` (or leaving
    the `with` block) removes the lock file, and the folder where it is `ours` (default: this lock made it)
    and holds nothing.
    """

    def __init__(self, folder: str | os.PathLike, what: str, flag: str, ours: bool | None = None):
        self.folder = Path(folder)
        self.ours = not self.folder.exists() if ours is None else ours
        busy = (f"{self.folder}: another impasto run is painting into this {what}; "
                f"wait for it to finish or give {flag} another folder")  # fmt: skip
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._handle: IO[bytes] | None = self._take(busy)
        except OSError as exc:
            raise ImpastoError(f"{self.folder}: cannot create the {what} ({exc.strerror or exc})") from None

    def _take(self, busy: str) -> IO[bytes]:
        """The open lock file, locked (where the system has locks); ImpastoError(busy) if another run holds it."""
        path = self.folder / LOCK
        for _ in range(10):  # the holder removed the lock file as we opened it: lock the new one
            handle = path.open("ab")
            if fcntl is None:
                return handle
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise ImpastoError(busy) from None
            if _same_inode(handle, path):
                return handle
            handle.close()
        raise ImpastoError(busy)

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Unlock; remove the lock file, and the folder if it is ours and holds nothing else."""
        if self._handle is None:
            return
        (self.folder / LOCK).unlink(missing_ok=True)
        self._handle.close()  # closing drops the lock
        self._handle = None
        if self.ours:
            try:
                self.folder.rmdir()
            except OSError:
                pass  # what the run wrote, or something else of the user's


def _same_inode(handle: IO[bytes], path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


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
