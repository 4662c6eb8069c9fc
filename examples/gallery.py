"""Contact sheet of the perceptual controls (Gatys et al. 2017) on the shared example images.

    python examples/gallery.py [--examples ../shared/examples] [-o docs/gallery.jpg]

Small sizes on purpose: the whole sheet takes a few minutes on a laptop CPU.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

import impasto
from impasto.config import default
from impasto.imageio import fit_size, load_image
from impasto.runtime import tune_cpu

log = logging.getLogger("gallery")
LABEL_HEIGHT = 16


def halves(size: tuple[int, int]) -> list[np.ndarray]:
    """Left and right half masks of an image of this (width, height)."""
    width, height = size
    left = np.zeros((height, width), np.float32)
    left[:, : width // 2] = 1.0
    return [left, 1.0 - left]


def sky_label(size: tuple[int, int], fraction: float = 0.4) -> np.ndarray:
    """A two-colour label image: white top (styled), black below (left as the photo)."""
    width, height = size
    label = np.zeros((height, width, 3), np.uint8)
    label[: int(height * fraction)] = 255
    return label


def panels(content: Image.Image, a: Image.Image, b: Image.Image) -> list[tuple[str, Callable[[], Any]]]:
    """(caption, thunk) per tile: inputs first, then one stylization per control."""
    left_right, sky = halves(content.size), sky_label(content.size)
    mask_view = Image.fromarray(np.where(left_right[0][..., None] > 0, [60, 90, 200], [220, 120, 40]).astype(np.uint8))
    return [
        ("content", lambda: content),
        ("style A: Starry Night", lambda: a),
        ("style B: The Scream", lambda: b),
        ("mask: A left | B right", lambda: mask_view),
        ("A, plain", lambda: {"style": a}),
        ("A, preserve luminance", lambda: {"style": a, "preserve_color": "luminance"}),
        ("A, preserve histogram", lambda: {"style": a, "preserve_color": "histogram"}),
        ("blend 0.5 A + 0.5 B", lambda: {"style": [a, b], "style_blend": [0.5, 0.5]}),
        ("masks: A left, B right", lambda: {"style": [a, b], "content_masks": left_right}),
        ("label: A in sky, rest photo", lambda: {"style": a, "content_masks": sky}),
        ("fine A, coarse B", lambda: {"style": a, "coarse_style": b}),
        ("fine B, coarse A", lambda: {"style": b, "coarse_style": a}),
    ]


def render(examples: Path, size: int, iterations: int, style_weight: float, columns: int) -> Image.Image:
    content = load_image(examples / "tubingen.jpg")
    a = load_image(examples / "starry_night.jpg")
    b = load_image(examples / "the_scream.jpg")
    tile = fit_size(content.size, size)
    # One small scale, started from the content: far fewer iterations than from noise, and the
    # unstyled region stays sharp.
    common = dict(size=size, scales=1, iterations=[iterations], init="content", style_weight=style_weight)
    tiles: list[tuple[str, Image.Image]] = []
    for caption, thunk in panels(content, a, b):
        made = thunk()
        if isinstance(made, dict):
            start = time.perf_counter()
            style = made.pop("style")
            made = impasto.stylize(content, style, **common, **made)
            log.info("%-28s %.0f s", caption, time.perf_counter() - start)
        tiles.append((caption, _fit(made, tile)))
    return _sheet(tiles, tile, columns)


def _fit(image: Image.Image, tile: tuple[int, int]) -> Image.Image:
    """Scaled to fit the tile, centred on white (paintings keep their aspect ratio)."""
    image = image.copy()
    image.thumbnail(tile, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", tile, "white")
    canvas.paste(image, ((tile[0] - image.width) // 2, (tile[1] - image.height) // 2))
    return canvas


def _sheet(tiles: list[tuple[str, Image.Image]], tile: tuple[int, int], columns: int) -> Image.Image:
    rows = -(-len(tiles) // columns)
    cell = (tile[0] + 4, tile[1] + LABEL_HEIGHT + 4)
    sheet = Image.new("RGB", (cell[0] * columns, cell[1] * rows), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (caption, image) in enumerate(tiles):
        x, y = (index % columns) * cell[0] + 2, (index // columns) * cell[1] + 2
        sheet.paste(image, (x, y))
        draw.text((x + 2, y + tile[1] + 2), caption, fill="black")
    return sheet


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples",
        type=Path,
        default=root.parent / "shared" / "examples",
        help="folder with tubingen.jpg, starry_night.jpg and the_scream.jpg",
    )
    parser.add_argument("-o", "--output", type=Path, default=root / "docs" / "gallery.jpg")
    parser.add_argument("--size", type=int, default=160, help="longest side of each result")
    parser.add_argument("--iterations", type=int, default=80)
    parser.add_argument("--style-weight", type=float, default=default("style_weight"))
    parser.add_argument("--columns", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("impasto").setLevel(logging.WARNING)
    tune_cpu()  # threads and allocator, as the CLI sets them
    sheet = render(args.examples, args.size, args.iterations, args.style_weight, args.columns)
    sheet.save(args.output, quality=85, optimize=True)
    log.info("wrote %s (%d KB)", args.output, args.output.stat().st_size // 1024)


if __name__ == "__main__":
    main()
