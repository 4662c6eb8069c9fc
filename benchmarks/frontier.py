"""Speed against quality: candidate schedules and optimiser settings on the quality set (issue 23).

Each candidate is a set of StyleConfig options (iterations per scale, scales, min_size, tolerance,
window, lbfgs_history, init, ...). Every candidate, today's defaults first, paints every chosen
pair of benchmarks/quality.py's set at --size in this process, pair by pair (so a change in the
machine's load falls on all candidates alike), and is measured with quality.py's own Judge:

* seconds (wall, impasto.run end to end, images loaded) and objective evaluations (all scales,
  L-BFGS line-search trials included);
* cost in *512 px evaluation equivalents*: wall seconds / the seconds of one forward + backward
  of the painting network (the defaults' layers, precision and layout) at the photos' 512 px size
  (512x384), timed a few times before every pair and at the end, median over the run. On a shared
  machine this unit moves with the load as the runs do, so the cost moves much less than seconds;
  `cpu eq` is the same with process CPU seconds;
* quality as ratios to the defaults on the same pair in the same run: SSIM (higher is better),
  held-out style distance (lower is better), held-out feature distance, the final objective, and
  `pasted` as a difference (positive: more of the painting's objects than the defaults paint).

Per candidate it prints the median cost, its ratio to the defaults', the worst pair's ratios and
whether it meets issue 23's targets (cost <= 0.5x the defaults', SSIM >= 0.95x and held-out style
<= 1.05x on every pair, pasted no higher). Writes every run to a CSV and, with --sheet, a contact
sheet: photo | painting | one column per candidate, per pair; and a plot (matplotlib, the `bench`
extra) of quality against cost for every candidate, the defaults marked. `--plot-from CSV...`
redraws the plot from earlier scans (each run's ratios are to the defaults of its own scan).

    python benchmarks/frontier.py                                   # every candidate, every pair
    python benchmarks/frontier.py --pairs 4 --candidates default,100/60/50,tol3e-3
    python benchmarks/frontier.py --pairs 2 --size 256 --try 'short:iterations=60,40;tolerance=0.005'
    python benchmarks/frontier.py --pairs 12 --candidates default,100/60/50 --sheet benchmarks/out/sheet.jpg
    python benchmarks/frontier.py --plot-from benchmarks/out/*.csv --plot benchmarks/out/all.png

--pairs N takes the first N of PAIR_ORDER (the four leakage-prone sweep pairs first), or a
comma-separated list of quality.py pair names. Results go to benchmarks/out/ by default.
"""

from __future__ import annotations

import argparse
import csv
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from quality import LABEL, TILE, Judge, all_pairs, load, overrides, pair_name, tile

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
UNIT_SIZE = (512, 384)  # the 512 px size of both photos (Tübingen 1024x768, Golden Gate 979x734)
PAIR_ORDER = (
    "tubingen/starry_night", "golden_gate/the_scream", "golden_gate/astronaut", "tubingen/chelsea",
    "tubingen/wave", "golden_gate/udnie", "tubingen/shipwreck", "golden_gate/starry_night",
    "tubingen/the_scream", "golden_gate/wave", "tubingen/udnie", "golden_gate/shipwreck",
)  # fmt: skip
CANDIDATES: dict[str, dict[str, Any]] = {
    "default": {},  # 40, 30, 60 at 128, 256, 512 px, each scale from 'detail' upsampling (issue 23)
    # 300, 150, 75 at 160, 286, 512 px (and 50 at each scale from 1024 px up); bicubic upsampling
    "before 23": {"min_size": 160, "iterations": [300, 150, 75, 50], "upsample": "bicubic"},
    "150/75/50": {"iterations": [150, 75, 50]},
    "100/60/50": {"iterations": [100, 60, 50]},
    "80/40/40": {"iterations": [80, 40, 40]},
    "100/60/40": {"iterations": [100, 60, 40]},
    "300/150/40": {"iterations": [300, 150, 40]},
    "tol3e-3": {"tolerance": 3e-3},
    "tol1e-2": {"tolerance": 1e-2},
    "100/60/50 hist50": {"iterations": [100, 60, 50], "lbfgs_history": 50},
    "100/60/50 hist10": {"iterations": [100, 60, 50], "lbfgs_history": 10},
    "2 scales 100/50": {"scales": 2, "min_size": 256, "iterations": [100, 50]},
    "4 scales 80/50/40/40": {"scales": 4, "iterations": [80, 50, 40, 40]},
}
"""Name -> StyleConfig options; 'default' (no options) is the yardstick and always runs first."""
TARGETS = {"cost": 0.5, "ssim": 0.95, "style": 1.05, "pasted": 0.0}


