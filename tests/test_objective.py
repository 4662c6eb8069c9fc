"""The objective's maths pinned, and the objective built once: run() reports what score() measures."""

from __future__ import annotations

import functools
import re
import sys

import numpy as np
import pytest
import torch
from conftest import FAST, _stripes
from PIL import Image

import impasto
from impasto.config import StyleConfig
from impasto.errors import ImpastoError
from impasto.losses import ContentLoss, StyleLoss, gram_matrix, moments
from impasto.objective import Objective, Term, frozen_network, min_side_of
from impasto.runtime import resolve
from impasto.score import score
from impasto.vgg import VGGFeatures, load_weights


def test_gram_is_channel_products_over_positions():
    torch.manual_seed(0)
    f = torch.rand(1, 5, 6, 7)
    by_hand = torch.einsum("nchw,ndhw->ncd", f, f) / (6 * 7)
    assert torch.allclose(gram_matrix(f), by_hand, atol=1e-6)
    assert torch.allclose(gram_matrix(f, torch.ones(1, 1, 6, 7)), gram_matrix(f), atol=1e-6)
    mask = torch.zeros(1, 1, 6, 7)
    mask[..., :3, :] = 1.0  # the guided Gram of a region is the plain Gram of that region
    assert torch.allclose(gram_matrix(f, mask), gram_matrix(f[..., :3, :]), atol=1e-6)


def test_normalised_losses_divide_by_the_targets_mean_square():
    torch.manual_seed(1)
    target, current = torch.rand(1, 4, 5, 5), torch.rand(1, 4, 5, 5)
    mse = (current - target).square().mean()
    assert ContentLoss(target, False)(current) == pytest.approx(float(mse), rel=1e-6)
    assert ContentLoss(target, True)(current) == pytest.approx(float(mse / target.square().mean()), rel=1e-5)
    g, h = gram_matrix(target), gram_matrix(current)
    gram_mse = (h - g).square().mean()
    assert StyleLoss(g, False)(current) == pytest.approx(float(gram_mse), rel=1e-5)
    assert StyleLoss(g, True)(current) == pytest.approx(float(gram_mse / g.square().mean()), rel=1e-5)


