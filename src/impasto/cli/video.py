"""`impasto video INPUT STYLE [STYLE ...] -o OUT [options]`: the still's options plus the video's own.

The parser is the still's (one place for every style option and its default), with the options
that make no sense for a video hidden and refused, and a group of video options added. Progress
is a bar over frames with the ETA of the whole clip; Ctrl-C, SIGTERM and SIGHUP write the frames
done so far (a signal during the final encode waits for it to finish).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..video import DEFAULT_FRAME_ITERATIONS, DEFAULT_TEMPORAL_WEIGHT, video
from .common import Signals, format_duration
from .options import build_parser, check_runtime, config_from_args

if TYPE_CHECKING:
    from ..video.api import VideoResult
    from ..video.frames import FrameProgress

_STILL_ONLY = ("demo", "save_every", "loss_trace", "bit_depth")


def build_video_parser() -> argparse.ArgumentParser:
    p = build_parser()
    p.prog = "impasto video"
    p.description = (
        "Paint the video INPUT in the style of STYLE, temporally consistent (Ruder et al. 2016): each frame "
        "starts from the previous one warped by the optical flow and is held to it where the flow is reliable. "
        "Out comes an MP4 (H.264, AAC) or WebM (VP9, Opus) with the source's audio and frame timing."
    )
    for action in p._actions:  # the still's options that a video has no use for: hidden here, refused below
        if action.dest in _STILL_ONLY:
            action.help = argparse.SUPPRESS
        if action.dest == "images":
            action.metavar, action.help = "FILE", "INPUT video then one or more STYLE images"
        if action.dest == "output":
            action.help = "output video: .mp4 (H.264 + AAC) or .webm (VP9 + Opus)"
        if action.dest == "iterations":
            # a still's help, its default included, said of the first frame
            action.help = f"for the first frame (see --frame-iterations): {action.help}"
    g = p.add_argument_group("video")
    g.add_argument("--start", type=float, default=0.0, help="seconds into INPUT to start at")
    g.add_argument("--duration", type=float, default=None, help="seconds to paint (default: to the end)")
    g.add_argument("--frames", type=int, default=None, help="number of frames to paint (instead of --duration)")
    g.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: keep the source's)")
    g.add_argument(
        "--temporal-weight",
        type=float,
        default=DEFAULT_TEMPORAL_WEIGHT,
        help="how strongly each frame is held to the previous one warped by the flow (0: independent frames)",
    )
    g.add_argument(
        "--frame-iterations",
        type=int,
        default=DEFAULT_FRAME_ITERATIONS,
        help="objective evaluations for each frame after the first (warm-started at the final size)",
    )
    g.add_argument("--work-dir", default=None, help="folder for finished frames (default: OUT.frames)")
    g.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--resume: continue from the work folder (refuse if its settings differ); --no-resume: start over; "
        "default: continue when the settings match",
    )
    g.add_argument("--keep-frames", action="store_true", help="keep the work folder after a complete run")
    return p


class _FrameBar:
    """tqdm bar over frames; the postfix shows the frame's own progress, the loss and the clip's ETA."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar: Any = None

    def __call__(self, progress: FrameProgress) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=progress.frames, unit="frame", file=sys.stderr, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")  # fmt: skip
        self.bar.total = max(self.bar.total, progress.frame + 1)
        self.bar.update(progress.frame - self.bar.n)
        self.bar.set_description(f"frame {progress.frame + 1}", refresh=False)
        self.bar.set_postfix_str(
            f"{progress.iteration}/{progress.iterations} ETA {format_duration(progress.eta)}, loss {progress.loss:.4g}",
            refresh=False,
        )

    def close(self, result: VideoResult | None = None) -> None:
        """End the bar at the frames written: it moves when a frame begins, so the last one never moved it on
        (and frames resumed from the work folder are not painted); a complete run's total is what was written."""
        if self.bar is None:
            return
        if result is not None:
            self.bar.total = result.frames if result.complete else self.bar.total
            self.bar.update(result.frames - self.bar.n)
        self.bar.close()


def frames_text(count: int) -> str:
    """The count with its noun, "1 frame" or "3 frames": the report is a sentence."""
    return f"{count} frame" if count == 1 else f"{count} frames"


def video_main(argv: Sequence[str]) -> int:
    parser = build_video_parser()
    args = parser.parse_args(argv)
    check_runtime(args, parser)
    for dest in _STILL_ONLY:
        if getattr(args, dest) != parser.get_default(dest):
            parser.error(f"--{dest.replace('_', '-')} is for still images, not impasto video")
    if not args.output:
        parser.error("give the output video with -o OUT.mp4")
    if len(args.images) < 2:
        parser.error("give an INPUT video and at least one STYLE image")
    cfg = config_from_args(args)
    bar = _FrameBar(args.quiet)
    result: VideoResult | None = None
    with Signals() as signals:
        try:
            result = video(
                args.images[0], args.images[1:], args.output, config=cfg, callback=bar,
                start=args.start, duration=args.duration, frames=args.frames, fps=args.fps,
                temporal_weight=args.temporal_weight, frame_iterations=args.frame_iterations,
                work_dir=args.work_dir, resume=args.resume, keep_frames=args.keep_frames, writes=signals.deferred,
            )  # fmt: skip
        except KeyboardInterrupt:  # before the painting began (while the clip, styles or network loaded)
            pass
        finally:
            bar.close(result)
    if result is None or result.output is None:
        print(f"impasto: {signals.name} before the first frame was done; nothing written", file=sys.stderr)
        return signals.exit_code
    if not result.complete:
        print(f"impasto: {signals.name}; the {frames_text(result.frames)} done are in {args.output} "
              "(run the same command again to resume)", file=sys.stderr)  # fmt: skip
        return signals.exit_code
    if not args.quiet:
        later = result.later_seconds
        per = f", {sum(later) / len(later):.1f} s per frame after the first" if later else ""
        print(f"impasto: wrote {args.output}: {frames_text(result.frames)} of {result.size[0]}x{result.size[1]} "
              f"in {result.seconds:.1f} s{per}", file=sys.stderr)  # fmt: skip
    return 0
