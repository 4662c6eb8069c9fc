"""The Ray engine: the same jobs on a Ray cluster, one painter actor per `cpus_per_job` CPUs.

Each actor is a long-lived worker process: it sets torch's threads to its CPUs and loads the
network once (a tiny warm-up run fills the API's per-process weight cache), then paints job after
job. Input files are put in Ray's object store once each (a style shared by 100 jobs travels once
per node) and reach the worker as bytes; the encoded output comes back as bytes and the driver
writes it. A worker process that dies mid-job is restarted by Ray and the job retried
(max_restarts, max_task_retries); as the output name and key are the job's, a retry can neither
lose nor duplicate an output.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import ImpastoError
from ..runtime import physical_cores, tune_cpu
from .plan import Task
from .worker import PAINTER_PREFIX, Outcome, Spec, execute, private_temp, sweep_dead_painters

log = logging.getLogger("impasto.batch")

Deliver = Callable[[Task, Outcome], None]
CONNECT_TIMEOUT = 5.0


class Painter:
    """The body of a Ray actor (wrapped by ray.remote at run time, so importing this needs no Ray)."""

    def __init__(self, cpus: int):
        import torch

        tune_cpu()
        private_temp()  # its jobs' temp folders inside its own, removed by the next painter if it is killed
        torch.set_num_threads(max(1, cpus))
        self.cpus = cpus
        self.warm()

    def warm(self) -> None:
        """Load the default weights into this process's cache with a 64 px, one-iteration run."""
        from ..stylize import run

        grey = np.full((64, 64, 3), 128, np.uint8)
        run(grey, grey, size=64, scales=1, iterations=[1], device="cpu")

    def paint(self, spec: Spec, refs: dict[str, Any]) -> Outcome:
        import ray

        blobs = dict(zip(refs, ray.get(list(refs.values()))))
        outcome = execute(spec, blobs)
        outcome.worker = f"{ray.get_runtime_context().get_node_id()[:12]}:{os.getpid()}"
        return outcome


