"""The example workflow's two pictures, written into ComfyUI's input/ folder (where LoadImage reads):
`python -m impasto.comfyui.example ComfyUI/input`. Made from impasto's bundled samples (samples.py), so
nothing is shipped twice or downloaded: the photo is scikit-image's cat, the painting impasto paints itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ImpastoError
from ..samples import default_content, default_style

PHOTO, PAINTING = "impasto_photo.png", "impasto_painting.png"
"""The names examples/comfyui_workflow_api.json gives its two LoadImage nodes."""


def write_inputs(folder: str | Path) -> list[Path]:
    """Write the photo and the painting into `folder` (an existing folder: ComfyUI's input/)."""
    where = Path(folder)
    if not where.is_dir():
        raise ImpastoError(f"{str(folder)!r} is not a folder: give ComfyUI's input folder, e.g. ComfyUI/input")
    paths = [where / PHOTO, where / PAINTING]
    for path, image in zip(paths, (default_content(), default_style())):
        image.save(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m impasto.comfyui.example", description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="ComfyUI's input folder, e.g. ComfyUI/input")
    args = parser.parse_args(argv)
    try:
        for path in write_inputs(args.folder):
            print(path)
    except (ImpastoError, OSError) as exc:
        print(f"impasto: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
