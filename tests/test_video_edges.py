"""`impasto video` refuses what would destroy a user's files (issue 22): one line, a non-zero exit,
no traceback, and every input byte-identical afterwards. Each case runs the real command."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("av", reason="the video extra is not installed")
pytest.importorskip("cv2", reason="the video extra is not installed")

from impasto.samples import default_style  # noqa: E402
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
