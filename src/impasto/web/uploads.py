"""Uploaded images: size- and pixel-limited, checked by the CLI's own loader, kept as files by id.

The bytes go to a file whose name the server picks (the client's name is only shown, never
used as a path), `impasto.imageio.load_image` reads it, so a bad upload gets exactly the
message the CLI would give, with the client's file name in place of the temporary path.
The decoded size is checked from the header before any pixel is decoded, and what is kept is
a PNG no larger than any job can use (`Limits.keep_longest`), on disk: memory holds no
uploads between requests.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path

from PIL import Image
from starlette.concurrency import run_in_threadpool

from ..errors import ImpastoError
from ..imageio import TooManyPixels, fit_size, load_image

MB = 1024 * 1024
GONE = "that uploaded image is no longer on the server; please upload it again"


class TooLarge(ImpastoError):
    """The upload is over the size limit (bytes sent or pixels decoded)."""


def display_name(name: str | None) -> str:
    """A client-supplied file name made safe to show: last path part, printable, short."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:80] or "upload"


def too_large_message(name: str, size: int | None, limit: int) -> str:
    got = f" ({size / MB:.1f} MB)" if size else ""
    return f"{name}: file is too large{got}; the limit is {limit / MB:.3g} MB"


def _decode_and_keep(source: Path, kept: Path, max_pixels: int, longest: int, min_side: int) -> tuple[int, int]:
    """Decode (pixel cap checked first), shrink to `longest`, write as PNG; returns the original size.

    An image too elongated for any job (at `longest`, the most a job resizes it to, its short side is under the
    network's `min_side`) is refused here, not taken and failed in the job."""
    image = load_image(source, max_pixels=max_pixels)
    size = image.size
    short = min(fit_size(size, longest))
    if short < min_side:
        raise ImpastoError(f"{source}: {size[0]}x{size[1]} is too elongated for this studio: at {longest} px, the "
                           f"most it paints, its short side would be {short} px, under the {min_side} px the "
                           "network needs")  # fmt: skip
    if max(size) > longest:
        image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    image.save(kept, format="PNG", compress_level=1)
    return size


class UploadStore:
    """The last `keep` uploaded images, as PNG files in `workdir` keyed by a random id."""

    def __init__(
        self, workdir: Path, limit_bytes: int, max_pixels: int, longest: int, keep: int = 16, min_side: int = 1
    ):
        self.workdir, self.limit, self.keep = workdir, limit_bytes, keep
        self.max_pixels, self.longest, self.min_side = max_pixels, longest, min_side
        self._files: OrderedDict[str, tuple[str, Path, tuple[int, int]]] = OrderedDict()
        self._lock = threading.Lock()

    async def add(self, name: str, length: int | None, chunks: AsyncIterator[bytes]) -> tuple[str, tuple[int, int]]:
        """Read, check and keep one upload; returns its id and (width, height), or raises ImpastoError."""
        if length is not None and length > self.limit:
            raise TooLarge(too_large_message(name, length, self.limit))
        image_id = uuid.uuid4().hex[:12]
        kept = self.workdir / f"upload-{image_id}.png"
        fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".bin", dir=self.workdir)
        path = Path(tmp)
        try:
            received = 0
            with os.fdopen(fd, "wb") as handle:
                async for chunk in chunks:
                    received += len(chunk)
                    if received > self.limit:
                        raise TooLarge(too_large_message(name, None, self.limit))
                    handle.write(chunk)
            try:
                size = await run_in_threadpool(
                    _decode_and_keep, path, kept, self.max_pixels, self.longest, self.min_side
                )
            except ImpastoError as exc:
                kind = TooLarge if isinstance(exc, TooManyPixels) else ImpastoError
                raise kind(str(exc).replace(str(path), name)) from None
            except BaseException:
                kept.unlink(missing_ok=True)
                raise
        finally:
            path.unlink(missing_ok=True)
        self._remember(image_id, name, kept, size)
        return image_id, size

    def _remember(self, image_id: str, name: str, kept: Path, size: tuple[int, int]) -> None:
        with self._lock:
            self._files[image_id] = (name, kept, size)
            while len(self._files) > self.keep:
                _, (_, old, _) = self._files.popitem(last=False)
                old.unlink(missing_ok=True)

    def _entry(self, image_id: str) -> tuple[str, Path, tuple[int, int]]:
        with self._lock:
            if image_id not in self._files:
                raise ImpastoError(GONE)
            self._files.move_to_end(image_id)
            return self._files[image_id]

    def info(self, image_id: str) -> tuple[str, tuple[int, int]]:
        """The upload's name and size as sent (what the page shows in its picker), or ImpastoError if it is gone."""
        name, _, size = self._entry(image_id)
        return name, size

    def get(self, image_id: str) -> tuple[str, Image.Image]:
        """The upload's name and image (read from its file), or ImpastoError if it is gone."""
        name, kept, _ = self._entry(image_id)
        try:
            return name, load_image(kept)
        except ImpastoError:  # evicted by another request meanwhile
            raise ImpastoError(GONE) from None
