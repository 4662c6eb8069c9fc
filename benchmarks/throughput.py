"""Numeric throughput on this machine: VGG-19 forward+backward per numeric mode against a measured
roof, one whole optimisation iteration, and the peak memory of full stylizations.

* roof: a large 1x1 convolution (a GEMM through oneDNN, channels_last), fp32 and bf16;
* VGG-19 to relu5_1, forward + backward to the pixels, at 256/512/1024 px square, for fp32 NCHW,
  fp32 channels_last and bf16 channels_last: seconds, GFLOP/s, % of the roof of its dtype;
* one full iteration (network, Grams, losses, L-BFGS step) of the pastiche-parity objective;
* peak RSS and wall time of a default stylization (2 iterations per scale) at 512/1024/2048 px,
  each in its own process (wait4's ru_maxrss).

Times are the minimum over repeats: on a shared machine that is the least disturbed run. Each
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
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

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

        def step() -> None:
            pixels.grad = None
            vgg(pixels)["relu5_1"].float().square().mean().backward()

        seconds = best_time(step, repeats)
        gflop = vgg_gflop(side, vgg.names)
        wall, cpu = gflop / seconds.wall, gflop / seconds.cpu
        print(f"  {mode:20s} {side:5d} px {gflop:6.0f} GFLOP  {seconds}  {wall:5.0f} GFLOP/s "
              f"({cpu:4.0f})  {100 * wall / roofs[dtype].wall:3.0f}% of roof "
              f"({100 * cpu / roofs[dtype].cpu:3.0f}%)", flush=True)


def iteration(precision: str, side: int, repeats: int) -> Timing:
    """Seconds of one L-BFGS iteration of the parity objective on a side x side image."""
    from impasto.config import pastiche_parity_config
    from impasto.runtime import resolve
    from impasto.score import _Scorer

    cfg = pastiche_parity_config(precision=precision, device="cpu")
    scorer = _Scorer(cfg, resolve("cpu", precision))
    gen = torch.Generator().manual_seed(0)
    content, style = (torch.rand(1, 3, side, side, generator=gen) for _ in range(2))
    objective = scorer.objective(content, [style], [1.0])
    pixels = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([pixels], lr=1.0, max_iter=1, history_size=cfg.lbfgs_history,
                            tolerance_grad=0.0, tolerance_change=0.0)

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        total, _ = objective(pixels)
        total.backward()
        return total.detach()

    return best_time(lambda: opt.step(closure), repeats, warmup=2)


def stylization_memory(side: int) -> dict:
    """Run a default stylization (2 iterations per scale) in a child; its wall time and peak RSS."""
    code = ("import sys, json, numpy as np; from impasto import run; "
            "rng = np.random.default_rng(0); s = int(sys.argv[1]); "
            "img = lambda: rng.integers(0, 256, (s * 3 // 4, s, 3), dtype=np.uint8); "
            "r = run(img(), img(), size=s, iterations=[2]); "
            "print(json.dumps({'seconds': r.seconds, 'runtime': r.runtime}))")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(side)], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    output = proc.stdout.read() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stylization at {side} px failed")
    return {"wall": wall, "maxrss_gib": usage.ru_maxrss / 2**20, **json.loads(output.splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="256/512 px only, fewer repeats, memory to 1024 px")
    args = parser.parse_args()
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
    print("one L-BFGS iteration of the parity objective (network, Grams, losses, step):")
    for precision in ("fp32", "bf16"):
        for side in sides[:2]:
            seconds = iteration(precision, side, repeats)
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            at_roof = seconds.cpu * roofs[dtype].cpu  # GFLOP-equivalents of roof time it costs
            print(f"  {precision} {side:5d} px: {seconds}  = {at_roof:.0f} GFLOP of roof time", flush=True)
    print("default stylization (all scales, 2 iterations each), own process:")
    for side in [512, 1024] if args.quick else [512, 1024, 2048]:
        m = stylization_memory(side)
        print(f"  {side:5d} px ({m['runtime']}): peak {m['maxrss_gib']:.2f} GiB, wall {m['wall']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
