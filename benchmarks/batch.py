"""What the batch engines cost per job, next to what a job costs, and what k workers would give.

    .venv/bin/python benchmarks/batch.py                 # 24 jobs at 128 px, local then Ray
    .venv/bin/python benchmarks/batch.py --jobs 8 --iterations 10    # a quick look

Both engines run the same N small jobs (contents x styles x a style-weight grid) into fresh folders.
Per-job engine overhead is measured in steady state: the time between two jobs' completions minus the
second job's painting time (Result.seconds), i.e. reading and shipping inputs, scheduling, encoding,
transferring and writing the output, the ledger line. Fixed costs (starting Ray, loading the weights
once per worker) are reported apart. A 512 px job at the defaults is timed in the same run: cut short
to --cut of its iterations per scale, and projected to the full schedule from its measured seconds per
iteration at each scale (an upper bound: the full run may stop a scale early when it converges).
Throughput for k workers is projected as k / (job + overhead): on this 2-core machine, jobs on two
1-CPU workers would only share the same two cores, so no speed-up is measured here, only stated.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from impasto import StyleConfig, run
from impasto.batch import batch
from impasto.batch.ray_engine import keep_on_this_machine
from impasto.runtime import tune_cpu

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "examples"


class Clock:
    """A batch reporter that notes when each job finished (perf_counter) and its painting seconds."""

    def __init__(self) -> None:
        self.done: list[tuple[float, float]] = []

    def start(self, total: int, skipped: int) -> None:
        pass

    def job_done(self, entry: Mapping[str, Any]) -> None:
        self.done.append((time.perf_counter(), float(entry.get("seconds") or 0.0)))

    def job_callback(self, task: Any) -> None:
        return None

    def close(self) -> None:
        pass

    def overheads(self) -> list[float]:
        """Steady state: gap between consecutive completions minus the later job's painting time."""
        return [b[0] - a[0] - b[1] for a, b in zip(self.done, self.done[1:])]