@dataclass
class Run:
    candidate: str
    pair: str
    seconds: float
    cpu_seconds: float
    evaluations: int
    per_scale: str  # evaluations at each scale, coarse to fine: '300+150+75'
    work: float  # evaluations weighted by their pixels against 512x384's: the load-free part of the cost
    unit_near: float  # mean of the units timed just before and just after this run
    cost: float = 0.0  # seconds / unit (the run's median unit)
    cost_near: float = 0.0  # seconds / unit_near
    cpu_cost: float = 0.0
    loss: float = 0.0
    ssim: float = 0.0
    feat: float = 0.0
    style: float = 0.0
    pasted: float = 0.0
    cost_x: float = 1.0  # ratios to the defaults on this pair (pasted: difference)
    ssim_x: float = 1.0
    style_x: float = 1.0
    feat_x: float = 1.0
    loss_x: float = 1.0
    pasted_d: float = 0.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Unit:
    """One forward + backward of the painting network at 512x384, as the defaults run it."""

    def __init__(self) -> None:
        from impasto.config import StyleConfig
        from impasto.objective import frozen_network
        from impasto.runtime import resolve

        cfg = StyleConfig()
        runtime = resolve(cfg.device, cfg.precision)
        self.vgg = frozen_network(cfg, runtime)
        width, height = UNIT_SIZE
        self.pixels = torch.rand(1, 3, height, width, device=runtime.device).contiguous(
            memory_format=torch.channels_last
        )
        self.walls: list[float] = []
        self.cpus: list[float] = []

    def _once(self) -> None:
        pixels = self.pixels.detach().requires_grad_(True)
        total = sum(f.float().square().mean() for f in self.vgg(pixels).values())
        total.backward()  # type: ignore[union-attr]

    def measure(self, repeats: int = 2) -> float:
        """Time `repeats` passes after one warm-up; keep their median (wall and CPU); returns the wall."""
        self._once()
        walls, cpus = [], []
        for _ in range(repeats):
            cpu, start = cpu_seconds(), time.perf_counter()
            self._once()
            walls.append(time.perf_counter() - start)
            cpus.append(cpu_seconds() - cpu)
        self.walls.append(statistics.median(walls))
        self.cpus.append(statistics.median(cpus))
        return self.walls[-1]

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)


def choose_pairs(spec: str | None) -> list[tuple[str, str]]:
    by_name = {pair_name(*p): p for p in all_pairs()}
    if not spec:
        names = list(PAIR_ORDER)
    elif spec.isdigit():
        names = list(PAIR_ORDER[: int(spec)])
    else:
        names = spec.split(",")
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown pair {unknown[0]!r}; choose from {', '.join(PAIR_ORDER)}")
    return [by_name[n] for n in names]


def choose_candidates(names: str | None, tries: list[str]) -> dict[str, dict[str, Any]]:
    """The named candidates (all by default), plus --try 'name:key=value;key=value'; 'default' first."""
    pool = dict(CANDIDATES)
    extra = []
    for spec in tries:
        name, sep, settings = spec.partition(":")
        if not sep or not name:
            raise SystemExit(f"--try expects NAME:KEY=VALUE;KEY=VALUE, got {spec!r}")
        pool[name] = overrides([s for s in settings.split(";") if s])
        extra.append(name)
    wanted = (names.split(",") if names else list(CANDIDATES)) + extra
    unknown = [n for n in wanted if n not in pool]
    if unknown:
        raise SystemExit(f"unknown candidate {unknown[0]!r}; choose from {', '.join(pool)} or use --try")
    return {"default": {}, **{n: pool[n] for n in wanted if n != "default"}}


