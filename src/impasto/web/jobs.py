"""The job queue behind the studio: one stylization at a time, the rest wait in order.

The CPU has few cores and one run already uses all of them, so a single worker thread runs
jobs one by one; the web handlers only read snapshots, which are cheap and never block on
the optimiser. Cancel is the run's own early stop (the callback returns True), so a
cancelled job still has the best image so far.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..config import StyleConfig
from ..errors import ImpastoError
from ..stylize import Progress, Result, run
from ..writing import save_image

log = logging.getLogger("impasto.web")

Runner = Callable[..., Result]
"""Same signature as `impasto.run`; tests may wrap it."""

QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
FINISHED = (DONE, CANCELLED, FAILED)


class QueueFull(ImpastoError):
    """More jobs are waiting than the queue allows."""


@dataclass
class Job:
    """One stylization request and everything the page shows about it."""

    content: Image.Image | None  # dropped once the job has run, to free memory
    style: Image.Image | None
    config: StyleConfig
    names: tuple[str, str]  # content and style names, for display and metadata
    refs: tuple[str, str] = ("", "")  # what the page chose (upload ids or "sample"), so a reload can show them again
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: float = field(default_factory=time.time)
    status: str = QUEUED
    error: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    preview: bytes | None = None
    preview_version: int = 0
    result_path: Path | None = None
    version: int = 0  # bumped on every change, so event streams know when to send
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def touch(self) -> None:
        self.version += 1

    def snapshot(self, position: int, losses_from: int = 0) -> dict[str, Any]:
        """JSON-ready state; `losses` holds only the loss values from index `losses_from` on."""
        cfg = self.config
        return {
            "id": self.id,
            "status": self.status,
            "position": position,
            "error": self.error,
            "created": self.created,
            "content_name": self.names[0],
            "style_name": self.names[1],
            "content": self.refs[0],
            "style": self.refs[1],
            "options": {
                "size": cfg.size,
                "style_weight": cfg.style_weight,
                "init": cfg.init,
                "preserve_color": cfg.preserve_color,
            },
            "progress": dict(self.progress),
            "preview": self.preview_version,
            "losses_from": losses_from,
            "losses": self.losses[losses_from:],
            "result": self.result_path is not None,
        }


class _Tracker:
    """Turns `Progress` callbacks into job state: loss curve, ETA, throttled previews."""

    def __init__(self, job: Job, preview_interval: float):
        self.job, self.interval = job, preview_interval
        self.last_preview = 0.0
        self.last_scale = 0

    def __call__(self, p: Progress) -> bool:
        job = self.job
        now = time.monotonic()
        if p.scale != self.last_scale or now - self.last_preview >= self.interval or p.iteration == p.iterations:
            job.preview = _jpeg(p.image())
            job.preview_version += 1
            self.last_preview, self.last_scale = now, p.scale
        job.losses.append(p.loss)
        job.progress = {
            "scale": p.scale,
            "scales": p.scales,
            "size": list(p.size),
            "iteration": p.iteration,
            "iterations": p.iterations,
            "step": p.step,
            "total_steps": p.total_steps,
            "loss": p.loss,
            "elapsed": round(p.elapsed, 2),
            "eta": round(p.eta, 1),
        }
        job.touch()
        return job.cancel.is_set()


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


class JobQueue:
    """A FIFO of jobs run by one worker thread; finished jobs are kept (bounded) for the strip."""

    def __init__(
        self,
        workdir: Path,
        *,
        max_waiting: int = 4,
        keep: int = 40,
        preview_interval: float = 0.5,
        runner: Runner = run,
    ):
        self.workdir, self.max_waiting, self.keep = workdir, max_waiting, keep
        self.preview_interval, self.runner = preview_interval, runner
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- handlers' side ---------------------------------------------------------------

    def submit(self, job: Job) -> int:
        """Queue a job and return its place (0: it runs next), or raise QueueFull."""
        with self._cond:
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(f"the queue is full ({self.max_waiting} jobs waiting); try again when one has finished")
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._forget_old()
            self._cond.notify_all()
            return self.position(job)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created)

    def position(self, job: Job) -> int:
        """1-based place among the waiting jobs; 0 if running or finished."""
        try:
            return self._waiting.index(job) + 1 if job.status == QUEUED else 0
        except ValueError:
            return 0

    def cancel(self, job: Job) -> None:
        """A waiting job is dropped; a running one stops at its next iteration, keeping its best."""
        with self._cond:
            job.cancel.set()
            if job.status == QUEUED and job in self._waiting:
                self._waiting.remove(job)
                job.status, job.error = CANCELLED, None
                job.touch()

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs() if j.finished]
        for job in finished[: max(0, len(finished) - self.keep)]:
            del self._jobs[job.id]
            if job.result_path is not None:
                job.result_path.unlink(missing_ok=True)

    # -- worker's side ----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="impasto-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel everything and wait for the running job to leave at its next iteration."""
        with self._cond:
            self._stopping = True
            for job in list(self._waiting) + [j for j in self._jobs.values() if j.status == RUNNING]:
                job.cancel.set()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _next(self) -> Job | None:
        with self._cond:
            while not self._waiting and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            job = self._waiting[0]
            job.status = RUNNING
            job.touch()
            self._waiting.popleft()  # after RUNNING is set, so no snapshot sees it as 'nowhere'
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            result = self.runner(
                job.content, job.style, config=job.config, callback=_Tracker(job, self.preview_interval)
            )
            path = self.workdir / f"{job.id}.png"
            metadata = {
                **result.config.as_metadata(),
                "impasto:content": job.names[0],
                "impasto:style": job.names[1],
                "impasto:stopped": result.stopped,
            }
            save_image(result.image, path, metadata)
            job.preview = _jpeg(result.image)
            job.preview_version += 1
            job.result_path = path
            job.status = CANCELLED if job.cancel.is_set() else DONE
        except ImpastoError as exc:
            job.status, job.error = FAILED, str(exc)
        except Exception as exc:  # a bug must not kill the worker: report it and go on
            log.exception("job %s failed", job.id)
            job.status, job.error = FAILED, f"internal error: {type(exc).__name__}: {exc}"
        job.content = job.style = None
        job.touch()
