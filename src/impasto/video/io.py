"""Video in through PyAV, which bundles FFmpeg's libraries: any container and codec FFmpeg reads.

Frame timing is kept: each frame carries its source frame's presentation time (relative to the
first frame of the window), so variable frame rates and odd time bases survive; frames come upright
(their display matrix applied, `upright`), so a phone's portrait clip is a portrait clip. Every
failure to read is an `ImpastoError` naming the file and the problem. Writing is `encode`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, UnidentifiedImageError

from ..checks import finite
from ..errors import ImpastoError
from ..imageio import check_input_file, check_pixels
from .upright import shown_size, transpose_of, upright


@dataclass(frozen=True)
class Window:
    """Which part of the source to paint: from `start` seconds, for `duration` seconds or `frames` frames.

    `fps` resamples to a constant rate (each output time takes the latest source frame); None keeps
    the source's own frame times.
    """

    start: float = 0.0
    duration: float | None = None
    frames: int | None = None
    fps: float | None = None

    def validate(self) -> Window:
        if not math.isfinite(self.start) or self.start < 0:
            what = finite(self.start, "a non-negative number of seconds")
            raise ImpastoError(f"--start must be {what}, got {self.start}")
        if self.duration is not None and (not math.isfinite(self.duration) or self.duration <= 0):
            what = finite(self.duration, "a positive number of seconds")
            raise ImpastoError(f"--duration must be {what}, got {self.duration}")
        if self.frames is not None and self.frames <= 0:
            raise ImpastoError(f"--frames must be a positive count, got {self.frames}")
        if self.fps is not None and (not math.isfinite(self.fps) or not 0 < self.fps <= 240):
            raise ImpastoError(f"--fps must be a frame rate above 0 and at most 240, got {self.fps:g}")
        return self


@dataclass(frozen=True)
class Clip:
    """What the source holds: the first video stream's size (as shown), rate and length, and whether audio comes
    along."""

    path: Path
    width: int  # as players show it: a portrait phone clip (stored landscape, turned -90) is narrow
    height: int
    rate: Fraction  # average frames per second
    duration: float  # seconds (0 when the container does not say)
    has_audio: bool


@dataclass(frozen=True)
class Frame:
    index: int  # within the window, 0-based
    time: Fraction  # seconds from the window's first frame
    image: Image.Image
    origin: Fraction  # the window's first frame's time in the source, in seconds (where the audio starts)


def open_media(path: Path) -> Any:
    """The file opened by FFmpeg (video or audio read back for the encode), or one line saying why not."""
    try:
        check_input_file(path, "a video")
        return av.open(str(path))
    except PermissionError:
        raise ImpastoError(f"{path}: permission denied") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise ImpastoError(f"{path}: not a video FFmpeg can read ({reason(exc)})") from None


def reason(exc: BaseException) -> str:
    """FFmpeg's reason without the path it repeats (our messages start with the path)."""
    return str(getattr(exc, "strerror", None) or exc).split(":")[0]


TEXT_FORMATS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
"""FFmpeg's demuxers that render a text file as a video (ANSI art): a .txt file would be painted as one."""


def _is_text(path: Path) -> bool:
    """Whether the file starts as UTF-8 text (no NUL byte; a character cut off at 4 KiB is allowed)."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return b"\0" not in head and exc.start >= len(head) - 3
    return b"\0" not in head


def _refuse_non_video(container: Any, path: Path) -> None:
    """A text file or a still image, which FFmpeg reads as a video of rendered text or of one frame."""
    still = container.format.name.endswith("_pipe") or container.format.name == "image2"
    if container.format.name in TEXT_FORMATS or (still and _is_text(path)):
        raise ImpastoError(f"{path}: is a text file, not a video")
    if still and not _is_image(path):
        raise ImpastoError(f"{path}: not a video FFmpeg can read, nor an image")
    if still:
        raise ImpastoError(f"{path}: is a still image, not a video (paint it with `impasto CONTENT STYLE`)")


def _is_image(path: Path) -> bool:
    """Whether Pillow reads the file's header as an image (FFmpeg's image demuxers go by the file's name)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # an image all the same
            Image.open(path).close()
    except Image.DecompressionBombError:
        return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False
    return True


