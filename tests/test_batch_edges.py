"""`impasto batch` and `impasto.batch(...)` at their edges (issue 22, items 3, 5, 7 and 12), one table.

Each case runs the command (in this process, or as a subprocess it signals) or the API, and the test
checks what every case must hold: the exit status (or the exception), exactly one `impasto` line on
stderr (or the exception's one line) and no traceback, and the input images byte-identical
afterwards. A case's own function checks the rest (what was written, what was not).
Real VGG-19 weights on 32-48 px images, one scale, 1-2 iterations, so each job takes well under a second
(the signal cases paint one slow job on purpose, to be stopped in it).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import impasto
from impasto import ImpastoError
from impasto.cli import main

FAST = ["--set", "size=32", "--set", "scales=1", "--set", "iterations=1", "-q"]
TINY = {"size": 32, "scales": 1, "iterations": [1]}


@dataclass
class World:
    """A case's folder: the input images (their hashes taken before the case) and where outputs go."""

    root: Path
    capsys: Any

    @property
    def inputs(self) -> Path:
        return self.root / "in"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def img(self, name: str) -> str:
        return str(self.inputs / name)

    def cli(self, *argv: str) -> tuple[int, str]:
        code = main(["batch", *argv])
        return code, self.capsys.readouterr().err

    def manifest(self, name: str, text: str) -> str:
        path = self.inputs / name
        path.write_text(text)
        return str(path)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _outputs(w: World, suffix: str = ".png") -> list[str]:
    return sorted(p.name for p in w.out.glob(f"*{suffix}"))


def _api(call: Callable[[], Any]) -> tuple[str, str]:
    """('ImpastoError', its message) or ('ok', 'N painted')."""
    try:
        report = call()
    except ImpastoError as exc:
        return "ImpastoError", str(exc)
    return "ok", f"{report.painted} painted"


# -- item 3: a job is its output too --------------------------------------------------------------


def same_work_two_outputs(w: World) -> tuple[Any, str]:
    jobs = w.manifest("jobs.csv", "content,style,output\na.png,art.png,first.png\na.png,art.png,second.png\n")
    code, err = w.cli("-m", jobs, "-o", str(w.out), *FAST[:-1])
    assert _outputs(w) == ["first.png", "second.png"]
    return code, err


def two_rows_one_output(w: World) -> tuple[Any, str]:
    jobs = w.manifest("jobs.csv", "content,style,output\na.png,art.png,same.png\nb.png,art.png,same.png\n")
    code, err = w.cli("-m", jobs, "-o", str(w.out), *FAST)
    assert not w.out.exists()  # refused before the folder is made
    return code, err


