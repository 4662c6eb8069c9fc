"""The command line's edges (issue 11): one table of bad (and awkward but good) invocations.

Each case runs `impasto.cli.main` in this process (a subprocess only where signals or start-up
are the point) and asserts the exit status, exactly one line on stderr naming the problem, no
traceback, and that the folder holds exactly what it held before (plus the output, for the cases
that must succeed): no partial output, no temp file. Most cases fail before any optimisation;
those that run use 48 px, one scale, two iterations.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from impasto import cli

RUN = ["--size", "48", "--scales", "1", "--iterations", "2", "-q"]
LONG_NAME = "n" * 246 + ".png"  # 250 characters: legal, but its old temp name (.NAME.XXXXXXXX.tmp) was not


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _exif_rotated(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    _noise(64, 32, 5).save(path, exif=exif)


MAKERS: dict[str, Callable[[Path], None]] = {
    "content.png": lambda p: _noise(64, 48, 1).save(p),
    "style.jpg": lambda p: _noise(64, 64, 2).save(p, quality=90),
    "empty.png": lambda p: p.write_bytes(b""),
    "text.jpg": lambda p: p.write_text("a shopping list, not a picture\n"),
    "truncated.png": lambda p: p.write_bytes(_png_bytes()[:200]),
    "corrupt.jpg": lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(500)),
    "folder": lambda p: p.mkdir(),
    "thin.png": lambda p: Image.new("RGB", (1, 2000), "white").save(p),
    "cmyk.jpg": lambda p: _noise(64, 48, 3).convert("CMYK").save(p),
    "grey16.png": lambda p: Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 21).astype(np.uint16)).save(p),
    "palette.png": lambda p: _palette_with_alpha(p),
    "anim.gif": lambda p: _noise(64, 48, 4).convert("P").save(p),
    "exif.jpg": _exif_rotated,
}


def _png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    _noise(64, 48, 9).save(buffer, "PNG")
    return buffer.getvalue()


def _palette_with_alpha(path: Path) -> None:
    image = _noise(64, 48, 6).convert("P")
    image.info["transparency"] = 0
    image.save(path)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny files that decode to huge images (made once; 11-22 KB each)."""
    folder = tmp_path_factory.mktemp("bombs")
    Image.new("1", (10000, 9000)).save(folder / "bomb.png")  # 90 MP: Pillow warns (its limit is 89.5 MP)
    Image.new("1", (15000, 12000)).save(folder / "bigbomb.png")  # 180 MP: Pillow refuses
    return folder


@pytest.fixture
def files(tmp_path: Path, bombs: Path) -> dict[str, str]:
    """The case's folder with every input made; placeholders for the argv templates."""
    names: dict[str, str] = {}
    for name, make in MAKERS.items():
        make(tmp_path / name)
        names[name.split(".")[0]] = str(tmp_path / name)
    os.symlink(tmp_path / "content.png", tmp_path / "link.png")
    os.link(tmp_path / "style.jpg", tmp_path / "hard.jpg")
    names.update(
        dir=str(tmp_path),
        out=str(tmp_path / "out.png"),
        link=str(tmp_path / "link.png"),
        hard=str(tmp_path / "hard.jpg"),
        long=str(tmp_path / LONG_NAME),
        toolong=str(tmp_path / ("n" * 300 + ".png")),
        bomb=str(bombs / "bomb.png"),
        bigbomb=str(bombs / "bigbomb.png"),
    )
    return names


def _call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


C, S, OUT = "{content}", "{style}", "{out}"

