"""The optimisation with the real VGG-19 weights on tiny images: losses, convergence, controls of the loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FAST

import impasto
from impasto.config import StyleConfig
from impasto.errors import ImpastoError
from impasto.imageio import pil_to_tensor
from impasto.losses import ContentLoss, StyleLoss, gram_matrix, total_variation
from impasto.pyramid import picture_scale, scale_sizes, schedule
from impasto.score import score


def test_losses_zero_for_identical_and_positive_otherwise():
    torch.manual_seed(0)
    a, b = torch.rand(1, 8, 6, 5), torch.rand(1, 8, 6, 5)
    for normalize in (False, True):
        assert ContentLoss(a, normalize)(a).item() == 0
        assert ContentLoss(a, normalize)(b).item() > 0
        assert StyleLoss(gram_matrix(a), normalize)(a).item() == pytest.approx(0, abs=1e-12)
        assert StyleLoss(gram_matrix(a), normalize)(b).item() > 0
    assert total_variation(torch.ones(1, 3, 5, 5)).item() == 0
    assert total_variation(a[:, :3]).item() > 0


def test_gram_is_location_free():
    torch.manual_seed(0)
    f = torch.rand(1, 4, 6, 6)
    shuffled = f.flatten(2)[..., torch.randperm(36)].reshape(1, 4, 6, 6)
    assert torch.allclose(gram_matrix(f), gram_matrix(shuffled), atol=1e-6)
    assert gram_matrix(f).shape == (1, 4, 4)


def test_loss_falls(content_image, style_image):
    result = impasto.run(content_image, style_image, **{**FAST, "iterations": [25]})
    losses = [row["loss"] for row in result.trace]
    assert len(losses) == 25
    assert losses[-1] < 0.5 * losses[0]
    assert result.image.size == (64, 48)


def test_early_stop_triggers(content_image, style_image):
    result = impasto.run(content_image, style_image, **{**FAST, "iterations": [400]}, tolerance=0.5, window=5)
    assert result.stopped == "converged"
    assert len(result.trace) < 400


def test_seed_reproducible_and_different_seeds_differ(content_image, style_image):
    noise = {**FAST, "init": "noise"}  # the seed draws the noise start (the default starts from the photo)
    one = np.asarray(impasto.stylize(content_image, style_image, **noise))
    two = np.asarray(impasto.stylize(content_image, style_image, **noise))
    other = np.asarray(impasto.stylize(content_image, style_image, **{**noise, "seed": 1}))
    assert np.array_equal(one, two)
    assert not np.array_equal(one, other)


def test_callback_sees_progress_and_can_stop(content_image, style_image):
    seen = []

    def callback(progress):
        seen.append((progress.scale, progress.iteration, progress.loss, progress.image().size))
        return progress.step >= 3

    result = impasto.run(content_image, style_image, callback=callback, **{**FAST, "iterations": [50]})
    assert result.stopped == "callback" and result.interrupted
    assert len(seen) == 3
    assert seen[0][3] == (64, 48)
    assert result.image.size == (64, 48)  # best image so far, at the requested size


def test_multiscale_runs_coarse_to_fine(content_image, style_image):
    sizes = []
    impasto.run(
        content_image,
        style_image,
        size=96,
        min_size=48,
        iterations=[4, 2],
        seed=0,
        callback=lambda p: sizes.append(p.size),
    )
    assert sizes[0] == (48, 36) and sizes[-1] == (96, 72)
    assert len(sizes) == 6


def test_schedule_defaults():
    assert scale_sizes(512, 160) == [160, 286, 512]
    assert scale_sizes(100, 160) == [100]
    assert scale_sizes(512, 128, 1) == [512]
    cfg = impasto.StyleConfig()
    assert [(s.longest, s.iterations) for s in schedule(512, cfg.min_size, None, None)] == [
        (128, 40),
        (256, 30),
        (512, 60),
    ]
    # With finer scales to follow, 512 px is one more scale between; above it each scale refines for
    # half as long as the one before (the first: half the picture's 60), at least 15.
    assert [s.iterations for s in schedule(1024, cfg.min_size, None, None)] == [40, 30, 30, 30]
    assert [s.iterations for s in schedule(2048, cfg.min_size, None, None)] == [40, 30, 30, 30, 15]
    assert [s.iterations for s in schedule(768, cfg.min_size, None, None)][-1] == 60  # ends on its picture
    assert [s.iterations for s in schedule(96, cfg.min_size, None, None)] == [60]  # one scale: the picture


@pytest.mark.parametrize("init", ["content", "noise"])
def test_inits_and_adam(content_image, style_image, init):
    result = impasto.run(content_image, style_image, **FAST, init=init, optimizer="adam", lr=0.05)
    assert result.trace[-1]["loss"] < result.trace[0]["loss"]


def test_init_from_image_file(image_files, content_image):
    content, style = image_files
    # Starting from the content itself with zero style weight, the content loss is already zero.
    options = {**FAST, "iterations": [1], "size": 96}
    result = impasto.run(content, style, **options, init=str(content), style_weight=0.0, tv_weight=0.0)
    assert result.trace[0]["content"] == pytest.approx(0.0, abs=1e-3)


def test_only_pixels_are_optimised(content_image, style_image):
    """The network is frozen: after evaluations and optimiser steps its weights are unchanged and have
    no gradient, while the pixels moved (this fails if the weights ever take part in the optimisation)."""
    from impasto.builder import build_objective
    from impasto.guided import prepare
    from impasto.objective import frozen_network
    from impasto.optimize import optimise
    from impasto.runtime import resolve

    cfg = StyleConfig(**FAST).validate()
    vgg = frozen_network(cfg, resolve("cpu", "fp32"))
    before = [p.detach().clone() for p in vgg.parameters()]
    objective = build_objective(cfg, vgg, prepare(content_image, [style_image], cfg), 64)
    start = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    loop = optimise(start, objective, iterations=6, optimizer="lbfgs", lr=0.0, lbfgs_history=5, tolerance=0, window=5)
    assert all(not p.requires_grad and p.grad is None for p in vgg.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, vgg.parameters()))
    assert (loop.best - start).abs().max() > 1e-3


@pytest.mark.parametrize(
    "options, message",
    [
        ({"size": 0}, "size must be an integer"),
        ({"size": 100_000}, "size must be an integer"),
        ({"style_weight": -1.0}, "style weight must be a non-negative"),
        ({"content_weight": float("nan")}, "content weight must be a non-negative"),
        ({"style_layers": {"relu9_9": 1.0}}, "unknown layer name"),
        ({"content_layers": {"relu4_2": -2.0}}, "must be non-negative"),
        ({"optimizer": "sgd"}, "unknown optimizer"),
        ({"style_loss": "l1"}, "unknown style_loss .l1.; choose from gram, w2"),
        ({"colour": "red"}, "unknown option 'colour'; the options are the fields of StyleConfig"),
        ({"init": "/no/such/init.png"}, "no such file"),
    ],
)
def test_bad_options_raise_one_line_errors(content_image, style_image, options, message):
    with pytest.raises(ImpastoError, match=message) as info:
        impasto.stylize(content_image, style_image, **{**FAST, **options})
    assert "\n" not in str(info.value)


def test_config_defaults_are_valid_and_tensor_path(content_image):
    StyleConfig().validate()
    assert pil_to_tensor(content_image).shape == (1, 3, 72, 96)


@pytest.mark.parametrize("upsample", ["detail", "bicubic"])
def test_each_scale_starts_with_the_photos_detail(content_image, style_image, upsample):
    """With only the content term, the coarse scale keeps the photo (loss 0 at its first evaluation);
    'detail' then starts the next scale at the photo itself, bicubic at a blurred photo (loss > 0)."""
    options = {**FAST, "iterations": [1, 1], "scales": 2, "min_size": 48, "size": 96}
    result = impasto.run(content_image, style_image, **options, upsample=upsample, style_weight=0.0, tv_weight=0.0)
    first_fine = next(t for t in result.trace if t["scale"] == 2)
    if upsample == "detail":
        assert first_fine["content"] == pytest.approx(0.0, abs=1e-4)
    else:
        assert first_fine["content"] > 1e-3


def test_layout_weight_holds_the_photo_at_the_coarse_scales_only(content_image, style_image):
    """layout_weight multiplies the content term at the scales below the picture scale (the last one
    up to 768 px); the last scale's objective is the configured one, so the loss a run reports is the
    one score() gives its image."""
    assert [picture_scale(scale_sizes(size, 128)) for size in (96, 512, 768, 1024, 2048)] == [0, 2, 3, 2, 2]
    assert picture_scale([48, 96]) == 1 and picture_scale([1024, 2048]) == 0
    options = {**FAST, "iterations": [1, 3], "scales": 2, "min_size": 48, "size": 96, "init": "noise"}
    plain = impasto.run(content_image, style_image, **options, layout_weight=1.0)
    held = impasto.run(content_image, style_image, **options, layout_weight=4.0)
    first = [next(t for t in r.trace if t["scale"] == 1) for r in (plain, held)]
    assert first[1]["content"] == pytest.approx(4 * first[0]["content"], rel=1e-4)
    assert first[1]["style"] == pytest.approx(first[0]["style"], rel=1e-5)
    scored = score(content_image, style_image, held.image, held.config)
    assert held.loss == pytest.approx(scored.total, rel=1e-3)
    assert held.terms["content"] == pytest.approx(scored.terms["content"], rel=1e-3)
