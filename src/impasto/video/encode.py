"""Video out through PyAV: H.264/AAC in MP4 (or VP9/Opus in WebM), which every browser plays.

Each frame is shown at the time it is given (so the source's timing survives), and the source's
first audio stream is cut to the same window and re-encoded. The output is written through a temp
file and renamed (`writing.atomic_write`), so it is complete or absent.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
from PIL import Image

from ..errors import ImpastoError
from ..writing import atomic_write, check_writable
from .io import Clip, open_media, reason

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
    with open_media(clip.path) as container:
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
    with open_media(clip.path) as container:
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
        raise ImpastoError(f"{path}: cannot encode ({reason(exc)})") from None