def paint(photo: Image.Image, painting: Image.Image, size: int, options: dict[str, Any]) -> tuple[Any, float, float]:
    """One stylization in this process: the result, its wall and CPU seconds."""
    import impasto

    cpu, start = cpu_seconds(), time.perf_counter()
    result = impasto.run(photo, painting, size=size, **options)
    return result, time.perf_counter() - start, cpu_seconds() - cpu


def pixel_work(result: Any, size: int) -> float:
    """The run's evaluations, each weighted by its scale's pixels over 512x384's (the unit's)."""
    from impasto.imageio import fit_size
    from impasto.pyramid import scale_sizes

    cfg = result.config
    longest = scale_sizes(size, cfg.min_size, cfg.scales)
    sizes = [fit_size(result.image.size, s) for s in longest]
    return sum(sizes[int(t["scale"]) - 1][0] * sizes[int(t["scale"]) - 1][1] for t in result.trace) / (
        UNIT_SIZE[0] * UNIT_SIZE[1]
    )


def finish(runs: list[Run], unit: Unit) -> None:
    """Costs in units, and every run's ratios to the defaults' run on its pair."""
    for run in runs:
        run.cost, run.cpu_cost = run.seconds / unit.wall, run.cpu_seconds / unit.cpu
        run.cost_near = run.seconds / run.unit_near
    base = {r.pair: r for r in runs if r.candidate == "default"}
    for run in runs:
        ref = base[run.pair]
        run.cost_x, run.ssim_x = run.cost / ref.cost, run.ssim / ref.ssim
        run.style_x, run.feat_x, run.loss_x = run.style / ref.style, run.feat / ref.feat, run.loss / ref.loss
        run.pasted_d = run.pasted - ref.pasted