# name: (argv template, exit status, words of the one line on stderr)
FAILS: dict[str, tuple[str, int, str]] = {
    # -- inputs -------------------------------------------------------------------------------
    "missing content": (f"{{dir}}/nope.jpg {S} -o {OUT}", 1, "nope.jpg: no such file"),
    "missing style": (f"{C} {{dir}}/nope.jpg -o {OUT}", 1, "nope.jpg: no such file"),
    "empty file": (f"{{empty}} {S} -o {OUT}", 1, "empty.png: file is empty"),
    "text named .jpg": (f"{C} {{text}} -o {OUT}", 1, "text.jpg: not an image Pillow can read"),
    "truncated PNG": (f"{{truncated}} {S} -o {OUT}", 1, "truncated.png: corrupt or truncated image"),
    "corrupt JPEG": (f"{C} {{corrupt}} -o {OUT}", 1, "corrupt.jpg: "),
    "a directory": (f"{{folder}} {S} -o {OUT}", 1, "folder: is a directory, not an image"),
    "bomb (Pillow's warning is an error)": (f"{{bomb}} {S} -o {OUT}", 1, "bomb.png: image is too large (90.0 MP"),
    "bomb over twice the limit": (f"{C} {{bigbomb}} -o {OUT}", 1, "bigbomb.png: image is too large (180.0 MP"),
    "missing init image": (f"{C} {S} -o {OUT} --init {{dir}}/none.png", 1, "none.png: no such file"),
    "missing content mask": (f"{C} {S} -o {OUT} --content-masks {{dir}}/m.png", 1, "m.png: no such file"),
    "corrupt coarse style": (f"{C} {S} -o {OUT} --coarse-style {{corrupt}}", 1, "corrupt.jpg"),
    "thin content (1x2000)": (f"{{thin}} {S} -o {OUT}", 1, "at least"),
    "too small a size for the shape": (
        f"{C} {S} -o {OUT} --size 16 --style-layers relu1_1,relu5_1",
        1,
        "at least 16 px",
    ),
    # -- numbers and names ------------------------------------------------------------------------
    "size 0": (f"{C} {S} -o {OUT} --size 0", 1, "size must be an integer from 16 to 8192, got 0"),
    "size 999999": (f"{C} {S} -o {OUT} --size 999999", 1, "size must be an integer from 16"),
    "size abc": (f"{C} {S} -o {OUT} --size abc", 2, "argument --size: invalid int value: 'abc'"),
    "negative style weight": (f"{C} {S} -o {OUT} --style-weight -3", 1, "style weight must be a non-negative"),
    "NaN style weight": (f"{C} {S} -o {OUT} --style-weight nan", 1, "style weight must be a non-negative"),
    "style weight overflowing float32": (f"{C} {S} -o {OUT} --style-weight 1e308", 1, "overflows float32"),
    "infinite content weight": (f"{C} {S} -o {OUT} --content-weight inf", 1, "content weight must be"),
    "negative tv weight": (f"{C} {S} -o {OUT} --tv-weight -1", 1, "tv weight must be a non-negative"),
    "style scale 100": (f"{C} {S} -o {OUT} --style-scale 100", 1, "style scale must be between 0.05 and 8"),
    "0 scales": (f"{C} {S} -o {OUT} --scales 0", 1, "scales must be an integer from 1 to 12, got 0"),
    "99 scales": (f"{C} {S} -o {OUT} --scales 99", 1, "scales must be an integer from 1 to 12"),
    "empty iterations": (f"{C} {S} -o {OUT} --iterations=", 2, "give at least one count per scale"),
    "0 iterations (would write noise)": (f"{C} {S} -o {OUT} --iterations 0", 1, "iterations are all 0"),
    "negative iterations": (f"{C} {S} -o {OUT} --iterations=-5", 1, "non-negative"),
    "iterations abc": (f"{C} {S} -o {OUT} --iterations abc", 2, "expected comma-separated integers"),
    "seed beyond 64 bits": (f"{C} {S} -o {OUT} --seed 99999999999999999999999", 2, "seed must be an integer from 0"),
    "negative seed": (f"{C} {S} -o {OUT} --seed=-1", 2, "seed must be an integer from 0 to 2^63-1"),
    "negative tolerance": (f"{C} {S} -o {OUT} --tolerance -1", 1, "tolerance must be a non-negative"),
    "window 0": (f"{C} {S} -o {OUT} --window 0", 1, "window must be an integer from 1"),
    "unknown layer": (f"{C} {S} -o {OUT} --style-layers relu1_1,relu7_1", 1, "relu7_1"),
    "bad layer weight": (f"{C} {S} -o {OUT} --style-layers relu1_1:x", 2, "bad layer weight in 'relu1_1:x'"),
    "no layers": (f"{C} {S} -o {OUT} --content-layers ,", 2, "give at least one layer"),
    "blend weights for two styles, one given": (f"{C} {S} -o {OUT} --style-weights 1,2", 1, "style weights"),
    "unknown pooling": (f"{C} {S} -o {OUT} --pooling median", 2, "invalid choice: 'median'"),
    "unknown option": (f"{C} {S} -o {OUT} --bogus", 2, "unrecognized arguments: --bogus"),
    "one image only": (f"{C} -o {OUT}", 2, "give a CONTENT image and at least one STYLE image"),
    "no output": (f"{C} {S}", 2, "give the output file with -o OUT"),
    "--demo with images": (f"--demo {C} {S} -o {OUT}", 2, "--demo uses the bundled images"),
    # -- outputs ----------------------------------------------------------------------------------
    "-o is the content": (f"{C} {S} -o {C}", 1, "is the same file as the input"),
    "-o is the style": (f"{C} {S} -o {S}", 1, "style.jpg is the same file as the input"),
    "-o is a link to the content": (f"{C} {S} -o {{link}}", 1, "link.png is the same file as the input"),
    "-o is a hard link to the style": (f"{C} {S} -o {{hard}}", 1, "hard.jpg is the same file as the input"),
    "--loss-trace is the style": (f"{C} {S} -o {OUT} --loss-trace {S}", 1, "--loss-trace"),
    "-o in a missing folder": (f"{C} {S} -o {{dir}}/no/where/out.png", 1, "does not exist"),
    "-o with an unknown type": (f"{C} {S} -o {{dir}}/out.bmpx", 1, "unknown output type .bmpx"),
    "-o is a directory": (f"{C} {S} -o {{folder}}.png", 1, ""),  # made as a folder below
    "-o where no file can be made": (f"{C} {S} -o /proc/impasto-test.png", 1, "impasto-test.png: "),
    "-o name too long": (f"{C} {S} -o {{toolong}}", 1, "too long"),
    "loss trace of unknown type": (f"{C} {S} -o {OUT} --loss-trace {{dir}}/t.txt", 1, "must end in .json or .csv"),
    "negative --save-every": (f"{C} {S} -o {OUT} --save-every -1", 1, "--save-every must be 0"),
}