def _video_stream(container: Any, path: Path) -> Any:
    _refuse_non_video(container, path)
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        holds = f"only {', '.join(kinds)}" if kinds else "no streams"
        raise ImpastoError(f"{path}: has no video stream ({holds})")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        tag = getattr(stream, "codec_tag", "") or "unknown"
        raise ImpastoError(f"{path}: video codec {tag!r} has no decoder in this FFmpeg")
    return stream


def probe(path: str | Path) -> Clip:
    """Open the source and describe it, or fail with one line (missing, corrupt, audio only, unknown codec)."""
    path = Path(path)
    with open_media(path) as container:
        stream = _video_stream(container, path)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / av.time_base
        check_pixels(path, stream.width, stream.height, "its frame size")
        width, height = shown_size(stream.width, stream.height, _first_transpose(container, stream))
        return Clip(path, width, height, Fraction(rate), duration, bool(container.streams.audio))


def _first_transpose(container: Any, stream: Any) -> Image.Transpose | None:
    """How the first frame is turned to be shown (the display matrix is a stream's, on every frame); None where
    nothing decodes (read_frames then says what is wrong with the file)."""
    try:
        for frame in container.decode(stream):
            return transpose_of(frame)
    except av.error.FFmpegError:
        pass
    return None


def _decoded(
    container: Any, stream: Any, start: float, path: Path, seen: list[Fraction]
) -> Iterator[tuple[Fraction, Any]]:
    """(time in seconds, frame) from `start` on; a decoder failure mid-file is one line, not a traceback.

    `seen` gets the last time decoded (before `start` too): none at all means the file lacks its frames."""
    if start > 0:
        container.seek(int(start / stream.time_base), stream=stream, backward=True)
    try:
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            time = Fraction(frame.pts) * stream.time_base
            seen[:] = [time]
            if time + Fraction(1, 1000) >= start:  # frame times are rounded: a millisecond of slack
                yield time, frame
    except av.error.FFmpegError as exc:
        raise ImpastoError(f"{path}: cannot decode ({reason(exc)})") from None


def _limited(times: Iterable[tuple[Fraction, Any]], window: Window) -> Iterator[tuple[Fraction, Any, Fraction]]:
    """(time from the first frame, frame, first frame's time), cut to the window's duration or frame count;
    with `fps`, resampled to that constant rate (each output time shows the latest source frame)."""
    first: Fraction | None = None
    count = 0
    # As typed (0.4 s is 2/5 s, not the float's binary value just above it): frame times are exact fractions.
    duration = None if window.duration is None else Fraction(window.duration).limit_denominator(10**6)
    if window.fps is None:
        for time, frame in times:
            first = time if first is None else first
            if duration is not None and time - first >= duration:
                return
            yield time - first, frame, first
            count += 1
            if window.frames is not None and count >= window.frames:
                return
        return
    step = 1 / Fraction(window.fps).limit_denominator(1001)
    held: tuple[Fraction, Any] | None = None
    for time, frame in times:
        first = time if first is None else first
        while held is not None and count * step < time - first:  # output times before this frame show `held`
            if duration is not None and count * step >= duration:
                return
            yield count * step, held[1], first
            count += 1
            if window.frames is not None and count >= window.frames:
                return
        held = (time, frame)
    if held is not None and (duration is None or count * step < duration):
        yield count * step, held[1], first  # type: ignore[misc]


def read_frames(clip: Clip, window: Window, size: tuple[int, int]) -> Iterator[Frame]:
    """The window's frames as RGB images of `size`, decoded as they are consumed (a long clip never sits in memory)."""
    with open_media(clip.path) as container:
        stream = _video_stream(container, clip.path)
        stream.thread_type = "AUTO"
        found, seen = False, list[Fraction]()
        decoded = _decoded(container, stream, window.start, clip.path, seen)
        for index, (time, frame, origin) in enumerate(_limited(decoded, window)):
            found = True
            check_pixels(clip.path, frame.width, frame.height, f"frame {index + 1}")  # a stream may change size
            image = upright(frame)
            if image.size != size:
                image = image.resize(size, Image.Resampling.LANCZOS)
            yield Frame(index, time, image, origin)
        if not found and seen:
            last = f"the last is at {float(seen[0]):.2f} s"
            raise ImpastoError(f"{clip.path}: no video frames after {window.start:g} s ({last})")
        if not found:  # not one frame decoded, whatever the header says the length is
            raise ImpastoError(f"{clip.path}: cannot decode any video frame (the file is truncated or corrupt)")
