"""Perceptual controls (Gatys et al. 2017): colour preservation, blends, masks, coarse style, bad input."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from conftest import FAST, _stripes
from PIL import Image

import impasto
from impasto import color, guided
from impasto.cli.controls import add_control_options, control_options
from impasto.config import StyleConfig
from impasto.errors import ImpastoError
from impasto.imageio import pil_to_tensor
from impasto.losses import gram_matrix
from impasto.objective import _cached_weights
from impasto.vgg import VGGFeatures


def _dots(width: int, height: int, period: int = 8) -> Image.Image:
    """Blue dots on pale cyan: colour and texture both unlike the red stripes."""
    y, x = np.mgrid[0:height, 0:width]
    dot = ((x % period - period / 2) ** 2 + (y % period - period / 2) ** 2) < (period / 3) ** 2
    img = np.where(dot[..., None], np.array((20, 30, 200)), np.array((190, 235, 240)))
    return Image.fromarray(img.astype(np.uint8), "RGB")


def _halves(width: int, height: int) -> list[np.ndarray]:
    left = np.zeros((height, width), np.float32)
    left[:, : width // 2] = 1.0
    return [left, 1.0 - left]


# --- colour -----------------------------------------------------------------------------------


def test_luminance_mode_keeps_content_chroma(content_image, style_image):
    previews: list[Image.Image] = []
    out = impasto.stylize(
        content_image,
        style_image,
        **{**FAST, "iterations": [10]},
        preserve_color="luminance",
        callback=lambda progress: previews.append(progress.image()),
    )
    for image in (out, previews[-1]):  # the result and the previews alike
        reference = np.asarray(content_image.resize(image.size, Image.Resampling.LANCZOS), np.float64) / 255
        result = np.asarray(image, np.float64) / 255
        # Tolerance: 8-bit rounding of R, G, B moves Cb/Cr by at most 0.5/255; allow 1.5/255.
        assert np.abs(color.chroma(result) - color.chroma(reference)).max() <= 1.5 / 255
        assert np.abs(color.luma(result) - color.luma(reference)).mean() > 0.02  # the style did change it


def test_recombine_is_exact_even_out_of_gamut():
    torch.manual_seed(0)
    content, grey = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    content[..., 0, 0] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3)  # saturated red: little room for luma
    grey[..., 0, 0] = 1.0
    out = color.recombine(grey, content).permute(0, 2, 3, 1).double().numpy()[0]
    assert np.abs(color.chroma(out) - color.chroma(content.permute(0, 2, 3, 1).double().numpy()[0])).max() < 1e-5


def test_color_transfer_matches_mean_and_covariance():
    rng = np.random.default_rng(0)
    style = rng.random((4000, 3)) @ np.array([[0.5, 0.1, 0.0], [0.0, 0.3, 0.2], [0.1, 0.0, 0.2]]) + 0.1
    content = rng.random((3000, 3)) @ np.array([[0.2, 0.2, 0.1], [0.1, 0.4, 0.0], [0.0, 0.1, 0.3]]) + 0.2
    mapped = color.match_color_stats(style, content)
    # Tolerances: eps=1e-5 regularises the style covariance, so allow 1% (relative, Frobenius).
    assert np.abs(mapped.mean(0) - content.mean(0)).max() < 1e-9
    cov_m, cov_c = np.cov(mapped, rowvar=False), np.cov(content, rowvar=False)
    assert np.linalg.norm(cov_m - cov_c) < 0.01 * np.linalg.norm(cov_c)


def test_histogram_mode_recolours_style_image(content_image):
    style = _dots(80, 80)
    mapped = np.asarray(color.match_histogram(style, content_image), np.float64).reshape(-1, 3) / 255
    target = np.asarray(content_image, np.float64).reshape(-1, 3) / 255
    # Clipping to [0, 1] and 8 bits move the mean a little: allow 0.03 per channel.
    assert np.abs(mapped.mean(0) - target.mean(0)).max() < 0.03
    controls = guided.prepare(content_image, [style], StyleConfig(preserve_color="histogram"))
    assert np.array_equal(np.asarray(controls.styles[0]), np.asarray(color.match_histogram(style, content_image)))


# --- several styles, masks, coarse style ------------------------------------------------------


def test_blend_one_zero_equals_single_style(content_image, style_image):
    single = impasto.stylize(content_image, style_image, **FAST)
    blended = impasto.stylize(content_image, [style_image, _dots(80, 80)], **FAST, style_blend=[1, 0])
    assert np.array_equal(np.asarray(single), np.asarray(blended))


def _region_grams(image: Image.Image, masks: list[np.ndarray] | None, layers: list[str]) -> list[dict]:
    vgg = VGGFeatures(_cached_weights(None), layers)
    with torch.no_grad():
        feats = vgg(pil_to_tensor(image))
    if masks is None:
        return [{k: gram_matrix(v) for k, v in feats.items()}]
    tensors = [torch.from_numpy(m)[None, None] for m in masks]
    return [{k: gram_matrix(v, guided.fit_mask(m, v.shape[-2:], v.device)) for k, v in feats.items()} for m in tensors]


def test_masked_regions_take_their_own_style(content_image):
    red, blue = _stripes(64, 64, period=4), _dots(64, 64)
    masks = _halves(64, 48)
    out = impasto.stylize(
        content_image, [red, blue], **{**FAST, "iterations": [25]}, content_masks=masks, content_weight=0.05
    )
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    left, right = _region_grams(out, masks, layers)
    (g_red,), (g_blue,) = _region_grams(red, None, layers), _region_grams(blue, None, layers)

    def dist(a: dict, b: dict) -> float:
        return sum(float((a[k] - b[k]).square().mean() / b[k].square().mean()) for k in layers)

    assert dist(left, g_red) < dist(left, g_blue)
    assert dist(right, g_blue) < dist(right, g_red)


def test_controls_combine_with_the_multi_scale_schedule(content_image, style_image):
    """Masks are refitted and chroma put back at every scale: a two-scale run with all of them."""
    label = np.zeros((72, 96, 3), np.uint8)
    label[:, 48:] = 255  # right half: style 1 (white); left half: no style (black)
    result = impasto.run(
        content_image,
        [style_image],
        size=64,
        min_size=32,
        scales=2,
        iterations=[4, 2],
        content_masks=label,
        preserve_color="luminance",
        style_scales=[0.5],
    )
    assert [row["scale"] for row in result.trace] == [1] * 4 + [2] * 2
    assert result.image.size == (64, 48)


def test_label_image_regions_in_colour_order_with_unstyled_darkest():
    label = np.zeros((10, 12, 3), np.uint8)
    label[:, 4:8] = (255, 0, 0)
    label[:, 8:] = (0, 0, 255)
    two = guided.content_masks(label, 2, (12, 10))  # black is left unstyled; then blue, then red
    assert [float(m[0, 0, 0, 10]) for m in two] == [1.0, 0.0]
    assert [float(m[0, 0, 0, 5]) for m in two] == [0.0, 1.0]
    assert all(float(m[0, 0, 0, 0]) == 0.0 for m in two)
    assert len(guided.content_masks(label, 3, (24, 20))) == 3  # any size of the same aspect ratio


def _fake_grams(image: Image.Image, side: int, mask, layers) -> dict[str, torch.Tensor]:
    """Grams of activations that say which image (its top-left red value) they came from."""
    tag = float(np.asarray(image)[0, 0, 0])
    return {layer: gram_matrix(torch.full((1, 2, 4, 4), tag)) for layer in layers}


SHAPES = {layer: (4, 4) for layer in ("relu1_1", "relu2_1", "relu3_1", "relu4_1")}


def test_coarse_style_drives_coarse_layers_only():
    fine, coarse = Image.new("RGB", (8, 8), (10, 0, 0)), Image.new("RGB", (8, 8), (20, 0, 0))
    controls = guided.prepare(Image.new("RGB", (8, 8)), [fine], StyleConfig(coarse_style=coarse))
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    targets = controls.style_targets(_fake_grams, 64, 1.0, layers, SHAPES)
    values = {layer: float(pairs[0][0][0, 0, 0]) for layer, pairs in targets.items()}
    assert values == {"relu1_1": 100.0, "relu2_1": 100.0, "relu3_1": 400.0, "relu4_1": 400.0}


def test_style_scales_and_blend_weights():
    a, b = Image.new("RGB", (8, 8), (1, 0, 0)), Image.new("RGB", (8, 8), (2, 0, 0))
    sides: list[int] = []

    def grams(image: Image.Image, side: int, mask, layers) -> dict[str, torch.Tensor]:
        sides.append(side)
        return _fake_grams(image, side, mask, layers)

    controls = guided.prepare(a, [a, b], StyleConfig(style_blend=[3, 1], style_scales=[1, 2], style_scale=0.5))
    targets = controls.style_targets(grams, 100, 0.5, ["relu1_1"], SHAPES)
    assert sides == [50, 100]
    assert float(targets["relu1_1"][0][0][0, 0, 0]) == pytest.approx(0.75 * 1 + 0.25 * 4)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        ({"style_blend": [1, -1]}, "non-negative"),
        ({"style_blend": [0, 0]}, "all be zero"),
        ({"style_blend": [1, 2, 3]}, "3 given for 2"),
        ({"style_scales": [1]}, "1 given for 2"),
        ({"style_scales": [1, 100]}, "from 0.05 to 8"),
        ({"preserve_color": "lab"}, "preserve_color"),
        ({"content_masks": [np.ones((48, 96))] * 2}, "aspect ratios differ"),
        ({"content_masks": [np.ones((72, 96))] * 3}, "3 given for 2"),
        ({"content_masks": [np.ones((72, 96)), np.zeros((72, 96))]}, "empty"),
        ({"content_masks": np.zeros((72, 96))}, "1 colours for 2"),
        ({"content_masks": np.random.default_rng(0).random((72, 96))}, "colours"),
        ({"style_masks": [None]}, "1 given for 2"),
        ({"style_masks": [np.ones((10, 40)), None]}, "aspect ratios differ"),
        ({"coarse_style": np.ones((8, 8)), "content_masks": [np.ones((72, 96))] * 2}, "coarse_style"),
        ({"style_blend": [1, 1], "content_masks": [np.ones((72, 96))] * 2}, "style_blend"),
        ({"coarse_from": "pool3"}, "coarse_from"),
    ],
)
def test_bad_controls_fail_fast_with_one_line(content_image, style_image, options, message):
    with pytest.raises(ImpastoError, match=message) as info:
        impasto.run(content_image, [style_image, style_image], **{**FAST, "iterations": [10_000]}, **options)
    assert "\n" not in str(info.value)


def _cli(*argv: str, styles: int = 2) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("images", nargs="*")
    add_control_options(parser)
    args = parser.parse_args(["content.jpg", *[f"s{k}.jpg" for k in range(styles)], *argv])
    return control_options(args)


def test_cli_options_parse_and_default_from_config():
    options = _cli(
        "--style-weights",
        "0.7,0.3",
        "--preserve-color",
        "luminance",
        "--style-masks",
        "m.png",
        "none",
        "--content-masks",
        "labels.png",
    )
    assert options["style_blend"] == [0.7, 0.3]
    assert options["preserve_color"] == "luminance"
    assert options["style_masks"] == ["m.png", None]
    assert options["content_masks"] == "labels.png"
    defaults = _cli()
    assert defaults["coarse_from"] == StyleConfig().coarse_from and defaults["style_blend"] is None
    StyleConfig(**defaults).validate()


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--style-weights", "0.7;0.3"), "comma-separated"),
        (("--style-weights", "1,-2"), "negative"),
        (("--style-weights", "1,2,3"), "3 given for 2"),
        (("--style-scales", "x"), "comma-separated"),
        (("--content-masks", "a.png", "b.png", "c.png"), "3 given for 2"),
    ],
)
def test_cli_bad_values(argv, message):
    with pytest.raises(ImpastoError, match=message):
        _cli(*argv)
