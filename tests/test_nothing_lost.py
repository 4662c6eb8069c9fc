"""Nothing a user has is written over (issue 39, items 1-4): snapshots, batch outputs, the batch's own files.

Every case hashes every file in the case's folder before and after: a file the run did not make must be
byte-identical afterwards, whatever the run did. A refusal is one `impasto` line on stderr, no traceback,
before anything is painted. Real VGG-19 weights on 32-48 px images, one scale, one to four iterations.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import impasto
from impasto.cli import main

STILL = ["--size", "32", "--scales", "1", "--iterations", "4", "-q"]
BATCH = ["--set", "size=32", "--set", "scales=1", "--set", "iterations=1", "-q"]


def _picture(path: Path, seed: int, size: tuple[int, int] = (48, 36)) -> str:
    pixels = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return str(path)


def _hashes(root: Path) -> dict[str, str]:
    files = (p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _kept(before: dict[str, str], root: Path, rewritten: tuple[str, ...] = ()) -> None:
    """Every file there before is there after, byte for byte (but the batch's own `rewritten` ones)."""
    after = _hashes(root)
    assert {name: after.get(name) for name in before if Path(name).name not in rewritten} == {
        name: digest for name, digest in before.items() if Path(name).name not in rewritten
    }


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, [line for line in err.replace("\r", "\n").splitlines() if line.startswith("impasto")]


# -- item 1: --save-every snapshots ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "style", "init", "output", "every", "hard_link"),
    [
        ("snap_s00001.png", "snap_s00002.png", None, "snap.png", 1, False),  # content and style under snapshot names
        ("photo.png", "style.png", "run_s00002.png", "run.png", 2, False),  # refining from an earlier snapshot
        ("photo.png", "style.png", None, "out/snap.png", 1, True),  # out/snap_s00003.png is the photo, hard-linked
    ],
)
def test_snapshots_never_replace_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str,
                                          style: str, init: str | None, output: str, every: int,
                                          hard_link: bool) -> None:  # fmt: skip
    for seed, name in enumerate(filter(None, (content, style, init))):
        _picture(tmp_path / name, seed)
    clash = str(tmp_path / (init or content))
    if hard_link:
        (tmp_path / "out").mkdir()
        os.link(tmp_path / content, tmp_path / "out" / "snap_s00003.png")
        clash = str(tmp_path / "out" / "snap_s00003.png")
    before = _hashes(tmp_path)
    argv = [str(tmp_path / content), str(tmp_path / style), "-o", str(tmp_path / output), "--save-every", str(every)]
    code, lines = _run([*argv, *(["--init", str(tmp_path / init)] if init else []), *STILL], capsys)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"impasto: error: --save-every snapshot {clash} is the same file as the input"), lines
    assert _hashes(tmp_path) == before  # nothing painted, nothing written


def test_snapshots_of_other_steps_are_written_beside_an_init_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init = _picture(tmp_path / "run_s00002.png", 0)
    args = [_picture(tmp_path / "photo.png", 1), _picture(tmp_path / "style.png", 2), "--init", init]
    before = _hashes(tmp_path)
    code, lines = _run([*args, "-o", str(tmp_path / "run.png"), "--save-every", "3", *STILL], capsys)
    assert code == 0 and not lines, lines
    _kept(before, tmp_path)
    assert sorted(set(_hashes(tmp_path)) - set(before)) == ["run.png", "run_s00003.png"]


# -- items 2 and 3: a batch writes only what it made ---------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """photo.png and art.png, a manifest whose rows name outputs, and the hashes of all of it."""
    _picture(tmp_path / "photo.png", 0)
    _picture(tmp_path / "art.png", 1, (40, 40))
    return tmp_path


def _manifest(folder: Path, *outputs: str, name: str = "jobs.csv") -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{Path(os.path.relpath(folder, path.parent)) / 'photo.png'},"
                   f"{Path(os.path.relpath(folder, path.parent)) / 'art.png'},{out}\n" for out in outputs)  # fmt: skip
    path.write_text("content,style,output\n" + rows)
    return str(path)


