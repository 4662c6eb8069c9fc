"""A synthetic clip with known motion, made on the spot: for the tests, the benchmark and a first try.

The background (scikit-image's Chelsea photo, enlarged) pans by a fixed number of pixels per frame
and a textured square slides across it the other way, so there are both global motion and
disocclusions; a 440 Hz tone plays along, so that the audio's survival can be checked.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from ..samples import default_content, default_style


def moving_frames(
    count: int, size: tuple[int, int], pan: int = 2, slide: tuple[int, int] = (-3, 1)
) -> list[Image.Image]:
    """`count` frames of `size`: the background moves left by `pan` px a frame, the square by `slide`."""
    width, height = size
    background = default_content().resize((width + pan * count + 8, height + 8), Image.Resampling.LANCZOS)
    square = default_style(max(16, height // 2)).crop((0, 0, height // 3, height // 3))
    frames = []
    for t in range(count):
        frame = background.crop((pan * t, 4, pan * t + width, 4 + height))
        frame.paste(square, (width // 2 + slide[0] * t, height // 3 + slide[1] * t))
        frames.append(frame)
    return frames


def write_clip(
    path: str | Path, frames: list[Image.Image], fps: int = 25, audio_hz: float | None = 440.0, rate: int = 44100,
    rotation: int = 0,
) -> None:  # fmt: skip
    """Encode frames as H.264 (and a sine tone as AAC) into an MP4: a real file, as a camera would make one.

    `rotation`: the display matrix's turn, counter-clockwise degrees as FFmpeg reads it back (a phone held
    upright stores its picture turned a quarter counter-clockwise and writes -90: players turn it back)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height = frames[0].size
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "12"}
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=rate, layout="mono") if audio_hz else None
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_image(image)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None and audio_hz is not None:
            samples = round(len(frames) / fps * rate)
            tone = (0.3 * np.sin(2 * np.pi * audio_hz * np.arange(samples) / rate)).astype(np.float32)
            for start in range(0, samples, 1024):
                frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
