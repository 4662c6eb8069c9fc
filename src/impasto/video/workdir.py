"""The work folder: stylized frames kept as PNGs so that an interrupted run resumes where it stopped.

A video takes minutes to hours; losing it to a Ctrl-C, a closed laptop or a crash would be bad.
Each finished frame is written (atomically) as frame_NNNNNN.png next to a settings.json that
fingerprints everything that shapes the frames: the input file, the style images' pixels, the
StyleConfig, the window and the video options. A later run with the same fingerprint reuses the
frames; with another one it starts over (or, asked to resume, refuses). The folder is created on
the first finished frame, so a run that fails early leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from PIL import Image

from ..errors import ImpastoError
from ..imageio import atomic_write, load_image, save_image

log = logging.getLogger("impasto")

SETTINGS = "settings.json"
_PATTERN = "frame_{:06d}.png"


def file_fingerprint(path: Path) -> str:
    """Size and SHA-256 of the first and last MiB: tells files apart without reading a large video whole."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read())
    return digest.hexdigest()


def image_fingerprint(image: Image.Image) -> str:
    return hashlib.sha256(f"{image.size}{image.mode}".encode() + image.tobytes()).hexdigest()


class WorkDir:
    """Frames 0..n-1 of one set of settings; `resume` True: must match, False: start over, None: reuse if it matches."""

    def __init__(self, folder: str | os.PathLike, settings: Mapping[str, Any], resume: bool | None = None):
        self.folder = Path(folder)
        self.settings = json.loads(json.dumps(dict(settings), sort_keys=True, default=str))
        self._created = False
        if self.folder.exists() and not self.folder.is_dir():
            raise ImpastoError(f"{self.folder}: work folder path is a file")
        stored = self._stored()
        if stored is not None and stored == self.settings and resume is not False:
            self._created = True
            log.info("resuming from %d frame(s) in %s", self.count(), self.folder)
        elif stored is not None and resume:
            raise ImpastoError(f"{self.folder} holds frames painted with other settings; drop --resume to start over")
        elif stored is not None:
            log.info("work folder %s holds other settings: starting over", self.folder)
            self.clear()

    def _stored(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.folder / SETTINGS).read_text())
        except (OSError, ValueError):
            return None

    def path(self, index: int) -> Path:
        return self.folder / _PATTERN.format(index)

    def count(self) -> int:
        """Frames done: the run of consecutive frames from 0 (a later one alone cannot be resumed from)."""
        n = 0
        while self.path(n).is_file():
            n += 1
        return n

    def load(self, index: int) -> Image.Image | None:
        """Frame `index` if an earlier run of these settings painted it."""
        if not self._created or not self.path(index).is_file():
            return None
        return load_image(self.path(index))

    def save(self, index: int, image: Image.Image) -> None:
        if not self._created:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ImpastoError(f"{self.folder}: cannot create the work folder ({exc.strerror})") from None
            text = json.dumps(self.settings, indent=1, sort_keys=True).encode()

            def write(handle: IO[bytes]) -> None:
                handle.write(text)

            atomic_write(self.folder / SETTINGS, write)
            self._created = True
        save_image(image, self.path(index))

    def clear(self) -> None:
        """Remove our files (frames and settings) and the folder if that empties it; nothing else is touched."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("frame_*.png"):
            path.unlink(missing_ok=True)
        (self.folder / SETTINGS).unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass  # something else of the user's lives there
        self._created = False