def _argv(template: str, files: dict[str, str]) -> list[str]:
    return [part.format(**files) for part in template.split()]


@pytest.mark.parametrize("name", list(FAILS))
def test_refused(name: str, files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template, status, words = FAILS[name]
    if name == "-o is a directory":
        (tmp_path / "folder.png").mkdir()
        words = "folder.png: is a directory"
    before = _tree(tmp_path)
    code, out, err = _call([*RUN, *_argv(template, files)], capsys)
    lines = err.strip().splitlines()
    assert code == status, (name, err)
    assert len(lines) == 1 and "Traceback" not in err and not out, (name, err)
    assert words in lines[0], (name, lines[0])
    assert _tree(tmp_path) == before, name  # no output, no temp file


# name: (argv template, the output's expected size)
RUNS: dict[str, tuple[str, tuple[int, int]]] = {
    "a 250-character output name": (f"{C} {S} -o {{long}}", (48, 36)),
    "CMYK content, 16-bit grey style": (f"{{cmyk}} {{grey16}} -o {OUT}", (48, 36)),
    "palette+alpha content, GIF style": (f"{{palette}} {{anim}} -o {OUT}", (48, 36)),
    "EXIF-rotated content is painted upright": (f"{{exif}} {S} -o {OUT}", (24, 48)),
    "output replaces an older file": (f"{C} {S} -o {{style}}.png", (48, 36)),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_awkward_but_fine(name: str, files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template, size = RUNS[name]
    argv = _argv(template, files)
    output = Path(argv[argv.index("-o") + 1])
    if name == "output replaces an older file":
        output.write_bytes(b"old")
    before = _tree(tmp_path)
    code, out, err = _call([*RUN, *argv], capsys)
    assert code == 0 and not err.strip() and not out, err
    assert Image.open(output).size == size
    assert _tree(tmp_path) == before | {output.name}  # the output and nothing else


def test_a_symlink_loop_is_not_called_missing(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    os.symlink(tmp_path / "loop2.png", tmp_path / "loop.png")
    os.symlink(tmp_path / "loop.png", tmp_path / "loop2.png")
    before = _tree(tmp_path)
    code, out, err = _call([*RUN, str(tmp_path / "loop.png"), files["style"], "-o", files["out"]], capsys)
    assert code == 1 and not out
    assert err.strip().splitlines() == [f"impasto: error: {tmp_path / 'loop.png'}: cannot read (Too many levels of "
                                        "symbolic links)"]  # fmt: skip
    assert _tree(tmp_path) == before


def test_unsearchable_folder_is_one_line(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (tmp_path / "content.png").rename(locked / "content.png")
    if os.geteuid() == 0:  # root passes any permission check: make the folder behave as it would for a user
        real_stat = os.stat

        def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
            if os.fspath(path).startswith(str(locked) + os.sep):  # type: ignore[call-overload]
                raise PermissionError(13, "Permission denied", os.fspath(path))  # type: ignore[call-overload]
            return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "stat", stat)
    else:
        locked.chmod(0o600)  # readable names, no search permission
    try:
        before = _tree(tmp_path) if os.geteuid() == 0 else None
        code, out, err = _call([*RUN, str(locked / "content.png"), files["style"], "-o", files["out"]], capsys)
    finally:
        locked.chmod(0o755)
    assert code == 1 and err.strip().splitlines() == [f"impasto: error: {locked / 'content.png'}: permission denied"]
    assert before is None or _tree(tmp_path) == before


def test_signal_during_the_final_write_finishes_it(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while the output is being written: the file is completed (no temp), then the exit says so."""
    real_save = Image.Image.save

    def save_with_a_signal(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of the write
        real_save(self, fp, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "save", save_with_a_signal)
    code, out, err = _call([*RUN, files["content"], files["style"], "-o", files["out"]], capsys)
    assert code == 128 + signal.SIGTERM
    assert err.strip().splitlines() == [f"impasto: stopped by SIGTERM; best image so far saved to {files['out']}"]
    monkeypatch.undo()
    assert Image.open(files["out"]).size == (48, 36)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "impasto", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signals_keep_the_best_image(files: dict[str, str], tmp_path: Path, sig: int) -> None:
    """Ctrl-C, SIGTERM (kill, systemd) and SIGHUP (the terminal closed) all stop the run and keep its best."""
    out = tmp_path / "out.png"
    proc = _popen(
        files["content"],
        files["style"],
        "-o",
        str(out),
        *("--size", "48", "--scales", "1", "--iterations", "100000", "--tolerance", "0", "--save-every", "2", "-q"),
    )
    deadline = time.monotonic() + 180
    while not list(tmp_path.glob("out_s*.png")) and time.monotonic() < deadline:
        time.sleep(0.1)  # optimisation is under way once a snapshot is written
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    how = "interrupted" if sig == signal.SIGINT else f"stopped by {signal.Signals(sig).name}"
    assert proc.returncode == 128 + sig, stderr
    assert stderr.strip().splitlines() == [f"impasto: {how}; best image so far saved to {out}"]
    assert Image.open(out).size == (48, 36)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_ctrl_c_while_starting_is_one_line(files: dict[str, str], tmp_path: Path) -> None:
    """SIGINT while torch is being imported (an import hook sends it at that moment, on any machine)."""
    hook = (
        "import os, signal, sys\n"
        "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hook())\n"
        "from impasto.__main__ import entry\n"
        "sys.exit(entry())\n"
    )
    argv = [files["content"], files["style"], "-o", str(tmp_path / "out.png")]
    proc = subprocess.run([sys.executable, "-c", hook, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130
    assert proc.stderr.strip().splitlines() == ["impasto: interrupted while starting; nothing written"]
    assert not (tmp_path / "out.png").exists()


def test_the_command_imports_nothing_heavy_before_its_guard() -> None:
    """The console script's module must not pull torch in before `entry` can catch a Ctrl-C."""
    code = "import sys, impasto.__main__; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_ctrl_c_while_a_later_scale_builds_its_targets_keeps_the_finished_one(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stylize = importlib.import_module("impasto.stylize")  # the module (impasto.stylize is the function)
    built: list[int] = []
    real_build = stylize.build_objective

    def build(*args: object, **kwargs: object) -> object:
        built.append(1)
        if len(built) == 2:  # Ctrl-C while scale 2 computes its style targets
            raise KeyboardInterrupt
        return real_build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stylize, "build_objective", build)
    argv = [files["content"], files["style"], "-o", files["out"], "--size", "64", "--min-size", "32"]
    code, out, err = _call([*argv, "--scales", "2", "--iterations", "2", "-q"], capsys)
    assert code == 130 and err.strip().splitlines() == [
        f"impasto: interrupted; best image so far saved to {files['out']}"
    ]
    assert Image.open(files["out"]).size == (64, 48)  # scale 1's picture, upsampled to the output size
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
