"""Memory over a run, evaluation by evaluation, against the memory model's estimate.

One scale at print size (the final scale of a large run: where its peak is), a few evaluations,
the process's resident memory sampled every 20 ms. It prints the plan the budget chose (tiles,
history, the model's estimate), then per evaluation its seconds and the highest RSS seen during
it; the L-BFGS history fills one pair per accepted step, so the peak climbs until it is full:
ask for at least history + 2 evaluations to see a full run's peak.

    python benchmarks/memory_probe.py [--size 4096] [--max-memory 7.5] [--evaluations 10] [--history 20] [--no-split]
        [--precision fp32] [--conv direct]

Without --max-memory the default budgets (memory.budgets: a sixth of the memory free now for the
whole picture or split tiles, a third for tiles through the whole network, half for a picture that
cannot fit a third) are used, as `impasto` would.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

import impasto
from impasto import memory
from impasto.runtime import tune_cpu

ROOT = Path(__file__).resolve().parents[1]
GIB = 1 << 30


def rss() -> int:
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmRSS:"))) * 1024


class Sampler(threading.Thread):
    """Keeps the highest RSS since the last `take()`."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.highest, self.running = 0, True

    def run(self) -> None:
        while self.running:
            self.highest = max(self.highest, rss())
            time.sleep(0.02)

    def take(self) -> int:
        highest, self.highest = max(self.highest, rss()), 0
        return highest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--max-memory", type=float, help="GiB (default: the default budget)")
    parser.add_argument("--evaluations", type=int, default=10)
    parser.add_argument("--history", type=int, default=20, help="L-BFGS pairs asked for (the budget may cut them)")
    parser.add_argument("--no-split", action="store_true", help="the whole network in tiles (the peer of a split plan)")
    parser.add_argument("--precision", default="auto", help="fp32, bf16 or auto")
    parser.add_argument("--conv", default="auto", help="direct, winograd or auto (Winograd's buffers and filters)")
    parser.add_argument("--examples", type=Path, default=ROOT.parent / "shared" / "examples")
    args = parser.parse_args()
    content, style = args.examples / "tubingen.jpg", args.examples / "starry_night.jpg"
    if not content.is_file():
        raise SystemExit(f"memory_probe: {content} not found (the examples folder, ../shared/examples)")
    tune_cpu()
    if args.no_split:
        memory.SPLIT_TILE = 1 << 30  # no split is ever large enough
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the plan: tiles, history, estimate
    sampler = Sampler()
    sampler.start()
    last = time.perf_counter()
    peak = 0

    def report(progress: impasto.Progress) -> None:
        nonlocal last, peak
        now, highest = time.perf_counter(), sampler.take()
        peak = max(peak, highest)
        print(f"evaluation {progress.iteration:3d}: {now - last:6.1f} s, highest RSS {highest / GIB:.2f} GiB")
        last = now

    result = impasto.run(
        content, style, size=args.size, scales=1, iterations=[args.evaluations], tolerance=0,
        lbfgs_history=args.history, callback=report, max_memory=args.max_memory, precision=args.precision,
        conv=args.conv,
    )  # fmt: skip
    peak = max(peak, sampler.take())
    sampler.running = False
    print(f"{args.size} px (budget: the plan line above): peak RSS {peak / GIB:.2f} GiB over the run "
          f"(the final loss {result.loss:.4g}, in {result.seconds:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
