"""The local engine: jobs one at a time in this process, each with all the cores.

Measured on a 2-core CPU (issue 14): two heavy runs side by side are 5-10x slower each, so one
at a time is the fastest order; the network's weights stay cached in the process between jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..runtime import tune_cpu
from ..stylize import Callback
from .plan import Task
from .worker import Outcome, Spec, execute

Deliver = Callable[[Task, Outcome], None]


class LocalEngine:
    name = "local"

    def __init__(self, callback: Callable[[Task], Callback | None] | None = None):
        self.callback = callback  # per task, the painter's progress callback (the CLI's inner bar)

    def run(self, items: Sequence[tuple[Spec, Task]], deliver: Deliver) -> None:
        tune_cpu()  # all the cores for the one job at a time (idempotent)
        for spec, task in items:
            try:
                blobs = {sha: Path(path).read_bytes() for sha, path in task.files.items()}
            except OSError as exc:  # changed since planning: this job's failure only
                deliver(task, Outcome(spec.key, error=f"{exc.filename}: cannot read ({exc.strerror or exc})"))
                continue
            deliver(task, execute(spec, blobs, self.callback(task) if self.callback else None))

    def close(self) -> None:
        pass
