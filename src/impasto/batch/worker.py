"""Paint one job from bytes to bytes: the same function runs in-process (local) and in a Ray worker.

The worker needs no shared file system: input files arrive as bytes keyed by their hash, are
written to a private temp folder under their own names (so an error names the user's file), and
the encoded output (with its metadata) goes back as bytes for the driver to write atomically.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import INITS, StyleConfig
from ..errors import ImpastoError
from ..stylize import Callback, Result, run
from ..writing import save_image
from .options import FILE_OPTIONS
from .plan import Task


@dataclass
class Spec:
    """What a worker needs to paint one job; small and picklable (the files travel separately)."""

    key: str
    name: str  # output file name: its extension picks the format
    kind: str
    inputs: list[str]  # hashes: content, then styles
    settings: dict[str, Any]  # StyleConfig fields; file options hold hashes
    labels: dict[str, str]  # hash -> the user's path, for temp names and messages
    metadata: dict[str, str]


@dataclass
class Outcome:
    key: str
    data: bytes | None = None  # the encoded output file
    seconds: float = 0.0  # painting only
    loss: float | None = None
    terms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    worker: str = ""


def _still(content: str, styles: list[str], config: StyleConfig, callback: Callback | None) -> Result:
    return run(content, styles, config=config, callback=callback)


RUNNERS: dict[str, Callable[[str, list[str], StyleConfig, Callback | None], Result]] = {"still": _still}
"""One runner per job kind; a video kind (one clip per job) adds its own here."""


def _materialise(blobs: Mapping[str, bytes], labels: Mapping[str, str], folder: str) -> dict[str, str]:
    paths = {}
    for sha, data in blobs.items():
        sub = Path(folder, sha[:16])
        sub.mkdir()
        path = sub / Path(labels.get(sha, sha)).name
        path.write_bytes(data)
        paths[sha] = str(path)
    return paths


def _with_paths(settings: Mapping[str, Any], paths: Mapping[str, str]) -> dict[str, Any]:
    out = dict(settings)
    for name in FILE_OPTIONS:
        value = out[name]
        if value is None or (name == "init" and value in INITS):
            continue
        out[name] = [None if v is None else paths[v] for v in value] if isinstance(value, list) else paths[value]
    return out


def _relabel(message: str, paths: Mapping[str, str], labels: Mapping[str, str]) -> str:
    for sha, path in paths.items():
        message = message.replace(path, labels.get(sha, Path(path).name))
    return message.splitlines()[0] if message else "failed"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def execute(spec: Spec, blobs: Mapping[str, bytes], callback: Callback | None = None) -> Outcome:
    """Paint the job; any failure of the job is its one-line error. Ctrl-C propagates, nothing written."""
    outcome = Outcome(spec.key, worker=worker_name())
    with tempfile.TemporaryDirectory(prefix="impasto-job-") as folder:
        paths = _materialise(blobs, spec.labels, folder)
        try:
            config = StyleConfig(**_with_paths(spec.settings, paths))
            result = RUNNERS[spec.kind](paths[spec.inputs[0]], [paths[s] for s in spec.inputs[1:]], config, callback)
            if result.stopped == "interrupted":
                raise KeyboardInterrupt
            outcome.seconds, outcome.loss, outcome.terms = result.seconds, result.loss, dict(result.terms)
            metadata = {**spec.metadata, "impasto:seconds": f"{result.seconds:.3f}", "impasto:loss": str(result.loss)}
            out = Path(folder, spec.name)
            save_image(result.image, out, metadata)
            outcome.data = out.read_bytes()
        except ImpastoError as exc:
            outcome.error = _relabel(str(exc), paths, spec.labels)
        except MemoryError:
            outcome.error = "out of memory; try a smaller size"
        except Exception as exc:  # a bug or a broken runtime: still only this job's failure
            outcome.error = f"internal error: {type(exc).__name__}: {_relabel(str(exc), paths, spec.labels)}"
    return outcome


PAINTER_PREFIX = "impasto-painter-"
"""A Ray painter's own temp folder (impasto-painter-PID-...): its jobs' folders go inside it."""


def private_temp() -> str:
    """Give this (painter) process its own temp folder, after removing those of painters that died.

    A painter killed mid-job (a stopped batch kills its actors) cannot remove its job's folder; the
    next painter on that machine, or the driver of a private local cluster, removes it.
    """
    sweep_dead_painters()
    folder = tempfile.mkdtemp(prefix=f"{PAINTER_PREFIX}{os.getpid()}-")
    tempfile.tempdir = folder
    return folder


def sweep_dead_painters(root: str | None = None) -> None:
    for path in Path(root or tempfile.gettempdir()).glob(f"{PAINTER_PREFIX}*"):
        pid = path.name[len(PAINTER_PREFIX) :].partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def spec_for(task: Task, metadata: Mapping[str, str]) -> Spec:
    """The worker's view of a prepared task."""
    return Spec(task.key, task.name, task.job.kind, task.inputs, task.settings, dict(task.files), dict(metadata))
