"""impasto against pastiche on the same objective: how soon does impasto reach pastiche's result?

One run: the `pastiche` CLI at its defaults (1000 L-BFGS steps at 500x500 pixels; --quick: 300
steps at 256x256) as a subprocess, then impasto at `pastiche_parity_config()` (content init,
multi-scale) as another, each with wall time and peak memory (its own VmHWM, see measured.py). Both outputs,
and the snapshots impasto saves when its own loss first crosses pastiche's final objective, are
scored with pastiche's own objective (PasticheArtist(..., init=image).loss): the reported time
to target is that of the first snapshot whose pastiche score is at or below pastiche's.

Only trace rows at impasto's final scale count (coarser scales' losses are at another size).

    python benchmarks/vs_pastiche.py --quick [--examples DIR] [--out DIR] [--precision bf16]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from measured import Child, run_python

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EXAMPLES = ROOT.parent / "shared" / "examples"
THRESHOLDS = (1.0, 0.99, 0.97)  # snapshots at these fractions of pastiche's objective (our loss)


def pastiche_score(content: Path, style: Path, image: Path, pixels: int) -> float:
    """pastiche's own objective for `image` (loaded as pastiche loads an init image)."""
    from pastiche.pastiche import PasticheArtist

    return PasticheArtist(str(content), [str(style)], init=str(image), size_pixels=pixels, device="cpu").loss


def pastiche_trace(stdout: str) -> list[tuple[int, float, float]]:
    """(step, elapsed, loss) rows of pastiche's verbose output."""
    rows = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit():
            rows.append((int(parts[0]), float(parts[1]), float(parts[2])))
    return rows


# ---------------------------------------------------------------- impasto side (child process)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def impasto_child(spec_path: str) -> None:
    """Stylize per the JSON spec; save snapshots when the loss first crosses each threshold."""
    from impasto import run
    from impasto.runtime import tune_cpu
    from impasto.score import pastiche_parity_config

    tune_cpu()  # as the CLI does
    spec = json.loads(Path(spec_path).read_text())
    out, target = Path(spec["out"]), spec["target"]
    snapshots: list[dict[str, Any]] = []
    pending = sorted(THRESHOLDS, reverse=True)

    def callback(progress) -> bool:
        if progress.scale < progress.scales:
            return False
        while pending and progress.loss <= pending[0] * target:
            path = out / f"impasto_at_{pending[0]:.2f}.png"
            progress.image().save(path)
            snapshots.append(
                {
                    "fraction": pending.pop(0),
                    "seconds": progress.elapsed,
                    "loss": progress.loss,
                    "path": str(path),
                    "cpu": _cpu_seconds(),
                }
            )
        return not pending

    # The targets must be built from the very pixels pastiche's objective uses: its images are
    # resized with PIL's BILINEAR filter, ours by default with LANCZOS, and the low layers' Grams
    # are sensitive enough to that to change the raw objective many times over.
    from PIL import Image

    content, style = (
        Image.open(spec[k]).convert("RGB").resize(tuple(spec[k + "_size"]), Image.Resampling.BILINEAR)
        for k in ("content", "style")
    )
    cfg = pastiche_parity_config(**spec["config"])
    started = time.time()
    result = run(content, style, config=cfg, callback=callback)
    result.image.save(out / "impasto_final.png")
    Path(spec["result"]).write_text(
        json.dumps(
            {
                "started": started,
                "seconds": result.seconds,
                "runtime": result.runtime,
                "stopped": result.stopped,
                "trace": result.trace,
                "snapshots": snapshots,
            }
        )
    )


# ---------------------------------------------------------------- parent


def _sizes(content: Path, style: Path, pixels: int) -> tuple[tuple[int, int], tuple[int, int]]:
    from PIL import Image

    from impasto.score import pixels_size

    size = pixels_size(Image.open(content).size, pixels)
    return size, pixels_size(Image.open(style).size, size[0] * size[1])


