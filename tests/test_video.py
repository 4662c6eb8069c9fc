"""`impasto video` end to end on a dozen small frames: real VGG-19, real encoded files.

One uninterrupted run is shared by the tests; the others interrupt, resume and compare with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av", reason="the video extra is not installed")
pytest.importorskip("cv2", reason="the video extra is not installed")

import av  # noqa: E402
from test_video_io import decoded  # noqa: E402

import impasto  # noqa: E402
from impasto.errors import ImpastoError  # noqa: E402
from impasto.samples import default_style  # noqa: E402
from impasto.video.flow import warping_error  # noqa: E402
from impasto.video.io import Window, probe, read_frames  # noqa: E402
from impasto.video.samples import moving_frames, write_clip  # noqa: E402
from impasto.video.workdir import WorkDir  # noqa: E402

FRAMES = 12
SETTINGS = dict(size=96, scales=1, iterations=[30], seed=0)
VIDEO = dict(frame_iterations=8, temporal_weight=200.0)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("video")
    clip, style = folder / "moving.mp4", folder / "style.png"
    write_clip(clip, moving_frames(FRAMES, (96, 72)))
    default_style(128).save(style)
    return clip, style


@pytest.fixture(scope="module")
def painted(inputs, tmp_path_factory) -> dict:
    clip, style = inputs
    folder = tmp_path_factory.mktemp("painted")
    out, work = folder / "out.mp4", folder / "frames"
    result = impasto.video(clip, style, out, work_dir=work, keep_frames=True, **VIDEO, **SETTINGS)
    return {"result": result, "out": out, "work": work, "decoded": decoded(out)}


def test_video_keeps_frame_count_timing_and_audio(painted):
    result, got = painted["result"], painted["decoded"]
    assert result.complete and result.frames == FRAMES and result.size == (96, 72)
    assert len(got["images"]) == FRAMES and got["codec"] == "h264+aac"
    assert [float(t) for t in got["times"]] == pytest.approx([i / 25 for i in range(FRAMES)])
    assert abs(probe(painted["out"]).duration - FRAMES / 25) < 0.02
    assert abs(got["audio"] - FRAMES / 25) < 0.05
    assert len(result.later_seconds) == FRAMES - 1 and result.first_seconds is not None


def test_temporal_consistency_beats_independent_frames(inputs, painted):
    """The point of it all: far less flicker than painting each frame as a still, at a similar style loss."""
    clip, style = inputs
    frames = [f.image for f in read_frames(probe(clip), Window(), (96, 72))]
    independent = [impasto.run(frame, style, **SETTINGS).image for frame in frames]
    video = [Image.open(painted["work"] / f"frame_{i:06d}.png").convert("RGB") for i in range(FRAMES)]
    assert video[0].tobytes() == independent[0].tobytes()  # frame 0 is the still itself
    assert warping_error(frames, video) < 0.5 * warping_error(frames, independent)


def test_resume_after_interruption_paints_the_same_video(inputs, painted, tmp_path):
    clip, style = inputs
    out, work = tmp_path / "out.mp4", tmp_path / "frames"

    def stop_at_frame_5(progress) -> bool:
        return progress.frame == 5

    first = impasto.video(clip, style, out, work_dir=work, callback=stop_at_frame_5, **VIDEO, **SETTINGS)
    assert first.stopped == "callback" and first.frames == 5
    assert len(decoded(out)["images"]) == 5  # a playable video of the frames done
    assert sorted(p.name for p in work.glob("frame_*.png"))[-1] == "frame_000004.png"
    second = impasto.video(clip, style, out, work_dir=work, **VIDEO, **SETTINGS)
    assert second.complete and second.frames == FRAMES and len(second.later_seconds) == FRAMES - 5
    assert not work.exists()  # a complete run cleans its work folder up
    got, want = decoded(out)["images"], painted["decoded"]["images"]
    assert len(got) == FRAMES and all(np.array_equal(a, b) for a, b in zip(got, want))


def test_work_folder_refuses_or_restarts_on_other_settings(tmp_path):
    folder = tmp_path / "frames"
    with WorkDir(folder, {"style_weight": 3}) as store:
        store.save(0, Image.new("RGB", (8, 8), "red"))
    with WorkDir(folder, {"style_weight": 3}) as store:
        assert store.load(0) is not None
    with pytest.raises(ImpastoError, match="other settings"):
        WorkDir(folder, {"style_weight": 5}, resume=True)
    with WorkDir(folder, {"style_weight": 5}) as store:
        assert store.load(0) is None and sorted(p.name for p in folder.iterdir()) == [".impasto-lock"]
    assert not folder.exists()  # ours, and empty once the run let go of it
    with WorkDir(tmp_path / "keep", {"a": 1}) as store:
        store.save(0, Image.new("RGB", (8, 8)))
        (tmp_path / "keep" / "mine.txt").write_text("the user's")
        store.clear()
    assert [p.name for p in (tmp_path / "keep").iterdir()] == ["mine.txt"]  # only our files are removed


def test_ctrl_c_writes_a_playable_video_of_the_frames_done(inputs, tmp_path):
    clip, style = inputs
    out = tmp_path / "out.mp4"
    work = Path(f"{out}.frames")
    args = ["--size", "96", "--scales", "1", "--iterations", "30", "--frame-iterations", "40", "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "impasto", "video", str(clip), str(style), "-o", str(out), *args],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (work / "frame_000002.png").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    done = len(list(work.glob("frame_*.png")))
    assert 3 <= done < FRAMES and len(decoded(out)["images"]) == done
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    assert os.access(out, os.R_OK)


def test_a_phone_clip_is_painted_and_written_upright(tmp_path):
    """Issue 39 item 5: a portrait phone clip (landscape pixels, rotation -90) came out landscape, playing sideways."""
    shown = moving_frames(4, (48, 64))  # portrait, as the phone's player shows it
    clip, style, out = tmp_path / "phone.mp4", tmp_path / "style.png", tmp_path / "out.mp4"
    write_clip(clip, [image.transpose(Image.Transpose.ROTATE_90) for image in shown], rotation=-90)
    default_style(64).save(style)
    result = impasto.video(clip, style, out, size=64, scales=1, iterations=[6], frame_iterations=2, frames=3, seed=0)
    assert result.complete and result.size == (48, 64)
    got = decoded(out)["images"]
    assert len(got) == 3 and got[0].shape == (64, 48, 3)  # portrait pixels ...
    with av.open(str(out)) as container:  # ... and no display matrix that would turn them again
        assert next(container.decode(video=0)).side_data.get("DISPLAYMATRIX") is None
    photo = np.asarray(shown[0], float)
    assert np.abs(got[0] - photo).mean() < 0.5 * np.abs(got[0] - photo[::-1, ::-1]).mean()  # painted the right way up
    Image.fromarray(got[0]).save(tmp_path / "frame0.png")  # to look at: the cat's face upright