def test_a_manifest_output_naming_its_input_refuses_that_row(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = _manifest(folder, "photo.png", "painted.png")
    before = _hashes(folder)
    code, lines = _run(["batch", "-m", jobs, "-o", str(folder), *BATCH], capsys)
    assert code == 1 and lines == [
        f"impasto batch: failed: photo.png: jobs.csv row 2: output {folder / 'photo.png'} is the same file as the "
        f"input {folder / 'photo.png'}; choose another name"
    ]
    _kept(before, folder)
    assert (folder / "painted.png").is_file()  # the other row ran


def test_a_users_picture_under_an_output_name_is_kept(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = folder / "out"
    _picture(out / "mine.png", 5)
    before = _hashes(folder)
    code, lines = _run(["batch", "-m", _manifest(folder, "mine.png", "painted.png"), "-o", str(out), *BATCH], capsys)
    assert code == 1 and lines == [
        f"impasto batch: failed: mine.png: jobs.csv row 2: {out / 'mine.png'} is not a file impasto batch made; "
        "move it or choose another output name"
    ]
    _kept(before, folder)
    assert (out / "painted.png").is_file()


USERS_FILES = {
    "summary.csv": "name,notes\nholiday,keep this\n",
    "index.html": "<!doctype html><title>my photo site</title>\n",
    "ledger.jsonl": '{"content": "photo.png", "style": "art.png", "output": "x.png"}\n',
}


@pytest.mark.parametrize("name", list(USERS_FILES))
def test_a_users_file_of_the_batchs_own_names_stops_the_batch(
    folder: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    out = folder / "out"
    out.mkdir()
    (out / name).write_text(USERS_FILES[name])
    before = _hashes(folder)
    code, lines = _run(["batch", "-c", str(folder / "photo.png"), "-s", str(folder / "art.png"), "-o", str(out),
                        *BATCH], capsys)  # fmt: skip
    assert code == 1 and lines == [
        f"impasto: error: {out / name}: not made by impasto batch, which writes its {name} there; "
        "move it or give -o another folder"
    ]
    assert _hashes(folder) == before  # nothing painted, nothing written, no lock left


@pytest.mark.parametrize("name", ["summary.csv", "ledger.jsonl"])
def test_a_manifest_in_the_output_folder_is_never_written(
    folder: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    out = folder / "out"
    if name == "ledger.jsonl":
        out.mkdir()
        (out / name).write_text('{"content": "../photo.png", "style": "../art.png", "output": "a.png"}\n')
        jobs = str(out / name)
    else:
        jobs = _manifest(folder, "a.png", name=f"out/{name}")
    before = _hashes(folder)
    code, lines = _run(["batch", "-m", jobs, "-o", str(out), *BATCH], capsys)
    assert code == 1 and lines == [
        f"impasto: error: the manifest {jobs} is where the batch writes its {name}; move it or give -o another folder"
    ]
    assert _hashes(folder) == before


def test_a_manifest_of_its_own_name_in_the_output_folder_is_read_not_written(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = folder / "out"
    jobs = _manifest(folder, "a.png", name="out/jobs.csv")
    before = _hashes(folder)
    for _ in range(2):  # a rerun too
        code, lines = _run(["batch", "-m", jobs, "-o", str(out), *BATCH], capsys)
        assert code == 0 and not lines, lines
    _kept(before, folder)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "index.html", "jobs.csv", "ledger.jsonl", "summary.csv"]


# -- item 4: one batch at a time, and an input folder that is also the output folder ------------------


def test_a_second_batch_on_a_locked_folder_refuses_at_once(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from impasto.writing import FolderLock

    out = folder / "out"
    argv = ["batch", "-c", str(folder / "photo.png"), "-s", str(folder / "art.png"), "-o", str(out), *BATCH]
    with FolderLock(out, "output folder", "-o"):  # as a running batch holds it
        before = _hashes(folder)
        code, lines = _run(argv, capsys)
        assert code == 1 and lines == [
            f"impasto: error: {out}: another impasto run is painting into this output folder; "
            "wait for it to finish or give -o another folder"
        ]
        assert _hashes(folder) == before
    assert not out.exists()  # the lock's folder, empty, is gone with it
    assert _run(argv, capsys) == (0, [])


def test_two_batches_at_once_paint_each_job_once(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real second process: the first batch paints a slow job while the second one starts."""
    out = folder / "out"
    argv = ["-c", str(folder / "photo.png"), "-s", str(folder / "art.png"), "-o", str(out), *BATCH[:4]]
    env = {**os.environ, "PYTHONPATH": str(Path(impasto.__file__).parents[1])}
    first = subprocess.Popen([sys.executable, "-m", "impasto", "batch", *argv, "--set", "iterations=4000", "-q"],
                             env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not out.is_dir():  # made as the batch starts, before it paints
            assert first.poll() is None and time.monotonic() < deadline, "the first batch never started"
            time.sleep(0.05)
        time.sleep(0.2)
        code, lines = _run(["batch", *argv, "--set", "iterations=4000", "-q"], capsys)
        assert code == 1 and len(lines) == 1 and "another impasto run is painting into this output folder" in lines[0]
        assert not (out / "ledger.jsonl").exists()  # the second one recorded nothing
    finally:
        first.terminate()
        first.communicate(timeout=60)
    assert first.returncode == 143


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_a_rerun_into_its_input_folder_does_not_paint_its_paintings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    photos = tmp_path / "photos"
    _picture(photos / "a.png", 0)
    _picture(photos / "b.png", 1)
    style = _picture(tmp_path / "art.png", 2, (40, 40))
    argv = ["batch", "-c", str(photos), "-s", style, "-o", str(photos), "--format", fmt, *BATCH]
    assert _run(argv, capsys) == (0, [])
    before = _hashes(tmp_path)
    assert _run(argv, capsys) == (0, [])
    assert _run(argv, capsys) == (0, [])
    _kept(before, tmp_path, rewritten=("summary.csv", "index.html"))
    pictures = sorted(p.name for p in photos.iterdir() if p.suffix != ".csv" and p.suffix != ".html")
    assert pictures == ["a--art." + fmt, "a.png", "b--art." + fmt, "b.png", "ledger.jsonl"]
