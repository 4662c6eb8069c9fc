"""The command line as a user meets it: a real process, its files, its exit code and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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


def test_python_module_and_demo_flag_conflict():
    proc = impasto("--demo", "a.png", "b.png", "-o", "x.png")
    assert proc.returncode == 2 and "--demo uses the bundled images" in proc.stderr


@pytest.mark.skipif(os.environ.get("IMPASTO_SKIP_DEMO") == "1", reason="demo disabled by IMPASTO_SKIP_DEMO")
def test_demo_runs_on_bundled_images(tmp_path):
    out = tmp_path / "demo.png"
    proc = impasto("--demo", "-o", out, *FAST_ARGS)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (64, 43)


@pytest.mark.parametrize("command", ["still", "video", "serve", "batch"])
def test_help_states_each_default_as_it_is_typed(command):
    """Issue 40 item 6: --help printed "(default: None)" after hand-written defaults, Python dicts such as
    {'relu4_2': 1.0}, and nothing at all for options without a help text."""
    import argparse

    from impasto.cli import batch, options, serve, video
    from impasto.cli.common import as_typed

    builders = {"still": options.build_parser, "video": video.build_video_parser}
    parser = {**builders, "serve": serve.build_parser, "batch": batch.build_parser}[command]()
    text = " ".join(parser.format_help().split())
    assert "None" not in text and "{'" not in text and "['" not in text and "True" not in text
    for action in parser._actions:
        shown = action.option_strings and action.help is not argparse.SUPPRESS
        if not shown or action.default in (None, argparse.SUPPRESS, []) or action.default is False:
            continue
        if "default" in (action.help or ""):  # stated in words, once
            assert " ".join(action.help.split()) in text and f"{action.help} (default:" not in text
            continue
        typed = as_typed(action.default)
        assert f"(default: {typed})" in text, action.option_strings
        if action.type is not None and not isinstance(action.default, bool):
            assert action.type(typed) == action.default  # the text, given back to the flag, is the default