def _inputs(folder: Path, jobs: int) -> tuple[list[str], list[str], list[float]]:
    """Contents x styles x weights giving `jobs` jobs: the example photos and paintings where present."""
    photos = [EXAMPLES / n for n in ("tubingen.jpg", "golden_gate.jpg")]
    paintings = [EXAMPLES / n for n in ("starry_night.jpg", "wave.jpg", "the_scream.jpg", "udnie.jpg",
                                        "shipwreck.jpg", "starry_night.jpg")]  # fmt: skip
    if not all(p.exists() for p in photos + paintings):
        rng = np.random.default_rng(0)
        photos, paintings = [], []
        for i in range(2):
            photos.append(folder / f"photo{i}.png")
            Image.fromarray(rng.integers(0, 255, (300, 400, 3), np.uint8)).save(photos[-1])
        for i in range(6):
            paintings.append(folder / f"painting{i}.png")
            Image.fromarray(rng.integers(0, 255, (300, 300, 3), np.uint8)).save(paintings[-1])
    weights = [1.0, 10.0]
    styles = sorted({str(p) for p in paintings})[: max(1, jobs // (len(photos) * len(weights)))]
    return [str(p) for p in photos], styles, weights


def _engine(contents, styles, weights, options, folder: Path, **engine: Any) -> dict[str, float]:
    clock = Clock()
    start = time.perf_counter()
    report = batch(contents, styles, folder, grid={"style_weight": weights}, options=options, reporter=clock, **engine)
    wall = time.perf_counter() - start
    assert report.ok and report.painted == len(clock.done), [e["error"] for e in report.failed]
    painting = [s for _, s in clock.done]
    over = clock.overheads()
    first_fixed = clock.done[0][0] - start - painting[0]
    rerun_start = time.perf_counter()
    again = batch(contents, styles, folder, grid={"style_weight": weights}, options=options, **engine)
    rerun = time.perf_counter() - rerun_start
    assert again.painted == 0
    return {
        "jobs": len(painting),
        "wall": wall,
        "painting": sum(painting),
        "job": statistics.median(painting),
        "overhead": statistics.median(over) if over else float("nan"),
        "overhead_max": max(over) if over else float("nan"),
        "fixed": first_fixed,
        "rerun": rerun,
    }


def _per_scale(trace: list[dict[str, float]]) -> dict[int, tuple[float, float]]:
    """scale -> (its set-up seconds: targets, resizing; seconds per iteration), from the trace's clock."""
    out: dict[int, tuple[float, float]] = {}
    previous_end = 0.0
    for scale in sorted({int(r["scale"]) for r in trace}):
        rows = [r for r in trace if int(r["scale"]) == scale]
        first = {int(r["step"]): r["seconds"] for r in reversed(rows)}  # each step's first evaluation
        steps = sorted(first)
        per_step = (first[steps[-1]] - first[steps[0]]) / max(1, len(steps) - 1)
        out[scale] = (max(0.0, first[steps[0]] - previous_end - per_step), per_step)
        previous_end = rows[-1]["seconds"]
    return out


def _api_setup(contents: list[str], styles: list[str], options: Mapping[str, Any], repeats: int = 3) -> float:
    """Median seconds impasto.run spends outside Result.seconds (decoding the images, building the network):
    every way of painting N pictures pays it, a shell loop too, so it is not the engine's."""
    gaps = []
    for i in range(repeats):
        start = time.perf_counter()
        result = run(contents[i % len(contents)], styles[i % len(styles)], **options)
        gaps.append(time.perf_counter() - start - result.seconds)
    return statistics.median(gaps)


def _job_512(contents: list[str], styles: list[str], cut: float) -> tuple[float, float]:
    """(measured seconds of the cut-short run, projected seconds of the full default 512 px run)."""
    from impasto.pyramid import schedule

    defaults = StyleConfig()
    plan = schedule(512, defaults.min_size, None, None)
    iterations = [max(2, round(s.iterations * cut)) for s in plan]
    result = run(contents[0], styles[0], config=StyleConfig(iterations=iterations, tolerance=0.0))
    measured = _per_scale(result.trace)
    projected = sum(measured[i + 1][0] + measured[i + 1][1] * s.iterations for i, s in enumerate(plan))
    return result.seconds, projected


def main() -> None:
    keep_on_this_machine()  # this benchmark's private Ray cluster: loopback only, no cloud probes
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=20, help="per small job (one scale)")
    parser.add_argument("--cut", type=float, default=0.05, help="fraction of the 512 px job's iterations run")
    parser.add_argument("--skip-512", action="store_true")
    args = parser.parse_args()
    tune_cpu()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        contents, styles, weights = _inputs(Path(tmp), args.jobs)
        options = {"size": args.size, "scales": 1, "iterations": [args.iterations]}
        results = {"local": _engine(contents, styles, weights, options, Path(tmp, "local"))}
        print_engine("local", results["local"])
        results["ray"] = _engine(contents, styles, weights, options, Path(tmp, "ray"), engine="ray")
        print_engine("ray", results["ray"])  # its fixed cost: starting Ray, the worker's warm-up
        api = _api_setup(contents, styles, options)
        print(f"impasto.run's own set-up outside Result.seconds (image decoding, network build): {api * 1000:.0f} ms")
        if args.skip_512:
            return
        cut_seconds, full = _job_512(contents, styles, args.cut)
    print(f"512 px job (defaults, {args.cut:.0%} of the iterations run: {cut_seconds:.1f} s): projected {full:.1f} s")
    for name, r in results.items():
        print(f"{name}: per-job overhead {r['overhead'] * 1000:.0f} ms = {r['overhead'] / full:.3%} of a 512 px job "
              f"(target < 5%), the engine's own share {(r['overhead'] - api) * 1000:.0f} ms; "
              f"fixed {r['fixed']:.1f} s = {r['fixed'] / full:.1%} of one, once a batch")  # fmt: skip
    over = results["ray"]["overhead"]
    for label, job in ((f"{args.size} px", results["ray"]["job"]), ("512 px", full)):
        line = ", ".join(f"k={k}: {3600 * k / (job + over):.0f}/h" for k in (1, 2, 4, 8, 16, 64))
        print(f"projected throughput, {label} jobs ({job:.2f} s + {over * 1000:.0f} ms): {line}")
    print(f"the driver's serial share caps a cluster near {full / max(over, 1e-3):.0f} workers of 512 px jobs")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def print_engine(name: str, r: Mapping[str, float]) -> None:
    print(
        f"{name}: {r['jobs']:.0f} jobs in {r['wall']:.1f} s (painting {r['painting']:.1f} s, median job "
        f"{r['job']:.2f} s); per-job overhead median {r['overhead'] * 1000:.0f} ms "
        f"(max {r['overhead_max'] * 1000:.0f}); fixed {r['fixed']:.1f} s; rerun (all skipped) {r['rerun']:.1f} s",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
