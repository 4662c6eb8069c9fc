"""`impasto.video(input, style, output)`: a whole video run, from checks to the encoded file.

Everything that can be refused is refused before the first frame is painted (options, the input,
the styles and controls, the output's type and folder), so bad input leaves nothing behind. The
frames go to the work folder (created and locked at the start, so an unwritable one or a second
run on it is refused before any painting) as they are finished; the video is encoded from there at
the end, or from the frames done so far when the run is interrupted (Ctrl-C or the callback), so
the file is always playable and a rerun resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image

from .. import __version__
from ..checks import finite
from ..config import StyleConfig, configure
from ..errors import ImpastoError
from ..guided import prepare
from ..imageio import ImageLike, fit_size, load_image
from ..runtime import resolve
from ..stylize import as_list
from ..writing import refuse_input_as_output
from . import DEFAULT_FRAME_ITERATIONS, DEFAULT_TEMPORAL_WEIGHT
from .encode import check_output, write_video
from .frames import FrameCallback, Painter, Stopped
from .io import Clip, Frame, Window, probe, read_frames
from .workdir import WorkDir, file_fingerprint, image_fingerprint


@dataclass
class VideoResult:
    output: Path | None  # None when stopped before the first frame was done (nothing written)
    frames: int  # frames in the written video
    stopped: str  # 'complete', 'interrupted' (Ctrl-C) or 'callback'
    seconds: float
    size: tuple[int, int]
    first_seconds: float | None = None  # frame 0 (the full schedule), if painted in this run
    later_seconds: list[float] = field(default_factory=list)  # each later frame painted in this run

    @property
    def complete(self) -> bool:
        return self.stopped == "complete"


def frame_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """The painted size: longest side `longest`, both sides even (4:2:0 video needs even sizes)."""
    w, h = fit_size((width, height), longest)
    return max(2, w - w % 2), max(2, h - h % 2)


def expected_frames(clip: Clip, window: Window) -> int:
    """How many frames will be painted (the progress bar's total and the ETA; decoding has the last word):
    the window's duration or frame count, cut at the clip's end (`--duration 5` on a 1 s clip is 1 s)."""
    rate = float(window.fps or clip.rate)
    left = max(0.0, clip.duration - window.start) if clip.duration else None  # 0: the container does not say
    spans = [seconds for seconds in (window.duration, left) if seconds is not None]
    estimate = max(1, round(min(spans) * rate)) if spans else 1
    return min(estimate, window.frames) if window.frames is not None else estimate


def _check_options(temporal_weight: float, frame_iterations: int) -> None:
    if not math.isfinite(temporal_weight) or temporal_weight < 0:
        what = finite(temporal_weight, "a non-negative number")
        raise ImpastoError(f"temporal weight must be {what}, got {temporal_weight}")
    if isinstance(frame_iterations, bool) or not isinstance(frame_iterations, int) or frame_iterations < 1:
        raise ImpastoError(f"frame iterations must be a positive count, got {frame_iterations}")


class _Recorder:
    """Passes frames through and keeps their times (and the window's first, absolute, for the audio)."""

    def __init__(self, frames: Iterator[Frame]):
        self.frames, self.times = frames, []  # type: ignore[var-annotated]
        self.origin: Fraction | None = None

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.frames:
            self.origin = frame.origin if self.origin is None else self.origin
            self.times.append(frame.time)
            yield frame


def video(
    input: str | Path,
    style: ImageLike | Sequence[ImageLike],
    output: str | Path,
    *,
    start: float = 0.0,
    duration: float | None = None,
    frames: int | None = None,
    fps: float | None = None,
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
    frame_iterations: int = DEFAULT_FRAME_ITERATIONS,
    work_dir: str | Path | None = None,
    resume: bool | None = None,
    keep_frames: bool = False,
    config: StyleConfig | None = None,
    callback: FrameCallback | None = None,
    writes: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    **options: Any,
) -> VideoResult:
    """Paint `input` (any video FFmpeg reads) in the style of `style`, temporally consistent; write `output`.

    Options are StyleConfig's (size, style_weight, preserve_color, ...). The work folder (default:
    OUTPUT.frames next to the output) keeps finished frames: a rerun with the same settings resumes.
    `writes` gives the context the final encode runs in (the CLI holds SIGTERM/SIGHUP back there).
    """
    began = time.perf_counter()
    cfg = configure(config, **options)
    window = Window(start, duration, frames, fps).validate()
    _check_options(temporal_weight, frame_iterations)
    clip = probe(input)
    if clip.duration and window.start >= clip.duration:
        raise ImpastoError(f"{input}: --start {window.start:g} s is past the end (the video is {clip.duration:.2f} s)")
    styles = [load_image(s) for s in as_list(style)]
    size = frame_size(clip.width, clip.height, cfg.size)
    cfg = dataclasses.replace(cfg, size=max(size))
    prepare(Image.new("RGB", size), styles, cfg)  # masks and per-style lists checked before the long run
    check_output(output)
    refuse_input_as_output("-o", output, [input, *as_list(style)])  # the clip or a style, links included
    runtime = resolve(cfg.device, cfg.precision)
    settings = {
        "impasto": __version__, "input": file_fingerprint(clip.path), "styles": [image_fingerprint(s) for s in styles],
        "config": cfg.as_metadata(), "window": dataclasses.asdict(window),
        "temporal_weight": temporal_weight, "frame_iterations": frame_iterations,
    }  # fmt: skip
    folder = Path(work_dir) if work_dir is not None else Path(f"{output}.frames")
    if folder.resolve() == Path(output).resolve():
        raise ImpastoError(f"{folder}: --work-dir cannot be the output file itself")
    painter = Painter(styles, cfg, runtime, temporal_weight, frame_iterations, callback, expected_frames(clip, window))
    with WorkDir(folder, settings, resume) as store:
        return _paint(store, painter, clip, window, size, output, keep_frames, writes, began)


def _paint(
    store: WorkDir, painter: Painter, clip: Clip, window: Window, size: tuple[int, int], output: str | Path,
    keep_frames: bool, writes: Callable[[], contextlib.AbstractContextManager[Any]], began: float,
) -> VideoResult:  # fmt: skip
    """Paint into the (locked) work folder, then encode the frames done."""
    recorder = _Recorder(read_frames(clip, window, size))
    done, stopped = 0, "complete"
    try:
        with painter.runtime.reproducible(painter.cfg.seed):
            for index, image in enumerate(painter.paint(recorder, store.load)):
                if not store.path(index).is_file():
                    store.save(index, image)
                done = index + 1
    except Stopped as stop:
        stopped = stop.reason
    except KeyboardInterrupt:
        stopped = "interrupted"
    result = VideoResult(None, done, stopped, 0.0, size, painter.timing.first, painter.timing.later)
    if done:
        rate = Fraction(window.fps).limit_denominator(1001) if window.fps else clip.rate
        times = recorder.times[:done]
        end = recorder.times[done] if len(recorder.times) > done else times[-1] + 1 / rate
        audio = (clip, float(recorder.origin or 0)) if clip.has_audio else None
        with writes():  # a signal now would throw away the whole encode: it waits until the file is written
            write_video(output, (store.load(i) or Image.new("RGB", size) for i in range(done)), size, times, end, audio)
        result.output = Path(output)
        if stopped == "complete" and not keep_frames:
            store.clear()
    result.seconds = time.perf_counter() - began
    return result
