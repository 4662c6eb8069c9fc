"""Video in and out through PyAV, which bundles FFmpeg's libraries: any container and codec FFmpeg
reads comes in; H.264/AAC in MP4 (or VP9/Opus in WebM) goes out, which every browser plays.

Frame timing is kept: each output frame carries its source frame's presentation time (relative
to the first frame of the window), so variable frame rates and odd time bases survive. The
source's first audio stream is cut to the same window and re-encoded. Every failure to read is
an `ImpastoError` naming the file and the problem; the output is written through a temp file and
renamed (`writing.atomic_write`), so it is complete or absent.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
from PIL import Image

from ..errors import ImpastoError
from ..imageio import check_input_file, check_pixels
from ..writing import atomic_write, check_writable

# Output container -> (container format, video codec, pixel format, audio codec, encoder options, muxer options).
# Both are chosen so that the same frames always give the same bytes (a resumed run's file is the uninterrupted
# run's): x264's macroblock-tree rate control reads uninitialised padding at sizes that are not a multiple of 16
# and varies from encode to encode (off: ~20% larger at the same PSNR), and Matroska writes a random segment UID
# unless bit-exact. MP4's index goes first (faststart) so that a browser starts playing at once.
OUTPUTS: dict[str, tuple[str, str, str, str, dict[str, str], dict[str, str]]] = {
    ".mp4": ("mp4", "libx264", "yuv420p", "aac", {"crf": "18", "preset": "medium", "x264-params": "no-mbtree=1"},
             {"movflags": "+faststart"}),
    ".webm": ("webm", "libvpx-vp9", "yuv420p", "libopus", {"crf": "30", "b": "0", "row-mt": "1"},
              {"fflags": "+bitexact"}),
}  # fmt: skip


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
            raise ImpastoError(f"--start must be a non-negative number of seconds, got {self.start}")
        if self.duration is not None and (not math.isfinite(self.duration) or self.duration <= 0):
            raise ImpastoError(f"--duration must be a positive number of seconds, got {self.duration}")
        if self.frames is not None and self.frames <= 0:
            raise ImpastoError(f"--frames must be a positive count, got {self.frames}")
        if self.fps is not None and (not math.isfinite(self.fps) or not 0 < self.fps <= 240):
            raise ImpastoError(f"--fps must be a number from 0 to 240, got {self.fps}")
        return self


@dataclass(frozen=True)
class Clip:
    """What the source holds: the first video stream's size, rate and length, and whether audio comes along."""

    path: Path
    width: int
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