def two_lines_one_output_jsonl(w: World) -> tuple[Any, str]:
    rows = [{"content": "a.png", "style": "art.png", "output": "same"}, {"content": "b.png", "style": "art.png",
            "output": "same.png"}]  # fmt: skip
    jobs = w.manifest("jobs.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    code, err = w.cli("-m", jobs, "-o", str(w.out), *FAST)
    assert not w.out.exists()
    return code, err


# -- item 5: a torn ledger line ---------------------------------------------------------------------


def _jpg_batch(w: World, *contents: str) -> tuple[int, str]:
    """JPEGs carry no key: the ledger alone says what is done."""
    args = ["-c", *(w.img(c) for c in contents), "-s", w.img("art.png"), "-o", str(w.out), "--format", "jpg"]
    return w.cli(*args, *FAST[:-1])


def torn_ledger_then_append(w: World) -> tuple[Any, str]:
    assert _jpg_batch(w, "a.png")[0] == 0
    with open(w.out / "ledger.jsonl", "a") as ledger:
        ledger.write('{"key": "0123", "output": "b--art.jpg", "options": {"size": 3')  # a crash mid-line
    assert _jpg_batch(w, "a.png", "b.png")[0] == 0  # paints b, appends its line
    lines = (w.out / "ledger.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["output"] == "b--art.jpg"  # on a line of its own
    return _jpg_batch(w, "a.png", "b.png")  # nothing left to paint


def glued_ledger_line_is_read(w: World) -> tuple[Any, str]:
    assert _jpg_batch(w, "a.png", "b.png")[0] == 0
    ledger = w.out / "ledger.jsonl"
    first, second = ledger.read_text().splitlines()
    torn = '{"key": "0123", "output": "b--art.jpg", "opt'
    ledger.write_text(f"{first}\n{torn}{second}\n")  # as the old append left it: b's entry glued onto a torn one
    return _jpg_batch(w, "a.png", "b.png")


def ledger_is_a_folder(w: World) -> tuple[Any, str]:
    (w.out / "ledger.jsonl").mkdir(parents=True)
    code, err = w.cli("-c", w.img("a.png"), "-s", w.img("art.png"), "-o", str(w.out), *FAST)
    assert _outputs(w) == []
    return code, err


def ledger_cannot_be_written(w: World) -> tuple[Any, str]:
    w.out.mkdir()
    (w.out / "ledger.jsonl").symlink_to(w.out / "gone" / "ledger.jsonl")  # reads as empty, refuses appends
    code, err = w.cli("-c", w.img("a.png"), "-s", w.img("art.png"), "-o", str(w.out), *FAST)
    assert _outputs(w) == ["a--art.png"]  # the painting made before the ledger failed is kept, whole
    with Image.open(w.out / "a--art.png") as kept:
        kept.load()
    assert not list(w.out.glob("*.tmp*")) and not list(w.out.glob(".*"))  # no half-written file left
    return code, err


# -- item 7: SIGTERM and SIGHUP stop the batch cleanly ----------------------------------------------


def _stopped_by(signum: int) -> Callable[[World], tuple[Any, str]]:
    def case(w: World) -> tuple[Any, str]:
        tmp = w.root / "tmp"
        tmp.mkdir()
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(Path(impasto.__file__).parents[1])}
        grid = ["--grid", "iterations=1|4000"]  # a quick job, then one that is still running when the signal comes
        argv = ["-c", w.img("a.png"), "-s", w.img("art.png"), "-o", str(w.out), *grid, *FAST[:4], "-q"]
        proc = subprocess.Popen([sys.executable, "-m", "impasto", "batch", *argv], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 120
        while not (w.out / "a--art--iterations-1.png").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "the first job never finished"
            time.sleep(0.05)
        time.sleep(0.5)  # into the second job
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert _outputs(w) == ["a--art--iterations-1.png"]
        assert (w.out / "summary.csv").is_file() and (w.out / "index.html").is_file()
        assert "a--art--iterations-1.png" in (w.out / "summary.csv").read_text()
        assert not list(tmp.glob("impasto-job-*")), "a job's temp folder (copies of the inputs) was left"
        assert not [p for p in w.out.iterdir() if p.name.endswith(".tmp")]
        return proc.returncode, err

    return case


# -- item 12: what batch() accepts --------------------------------------------------------------------


def one_content_string(w: World) -> tuple[Any, str]:
    result = _api(lambda: impasto.batch(w.img("a.png"), w.img("art.png"), w.out, options=TINY))
    assert _outputs(w) == ["a--art.png"]
    return result


def path_objects(w: World) -> tuple[Any, str]:
    result = _api(lambda: impasto.batch(Path(w.img("a.png")), [Path(w.img("art.png"))], w.out, options=TINY))
    assert _outputs(w) == ["a--art.png"]
    return result


def _refused(**arguments: Any) -> Callable[[World], tuple[Any, str]]:
    def case(w: World) -> tuple[Any, str]:
        given = {"contents": w.img("a.png"), "styles": w.img("art.png"), "folder": w.out, "options": TINY}
        result = _api(lambda: impasto.batch(**{**given, **arguments}))
        assert not w.out.exists()
        return result

    return case


# -- issue 39: messages --------------------------------------------------------------------------------


def unknown_output_type_said_once(w: World) -> tuple[Any, str]:
    jobs = w.manifest("jobs.csv", "content,style,output\na.png,art.png,self.csv\n")
    code, err = w.cli("-m", jobs, "-o", str(w.out), *FAST)
    assert _outputs(w) == []
    return code, err


def symlink_loop(w: World) -> tuple[Any, str]:
    os.symlink(w.img("loop2.png"), w.img("loop.png"))
    os.symlink(w.img("loop.png"), w.img("loop2.png"))
    code, err = w.cli("-c", w.img("loop.png"), "-s", w.img("art.png"), "-o", str(w.out), *FAST)
    assert err.strip().endswith("loop.png: cannot read (Too many levels of symbolic links)"), err
    return code, err


def set_options_are_recorded(w: World) -> tuple[Any, str]:
    code, err = w.cli(
        "-c", w.img("a.png"), "-s", w.img("art.png"), "-o", str(w.out), *FAST[:-1], "--grid", "tv_weight=2"
    )
    with open(w.out / "summary.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    (entry,) = [json.loads(line) for line in (w.out / "ledger.jsonl").read_text().splitlines()]
    assert json.loads(row["options"]) == entry["options"] == {**TINY, "tv_weight": 2.0}  # what size was painted
    return code, err


GRID = "grid takes a dict of option name to a list of values, e.g. {'style_weight': [1, 10]}, got "
PATHS = "a path or a list of paths (files, folders or globs), got "

# case: (run it, expected exit status or exception, the one line it says)
CASES: dict[str, tuple[Callable[[World], tuple[Any, str]], Any, str]] = {
    "3 same work, two outputs": (same_work_two_outputs, 0, "impasto batch: 2 painted, 0 already done, 0 failed"),
    "3 two rows, one output": (
        two_rows_one_output,
        1,
        "impasto: error: jobs.csv: rows 2 and 3 both ask for output same.png",
    ),
    "3 two lines, one output": (
        two_lines_one_output_jsonl,
        1,
        "impasto: error: jobs.jsonl: lines 1 and 2 both ask for output same.png",
    ),
    "5 torn ledger": (torn_ledger_then_append, 0, "impasto batch: 0 painted, 2 already done, 0 failed"),
    "5 glued ledger line": (glued_ledger_line_is_read, 0, "impasto batch: 0 painted, 2 already done, 0 failed"),
    "5 ledger is a folder": (
        ledger_is_a_folder,
        1,
        "impasto: error: {out}/ledger.jsonl: cannot read the ledger (Is a directory)",
    ),
    "5 ledger cannot be written": (
        ledger_cannot_be_written,
        1,
        "impasto: error: {out}/ledger.jsonl: cannot write the ledger (No such file or directory)",
    ),
    "7 SIGTERM": (_stopped_by(signal.SIGTERM), 143, "impasto batch: stopped by SIGTERM; 1 painted, rerun to continue"),
    "7 SIGHUP": (_stopped_by(signal.SIGHUP), 129, "impasto batch: stopped by SIGHUP; 1 painted, rerun to continue"),
    "39 unknown output type said once": (
        unknown_output_type_said_once,
        1,
        "impasto batch: failed: self.csv: jobs.csv row 2: unknown output type .csv; use .png, .jpg, .webp or .tif",
    ),
    "39 a symlink loop is not 'no such file'": (symlink_loop, 1, "impasto batch: failed: loop--art.png: "),
    "39 --set options are in the summary and the ledger": (set_options_are_recorded, 0, "impasto batch: 1 painted"),
    "12 one content string": (one_content_string, "ok", "1 painted"),
    "12 Path objects": (path_objects, "ok", "1 painted"),
    "12 grid as a list": (
        _refused(grid=["style_weight=1,3"]),
        "ImpastoError",
        GRID + "['style_weight=1,3'] of type list",
    ),
    "12 grid axis one value": (
        _refused(grid={"style_weight": 3}),
        "ImpastoError",
        "grid['style_weight'] takes a non-empty list of values, got 3 of type int",
    ),
    "12 grid axis a string": (
        _refused(grid={"init": "content"}),
        "ImpastoError",
        "grid['init'] takes a non-empty list of values, got 'content' of type str",
    ),
    "12 options as a list": (
        _refused(options=["size=32"]),
        "ImpastoError",
        "options takes a dict of option name to value, e.g. {'size': 768}, got ['size=32'] of type list",
    ),
    "12 contents a number": (_refused(contents=5), "ImpastoError", "contents takes " + PATHS + "5 of type int"),
    "12 a style a number": (
        _refused(styles=["x.png", 3]),
        "ImpastoError",
        "styles takes " + PATHS + "an item 3 of type int",
    ),
    "12 folder None": (
        _refused(folder=None),
        "ImpastoError",
        "folder takes a path (str or os.PathLike), got None of type NoneType",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_batch_edge(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], content_image: Image.Image,
                    style_image: Image.Image) -> None:  # fmt: skip
    run, status, message = CASES[name]
    w = World(tmp_path, capsys)
    w.inputs.mkdir()
    content_image.resize((48, 36)).save(w.inputs / "a.png")
    content_image.resize((48, 36)).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(w.inputs / "b.png")
    style_image.resize((40, 40)).save(w.inputs / "art.png")
    before = _hashes(w.inputs)
    got, said = run(w)
    lines = [line for line in said.replace("\r", "\n").splitlines() if line.startswith("impasto")]
    assert "Traceback" not in said, said
    assert got == status, said
    if isinstance(status, int):  # the command: one `impasto` line (a success's ends with its timing)
        assert len(lines) == 1 and lines[0].startswith(message.format(out=w.out)), said
    else:
        assert said.splitlines() == [message], said
    after = _hashes(w.inputs)
    assert {k: v for k, v in after.items() if k in before} == before  # input files byte-identical


def test_a_killed_painters_temp_folder_is_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    """A Ray painter killed mid-job (a stopped batch kills its actors) leaves its temp folder; the next
    painter on the machine removes it, and never a live painter's or a folder that is not a painter's."""
    from impasto.batch.worker import PAINTER_PREFIX, sweep_dead_painters

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is free now
    dead, live = tmp_path / f"{PAINTER_PREFIX}{gone.pid}-ab12", tmp_path / f"{PAINTER_PREFIX}{os.getpid()}-cd34"
    other = tmp_path / f"{PAINTER_PREFIX}notapid-ef56"
    for folder in (dead, live, other):
        (folder / "impasto-job-1").mkdir(parents=True)
        (folder / "impasto-job-1" / "a.png").write_bytes(b"half a picture")
    sweep_dead_painters(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
    assert (live / "impasto-job-1" / "a.png").read_bytes() == b"half a picture"
