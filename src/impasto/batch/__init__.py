"""`impasto batch`: many pictures (contents x styles x a grid of options, or a manifest), resumable,
on this machine (one job at a time, all cores) or on a Ray cluster (`pip install impasto[cluster]`).

    from impasto.batch import batch
    report = batch(["photos/"], ["starry.jpg", "wave.jpg"], "out/", grid={"style_weight": [1, 3, 10]})
    report.ok, report.failed, report.entries
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import configure
from ..errors import ImpastoError
from .manifest import RowError, read_manifest
from .options import parse_value
from .plan import Job, expand_inputs, grid_jobs
from .runner import Report, Reporter, run_batch

__all__ = ["batch", "Job", "Report", "Reporter", "RowError", "run_batch", "read_manifest"]


def _typed(options: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    return {name: parse_value(name, value, where, Path.cwd()) for name, value in (options or {}).items()}


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
    contents: Sequence[str] = (),
    styles: Sequence[str] = (),
    folder: str | os.PathLike = "batch-out",
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    manifest: str | os.PathLike | None = None,
    options: Mapping[str, Any] | None = None,
    **run_options: Any,
) -> Report:
    """Paint contents x styles x grid (files, folders, globs) and/or a manifest's rows into `folder`.

    `options` apply to every job; `grid` values vary (and appear in the output names). run_options:
    suffix=".png", engine="local"|"ray", address, cpus_per_job, gpus_per_job, workers, retries, reporter.
    """
    jobs: list[Job] = []
    row_errors: list[RowError] = []
    if bool(contents) != bool(styles):
        raise ImpastoError("give both content and style images (or only a manifest)")
    shared = _typed(options, "option")
    axes = {name: [parse_value(name, v, f"--grid {name}", Path.cwd()) for v in vs] for name, vs in (grid or {}).items()}
    _check(shared, axes)
    if contents:
        jobs += grid_jobs(expand_inputs(contents, "content"), expand_inputs(styles, "style"), axes)
    if manifest is not None:
        rows, row_errors = read_manifest(manifest)
        jobs += rows
    if not jobs and not row_errors:
        raise ImpastoError("nothing to paint: give content and style images or a manifest")
    return run_batch(jobs, folder, options=shared, row_errors=row_errors, **run_options)
