"""Large pictures: the default stylization at print sizes, tiled within the default memory budget
against the same run untiled (a budget large enough for the whole picture), in the same session.

Each run is the default schedule cut short in its own process (throughput.stylization: coarse
scales 2 iterations, the final one enough to fill the L-BFGS history, so the memory peak is that
of a full run); it reports the peak (the child's own VmHWM), the seconds per iteration of each
scale, the full default run's time projected from them, and the ratio tiled / untiled. The tiled
picture is checked for seams: the mean squared difference between neighbouring pixels across
tile borders against the same measure everywhere (1.0: no excess at the borders), beside the same
measure on the untiled picture along the same lines (the control: what the picture itself has there).

    python benchmarks/large.py [--sizes 1024,2048] [--max-memory 3.5 | --tile-size 512] [--no-untiled]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from throughput import stylization

from impasto.tile_grid import plan_tiles

ROOT = Path(__file__).resolve().parents[1]
UNTILED = {"max_memory": 1000.0}


def seam_ratio(path: Path, tile: int, align: int) -> float:
    """Squared neighbour differences across tile borders / the same over the whole picture."""
    grey = np.asarray(Image.open(path).convert("L"), np.float64)
    dx, dy = np.diff(grey, axis=1) ** 2, np.diff(grey, axis=0) ** 2
    tiles = plan_tiles(grey.shape[0], grey.shape[1], tile, 0, align)
    cols = sorted({t.x0 - 1 for t in tiles if t.x0})
    rows = sorted({t.y0 - 1 for t in tiles if t.y0})
    border = np.concatenate([dx[:, cols].ravel(), dy[rows, :].ravel()])
    return float(border.mean() / np.concatenate([dx.ravel(), dy.ravel()]).mean())


def _pooling_grid(options: dict) -> int:
    """The tile grid of the run's network (its layers set how many poolings there are)."""
    from impasto.config import StyleConfig
    from impasto.objective import frozen_network
    from impasto.runtime import resolve

    return frozen_network(StyleConfig(**options), resolve("cpu", "fp32")).min_side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2048", help="longest sides, comma-separated")
    parser.add_argument("--examples", type=Path, default=ROOT.parent / "shared" / "examples")
    parser.add_argument("--no-untiled", action="store_true", help="skip the untiled peer (e.g. where it cannot fit)")
    parser.add_argument("--tile-size", type=int, help="force this tile size instead of the default budget's choice")
    parser.add_argument("--max-memory", type=float, help="the tiled run's budget in GiB instead of the default")
    args = parser.parse_args()
    images = {"content": str(args.examples / "tubingen.jpg"), "style": str(args.examples / "starry_night.jpg")}
    if not Path(images["content"]).is_file():
        images = {}
        print(f"(no examples at {args.examples}: random images)")
    tiled_options = {"tile_size": args.tile_size} if args.tile_size else {}
    if args.max_memory:
        tiled_options["max_memory"] = args.max_memory
    label = f"tiled ({args.max_memory} GiB)" if args.max_memory else "tiled (default budget)"
    for side in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as folder:
            saved = Path(folder) / "tiled.png"
            runs = {label: stylization(side, options=tiled_options, save=str(saved), **images)}
            whole = Path(folder) / "untiled.png"
            if not args.no_untiled:
                runs["untiled"] = stylization(side, options=UNTILED, save=str(whole), **images)
            for name, m in runs.items():
                pace = ", ".join(f"{p:.2f}" for p in m["pace"])
                print(
                    f"{side:5d} px {name:22s} final scale in {m['tiles']:2d} tile(s): peak {m['peak_gib']:.2f} GiB, "
                    f"s/it per scale {pace}; full default run projected {m['projected']:.0f} s",
                    flush=True,
                )
            tiled_run = runs[label]
            if tiled_run["tile"]:
                align = _pooling_grid(tiled_options)
                ratio = seam_ratio(saved, tiled_run["tile"], align)
                control = f" (untiled picture, same lines: {seam_ratio(whole, tiled_run['tile'], align):.3f})"
                print(
                    f"{side:5d} px seams: neighbour differences across tile borders / everywhere = {ratio:.3f}"
                    + (control if whole.exists() else "")
                )
            if "untiled" in runs:
                tiled, whole = runs[label], runs["untiled"]
                print(
                    f"{side:5d} px tiled / untiled: time {tiled['projected'] / whole['projected']:.2f}x, "
                    f"final scale {tiled['pace'][-1] / whole['pace'][-1]:.2f}x, "
                    f"peak {tiled['peak_gib'] / whole['peak_gib']:.2f}x"
                )


if __name__ == "__main__":
    main()
