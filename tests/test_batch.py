"""`impasto batch` on the local engine: outputs once each, keys, resuming, failures that stay local.

Real VGG-19 weights on 64 px images with 3 iterations at one scale, so each job takes a fraction of a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from impasto.batch import batch
from impasto.batch.ledger import LEDGER, png_key
from impasto.batch.plan import Job, name_jobs
from impasto.cli import main
from impasto.config import default

TINY = {"size": 64, "scales": 1, "iterations": [3]}
TINY_ARGS = ["--set", "size=64", "--set", "scales=1", "--set", "iterations=3"]


@pytest.fixture
def inputs(tmp_path: Path, content_image: Image.Image, style_image: Image.Image) -> dict[str, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = {"a": folder / "a.png", "b": folder / "b.jpg", "style": folder / "stripes.png"}
    content_image.save(paths["a"])
    content_image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(paths["b"], quality=95)
    style_image.save(paths["style"])
    return paths


def _ledger(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / LEDGER).read_text().splitlines()]


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_grid_paints_each_output_once_and_a_rerun_skips_them(inputs, tmp_path):
    out = tmp_path / "out"
    report = batch([str(inputs["a"]), str(inputs["b"])], [str(inputs["style"])], out,
                   grid={"style_weight": [1, 10]}, options=TINY)  # fmt: skip
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [
        "a--stripes--style_weight-1.png",
        "a--stripes--style_weight-10.png",
        "b--stripes--style_weight-1.png",
        "b--stripes--style_weight-10.png",
    ]
    assert report.ok and report.painted == 4 and report.skipped == 0
    entries = _ledger(out)
    assert sorted(e["output"] for e in entries) == names and all(e["status"] == "ok" for e in entries)
    for entry in entries:  # the key in the file is the ledger's, and the loss is the written image's
        assert png_key(out / entry["output"]) == entry["key"]
        assert entry["loss"] > 0 and entry["seconds"] > 0
    assert len({e["key"] for e in entries}) == 4
    # more style weight, more of the stripes' style (and a larger total loss)
    by_name = {e["output"]: e for e in entries}
    assert (
        by_name["a--stripes--style_weight-10.png"]["terms"]["style"]
        > by_name["a--stripes--style_weight-1.png"]["terms"]["style"]
    )
    stamps = {n: (out / n).stat().st_mtime_ns for n in names}

    again = batch([str(inputs["a"]), str(inputs["b"])], [str(inputs["style"])], out,
                  grid={"style_weight": [1, 10]}, options=TINY)  # fmt: skip
    assert again.ok and again.painted == 0 and again.skipped == 4
    assert {n: (out / n).stat().st_mtime_ns for n in names} == stamps
    assert len(_ledger(out)) == 4
    assert not list(out.glob(".*.tmp"))


def test_a_changed_input_or_option_repaints_only_its_jobs(inputs, tmp_path):
    out = tmp_path / "out"
    args = ([str(inputs["a"]), str(inputs["b"])], [str(inputs["style"])], out)
    first = batch(*args, options=TINY)
    assert first.painted == 2
    Image.open(inputs["b"]).rotate(180).save(inputs["b"], quality=95)  # new bytes, same name
    second = batch(*args, options=TINY)
    assert (second.painted, second.skipped) == (1, 1)
    assert [e["output"] for e in _ledger(out)][-1] == "b--stripes.png"
    third = batch(*args, options={**TINY, "tv_weight": 2.0})  # a new config is new work
    assert third.painted == 2
    same = batch(*args, options={**TINY, "tv_weight": 2.0, "style_weight": default("style_weight")})  # same config
    assert same.painted == 0 and same.skipped == 2


def test_png_metadata_alone_marks_a_job_done_other_formats_need_the_ledger(inputs, tmp_path):
    png, jpg = tmp_path / "png", tmp_path / "jpg"
    for folder, suffix in ((png, ".png"), (jpg, ".jpg")):
        assert batch([str(inputs["a"])], [str(inputs["style"])], folder, options=TINY, suffix=suffix).painted == 1
        (folder / LEDGER).unlink()
    assert batch([str(inputs["a"])], [str(inputs["style"])], png, options=TINY).skipped == 1
    assert batch([str(inputs["a"])], [str(inputs["style"])], jpg, options=TINY, suffix=".jpg").painted == 1
    assert batch([str(inputs["a"])], [str(inputs["style"])], jpg, options=TINY, suffix=".jpg").skipped == 1


def test_a_corrupt_input_fails_only_its_own_job_with_one_line(inputs, tmp_path, capsys):
    bad = inputs["a"].with_name("broken.png")
    bad.write_bytes(inputs["a"].read_bytes()[:200])  # truncated PNG
    out = tmp_path / "out"
    code = main(["batch", "-c", str(bad), str(inputs["a"]), str(inputs["b"]), "-s", str(inputs["style"]),
                 "-o", str(out), "-q", *TINY_ARGS])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"impasto batch: failed: broken--stripes.png: {bad}: corrupt")
    assert sorted(p.name for p in out.glob("*.png")) == ["a--stripes.png", "b--stripes.png"]
    failed = [e for e in _ledger(out) if e["status"] == "failed"]
    assert [e["output"] for e in failed] == ["broken--stripes.png"] and str(bad) in failed[0]["error"]
    sheet = (out / "index.html").read_text()
    assert sheet.count("data:image/jpeg;base64,") == 2 and "corrupt or truncated" in sheet


def test_a_missing_file_is_that_jobs_error_and_the_rest_runs(inputs, tmp_path):
    report = batch([str(inputs["a"]), str(tmp_path / "gone.png")], [str(inputs["style"])], tmp_path / "o", options=TINY)
    assert report.painted == 1 and not report.ok
    assert [e["error"] for e in report.failed] == [f"{tmp_path / 'gone.png'}: no such file"]


def test_ctrl_c_leaves_only_whole_files_and_a_rerun_finishes(inputs, tmp_path):
    out = tmp_path / "out"
    done: list[str] = []

    class StopOnSecondJob:
        def start(self, total, skipped):
            pass

        def job_done(self, entry):
            done.append(entry["output"])

        def job_callback(self, task):
            def callback(progress):
                if done:
                    raise KeyboardInterrupt  # as if Ctrl-C came in the middle of the second job

            return callback

        def close(self):
            pass

    args = ([str(inputs["a"]), str(inputs["b"])], [str(inputs["style"])], out)
    report = batch(*args, options=TINY, reporter=StopOnSecondJob())
    assert report.interrupted and report.painted == 1
    assert [p.name for p in out.glob("*.png")] == done == ["a--stripes.png"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    rest = batch(*args, options=TINY)
    assert (rest.painted, rest.skipped) == (1, 1) and rest.ok


def test_output_names_are_unique_and_duplicates_run_once():
    jobs = [
        Job("x/photo.jpg", ("s.jpg",)),
        Job("y/photo.jpg", ("s.jpg",)),  # same stem, other file: both kept, told apart by a short hash
        Job("x/photo.jpg", ("s.jpg",)),  # the same job again: once
        Job("x/photo.jpg", ("s.jpg", "t.png"), {"iterations": [10, 5], "init": "/p/start.png"}),
    ]
    names = [t.name for t in name_jobs(jobs, ".png")]
    assert len(names) == 3 and len(set(names)) == 3
    assert names[0].startswith("photo--s-") and names[1].startswith("photo--s-")
    assert names[2] == "photo--s+t--iterations-10,5--init-start.png"
    assert [t.name for t in name_jobs(jobs, ".png")] == names  # deterministic


def test_bad_grid_values_and_options_are_one_line_errors(inputs, tmp_path, capsys):
    base = ["batch", "-c", str(inputs["a"]), "-s", str(inputs["style"]), "-o", str(tmp_path / "o")]
    cases = {
        ("--grid", "size=64,abc"): "impasto: error: --grid size: size takes an integer, got 'abc'",
        ("--grid", "style_weight=1,x"): "impasto: error: --grid style_weight: style_weight takes a number, got 'x'",
        ("--grid", "stlye_weight=1,2"): "impasto: error: --grid stlye_weight: unknown option 'stlye_weight' "
        "(did you mean style_weight?)",
        ("--set", "normalize_losses=maybe"): "impasto: error: --set normalize_losses: normalize_losses takes "
        "true or false, got 'maybe'",
        ("--grid", "size=0"): "impasto: error: --grid size=0: size must be an integer from 16 to 8192, got 0",
        ("--set", "tv_weight=-1"): "impasto: error: --set: tv weight must be a non-negative number, got -1.0",
    }
    for extra, message in cases.items():
        code = main([*base, *extra])
        err = capsys.readouterr().err.strip()
        assert code == 1 and err == message, (extra, err)
    assert not (tmp_path / "o").exists()  # nothing started, nothing written


def test_a_worker_needs_only_the_bytes_not_the_files(inputs, tmp_path):
    """What a Ray worker on another machine gets: the spec and the files' bytes, never the paths."""
    from impasto.batch.plan import FileHasher, prepare
    from impasto.batch.runner import _metadata
    from impasto.batch.worker import execute, spec_for

    mask = tmp_path / "mask.png"
    Image.new("L", (96, 72), 255).save(mask)
    job = Job(str(inputs["a"]), (str(inputs["style"]),), {**TINY, "init": str(inputs["b"]), "content_masks": str(mask)})
    task = prepare(name_jobs([job], ".png")[0], {}, FileHasher())
    assert task.ok and len(task.files) == 4  # content, style, init image, mask
    blobs = {sha: Path(path).read_bytes() for sha, path in task.files.items()}
    for path in task.files.values():
        Path(path).unlink()
    outcome = execute(spec_for(task, _metadata(task)), blobs)
    assert outcome.error is None and outcome.data is not None
    written = tmp_path / "out.png"
    written.write_bytes(outcome.data)
    assert png_key(written) == task.key and _pixels(written).shape == (48, 64, 3)


def test_every_styleconfig_field_can_be_set_in_a_batch():
    """A new StyleConfig field of a type the batch cannot parse fails here, not in a user's manifest."""
    from impasto.batch.options import _PARSERS, FIELD_TYPES

    assert {name for name, kind in FIELD_TYPES.items() if kind not in _PARSERS} == set()


def test_the_package_exports_the_batch_function():
    import importlib

    import impasto

    subpackage = importlib.import_module("impasto.batch")  # `impasto.batch` itself is the function
    assert impasto.batch is subpackage.batch and callable(impasto.batch)
