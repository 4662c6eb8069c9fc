"""Shared fixtures: small synthetic images made here, and the optional real paintings in ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.batch.ray_engine import keep_on_this_machine
from impasto.runtime import bf16_missing

EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "examples"


keep_on_this_machine()  # the batch tests' Ray clusters: loopback only, no cloud probes

# Tests that run bf16 arithmetic on the CPU: skipped where oneDNN has no bf16 path (an AVX2-only CPU), with
# the missing feature as the reason. Both branches of the check itself run everywhere (test_runtime.py).
_BF16_MISSING = bf16_missing(torch.device("cpu"))
NEEDS_BF16 = pytest.mark.skipif(_BF16_MISSING is not None, reason=f"{_BF16_MISSING}" if _BF16_MISSING else "")
BF16_CPU = pytest.param(torch.bfloat16, marks=NEEDS_BF16, id="bf16")

# Tiny, fast settings: real VGG-19 weights, 64-96 px, a few iterations, one scale.
FAST = dict(size=64, scales=1, iterations=[8], seed=0)


def _gradient_photo(width: int, height: int) -> Image.Image:
    """A 'photo' with structure: a bright disc on a sky gradient over a dark ground."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    img[..., 0] = 60 + 120 * y / height
    img[..., 1] = 90 + 100 * x / width
    img[..., 2] = 200 - 80 * y / height
    disc = (x - width * 0.35) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) * 0.2) ** 2
    img[disc] = (250, 230, 120)
    img[y > height * 0.7] = (40, 60, 30)
    return Image.fromarray(img.clip(0, 255).astype(np.uint8), "RGB")


def _stripes(width: int, height: int, colours=((200, 40, 30), (240, 220, 60)), period: int = 6) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    band = ((x + y) // period) % 2
    img = np.where(band[..., None] == 0, np.array(colours[0]), np.array(colours[1]))
    return Image.fromarray(img.astype(np.uint8), "RGB")


@pytest.fixture
def content_image() -> Image.Image:
    return _gradient_photo(96, 72)


@pytest.fixture
def style_image() -> Image.Image:
    return _stripes(80, 80)


@pytest.fixture
def image_files(tmp_path: Path, content_image: Image.Image, style_image: Image.Image) -> tuple[Path, Path]:
    content, style = tmp_path / "content.png", tmp_path / "style.jpg"
    content_image.save(content)
    style_image.save(style, quality=95)
    return content, style


@pytest.fixture
def examples() -> Path:
    if not (EXAMPLES / "starry_night.jpg").is_file():
        pytest.skip(f"real paintings not found at {EXAMPLES} (the shared examples folder is absent)")
    return EXAMPLES
