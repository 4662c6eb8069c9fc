"""The batch driver: plan, skip what is done, paint the rest on an engine, write, record, summarise.

Only the driver writes files: outputs atomically (temp + rename), one ledger line per finished job,
then summary.csv and the contact sheet. Whatever stops it (Ctrl-C, a crash, a lost cluster), every
file in the folder is complete and a rerun paints only what is missing. Nothing is written over that
the batch did not make, and the folder is locked while it runs (folder.py).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .. import __version__
from ..errors import ImpastoError
from ..stylize import Callback
from ..writing import output_type_problem
from .folder import claim_folder, lock_folder, refuse_collision
from .ledger import FAILED, OK, Ledger, make_entry, write_file, write_summary
from .manifest import RowError
from .plan import FileHasher, Job, Task, name_jobs, prepare
from .sheet import write_sheet
from .worker import Outcome, Spec, spec_for

ENGINES = ("local", "ray")


class Reporter(Protocol):
    """Progress for a front end (the CLI's bar); the library itself prints nothing."""

    def start(self, total: int, skipped: int) -> None: ...

    def job_done(self, entry: Mapping[str, Any]) -> None: ...

    def job_callback(self, task: Task) -> Callback | None: ...

    def close(self) -> None: ...


@dataclass
class Report:
    folder: Path
    entries: list[dict[str, Any]] = field(default_factory=list)  # one per job (and bad row), plan order
    painted: int = 0
    skipped: int = 0
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] == FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted


def _metadata(task: Task) -> dict[str, str]:
    assert task.config is not None
    return {
        **task.config.as_metadata(),
        "impasto:version": __version__,
        "impasto:key": task.key,
        "impasto:content": task.job.content,
        "impasto:styles": ";".join(task.job.styles),
    }


def _row_entry(row: RowError) -> dict[str, Any]:
    return make_entry(Task(Job("", (), source=row.source), ""), FAILED, error=row.message)


def make_engine(engine: str, reporter: Reporter | None, **ray_options: Any) -> Any:
    if engine == "local":
        from .local import LocalEngine

        return LocalEngine(reporter.job_callback if reporter else None)
    if engine == "ray":
        from .ray_engine import RayEngine

        return RayEngine(**ray_options)
    raise ImpastoError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")


def plan_tasks(jobs: Sequence[Job], options: Mapping[str, Any], suffix: str) -> list[Task]:
    """Named, keyed tasks; a job that cannot start carries its one-line error instead of a key."""
    hasher = FileHasher()
    tasks = [prepare(task, options, hasher) for task in name_jobs(jobs, suffix)]
    for task in tasks:
        problem = output_type_problem(task.name)
        if problem is not None:
            task.refuse(problem)
    return tasks


Writes = Callable[[], AbstractContextManager[Any]]
"""Wraps each write of an output, a ledger line or the summary: the CLI's lets a signal wait for it."""


def run_batch(
    jobs: Sequence[Job],
    folder: str | os.PathLike,
    *,
    options: Mapping[str, Any] | None = None,
    row_errors: Sequence[RowError] = (),
    suffix: str = ".png",
    engine: str = "local",
    reporter: Reporter | None = None,
    writes: Writes = contextlib.nullcontext,
    reads: Sequence[str | os.PathLike] = (),
    **engine_options: Any,
) -> Report:
    """Paint every job not already done into `folder`; engine_options go to the Ray engine.

    Planned before the folder is made, so a refused batch creates nothing; `reads` (the manifest) are
    files it must never write. A KeyboardInterrupt (Ctrl-C, or a signal the caller turns into one) ends
    the run with report.interrupted; summary.csv and index.html are written either way.
    """
    start = time.perf_counter()
    tasks = plan_tasks(jobs, options or {}, suffix)
    with lock_folder(folder) as lock:
        out = lock.folder
        ledger = Ledger(out)
        claim_folder(out, ledger, reads)
        report = Report(out)
        with writes():
            entries, todo = _sort(tasks, ledger, report)
        position = {id(task): index for index, task in enumerate(tasks)}

        def deliver(task: Task, outcome: Outcome) -> None:
            with writes():  # the output, its ledger line and the count: all or none of them
                entry = _record(out, task, outcome)
                ledger.append(entry)
                entries[position[id(task)]] = entry
                report.painted += entry["status"] == OK
            if reporter:
                reporter.job_done(entry)

        try:
            _paint(todo, deliver, engine, reporter, engine_options, report)
        finally:
            try:
                with writes():
                    report.entries = [_row_entry(row) for row in row_errors] + [entries[i] for i in sorted(entries)]
                    write_summary(out, report.entries)
                    write_sheet(out, report.entries)
            except KeyboardInterrupt:  # a signal while the summary was written: it is written, then we stop
                report.interrupted = True
            report.seconds = time.perf_counter() - start
    return report


def _sort(tasks: Sequence[Task], ledger: Ledger, report: Report) -> tuple[dict[int, dict[str, Any]], list[Any]]:
    """Before any painting: the entries of the jobs refused (recorded) or already done, and the jobs to paint."""
    entries: dict[int, dict[str, Any]] = {}
    todo: list[tuple[Spec, Task]] = []
    for index, task in enumerate(tasks):
        if task.ok:
            refuse_collision(task, ledger)
        if not task.ok:
            entries[index] = make_entry(task, FAILED, error=task.error)
            ledger.append(entries[index])
        elif (done := ledger.done(task)) is not None:
            entries[index] = done
            report.skipped += 1
        else:
            todo.append((spec_for(task, _metadata(task)), task))
    return entries, todo


def _paint(
    todo: Sequence[tuple[Spec, Task]],
    deliver: Callable[[Task, Outcome], None],
    engine: str,
    reporter: Reporter | None,
    engine_options: Mapping[str, Any],
    report: Report,
) -> None:
    """Run the jobs on the engine; a KeyboardInterrupt stops them and marks the report."""
    runner = None
    try:
        runner = make_engine(engine, reporter, **engine_options) if todo else None
        if reporter:
            reporter.start(len(todo), report.skipped)
        if runner is not None:
            runner.run(todo, deliver)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if runner is not None:
            runner.close()
        if reporter:
            reporter.close()


def _record(folder: Path, task: Task, outcome: Outcome) -> dict[str, Any]:
    """Write a finished job's output atomically; its ledger entry either way."""
    common = {"seconds": outcome.seconds or None, "worker": outcome.worker}
    if outcome.data is None:
        return make_entry(task, FAILED, error=outcome.error, **common)
    try:
        write_file(folder / task.name, outcome.data)
    except ImpastoError as exc:
        return make_entry(task, FAILED, error=str(exc), **common)
    return make_entry(task, OK, loss=outcome.loss, terms=outcome.terms, **common)
