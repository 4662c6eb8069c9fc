"""Manifests (CSV and JSONL): a bad row is that row's one line, a bad header is the whole file's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from impasto.batch import batch, read_manifest
from impasto.batch.ledger import LEDGER
from impasto.cli import main
from impasto.errors import ImpastoError


@pytest.fixture
def folder(tmp_path: Path, content_image: Image.Image, style_image: Image.Image) -> Path:
    """A manifest's folder: paths in the manifest are relative to it."""
    (tmp_path / "img").mkdir()
    content_image.save(tmp_path / "img" / "photo.png")
    style_image.save(tmp_path / "img" / "art.png")
    style_image.rotate(90).save(tmp_path / "img" / "art2.png")
    return tmp_path


def test_csv_rows_run_and_bad_rows_are_one_line_each(folder, capsys):
    manifest = folder / "jobs.csv"
    manifest.write_text(
        "content,style,style_weight,size,scales,iterations,output\n"
        "img/photo.png,img/art.png,1,64,1,3,\n"
        "img/photo.png,img/art.png;img/art2.png,10,64,1,3,blend.png\n"
        "img/photo.png,img/art.png,lots,64,1,3,\n"
        "img/photo.png,img/art.png,1,64\n"
        ",img/art.png,1,64,1,3,\n"
    )
    out = folder / "out"
    code = main(["batch", "-m", str(manifest), "-o", str(out), "-q"])
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "impasto batch: failed: jobs.csv row 4: style_weight takes a number, got 'lots'",
        "impasto batch: failed: jobs.csv row 5: 4 cells, but the header has 7 columns",
        "impasto batch: failed: jobs.csv row 6: no content image",
    ]
    assert sorted(p.name for p in out.glob("*.png")) == [
        "blend.png",
        "photo--art--style_weight-1--size-64--scales-1--iterations-3.png",
    ]
    options = {
        json.loads(line)["output"]: json.loads(line)["options"] for line in (out / LEDGER).read_text().splitlines()
    }
    assert options["blend.png"] == {"style_weight": 10.0, "size": 64, "scales": 1, "iterations": [3]}


def test_an_unknown_column_stops_before_any_work(folder, capsys):
    manifest = folder / "jobs.csv"
    manifest.write_text("content,style,stlye_weight\nimg/photo.png,img/art.png,3\n")
    assert main(["batch", "-m", str(manifest), "-o", str(folder / "out")]) == 1
    assert capsys.readouterr().err == (
        f"impasto: error: {manifest}: unknown option column 'stlye_weight' (did you mean style_weight?)\n"
    )
    assert not (folder / "out").exists()


def test_jsonl_rows_take_json_types_and_a_bad_line_fails_alone(folder):
    rows = [
        {"content": "img/photo.png", "style": "img/art.png", "size": 64, "scales": 1, "iterations": [3],
         "content_layers": {"relu4_2": 1.0}},
        "{not json",
        {"content": "img/photo.png", "style": ["img/art.png", "img/art2.png"], "size": 64.5},
        {"content": "img/photo.png", "style": "img/art.png", "size": 64, "colour": "red"},
        [1, 2],
    ]  # fmt: skip
    manifest = folder / "jobs.jsonl"
    manifest.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    jobs, errors = read_manifest(manifest)
    assert [str(e) for e in errors] == [
        "jobs.jsonl line 2: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        "jobs.jsonl line 3: size takes an integer, got 64.5",
        "jobs.jsonl line 4: unknown option 'colour' (the options are the fields of impasto.StyleConfig)",
        "jobs.jsonl line 5: expected a JSON object, got list",
    ]
    assert len(jobs) == 1 and jobs[0].content == str(folder / "img" / "photo.png")
    report = batch(manifest=manifest, folder=folder / "out")
    assert report.painted == 1 and len(report.failed) == 4


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("jobs.txt", "content,style\n", "a manifest must be .csv or .jsonl"),
        ("jobs.csv", "", "empty manifest"),
        ("jobs.csv", "style\nimg/art.png\n", "no 'content' column"),
        ("jobs.csv", "content,style\n", "the manifest has no jobs"),
    ],
)
def test_unusable_manifests_are_one_line(folder, name, text, message):
    (folder / name).write_text(text)
    with pytest.raises(ImpastoError, match=message):
        read_manifest(folder / name)
    with pytest.raises(ImpastoError, match="no such manifest"):
        read_manifest(folder / "absent.csv")
    (folder / "latin1.csv").write_bytes("content,style\nphoto\xe9.png,a.png\n".encode("latin-1"))
    with pytest.raises(ImpastoError, match="not UTF-8"):
        read_manifest(folder / "latin1.csv")
