"""`impasto batch`: many pictures (contents x styles x a grid of options, or a manifest), resumable,
on this machine (one job at a time, all cores) or on a Ray cluster (`pip install impasto[cluster]`).

    import impasto
    report = impasto.batch("photos/", ["starry.jpg", "wave.jpg"], "out/", grid={"style_weight": [1, 3, 10]})
    report.ok, report.failed, report.entries
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import configure
from ..errors import ImpastoError
from .folder import own_outputs
from .manifest import RowError, read_manifest
from .options import parse_value
from .plan import Job, expand_inputs, grid_jobs
from .runner import Report, Reporter, run_batch

__all__ = ["batch", "Job", "Report", "Reporter", "RowError", "run_batch", "read_manifest"]


PathLike = str | os.PathLike
PATHS = "a path or a list of paths (files, folders or globs)"
GRID = "a dict of option name to a list of values, e.g. {'style_weight': [1, 10]}"
OPTIONS = "a dict of option name to value, e.g. {'size': 768}"


def _paths(value: PathLike | Sequence[PathLike], name: str) -> list[str]:
    """One path (str or os.PathLike) or a list of them -> strings; anything else is one line."""
    items = [value] if isinstance(value, (str, os.PathLike)) else value
    if isinstance(items, (bytes, Mapping)) or not isinstance(items, Sequence):
        raise ImpastoError(f"{name} takes {PATHS}, got {_what(value)}")
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise ImpastoError(f"{name} takes {PATHS}, got an item {_what(item)}")
    return [os.fspath(item) for item in items]


def _path(value: Any, name: str) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise ImpastoError(f"{name} takes a path (str or os.PathLike), got {_what(value)}")
    return os.fspath(value)


def _what(value: Any) -> str:
    return f"{value!r:.60} of type {type(value).__name__}"


def _mapping(value: Any, name: str, takes: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ImpastoError(f"{name} takes {takes}, got {_what(value)}")
    return value


def _axes(grid: Any) -> dict[str, list[Any]]:
    """grid={name: [values]} typed like StyleConfig's fields; a lone value or a string is refused."""
    axes: dict[str, list[Any]] = {}
    for name, values in _mapping(grid, "grid", GRID).items():
        if not isinstance(values, (list, tuple, range)) or not len(values):
            raise ImpastoError(f"grid[{name!r}] takes a non-empty list of values, got {_what(values)}")
        axes[name] = [parse_value(name, v, f"--grid {name}", Path.cwd()) for v in values]
    return axes


def _typed(options: Any) -> dict[str, Any]:
    values = _mapping(options, "options", OPTIONS)
    return {name: parse_value(name, value, "option", Path.cwd()) for name, value in values.items()}


def _check(options: Mapping[str, Any], axes: Mapping[str, Sequence[Any]]) -> None:
    """Bad --set or --grid values fail before any work, naming the value (a manifest row fails alone)."""
    try:
        configure(None, **options)
    except ImpastoError as exc:
        raise ImpastoError(f"--set: {exc}") from None
    for name, values in axes.items():
        for value in values:
            try:
                configure(None, **{**options, name: value})
            except ImpastoError as exc:
                raise ImpastoError(f"--grid {name}={value}: {exc}") from None


def batch(
    contents: PathLike | Sequence[PathLike] = (),
    styles: PathLike | Sequence[PathLike] = (),
    folder: PathLike = "batch-out",
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    manifest: PathLike | None = None,
    options: Mapping[str, Any] | None = None,
    **run_options: Any,
) -> Report:
    """Paint contents x styles x grid (files, folders, globs) and/or a manifest's rows into `folder`.

    `contents` and `styles` are each one path or a list of paths; `options` ({name: value}) apply to every
    job; `grid` ({name: [values]}) values vary (and appear in the output names). A wrong type is one
    ImpastoError line naming the argument. run_options: suffix=".png", engine="local"|"ray", address,
    cpus_per_job, gpus_per_job, workers, retries, reporter, writes (see run_batch).
    """
    contents, styles = _paths(contents, "contents"), _paths(styles, "styles")
    folder = _path(folder, "folder")
    jobs: list[Job] = []
    row_errors: list[RowError] = []
    if bool(contents) != bool(styles):
        raise ImpastoError("give both content and style images (or only a manifest)")
    shared = _typed(options)
    axes = _axes(grid)
    _check(shared, axes)
    if contents:
        own = own_outputs(folder)  # painting into the input folder: its paintings are not new inputs
        jobs += grid_jobs(expand_inputs(contents, "content", own), expand_inputs(styles, "style", own), axes)
    reads: list[str] = []  # files the batch must never write
    if manifest is not None:
        reads.append(_path(manifest, "manifest"))
        rows, row_errors = read_manifest(reads[0])
        jobs += rows
    if not jobs and not row_errors:
        raise ImpastoError("nothing to paint: give content and style images or a manifest")
    return run_batch(jobs, folder, options=shared, row_errors=row_errors, reads=reads, **run_options)
