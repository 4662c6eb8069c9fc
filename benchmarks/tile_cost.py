"""What tiles cost per evaluation: the final scale's objective untiled, in split tiles and in tiles
through the whole network, each in its own process, in the order A B C C B A.

A whole run (large.py) measures peak memory and the full schedule, but on a machine shared with
other jobs its two runs see different loads minutes apart (the same pair has given 1.07x and 1.58x
at the final scale). Here each plan runs only its evaluations (a few to warm its heap first, then
--evaluations timed), twice, mirrored in time so that a drift of load hits every plan alike; the
median of all its timed evaluations and the ratio to untiled are reported, with process CPU seconds
beside the wall time. One process per plan, because the tiles' heap trims would make an untiled
evaluation in the same process fault its pages in afresh each time, which a real run never does.

    python benchmarks/tile_cost.py [--size 2048] [--max-memory 3.5] [--evaluations 6]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from impasto import memory
from impasto.builder import build_objective
from impasto.config import StyleConfig
from impasto.guided import prepare
from impasto.imageio import fit_size
from impasto.objective import frozen_network
from impasto.optimize import value_and_grad
from impasto.runtime import resolve, tune_cpu
from impasto.tile_grid import halo

ROOT = Path(__file__).resolve().parents[1]
WARM = 2


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) / torch.get_num_threads()


def child(args: argparse.Namespace) -> None:
    """Time the evaluations of one plan; prints 'wall cpu' per timed evaluation."""
    tune_cpu()
    cfg = StyleConfig(size=args.size).validate()
    runtime = resolve(cfg.device, cfg.precision)
    vgg = frozen_network(cfg, runtime)
    images = (Image.open(args.examples / name).convert("RGB") for name in ("tubingen.jpg", "starry_night.jpg"))
    content, style = images
    controls = prepare(content, [style], cfg)
    size = fit_size(controls.content.size, args.size)
    budget = args.max_memory * memory.GIB
    fit = _plans(vgg, runtime.dtype, size, budget, cfg.lbfgs_history)[args.child]
    tile, cut = (fit.tile, fit.cut) if fit else (None, None)
    objective = build_objective(cfg, vgg, controls, args.size, tile=tile, budget=budget, cut=cut)
    pixels = torch.rand(1, 3, size[1], size[0], generator=torch.Generator().manual_seed(0))
    for number in range(WARM + args.evaluations):
        wall, cpu = time.perf_counter(), cpu_seconds()
        value_and_grad(objective, pixels)
        if number >= WARM:
            print(f"{time.perf_counter() - wall} {cpu_seconds() - cpu}", flush=True)


def _plans(vgg, dtype: torch.dtype, size: tuple[int, int], budget: float, history: int) -> dict:
    options = dict(history=history, margin=halo(vgg), align=vgg.min_side)
    splits = {cut: halo(vgg, cut) for cut in vgg.split_points()}
    return {
        "untiled": None,
        "split tiles": memory.plan(size, dtype, budget, **options, splits=splits),
        "whole-network tiles": memory.plan(size, dtype, budget, **options),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--max-memory", type=float, default=3.5, help="GiB: the budget the tiled plans fit")
    parser.add_argument("--evaluations", type=int, default=6, help="timed per process, after warming up")
    parser.add_argument("--examples", type=Path, default=ROOT.parent / "shared" / "examples")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (args.examples / "tubingen.jpg").is_file():
        raise SystemExit(f"tile_cost: {args.examples} has no tubingen.jpg (the examples folder, ../shared/examples)")
    if args.child:
        return child(args)
    width, height = fit_size(Image.open(args.examples / "tubingen.jpg").size, args.size)
    names = ["untiled", "split tiles", "whole-network tiles"]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for name in names + names[::-1]:
        command = [sys.executable, __file__, "--child", name, *sys.argv[1:]]
        lines = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split("\n")
        times[name] += [(float(a), float(b)) for a, b in (line.split() for line in lines if line.strip())]
    import impasto.objective  # the plans' descriptions, without building anything

    vgg = impasto.objective.frozen_network(StyleConfig(), resolve("cpu", "auto"))
    plans = _plans(vgg, torch.bfloat16, (width, height), args.max_memory * memory.GIB, 20)
    base = statistics.median(w for w, _ in times["untiled"])
    print(f"{width}x{height}, {args.evaluations} x 2 evaluations per plan, median s per evaluation (cpu s), x untiled:")
    for name in names:
        wall, cpu = statistics.median(w for w, _ in times[name]), statistics.median(c for _, c in times[name])
        plan = plans[name].describe() if plans[name] else "the whole picture"
        print(f"  {name:20s} {wall:6.2f} s ({cpu:6.2f})  {wall / base:.2f}x   {plan}")


if __name__ == "__main__":
    main()
