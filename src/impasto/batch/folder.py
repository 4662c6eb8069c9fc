"""The output folder is a user's: what a batch may write there, checked before any painting.

A batch writes its outputs, ledger.jsonl, summary.csv and index.html into a folder that may also hold
the user's pictures, its manifest, or be its input folder. So the folder is locked while a batch writes
into it (a second batch on it refuses at once, instead of painting every job again), and nothing is
written over that the batch did not make: not a job's input, not the manifest, not a user's file of one
of the batch's own names, not a user's picture under an output's name. Each refusal is one line that
names the file; a refused job is that job's error, a refused folder stops the batch before any work.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import ImpastoError
from ..writing import FolderLock, refuse_input_as_output, same_file
from .ledger import LEDGER, SUMMARY, SUMMARY_HEAD, Ledger, begins_with
from .plan import Task
from .sheet import SHEET, SHEET_HEAD


def lock_folder(path: str | os.PathLike) -> FolderLock:
    """The output folder, made if missing and locked until released (a `with` block)."""
    lock = FolderLock(path, "output folder", "-o")
    if not os.access(lock.folder, os.W_OK):
        lock.release()
        raise ImpastoError(f"{lock.folder}: output folder is not writable")
    return lock


def claim_folder(folder: Path, ledger: Ledger, reads: Sequence[str | os.PathLike]) -> None:
    """Refuse a folder where the batch's own files would replace a user's: a file the batch reads (its
    manifest) under one of their names, or a file of one of their names that the batch did not make."""
    ours = {
        LEDGER: ledger.ours,
        SUMMARY: begins_with(folder / SUMMARY, SUMMARY_HEAD),
        SHEET: begins_with(folder / SHEET, SHEET_HEAD),
    }
    for name, made in ours.items():
        path = folder / name
        for read in reads:
            if same_file(read, path):
                raise ImpastoError(f"the manifest {read} is where the batch writes its {name}; "
                                   "move it or give -o another folder")  # fmt: skip
        if not made:
            raise ImpastoError(f"{path}: not made by impasto batch, which writes its {name} there; "
                               "move it or give -o another folder")  # fmt: skip


def refuse_collision(task: Task, ledger: Ledger) -> None:
    """A job whose output would replace one of its inputs (as the still command refuses), or a file the
    batch did not make, gets that as its one-line error: it is not painted, the other jobs are."""
    path = ledger.folder / task.name
    try:
        refuse_input_as_output("output", path, task.sources)
    except ImpastoError as exc:
        task.refuse(str(exc))
    if ledger.foreign(task.name):
        task.refuse(f"{path} is not a file impasto batch made; move it or choose another output name")


def own_outputs(folder: str | os.PathLike) -> Callable[[Path], bool]:
    """Whether a file is one of the outputs a batch made in `folder`: an input folder that is also the
    output folder lists them, and a rerun must not paint its own paintings again."""
    if not Path(folder).is_dir():
        return lambda path: False
    return Ledger(Path(folder)).own_output
