"""benchmarks/frontier.py's plot and CSV: what it writes reads back and draws (issue 23)."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import frontier  # noqa: E402


def _run(name: str, pair: str, cost_x: float, ssim_x: float, style_x: float) -> frontier.Run:
    return frontier.Run(
        name, pair, 10.0, 20.0, 100, "40+30+60", 70.0, 0.4, cost_x=cost_x, ssim_x=ssim_x, style_x=style_x
    )


def test_plot_from_a_written_csv(tmp_path):
    runs = [_run("default", p, 1.0, 1.0, 1.0) for p in ("a/b", "c/d")]
    runs += [_run("short", "a/b", 0.45, 1.2, 0.98), _run("short", "c/d", 0.47, 1.1, 1.01)]
    frontier.write_csv(tmp_path / "scan.csv", runs)
    back = frontier.read_csv([tmp_path / "scan.csv"])
    assert [(r.candidate, r.evaluations, r.cost_x) for r in back] == [
        (r.candidate, r.evaluations, r.cost_x) for r in runs
    ]
    plot_path = tmp_path / "out" / "plot.png"  # a folder not there yet, as benchmarks/out/ in a fresh clone
    frontier.write_plot(plot_path, back, mark="short")
    with Image.open(plot_path) as plot:
        assert plot.format == "PNG" and plot.width > 600
        colours = plot.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is not None and len(colours) > 50  # points, bars and text, not a blank canvas
