"""How well the ETA holds on a real run (issue 23): the predicted end at 25%, 50% and 75% of it.

Runs impasto.run at the defaults (or --size, --before-23 for the schedule before issue 23) on
Tübingen x The Starry Night and prints, at each quarter of the run's real length, the elapsed time,
the ETA shown then and the end it predicts against the real end; plus each scale's seconds per
evaluation, the cost law the ETA fits.

    .venv/bin/python benchmarks/eta.py [--size 1024] [--before-23] [--precision fp32] [--conv direct]

On an AVX-512 CPU, ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 gives the AVX2 path (fp32).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--before-23", action="store_true", help="the schedule before issue 23")
    parser.add_argument("--precision", help="fp32, bf16 or auto (impasto's default)")
    parser.add_argument("--conv", help="direct, winograd or auto (impasto's default)")
    parser.add_argument("--out", type=Path, help="also save the picture here")
    args = parser.parse_args()
    photo, painting = EXAMPLES / "tubingen.jpg", EXAMPLES / "starry_night.jpg"
    if not photo.exists():
        sys.exit(f"needs {photo} (../shared/examples beside the checkout)")
    from frontier import CANDIDATES

    import impasto
    from impasto.runtime import tune_cpu

    tune_cpu()  # as the CLI does: without it glibc's page faults make the first steps of a scale slow
    import torch
    from throughput import roof

    roofs = ", ".join(
        f"{name} {roof(dtype, 10).wall:.0f}" for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    )
    print(f"roof (1x1 conv GEMM, GFLOP/s): {roofs}; ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '-')}")
    seen: list[tuple[float, float, int]] = []
    options = {"size": args.size, **(CANDIDATES["before 23"] if args.before_23 else {})}
    options.update({k: v for k, v in (("precision", args.precision), ("conv", args.conv)) if v})
    result = impasto.run(
        Image.open(photo), Image.open(painting), callback=lambda p: seen.append((p.elapsed, p.eta, p.scale)), **options
    )
    end = result.seconds
    if args.out:
        result.image.save(args.out)
    print(f"{args.size} px {'before 23' if args.before_23 else 'defaults'}: {end:.1f} s, "
          f"{len(result.trace)} evaluations, loss {result.loss:.4f} {result.terms}")  # fmt: skip
    for quarter in (0.25, 0.5, 0.75):
        elapsed, eta, scale = next(s for s in seen if s[0] >= quarter * end)
        print(f"  at {quarter:.0%} (scale {scale}, {elapsed:.1f} s): ETA {eta:.1f} s, "
              f"predicted end {elapsed + eta:.1f} s = {(elapsed + eta) / end:.3f}x the real {end:.1f} s")  # fmt: skip
    previous = 0.0
    for scale in sorted({int(t["scale"]) for t in result.trace}):
        steps = [t for t in result.trace if t["scale"] == scale]
        times = [t["seconds"] for t in steps]
        median = statistics.median(b - a for a, b in zip(times, times[1:])) if len(times) > 1 else float("nan")
        print(f"  scale {scale}: {len(steps)} evaluations, {(times[-1] - previous) / len(steps):.3f} s each "
              f"(set-up included), median step {median:.3f} s, first ends {times[0] - previous:.3f} s in")  # fmt: skip
        previous = steps[-1]["seconds"]


if __name__ == "__main__":
    main()