def _open(path: Path) -> Any:
    try:
        check_input_file(path, "a video")
        return av.open(str(path))
    except PermissionError:
        raise ImpastoError(f"{path}: permission denied") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise ImpastoError(f"{path}: not a video FFmpeg can read ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc).split(":")[0]


def _video_stream(container: Any, path: Path) -> Any:
    if container.format.name.endswith("_pipe") or container.format.name == "image2":
        raise ImpastoError(f"{path}: is a still image, not a video (paint it with `impasto CONTENT STYLE`)")
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
    with _open(path) as container:
        stream = _video_stream(container, path)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / av.time_base
        check_pixels(path, stream.width, stream.height, "its frame size")
        return Clip(path, stream.width, stream.height, Fraction(rate), duration, bool(container.streams.audio))


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
        raise ImpastoError(f"{path}: cannot decode ({_reason(exc)})") from None


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
    with _open(clip.path) as container:
        stream = _video_stream(container, clip.path)
        stream.thread_type = "AUTO"
        found, seen = False, list[Fraction]()
        decoded = _decoded(container, stream, window.start, clip.path, seen)
        for index, (time, frame, origin) in enumerate(_limited(decoded, window)):
            found = True
            check_pixels(clip.path, frame.width, frame.height, f"frame {index + 1}")  # a stream may change size
            image = frame.to_image()
            if image.size != size:
                image = image.resize(size, Image.Resampling.LANCZOS)
            yield Frame(index, time, image, origin)
        if not found and seen:
            last = f"the last is at {float(seen[0]):.2f} s"
            raise ImpastoError(f"{clip.path}: no video frames after {window.start:g} s ({last})")
        if not found:  # not one frame decoded, whatever the header says the length is
            raise ImpastoError(f"{clip.path}: cannot decode any video frame (the file is truncated or corrupt)")


def check_output(path: str | Path) -> None:
    """Fail before the long run if the output's type is not one we encode or its folder is not writable."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUTS:
        raise ImpastoError(f"{path}: unknown video type {suffix or '(none)'}; use .mp4 (H.264) or .webm (VP9)")
    check_writable(path)


def _time_base(times: list[Fraction]) -> Fraction:
    """A time base in which every frame time is an integer (capped: 1/90000 s is finer than any display)."""
    denominator = math.lcm(*(t.denominator for t in times)) if times else 1
    return Fraction(1, denominator) if denominator <= 90000 else Fraction(1, 90000)


def _add_video(out: Any, suffix: str, size: tuple[int, int], times: list[Fraction], end: Fraction) -> Any:
    _, codec, pix_fmt, _, options, _ = OUTPUTS[suffix]
    time_base = _time_base([*times, end])
    rate = Fraction(len(times)) / end if end > 0 else Fraction(25)
    stream = out.add_stream(codec, rate=rate.limit_denominator(1001), options=options)
    stream.width, stream.height = size
    stream.pix_fmt = pix_fmt
    stream.time_base = stream.codec_context.time_base = time_base
    return stream


def _mux_video(out: Any, stream: Any, frames: Iterable[Image.Image], times: list[Fraction], end: Fraction) -> None:
    time_base = stream.codec_context.time_base
    for index, (image, time) in enumerate(zip(frames, times)):
        frame = av.VideoFrame.from_image(image)
        frame.pts, frame.time_base = int(time / time_base), time_base
        frame.duration = int(((times[index + 1] if index + 1 < len(times) else end) - time) / time_base)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _audio_frames(clip: Clip, start: float, end: float, rate: int, layout: str, size: int) -> Iterator[Any]:
    """The source's audio from `start` to `end` seconds, resampled, in encoder-sized frames, pts from 0."""
    with _open(clip.path) as container:
        stream = container.streams.audio[0]
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        fifo = av.AudioFifo()
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        first, last = round(start * rate), round(end * rate)  # the window, in output samples
        for decoded in container.decode(stream):
            if decoded.pts is None:
                continue
            at = round(float(decoded.pts * stream.time_base) * rate)
            for frame in resampler.resample(decoded):
                keep_from, keep_to = max(first - at, 0), min(last - at, frame.samples)
                at += frame.samples
                if keep_to > keep_from:
                    piece = frame.to_ndarray()[:, keep_from:keep_to].copy(order="C")
                    fifo.write(_audio_frame(piece, layout, rate, None))
            if at >= last:
                break
        sent = 0
        while fifo.samples:
            chunk = fifo.read(min(size, fifo.samples))
            assert chunk is not None  # the fifo holds at least that many samples
            chunk.pts, chunk.time_base = sent, Fraction(1, rate)
            sent += chunk.samples
            yield chunk


def _audio_frame(samples: Any, layout: str, rate: int, pts: int | None) -> Any:
    frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
    frame.sample_rate, frame.pts = rate, pts
    return frame


def _add_audio(out: Any, suffix: str, clip: Clip) -> tuple[Any, int, str]:
    codec = OUTPUTS[suffix][3]
    with _open(clip.path) as container:
        source = container.streams.audio[0]
        rate = 48000 if codec == "libopus" else (source.rate or 48000)  # Opus takes 48 kHz only
        layout = "stereo" if source.channels >= 2 else "mono"
    stream = out.add_stream(codec, rate=rate, layout=layout)
    stream.time_base = Fraction(1, rate)
    return stream, rate, layout


def _mux_audio(out: Any, stream: Any, rate: int, layout: str, clip: Clip, start: float, end: float) -> None:
    size = stream.codec_context.frame_size or 1024  # known once the encoder is open (after the header)
    for frame in _audio_frames(clip, start, end, rate, layout, size):
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def write_video(
    path: str | Path,
    frames: Iterable[Image.Image],
    size: tuple[int, int],
    times: list[Fraction],
    end: Fraction,
    audio: tuple[Clip, float] | None = None,
) -> None:
    """Encode frames of `size` shown at `times` (seconds) until `end`; `audio` = (source, start) cut to match.

    Written through a temp file and renamed: an interruption or a failure leaves no partial file.
    """
    suffix = Path(path).suffix.lower()
    container, muxer = OUTPUTS[suffix][0], OUTPUTS[suffix][5]

    def write(handle: IO[bytes]) -> None:
        # FFmpeg's faststart pass reopens the file by name: encode into a private temp folder, then copy
        # into atomic_write's handle.
        with tempfile.TemporaryDirectory(prefix="impasto-video-") as folder:
            encoded = Path(folder) / f"out{suffix}"
            with av.open(str(encoded), "w", format=container, options=muxer) as out:
                video = _add_video(out, suffix, size, times, end)  # every stream exists before the first packet
                sound = _add_audio(out, suffix, audio[0]) if audio is not None else None
                _mux_video(out, video, frames, times, end)
                if sound is not None and audio is not None:
                    clip, start = audio
                    _mux_audio(out, *sound, clip, start, start + float(end))
            with encoded.open("rb") as source:
                shutil.copyfileobj(source, handle)

    try:
        atomic_write(path, write)
    except av.error.FFmpegError as exc:
        raise ImpastoError(f"{path}: cannot encode ({_reason(exc)})") from None
