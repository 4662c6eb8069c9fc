"""The command line as a user meets it: a real process, its files, its exit code and its one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

FAST_ARGS = ["--size", "64", "--scales", "1", "--iterations", "6", "--quiet"]


def impasto(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "impasto", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def test_round_trip_writes_image_metadata_and_trace(image_files, tmp_path):
    content, style = image_files
    out, trace = tmp_path / "out.png", tmp_path / "trace.json"
    proc = impasto(content, style, "-o", out, *FAST_ARGS, "--loss-trace", trace, "--style-weight", "500")
    assert proc.returncode == 0, proc.stderr
    image = Image.open(out)
    assert image.size == (64, 48)
    assert image.text["impasto:style_weight"] == "500.0"
    rows = json.loads(trace.read_text())
    assert len(rows) == 6 and {"loss", "content", "style", "step", "seconds"} <= set(rows[0])


def test_csv_trace_and_save_every(image_files, tmp_path):
    content, style = image_files
    out = tmp_path / "out.jpg"
    proc = impasto(content, style, "-o", out, *FAST_ARGS, "--loss-trace", tmp_path / "t.csv", "--save-every", "3")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "t.csv").read_text().startswith("scale,step,")
    assert sorted(p.name for p in tmp_path.glob("out_s*.jpg")) == ["out_s00003.jpg", "out_s00006.jpg"]
    assert Image.open(out).format == "JPEG"


def test_help_explains_options():
    proc = impasto("--help")
    assert proc.returncode == 0
    for option in ("--size", "--style-weight", "--init", "--seed", "--device", "--scales", "--loss-trace"):
        assert option in proc.stdout


def _bad_inputs(tmp_path: Path, content: Path, style: Path) -> dict[str, tuple[list, str]]:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(content.read_bytes()[:200])
    out = tmp_path / "out.png"
    return {
        "missing": ([tmp_path / "nope.jpg", style, "-o", out], "no such file"),
        "text": ([content, text, "-o", out], "not an image"),
        "empty": ([empty, style, "-o", out], "file is empty"),
        "corrupt": ([corrupt, style, "-o", out], "corrupt or truncated"),
        "zero size": ([content, style, "-o", out, "--size", "0"], "size must be"),
        "absurd size": ([content, style, "-o", out, "--size", "999999"], "size must be"),
        "negative weight": ([content, style, "-o", out, "--style-weight", "-3"], "non-negative"),
        "bad layer": ([content, style, "-o", out, "--style-layers", "relu1_1,relu7_1"], "unknown layer"),
        "unwritable": ([content, style, "-o", tmp_path / "no" / "dir" / "out.png"], "does not exist"),
        "bad extension": ([content, style, "-o", tmp_path / "out.bmpx"], "unknown output type"),
        "no style": ([content, "-o", out], "at least one STYLE"),
    }


def test_every_bad_input_gives_one_line_and_leaves_no_file(image_files, tmp_path):
    content, style = image_files
    before = set(tmp_path.rglob("*"))
    for name, (args, message) in _bad_inputs(tmp_path, content, style).items():
        proc = impasto(*FAST_ARGS, *args)
        assert proc.returncode != 0, name
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, (name, proc.stderr)
        assert message in lines[0], (name, lines[0])
    created = set(tmp_path.rglob("*")) - before
    assert {p.name for p in created} == {"notes.jpg", "empty.png", "corrupt.png"}


def test_ctrl_c_keeps_best_image(image_files, tmp_path):
    content, style = image_files
    out = tmp_path / "out.png"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "impasto",
            content,
            style,
            "-o",
            out,
            "--size",
            "64",
            "--scales",
            "1",
            "--iterations",
            "100000",
            "--tolerance",
            "0",
            "--save-every",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 180
    while not list(tmp_path.glob("out_s*.png")) and time.time() < deadline:
        time.sleep(0.2)  # wait until optimisation is under way
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "best image so far saved" in stderr
    assert Image.open(out).size == (64, 48)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_python_module_and_demo_flag_conflict():
    proc = impasto("--demo", "a.png", "b.png", "-o", "x.png")
    assert proc.returncode == 2 and "--demo uses the bundled images" in proc.stderr


@pytest.mark.skipif(os.environ.get("IMPASTO_SKIP_DEMO") == "1", reason="demo disabled by IMPASTO_SKIP_DEMO")
def test_demo_runs_on_bundled_images(tmp_path):
    out = tmp_path / "demo.png"
    proc = impasto("--demo", "-o", out, *FAST_ARGS)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (64, 43)