def summary(runs: list[Run], candidates: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per candidate: median cost and evaluations, its cost against the defaults', the worst pair's ratios."""
    out = []
    for name in candidates:
        mine = [r for r in runs if r.candidate == name]
        cost = statistics.median(r.cost for r in mine)
        row = {
            "candidate": name,
            "cost": cost,
            "cost_near": statistics.median(r.cost_near for r in mine),
            "cpu_cost": statistics.median(r.cpu_cost for r in mine),
            "work": statistics.median(r.work for r in mine),
            "evaluations": statistics.median(r.evaluations for r in mine),
            "seconds": statistics.median(r.seconds for r in mine),
            "cost_x": statistics.median(r.cost_x for r in mine),
            "ssim_x_min": min(r.ssim_x for r in mine),
            "style_x_max": max(r.style_x for r in mine),
            "feat_x_max": max(r.feat_x for r in mine),
            "loss_x_med": statistics.median(r.loss_x for r in mine),
            "pasted_d_max": max(r.pasted_d for r in mine),
        }
        row["meets"] = (
            row["cost_x"] <= TARGETS["cost"] and row["ssim_x_min"] >= TARGETS["ssim"]
            and row["style_x_max"] <= TARGETS["style"] and row["pasted_d_max"] <= TARGETS["pasted"] + 1e-9
        )  # fmt: skip
        out.append(row)
    return out


def print_summary(rows: list[dict[str, Any]], unit: Unit) -> None:
    spread = f"median of {len(unit.walls)}: {min(unit.walls):.3f}-{max(unit.walls):.3f}"
    print(f"\nunit: one forward + backward at {UNIT_SIZE[0]}x{UNIT_SIZE[1]}: {unit.wall:.3f} s wall ({spread}), "
          f"{unit.cpu:.3f} s cpu")  # fmt: skip
    print(f"{'candidate':24} {'eval eq':>7} {'near':>6} {'cpu eq':>7} {'work':>6} {'x def':>6} {'evals':>6} "
          f"{'s':>6} {'ssim min':>8} {'style max':>9} {'feat max':>8} {'loss':>6} {'pasted+':>7}  meets")  # fmt: skip
    for r in rows:
        print(f"{r['candidate']:24} {r['cost']:7.1f} {r['cost_near']:6.1f} {r['cpu_cost']:7.1f} {r['work']:6.1f} "
              f"{r['cost_x']:6.2f} {r['evaluations']:6.0f} {r['seconds']:6.1f} {r['ssim_x_min']:8.3f} "
              f"{r['style_x_max']:9.3f} {r['feat_x_max']:8.3f} "
              f"{r['loss_x_med']:6.3f} {r['pasted_d_max']:+7.3f}  {'yes' if r['meets'] else 'no'}")  # fmt: skip


def write_csv(path: Path, runs: list[Run]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(Run)])
        writer.writeheader()
        for run in runs:
            writer.writerow({k: f"{v:.5g}" if isinstance(v, float) else v for k, v in asdict(run).items()})


def write_sheet(path: Path, pairs: list[tuple[str, str]], names: list[str], images: dict, runs: list[Run]) -> None:
    """photo | painting | one column per candidate, each pair under a label; each result captioned."""
    by_key = {(r.candidate, r.pair): r for r in runs}
    columns = 2 + len(names)
    sheet = Image.new("RGB", (columns * TILE[0], LABEL + len(pairs) * (TILE[1] + 2 * LABEL)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 3), "photo | painting | " + " | ".join(names), fill=(0, 0, 0))
    for index, (photo, painting) in enumerate(pairs):
        pair, top = pair_name(photo, painting), LABEL + index * (TILE[1] + 2 * LABEL)
        draw.text((4, top + 3), pair, fill=(0, 0, 0))
        pictures = [load(photo), load(painting)] + [images[(n, pair)] for n in names]
        for column, picture in enumerate(pictures):
            sheet.paste(tile(picture), (column * TILE[0], top + LABEL))
        for column, name in enumerate(names, start=2):
            run = by_key[(name, pair)]
            caption = f"{name}: {run.cost:.0f} eq, ssim {run.ssim:.3f}, style {run.style:.3f}"
            draw.text((column * TILE[0] + 2, top + LABEL + TILE[1] + 3), caption, fill=(0, 0, 0))
    sheet.save(path, quality=90)


def read_csv(paths: list[Path]) -> list[Run]:
    """Runs written by earlier scans (each with its ratios to the defaults of its own scan)."""
    kinds = {f.name: f.type for f in fields(Run)}
    runs = []
    for path in paths:
        with path.open(newline="") as rows:
            for row in csv.DictReader(rows):
                values = {
                    k: v if kinds[k] == "str" else (int(v) if kinds[k] == "int" else float(v)) for k, v in row.items()
                }
                runs.append(Run(**values))
    return runs


def write_plot(path: Path, runs: list[Run], mark: str | None = None) -> None:
    """Quality against cost for every candidate (medians over its pairs, bars: worst to best pair).

    The yardstick ('default') is a red star; `mark` names one more candidate to draw as a green diamond.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    names = list(dict.fromkeys(r.candidate for r in runs))
    for axis, key, label, target in ((axes[0], "ssim_x", "SSIM to the photo", TARGETS["ssim"]),
                                     (axes[1], "style_x", "held-out style distance", TARGETS["style"])):  # fmt: skip
        for name in names:
            mine = [r for r in runs if r.candidate == name]
            x = statistics.median(r.cost_x for r in mine)
            ys = [getattr(r, key) for r in mine]
            y = statistics.median(ys)
            style = {"marker": "o"}
            if name == "default":
                style = {"marker": "*", "markersize": 16, "color": "crimson"}
            elif name == mark:
                style = {"marker": "D", "markersize": 10, "color": "green"}
            axis.errorbar([x], [y], yerr=[[y - min(ys)], [max(ys) - y]], capsize=3, **style)
            axis.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        axis.axvline(TARGETS["cost"], color="grey", linestyle="--", linewidth=0.8)
        axis.axhline(target, color="grey", linestyle=":", linewidth=0.8)
        axis.set_xlabel("cost against the defaults (512 px evaluation equivalents, ratio)")
        axis.set_ylabel(f"{label} / the defaults' (bars: all pairs)")
    axes[0].set_title("higher keeps more of the photo")
    axes[1].set_title("lower is closer to the painting")
    extra = f", {mark}: green diamond" if mark else ""
    figure.suptitle(f"impasto schedules: quality against time at 512 px (the yardstick: red star{extra})")
    path.parent.mkdir(parents=True, exist_ok=True)  # benchmarks/out/ is not in a fresh clone
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", help="N (the first N of PAIR_ORDER) or comma-separated pair names; default all")
    parser.add_argument("--candidates", help=f"comma-separated names (default: all): {', '.join(CANDIDATES)}")
    parser.add_argument("--try", dest="tries", action="append", default=[], metavar="NAME:KEY=VALUE;...",
                        help="an extra candidate, e.g. 'short:iterations=60,40;tolerance=0.005'")  # fmt: skip
    parser.add_argument("--csv", type=Path, default=OUT / "frontier.csv")
    parser.add_argument("--sheet", type=Path, help="contact sheet (.jpg/.png): photo | painting | each candidate")
    parser.add_argument("--plot", type=Path, default=OUT / "frontier.png", help="quality against cost (PNG)")
    parser.add_argument("--plot-from", type=Path, nargs="+", metavar="CSV", help="only redraw the plot from CSVs")
    parser.add_argument("--mark", help="a candidate to single out on the plot")
    args = parser.parse_args()
    if args.plot_from:
        write_plot(args.plot, read_csv(args.plot_from), args.mark)
        print(f"plot: {args.plot}", file=sys.stderr)
        return
    pairs, candidates = choose_pairs(args.pairs), choose_candidates(args.candidates, args.tries)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    from impasto.runtime import tune_cpu

    tune_cpu()
    judge, unit, runs, images = Judge(), Unit(), [], {}
    for photo_name, painting_name in pairs:
        pair, photo, painting = pair_name(photo_name, painting_name), load(photo_name), load(painting_name)
        for name, options in candidates.items():
            before = unit.measure()
            result, seconds, cpu = paint(photo, painting, args.size, options)
            near = (before + unit.measure()) / 2
            ssim, feat, style, _, pasted = judge.measure(photo, painting, result.image)
            scales = [int(t["scale"]) for t in result.trace]
            per_scale = "+".join(str(scales.count(i)) for i in range(1, max(scales) + 1))
            work = pixel_work(result, args.size)
            loss = result.loss or float("nan")
            run = Run(name, pair, seconds, cpu, len(result.trace), per_scale, work, near, loss=loss, ssim=ssim,
                      feat=feat, style=style, pasted=pasted)  # fmt: skip
            runs.append(run)
            if args.sheet:
                images[(name, pair)] = result.image
            print(f"{pair:26} {name:24} {seconds:6.1f} s {run.per_scale:>12} evals ssim {ssim:.3f} "
                  f"style {style:.4f} pasted {pasted:+.3f} loss {run.loss:.4f}", flush=True)  # fmt: skip
    finish(runs, unit)
    write_csv(args.csv, runs)
    print_summary(summary(runs, candidates), unit)
    if args.sheet:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        write_sheet(args.sheet, pairs, list(candidates), images, runs)
    write_plot(args.plot, runs, args.mark)
    print(f"runs: {args.csv}; plot: {args.plot}" + (f"; sheet: {args.sheet}" if args.sheet else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