def keep_on_this_machine() -> None:
    """Make the Ray clusters this process starts send nothing beyond loopback (call before `import ray`).

    For tests, benchmarks and machines that must stay offline. Ray binds to the host's network
    address unless told it is not clustering across machines, and its dashboard probes cloud
    metadata (169.254.169.254) unless a cluster config names the provider: a private HOME with one
    saying 'local' stops that. The processes Ray starts inherit this environment.
    """
    import tempfile

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # node address 127.0.0.1
    home = Path(tempfile.mkdtemp(prefix="impasto-ray-home-"))
    (home / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")
    os.environ["HOME"] = str(home)


def _import_ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves this machine
    try:
        import ray
    except ImportError:
        raise ImpastoError("--engine ray needs Ray: pip install 'impasto[cluster]'") from None
    return ray


def check_reachable(address: str) -> None:
    """Fail in seconds, with one line, where Ray itself would retry for minutes."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    if parts.scheme != "ray" or not parts.hostname or parts.port is None:
        raise ImpastoError(f"Ray address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise ImpastoError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc})") from None


def _first_line(exc: BaseException) -> str:
    """Ray's errors carry whole tracebacks; the last 'SomethingError: ...' line says what happened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line)]
    return (causes[-1] if causes else lines[0] if lines else type(exc).__name__)[:300]


class RayEngine:
    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        cpus_per_job: int | None = None,
        gpus_per_job: float = 0,
        workers: int | None = None,
        retries: int = 3,
    ):
        self.ray = _import_ray()
        self.started = False
        if address is not None:
            check_reachable(address)
        if not self.ray.is_initialized():  # else: the caller's own connection (ray.init before batch())
            self._connect(address)
        self.cpus = cpus_per_job or self._smallest_node()
        self.gpus, self.retries = gpus_per_job, retries
        self.wanted = workers
        self.refs: dict[str, Any] = {}
        self.uses: Counter[str] = Counter()
        self.actors: list[Any] = []

    def _connect(self, address: str | None) -> None:
        ray = self.ray
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        try:
            if address is None:  # a private single-machine cluster, gone when the batch ends
                ray.init(address="local", num_cpus=physical_cores(), include_dashboard=False, **quiet)
            else:
                ray.init(address=address, **quiet)
        except ImpastoError:
            raise
        except Exception as exc:  # ConnectionError, RuntimeError, gRPC errors: all one line
            raise ImpastoError(
                f"cannot connect to Ray at {address or 'a new local cluster'}: {_first_line(exc)}"
            ) from None
        self.started = True

    def _nodes(self) -> list[dict[str, float]]:
        return [n["Resources"] for n in self.ray.nodes() if n.get("Alive")]

    def _smallest_node(self) -> int:
        """Default CPUs per job: all of the smallest node's, so each node paints one job at a time."""
        cpus = [int(r.get("CPU", 0)) for r in self._nodes() if r.get("CPU", 0) >= 1]
        if not cpus:
            raise ImpastoError("the Ray cluster has no node with a CPU")
        return min(cpus)

    def _fits(self) -> int:
        fits = 0
        for resources in self._nodes():
            n = int(resources.get("CPU", 0) // self.cpus)
            if self.gpus:
                n = min(n, int(resources.get("GPU", 0) // self.gpus))
            fits += n
        return fits

    def _actors(self, jobs: int) -> list[Any]:
        count = self.wanted or self._fits()
        if count < 1:
            need = f"{self.cpus} CPUs" + (f" and {self.gpus:g} GPUs" if self.gpus else "")
            raise ImpastoError(f"no node of the Ray cluster has {need} free for one job (see --cpus-per-job)")
        remote = self.ray.remote(
            num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=-1, max_task_retries=self.retries
        )(Painter)
        self.actors = [remote.remote(self.cpus) for _ in range(min(count, jobs))]
        return list(self.actors)

    def _refs(self, task: Task) -> dict[str, Any]:
        """The task's files as object refs, each file put in the store once while jobs still need it."""
        for sha, path in task.files.items():
            if sha not in self.refs:
                self.refs[sha] = self.ray.put(Path(path).read_bytes())
        return {sha: self.refs[sha] for sha in task.files}

    def _release(self, task: Task) -> None:
        """Drop our reference to files no job left needs, so the object store frees them."""
        for sha in task.files:
            self.uses[sha] -= 1
            if self.uses[sha] <= 0:
                self.refs.pop(sha, None)

    def run(self, items: Sequence[tuple[Spec, Task]], deliver: Deliver) -> None:
        if not items:
            return
        ray = self.ray
        free = self._actors(len(items))
        self.uses = Counter(sha for _, task in items for sha in task.files)
        pending = list(reversed(items))
        inflight: dict[Any, tuple[Any, Spec, Task]] = {}
        while pending or inflight:
            while pending and free:
                actor = free.pop()
                spec, task = pending.pop()
                try:
                    refs = self._refs(task)
                except OSError as exc:
                    free.append(actor)
                    self._release(task)
                    deliver(task, Outcome(spec.key, error=f"{exc.filename}: cannot read ({exc.strerror or exc})"))
                    continue
                inflight[actor.paint.remote(spec, refs)] = (actor, spec, task)
            if not inflight:
                continue
            ready, _ = ray.wait(list(inflight), num_returns=1)
            actor, spec, task = inflight.pop(ready[0])
            outcome, alive = self._collect(ready[0], spec)
            self._release(task)
            if alive:
                free.append(actor)
            elif not free and not inflight:
                self._fail_all(pending, deliver, outcome.error or "no worker left")
                pending = []
            deliver(task, outcome)

    def _collect(self, ref: Any, spec: Spec) -> tuple[Outcome, bool]:
        """The job's outcome and whether its actor can take another job."""
        ray = self.ray
        try:
            return ray.get(ref), True
        except ray.exceptions.ActorDiedError as exc:  # its constructor failed: this actor is gone for good
            return Outcome(spec.key, error=f"worker could not start: {_first_line(exc)}"), False
        except ray.exceptions.RayActorError as exc:  # killed again and again: Ray restarts the actor
            return Outcome(
                spec.key, error=f"worker died {self.retries + 1} times on this job: {_first_line(exc)}"
            ), True
        except ray.exceptions.RayError as exc:
            return Outcome(spec.key, error=f"Ray error: {_first_line(exc)}"), True

    @staticmethod
    def _fail_all(pending: list[tuple[Spec, Task]], deliver: Deliver, error: str) -> None:
        for spec, task in reversed(pending):
            deliver(task, Outcome(spec.key, error=error))

    def close(self) -> None:
        """Give the cluster back: our actors end, our objects are freed, a cluster we started stops."""
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors, self.refs = [], {}
        if self.started:
            self.ray.shutdown()
            _sweep_after_shutdown()


def _sweep_after_shutdown(wait: float = 3.0) -> None:
    """A private cluster ran on this machine: remove the temp folders of its painters, once they are gone."""
    deadline = time.monotonic() + wait
    while True:
        sweep_dead_painters()
        if not list(Path(tempfile.gettempdir()).glob(f"{PAINTER_PREFIX}*")) or time.monotonic() > deadline:
            return
        time.sleep(0.2)
