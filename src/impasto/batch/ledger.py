"""The batch's memory: an append-only JSONL ledger, the key inside each PNG, and a CSV summary.

A job is done when its output file exists and carries the job's key: in the PNG's metadata (which
survives a lost ledger), or, for formats without our metadata, in the ledger's last entry for that
output. The ledger is appended one fsync'ed line per finished job, so a crash loses at most the line
being written: the next append starts a line of its own, and reading takes every whole entry it
finds, even one glued onto a torn line (the torn entry's job simply runs again).

The folder is a user's: the ledger also says which of its files the batch made, so that a file it did
not make is never written over (`Ledger.foreign`) nor, in an input folder, painted again (`made_here`);
a ledger.jsonl or summary.csv that is not ours (`ours`, `begins_with`) is refused, never appended to.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from PIL import Image

from .. import __version__
from ..errors import ImpastoError
from ..writing import atomic_write, same_file
from .plan import Task

LEDGER = "ledger.jsonl"
SUMMARY = "summary.csv"
OK, FAILED = "ok", "failed"
SUMMARY_COLUMNS = ("status", "output", "key", "content", "styles", "options", "seconds", "loss", "error", "source")
SUMMARY_HEAD = ",".join(SUMMARY_COLUMNS[:3]).encode()
"""How every summary.csv we write begins (its header row): what tells it from a user's file of that name."""
ENTRY_KEYS = ("key", "output", "status")
"""What every ledger entry holds: a JSON object without them is not one of ours."""


def png_key(path: Path) -> str | None:
    """The key in a PNG's metadata, read from the header chunks only (the pixels are not decoded)."""
    try:
        with Image.open(path) as image:
            value = image.info.get("impasto:key")
    except (OSError, SyntaxError, ValueError):
        return None
    return str(value) if value else None


def png_entry(path: Path) -> dict[str, Any]:
    """What the PNG's metadata says of its run, for a summary row when the ledger has none."""
    try:
        with Image.open(path) as image:
            info = dict(image.info)
    except (OSError, SyntaxError, ValueError):
        return {}
    seconds, loss = info.get("impasto:seconds"), info.get("impasto:loss")
    return {
        "seconds": float(seconds) if seconds else None,
        "loss": float(loss) if loss and loss != "None" else None,
        "worker": info.get("impasto:worker"),
    }


class Ledger:
    """ledger.jsonl in the output folder: one JSON line per finished (or failed) job, newest last."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LEDGER
        self.latest: dict[str, dict[str, Any]] = {}  # output name -> its newest entry
        self.made: set[str] = set()  # the outputs a batch here wrote
        text = self._read()
        for line in text.split("\n"):
            for entry in _entries(line):
                self._note(entry)
        self.ours = bool(self.latest) or not text.strip()
        """Whether the ledger is one of ours (or none yet): a file of that name with text but no entry is a user's."""

    def _note(self, entry: dict[str, Any]) -> None:
        self.latest[entry["output"]] = entry
        if entry["status"] == OK:
            self.made.add(entry["output"])

    def _read(self) -> str:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise ImpastoError(f"{self.path}: cannot read the ledger ({exc.strerror or exc})") from None

    def append(self, entry: dict[str, Any]) -> None:
        """One fsync'ed line, always on a line of its own (after a torn last line, a newline first)."""
        line = json.dumps(entry, sort_keys=True, default=str) + "\n"
        try:
            with open(self.path, "a+b") as handle:
                if not _ends_a_line(handle):
                    line = "\n" + line
                handle.write(line.encode())
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise ImpastoError(f"{self.path}: cannot write the ledger ({exc.strerror or exc})") from None
        self._note(entry)

    def made_here(self, name: str) -> bool:
        """Whether a batch here wrote the file `name`: its ledger says so, or (a PNG) it carries our key."""
        return name in self.made or png_key(self.folder / name) is not None

    def own_output(self, path: Path) -> bool:
        """Whether `path` is one of this folder's outputs (an input folder that is also the output folder)."""
        return same_file(path.parent, self.folder) and self.made_here(path.name)

    def foreign(self, name: str) -> bool:
        """Whether `name` is a file here that the batch did not make, so that painting must not replace it.

        A PNG tells by its key; another format by the ledger. With no ledger left, a JPEG cannot be told from
        a user's file: it is taken as ours (as before the ledger was lost, it is painted again).
        """
        path = self.folder / name
        if not path.is_file() or self.made_here(name):
            return False
        return path.suffix.lower() == ".png" or bool(self.latest)

    def done(self, task: Task) -> dict[str, Any] | None:
        """The entry of an output that already carries this task's key, or None if it must run."""
        path = self.folder / task.name
        if not path.is_file():
            return None
        entry = self.latest.get(task.name)
        in_ledger = entry is not None and entry.get("key") == task.key and entry.get("status") == OK
        if path.suffix.lower() == ".png":
            if png_key(path) != task.key:
                return None
            return entry if in_ledger else {**make_entry(task, OK), **png_entry(path)}
        return entry if in_ledger else None


def _ends_a_line(handle: IO[bytes]) -> bool:
    """Whether the file is empty or its last byte is a newline (it is not after a torn write)."""
    size = handle.seek(0, os.SEEK_END)
    if not size:
        return True
    handle.seek(size - 1)
    return handle.read(1) == b"\n"


def _entries(line: str) -> Iterable[dict[str, Any]]:
    """The entries on one line: normally one; after a crash, a torn entry with a whole one glued on."""
    decoder = json.JSONDecoder()
    at = line.find("{")
    while at != -1:
        try:
            entry, end = decoder.raw_decode(line, at)
        except json.JSONDecodeError:  # the torn part: look for the next object that starts after it
            at = line.find("{", at + 1)
            continue
        if isinstance(entry, dict) and isinstance(entry.get("output"), str) and set(ENTRY_KEYS) <= entry.keys():
            yield entry
            at = line.find("{", end)
        else:  # an object nested in a torn entry (its options): skip into it, not past what follows
            at = line.find("{", at + 1)


def begins_with(path: Path, head: bytes) -> bool:
    """Whether the file is missing, empty, or begins with `head` (as each file the batch writes begins)."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(max(len(head), 1))
    except (FileNotFoundError, IsADirectoryError):
        return True  # nothing to lose (a folder of that name fails where it is written, with its own line)
    except OSError:
        return True  # unreadable: the write says why, as before
    return not start or start.startswith(head)


def write_file(path: str | Path, data: bytes) -> None:
    """Atomically (temp + rename): a reader never sees half a file, a crash never leaves one."""

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    atomic_write(path, write)


def make_entry(task: Task, status: str, **fields: Any) -> dict[str, Any]:
    job = task.job
    return {
        "key": task.key,
        "output": task.name,
        "status": status,
        "kind": job.kind,
        "content": job.content,
        "styles": list(job.styles),
        "options": dict(task.options),
        "source": job.source,
        "seconds": None,
        "loss": None,
        "error": None,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "impasto": __version__,
        **fields,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_summary(folder: str | Path, entries: Iterable[Mapping[str, Any]]) -> Path:
    """summary.csv: one row per job of this batch, in plan order, written atomically."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(SUMMARY_COLUMNS)
    for entry in entries:
        writer.writerow([_cell(entry.get(column)) for column in SUMMARY_COLUMNS])
    path = Path(folder) / SUMMARY
    write_file(path, text.getvalue().encode())
    return path
