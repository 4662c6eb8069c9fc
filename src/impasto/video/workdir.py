"""The work folder: stylized frames kept as PNGs so that an interrupted run resumes where it stopped.

A video takes minutes to hours; losing it to a Ctrl-C, a closed laptop or a crash would be bad.
Each finished frame is written (atomically) as frame_NNNNNN.png next to a settings.json that
fingerprints everything that shapes the frames: the input file, the style images' pixels, the
StyleConfig, the window and the video options. A later run with the same fingerprint reuses the
frames; with another one it starts over (or, asked to resume, refuses).

The folder is a user's file system, so it is handled with care: a folder that impasto did not make
(not empty, no settings.json of ours) is refused, never cleared or read as frames; the folder is
locked while a run paints into it, so a second run on it refuses at once instead of deleting the
first one's frames; and only our own files (and a folder we made) are ever removed.
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
from ..imageio import load_image
from ..writing import LOCK, FolderLock, atomic_write, save_image

log = logging.getLogger("impasto")

SETTINGS = "settings.json"
_MARK = "impasto work folder"  # the key in settings.json that says the folder is ours
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
    """Frames 0..n-1 of one set of settings; `resume` True: must match, False: start over, None: reuse if it matches.

    Opening it creates and locks the folder (writing.FolderLock: an unwritable one fails before any painting);
    `release()` (or leaving the `with` block) unlocks it and removes a folder we made that holds nothing.
    """

    def __init__(self, folder: str | os.PathLike, settings: Mapping[str, Any], resume: bool | None = None):
        self.folder = Path(folder)
        self.settings = json.loads(json.dumps(dict(settings), sort_keys=True, default=str))
        if self.folder.exists() and not self.folder.is_dir():
            raise ImpastoError(f"{self.folder}: work folder path is a file")
        stored = self._stored()
        if stored is None and self._holds_other_files():
            raise ImpastoError(
                f"{self.folder}: this folder was not made by impasto (no settings.json of its own); "
                "give --work-dir a new or empty folder"
            )
        ours = not self.folder.exists() or stored is not None  # to remove once it holds nothing
        self._lock = FolderLock(self.folder, "work folder", "--work-dir", ours)
        self._matches = stored is not None and stored == self.settings and resume is not False
        if self._matches:
            log.info("resuming from %d frame(s) in %s", self.count(), self.folder)
        elif stored is not None and resume:
            self.release()
            raise ImpastoError(f"{self.folder} holds frames painted with other settings; drop --resume to start over")
        elif stored is not None:
            log.info("work folder %s holds other settings: starting over", self.folder)
            self.clear()

    def __enter__(self) -> WorkDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _stored(self) -> dict[str, Any] | None:
        """The settings of the frames here, if an impasto run wrote them; None otherwise."""
        try:
            stored = json.loads((self.folder / SETTINGS).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(stored, dict):
            return None
        if stored.get(_MARK) == 1:
            return stored.get("settings")
        return stored if {"impasto", "input", "config"} <= stored.keys() else None  # written before the mark

    def _holds_other_files(self) -> bool:
        try:
            return any(path.name != LOCK for path in self.folder.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return False  # nothing there yet (creating it says what is wrong)
        except OSError as exc:
            raise ImpastoError(f"{self.folder}: cannot read the work folder ({exc.strerror})") from None

    def release(self) -> None:
        """Unlock; remove the lock file, and the folder if we made it and it holds nothing else."""
        self._lock.release()

    def path(self, index: int) -> Path:
        return self.folder / _PATTERN.format(index)

    def count(self) -> int:
        """Frames done: the run of consecutive frames from 0 (a later one alone cannot be resumed from)."""
        n = 0
        while self.path(n).is_file():
            n += 1
        return n

    def load(self, index: int) -> Image.Image | None:
        """Frame `index` if a run of these settings painted it."""
        if not self._matches or not self.path(index).is_file():
            return None
        return load_image(self.path(index))

    def save(self, index: int, image: Image.Image) -> None:
        if not self._matches:
            text = json.dumps({_MARK: 1, "settings": self.settings}, indent=1, sort_keys=True).encode()

            def write(handle: IO[bytes]) -> None:
                handle.write(text)

            atomic_write(self.folder / SETTINGS, write)
            self._matches = True
        save_image(image, self.path(index))

    def clear(self) -> None:
        """Remove our files (frames and settings); the folder itself goes on `release()` if we made it."""
        for path in self.folder.glob("frame_[0-9][0-9][0-9][0-9][0-9][0-9].png"):
            path.unlink(missing_ok=True)
        (self.folder / SETTINGS).unlink(missing_ok=True)
        self._matches = False