def _impasto_config(size: tuple[int, int], style_size: tuple[int, int], args: argparse.Namespace) -> dict:
    from impasto.config import default
    from impasto.imageio import fit_size
    from impasto.pyramid import schedule

    longest = max(size)
    iterations = [scale.iterations for scale in schedule(longest, default("min_size"), None, None)]
    iterations[-1] = args.final_iterations
    return {
        "size": longest,
        "style_scale": max(style_size) / longest,
        "precision": args.precision,
        "device": "cpu",
        "iterations": iterations,
        "_fit": list(fit_size(size, longest)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=Path, default=DEFAULT_EXAMPLES)
    parser.add_argument("--content", default="tubingen.jpg")
    parser.add_argument("--style", default="starry_night.jpg")
    parser.add_argument("--quick", action="store_true", help="256x256 pixels, 300 pastiche steps")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    parser.add_argument(
        "--final-iterations",
        type=int,
        default=400,
        help="impasto's budget at the final scale (it stops once past pastiche's objective)",
    )
    parser.add_argument("--out", type=Path, default=None, help="where to keep the images (default: a temp dir)")
    parser.add_argument("--impasto-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.impasto_child:
        impasto_child(args.impasto_child)
        return
    pixels, steps = (256 * 256, 300) if args.quick else (500 * 500, 1000)
    content, style = args.examples / args.content, args.examples / args.style
    if not content.is_file() or not style.is_file():
        raise SystemExit(f"example images not found in {args.examples} (use --examples DIR)")
    out = args.out or Path(tempfile.mkdtemp(prefix="vs_pastiche_"))
    out.mkdir(parents=True, exist_ok=True)
    size, style_size = _sizes(content, style, pixels)
    print(
        f"content {size[0]}x{size[1]}, style {style_size[0]}x{style_size[1]}, pastiche {steps} steps; images in {out}",
        flush=True,
    )

    theirs = run_python(
        [
            "-m",
            "pastiche",
            "--content",
            str(content),
            "--styles",
            str(style),
            "--output",
            str(out / "pastiche.png"),
            "--seed",
            "0",
            "--device",
            "cpu",
            "--num-steps",
            str(steps),
            "--size-pixels",
            str(pixels),
            "--info-step",
            "10",
        ],
        ROOT,
    )
    target = pastiche_score(content, style, out / "pastiche.png", pixels)
    trace = pastiche_trace(theirs.stdout)
    print(
        f"pastiche: {theirs.wall:.1f} s wall, {theirs.cpu:.1f} s cpu, {theirs.peak_mib:.0f} MiB peak, "
        f"{(trace[-1][1] - trace[1][1]) / (trace[-1][0] - trace[1][0]):.3f} s/step, "
        f"final loss {trace[-1][2]:.4g} (scored from its PNG: {target:.4g})",
        flush=True,
    )

    config = _impasto_config(size, style_size, args)
    if tuple(config.pop("_fit")) != tuple(size):
        print(f"warning: impasto's final size differs from pastiche's {size}", flush=True)
    spec = {
        "content": str(content),
        "style": str(style),
        "content_size": size,
        "style_size": style_size,
        "out": str(out),
        "target": target,
        "config": config,
        "result": str(out / "impasto.json"),
    }
    (out / "spec.json").write_text(json.dumps(spec))
    ours = run_python([str(Path(__file__).resolve()), "--impasto-child", str(out / "spec.json")], ROOT)
    report(json.loads((out / "impasto.json").read_text()), ours, theirs, target, content, style, pixels, out)


def report(
    result: dict, ours: Child, theirs: Child, target: float, content: Path, style: Path, pixels: int, out: Path
) -> None:
    setup = result["started"] - ours.launched  # interpreter, imports: counted like pastiche's own
    final_rows = [r for r in result["trace"] if r["scale"] == max(row["scale"] for row in result["trace"])]
    per_it = [(b["seconds"] - a["seconds"]) for a, b in zip(final_rows, final_rows[1:])]
    final_score = pastiche_score(content, style, out / "impasto_final.png", pixels)
    print(
        f"impasto ({result['runtime']}): {ours.wall:.1f} s wall, {ours.cpu:.1f} s cpu, {ours.peak_mib:.0f} MiB peak, "
        f"{statistics.median_high(per_it) if per_it else float('nan'):.3f} s/it at the final scale (median), "
        f"{len(result['trace'])} iterations, stopped: {result['stopped']}; "
        f"final image scored by pastiche: {final_score:.4g} ({final_score / target:.3f} x pastiche's)"
    )
    reached: dict | None = None
    for snap in result["snapshots"]:
        scored = pastiche_score(content, style, Path(snap["path"]), pixels)
        at = setup + snap["seconds"]
        print(
            f"  snapshot at {snap['fraction']:.2f} x target (our loss {snap['loss']:.4g}): {at:.1f} s "
            f"({snap['cpu']:.1f} s cpu), "
            f"pastiche scores it {scored:.4g} ({scored / target:.3f} x)"
        )
        if reached is None and scored <= target:
            reached = {"wall": at, "cpu": snap["cpu"]}
    if reached is None:
        print("impasto did NOT reach pastiche's objective within its budget")
        return
    for kind in ("wall", "cpu"):
        mine, base = reached[kind], getattr(theirs, kind)
        print(
            f"time to pastiche's final objective ({kind}): impasto {mine:.1f} s vs pastiche {base:.1f} s "
            f"-> impasto takes {mine / base:.3f} of pastiche's time ({base / mine:.1f}x faster)"
        )


if __name__ == "__main__":
    main()
