"""`impasto video` refuses what would destroy a user's files (issue 22): one line, a non-zero exit,
no traceback, and every input byte-identical afterwards. Each case runs the real command."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("av", reason="the video extra is not installed")
pytest.importorskip("cv2", reason="the video extra is not installed")

from test_video_io import decoded  # noqa: E402

import impasto  # noqa: E402
from impasto.cli import main  # noqa: E402
from impasto.errors import ImpastoError  # noqa: E402
from impasto.samples import default_style  # noqa: E402
from impasto.video.encode import write_video  # noqa: E402
from impasto.video.samples import moving_frames, write_clip  # noqa: E402

FAST = ["--size", "32", "--scales", "1", "--iterations", "2", "--frame-iterations", "1", "--frames", "2", "-q"]


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    clip, style = tmp_path / "clip.mp4", tmp_path / "style.png"
    write_clip(clip, moving_frames(3, (48, 32)))
    default_style(64).save(style)
    return clip, style


def _symlink(target: Path) -> Path:
    link = target.with_name("link" + target.suffix)
    os.symlink(target, link)
    return link


def _hardlink(target: Path) -> Path:
    link = target.with_name("hard" + target.suffix)
    os.link(target, link)
    return link


# name: the output, made from (clip, style)
OUTPUT_IS_AN_INPUT: dict[str, Callable[[Path, Path], Path]] = {
    "output is the clip": lambda clip, style: clip,
    "output is the clip, another spelling": lambda clip, style: clip.parent / "." / clip.name,
    "output is a symlink to the clip": lambda clip, style: _symlink(clip),
    "output is a hard link to the clip": lambda clip, style: _hardlink(clip),
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", OUTPUT_IS_AN_INPUT, ids=list(OUTPUT_IS_AN_INPUT))
def test_an_output_that_is_an_input_is_refused(case: str, inputs: tuple[Path, Path]) -> None:
    clip, style = inputs
    output = OUTPUT_IS_AN_INPUT[case](clip, style)
    before = {path: _digest(path) for path in (clip, style)}
    proc = subprocess.run(
        [sys.executable, "-m", "impasto", "video", str(clip), str(style), "-o", str(output), *FAST],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "is the same file as the input" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert {path: _digest(path) for path in (clip, style)} == before  # nothing of the user's overwritten
    assert not list(clip.parent.glob("*.frames")), "a work folder was made for a refused run"


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "impasto", "video", *args], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def _one_line(proc: subprocess.CompletedProcess[str] | subprocess.Popen[str], err: str, code: int, words: str) -> None:
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], err
    assert "Traceback" not in err


def _users_frames(folder: Path) -> Path:
    """A folder of the user's own that happens to hold frame_*.png files."""
    folder.mkdir()
    for index, colour in enumerate(("red", "blue")):
        Image.new("RGB", (48, 32), colour).save(folder / f"frame_{index:06d}.png")
    (folder / "notes.txt").write_text("the user's")
    return folder


def _a_file_below(folder: Path) -> Path:
    (folder / "plain").write_text("a file, not a folder")
    return folder / "plain" / "frames"


# name: (the --work-dir made from (folder, clip, output), the words of the one-line refusal)
WORK_DIRS: dict[str, tuple[Callable[[Path, Path, Path], Path], str]] = {
    "work dir is the output": (lambda folder, clip, out: out, "--work-dir cannot be the output"),
    "work dir is the clip": (lambda folder, clip, out: clip, "work folder path is a file"),
    "work dir is the clip's folder": (lambda folder, clip, out: folder, "was not made by impasto"),
    "work dir holds the user's frame PNGs": (lambda folder, clip, out: _users_frames(folder / "mine"),
                                             "was not made by impasto"),
    "work dir cannot be created": (lambda folder, clip, out: _a_file_below(folder), "cannot create the work folder"),
}  # fmt: skip


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): _digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", WORK_DIRS, ids=list(WORK_DIRS))
def test_a_work_dir_that_would_lose_files_is_refused_before_painting(case: str, inputs: tuple[Path, Path]) -> None:
    clip, style = inputs
    folder, output = clip.parent, clip.parent / "out.mp4"
    make, words = WORK_DIRS[case]
    work = make(folder, clip, output)
    before = _tree(folder)
    painted: list[object] = []
    with pytest.raises(ImpastoError, match=words):  # the API, to see that not one evaluation ran
        impasto.video(clip, style, output, work_dir=work, size=32, scales=1, iterations=[2], frame_iterations=1,
                      frames=2, callback=painted.append)  # fmt: skip
    assert not painted, "it painted before refusing the work folder"
    proc = _run([str(clip), str(style), "-o", str(output), "--work-dir", str(work), *FAST])
    _one_line(proc, proc.stderr, 1, words)
    assert _tree(folder) == before  # every file of the user's byte-identical, nothing added