def test_w2_is_the_wasserstein_distance_between_gaussians():
    """W2^2 = |m1 - m2|^2 + tr(S1 + S2 - 2 (S2^1/2 S1 S2^1/2)^1/2), against scipy's matrix square root."""
    import scipy.linalg

    torch.manual_seed(2)
    target, current = torch.rand(1, 6, 7, 8), torch.rand(1, 6, 7, 8) * 2 + 0.3

    def mean_cov(f: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        x = f.flatten(2)[0].T.double().numpy()
        return x.mean(0), np.cov(x.T, bias=True)

    (m1, s1), (m2, s2) = mean_cov(current), mean_cov(target)
    root = scipy.linalg.sqrtm(s2)
    w2 = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(scipy.linalg.sqrtm(root @ s1 @ root)).real
    assert StyleLoss(moments(target), False, kind="w2")(current) == pytest.approx(w2, rel=1e-4)
    mean_square = float(target.square().sum(1).mean())  # the trace of the Gram
    assert StyleLoss(moments(target), True, kind="w2")(current) == pytest.approx(w2 / mean_square, rel=1e-4)
    assert float(StyleLoss(moments(target), True, kind="w2")(target)) == pytest.approx(0, abs=1e-5)
    mask = torch.zeros(1, 1, 7, 8)
    mask[..., :4, :] = 1.0  # guided moments of a region are the plain moments of that region
    assert torch.allclose(moments(current, mask), moments(current[..., :4, :]), atol=1e-5)
    pixels = current.clone().requires_grad_(True)
    StyleLoss(moments(target), True, kind="w2")(pixels).backward()
    assert pixels.grad is not None and bool(torch.isfinite(pixels.grad).all()) and float(pixels.grad.abs().max()) > 0


def test_a_term_without_a_layer_sees_the_pixels():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(x.shape)
            return x.mean()

    vgg = VGGFeatures(load_weights(), ["relu1_1"])
    objective = Objective(vgg, [Term("probe", None, 2.0, Probe()), Term("other", "relu1_1", 1.0, Probe())])
    total, parts = objective(torch.full((1, 3, 16, 16), 0.5))
    assert seen == [(1, 3, 16, 16), (1, 64, 16, 16)]
    assert float(parts["probe"]) == pytest.approx(1.0) and float(total) == pytest.approx(1.0 + float(parts["other"]))


def _halves_mask(size: tuple[int, int]) -> Image.Image:
    mask = np.zeros((size[1], size[0]), np.uint8)
    mask[:, : size[0] // 2] = 255
    return Image.fromarray(mask)


@pytest.mark.parametrize("masks", ["style", "content"])
def test_score_of_the_written_image_equals_the_reported_loss(tmp_path, content_image, style_image, masks):
    """Two styles, per-style scales, luminance colour and masks: score() rebuilds the very objective."""
    second = _stripes(72, 60, colours=((20, 40, 200), (250, 250, 250)), period=4)
    options = dict(FAST, iterations=[12], preserve_color="luminance", style_scales=[1.0, 1.5], precision="fp32")
    if masks == "style":
        options.update(style_blend=[0.7, 0.3], style_masks=[_halves_mask(style_image.size), None])
    else:
        options.update(content_masks=[_halves_mask(content_image.size), _halves_mask(content_image.size).point(
            lambda v: 255 - v)])  # fmt: skip
    result = impasto.run(content_image, [style_image, second], **options)
    written = tmp_path / "out.png"
    result.image.save(written)
    measured = score(content_image, [style_image, second], written, StyleConfig(**options))
    assert result.loss is not None and result.loss == pytest.approx(measured.total, rel=1e-5)
    assert set(result.terms) == {"content", "style", "tv"}
    assert all(result.terms[k] == pytest.approx(v, rel=1e-5) for k, v in measured.terms.items())
    assert result.loss <= result.trace[0]["loss"]  # and it is the optimised picture, not the start


def test_non_finite_loss_is_an_error_and_nothing_is_returned(monkeypatch, content_image, style_image):
    monkeypatch.setattr("impasto.builder.TotalVariation.forward", lambda self, x: x.sum() * float("inf"))
    with pytest.raises(ImpastoError, match="infinite or NaN.*nothing written"):
        impasto.run(content_image, style_image, **FAST)


def test_weights_that_overflow_float32_are_refused_up_front(content_image, style_image):
    with pytest.raises(ImpastoError, match=r"style weight x relu1_1 weight is 1e\+308; at most 1e\+30"):
        impasto.run(content_image, style_image, **FAST, style_weight=1e308)


def test_thin_content_drops_coarse_scales_and_a_too_thin_one_names_the_minimum(style_image):
    thin = Image.new("RGB", (200, 30), (120, 160, 200))
    sizes = []
    # A network to relu5_1 needs 16 px on the short side (the defaults, to relu4_2, need 8).
    run = functools.partial(impasto.run, style_layers={"relu1_1": 1.0, "relu5_1": 1.0})
    run(thin, style_image, size=128, min_size=32, iterations=[2], callback=lambda p: sizes.append(p.size))
    assert set(sizes) == {(128, 19)}  # 32 and 64 px scales would be under 16 px tall: skipped
    with pytest.raises(ImpastoError, match="at least 16 px on the short side"):
        run(Image.new("RGB", (48, 16)), style_image, size=16, iterations=[2])
    with pytest.raises(ImpastoError, match="1x2000 px is too thin.*16 px"):
        run(thin, Image.new("RGB", (1, 2000)), size=128, scales=1, iterations=[2])


@pytest.mark.parametrize(
    ("size", "hint"),
    [
        ((2000, 20), "use a larger size (at least 750) or a less elongated image"),  # was "about 1024" (64 x 8 / 0.5)
        ((20000, 20), "use a larger size (at least 7500)"),  # was 64 -> "about 512" -> "about 4096" -> "about 8192"
        ((100_000, 10), "no size up to 8192 gives it that: use a less elongated image"),
    ],
)
def test_a_too_thin_content_names_the_size_that_paints_it(size, hint, style_image):
    """Issue 39 item 10: the hint was the linear guess, and the short side is rounded: following it led nowhere."""
    thin = Image.new("RGB", size, (120, 160, 200))
    with pytest.raises(ImpastoError, match=re.escape(hint)):
        impasto.run(thin, style_image, size=64, scales=1, iterations=[1])
    if size == (2000, 20):  # the size named paints, the one below it does not
        with pytest.raises(ImpastoError, match="at least 750"):
            impasto.run(thin, style_image, size=749, scales=1, iterations=[1])
        assert impasto.run(thin, style_image, size=750, scales=1, iterations=[1]).image.size == (750, 8)


@pytest.mark.parametrize("style_layers", [None, {"relu1_1": 1.0}, {"relu1_1": 1.0, "relu5_1": 1.0}])
def test_min_side_of_a_config_is_its_networks(style_layers):
    """objective.min_side_of (what the studio checks uploads with, no weights decoded) is VGGFeatures.min_side."""
    cfg = StyleConfig() if style_layers is None else StyleConfig(style_layers=style_layers)
    assert min_side_of(cfg) == frozen_network(cfg, resolve("cpu", "fp32")).min_side


def test_ctrl_c_while_a_later_scale_builds_keeps_the_finished_scales(monkeypatch, content_image, style_image):
    api = sys.modules["impasto.stylize"]  # the module: `impasto.stylize` is the function
    real, calls = api.build_objective, []

    def build(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "build_objective", build)
    result = impasto.run(content_image, style_image, size=96, min_size=48, iterations=[5, 5], seed=0)
    assert result.stopped == "interrupted" and result.image.size == (96, 72)
    assert len(result.trace) == 5 and result.loss is None  # the loss at 96 px was never built


def test_luminance_mode_starts_from_a_grey_init_image(tmp_path, content_image, style_image):
    init = tmp_path / "init.png"
    _stripes(96, 72, colours=((250, 0, 0), (0, 0, 250))).save(init)
    first = []
    impasto.run(content_image, style_image, **FAST, init=str(init), preserve_color="luminance",
                callback=lambda p: first.append(p.pixels.clone()) or True)  # fmt: skip
    pixels = first[0][0]
    assert torch.allclose(pixels[0], pixels[1]) and torch.allclose(pixels[1], pixels[2])


def test_the_library_leaves_the_process_alone(content_image, style_image):
    """No reseeding of torch's global RNG and no thread or allocator tuning behind the caller's back."""
    from impasto.runtime import tune_cpu

    tune_cpu.cache_clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(123)
        expected = torch.rand(4)
        torch.manual_seed(123)
        impasto.run(content_image, style_image, **FAST)
        assert torch.equal(torch.rand(4), expected)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
