"""Uploaded images: size-limited, checked by the CLI's own loader, kept in memory by id.

The bytes go to a file whose name the server picks (the client's name is only shown, never
used as a path), `impasto.imageio.load_image` reads it, so a bad upload gets exactly the
message the CLI would give, with the client's file name in place of the temporary path.
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
from ..imageio import load_image

MB = 1024 * 1024


class TooLarge(ImpastoError):
    """The upload is over the size limit."""


def display_name(name: str | None) -> str:
    """A client-supplied file name made safe to show: last path part, printable, short."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:80] or "upload"


def too_large_message(name: str, size: int | None, limit: int) -> str:
    got = f" ({size / MB:.1f} MB)" if size else ""
    return f"{name}: file is too large{got}; the limit is {limit / MB:.3g} MB"


class UploadStore:
    """The last `keep` uploaded images, as RGB PIL images keyed by a random id."""

    def __init__(self, workdir: Path, limit_bytes: int, keep: int = 16):
        self.workdir, self.limit, self.keep = workdir, limit_bytes, keep
        self._images: OrderedDict[str, tuple[str, Image.Image]] = OrderedDict()
        self._lock = threading.Lock()

    async def add(self, name: str, length: int | None, chunks: AsyncIterator[bytes]) -> tuple[str, Image.Image]:
        """Read, check and keep one upload; returns its id and image, or raises ImpastoError."""
        if length is not None and length > self.limit:
            raise TooLarge(too_large_message(name, length, self.limit))
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
                image = await run_in_threadpool(load_image, path)
            except ImpastoError as exc:
                raise ImpastoError(str(exc).replace(str(path), name)) from None
        finally:
            path.unlink(missing_ok=True)
        image_id = uuid.uuid4().hex[:12]
        with self._lock:
            self._images[image_id] = (name, image)
            while len(self._images) > self.keep:
                self._images.popitem(last=False)
        return image_id, image

    def get(self, image_id: str) -> tuple[str, Image.Image]:
        with self._lock:
            if image_id not in self._images:
                raise ImpastoError("that uploaded image is no longer on the server; please upload it again")
            self._images.move_to_end(image_id)
            return self._images[image_id]