def _truncated(clip: Path) -> Path:
    """An MP4 cut right after its media header: the index promises frames that are not there."""
    frames = moving_frames(30, (48, 32))
    write_video(clip, frames, (48, 32), [Fraction(i, 25) for i in range(30)], Fraction(30, 25))
    data = clip.read_bytes()
    clip.write_bytes(data[: data.find(b"mdat") + 4])
    return clip


def test_a_truncated_clip_says_so_not_a_wrong_length(tmp_path: Path) -> None:
    clip, style = _truncated(tmp_path / "cut.mp4"), tmp_path / "style.png"
    default_style(64).save(style)
    before = _tree(tmp_path)
    proc = _run([str(clip), str(style), "-o", str(tmp_path / "out.mp4"), *FAST])
    _one_line(proc, proc.stderr, 1, "cannot decode any video frame (the file is truncated or corrupt)")
    assert " s long" not in proc.stderr
    assert _tree(tmp_path) == before


def test_frames_over_the_pixel_guard_are_refused_before_decoding(inputs: tuple[Path, Path], monkeypatch, capsys):
    clip, style = inputs
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 48 * 32 - 1)  # the still's guard, scaled to the tiny clip
    before = _tree(clip.parent)
    code = main(["video", str(clip), str(style), "-o", str(clip.parent / "out.mp4"), *FAST])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert f"{clip}: its frame size is too large (48x32" in err and "decompression-bomb guard" in err
    assert _tree(clip.parent) == before


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), "the first frame never appeared"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_writes_the_frames_done_and_a_second_run_is_refused(sig, inputs: tuple[Path, Path]):
    clip, style = inputs
    write_clip(clip, moving_frames(40, (48, 32)))  # long enough to be stopped halfway
    inputs_before = {path: _digest(path) for path in (clip, style)}
    out = clip.parent / "out.mp4"
    slow = ["--size", "32", "--scales", "1", "--iterations", "2", "--frame-iterations", "30", "-q"]
    first = subprocess.Popen([sys.executable, "-m", "impasto", "video", str(clip), str(style), "-o", str(out), *slow],
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_for(Path(f"{out}.frames") / "frame_000001.png", first)
        second = _run([str(clip), str(style), "-o", str(out), *slow])  # the same output and work folder
        _one_line(second, second.stderr, 1, "another impasto run is painting into this work folder")
        first.send_signal(sig)
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    _one_line(first, err, 128 + sig, f"stopped by {signal.Signals(sig).name}; the ")
    done = len(list(Path(f"{out}.frames").glob("frame_*.png")))
    assert 2 <= done < 40 and len(decoded(out)["images"]) == done  # a playable video of the frames done
    assert {path: _digest(path) for path in (clip, style)} == inputs_before
    assert not [p for p in clip.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    assert not (Path(f"{out}.frames") / ".impasto-lock").exists()


def test_a_resumed_run_writes_the_same_bytes(tmp_path: Path) -> None:
    clip, style = tmp_path / "odd.mp4", tmp_path / "style.png"
    write_clip(clip, moving_frames(40, (62, 34)))  # not a multiple of 16: where x264's rate control wandered
    default_style(64).save(style)
    settings = dict(size=62, scales=1, iterations=[2], frame_iterations=2, seed=0)
    whole = impasto.video(clip, style, tmp_path / "whole.mp4", **settings)
    assert whole.complete and whole.frames == 40
    stopped = impasto.video(clip, style, tmp_path / "resumed.mp4", callback=lambda p: p.frame >= 10, **settings)
    assert not stopped.complete and 0 < stopped.frames < 40
    resumed = impasto.video(clip, style, tmp_path / "resumed.mp4", **settings)
    assert resumed.complete and resumed.frames == 40
    assert _digest(tmp_path / "resumed.mp4") == _digest(tmp_path / "whole.mp4")


@pytest.mark.parametrize(
    ("window", "bar", "report"),
    [
        (["--duration", "5"], "3/3", "3 frames of"),  # counted to 125 (5 s x 25), with an hours-long ETA
        (["--frames", "1"], "1/1", "1 frame of"),  # "0/1" and "1 frames"
        ([], "3/3", "3 frames of"),  # "2/3 67%": the bar stopped one short
    ],
)
def test_the_progress_bar_counts_the_frames_painted(
    window: list[str], bar: str, report: str, inputs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 39 item 9: the total is the frames that will be painted, and the bar ends on it."""
    clip, style = inputs
    fast = ["--size", "32", "--scales", "1", "--iterations", "2", "--frame-iterations", "1"]  # FAST, with the bar
    code = main(["video", str(clip), str(style), "-o", str(clip.parent / "out.mp4"), *fast, *window])
    err = capsys.readouterr().err
    assert code == 0, err
    counts = {match.split("/")[1] for match in re.findall(r"\| (\d+/\d+) \[", err)}
    assert counts == {bar.split("/")[1]} and f"| {bar} [" in err.split("\r")[-1].split("\n")[0], err
    assert err.strip().splitlines()[-1].startswith(f"impasto: wrote {clip.parent / 'out.mp4'}: {report} ")
