"""Tiled evaluation is the same objective in bounded memory: values, gradients, targets and memory plans."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import _gradient_photo, _stripes
from PIL import Image

import impasto
from impasto import memory
from impasto.builder import Measure, build_objective
from impasto.config import StyleConfig
from impasto.errors import ImpastoError
from impasto.guided import prepare
from impasto.losses import TotalVariation, total_variation
from impasto.objective import frozen_network
from impasto.optimize import value_and_grad
from impasto.runtime import resolve
from impasto.tile_grid import halo, plan_tiles

# A network to relu5_1 (the defaults stop at relu4_2): the widest halo and the coarsest pooling grid.
TO_RELU5_1 = StyleConfig(
    precision="fp32", style_layers=dict.fromkeys(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), 1.0)
)


def _objectives(cfg: StyleConfig, content: Image.Image, styles: list[Image.Image], tile: int, cut: str | None = None):
    vgg = frozen_network(cfg, resolve("cpu", "fp32"))
    controls = prepare(content, styles, cfg)
    whole = build_objective(cfg, vgg, controls, cfg.size)
    return whole, build_objective(cfg, vgg, controls, cfg.size, tile=tile, cut=cut)


@pytest.mark.parametrize(
    ("masks", "style_loss", "cut"),
    [
        (False, "gram", None),
        (True, "gram", None),
        (False, "w2", None),
        (True, "w2", None),
        (False, "gram", "pool1"),
        (True, "gram", "pool2"),
        (True, "w2", "pool3"),
    ],
)
def test_tiled_value_and_gradient_equal_untiled(content_image, style_image, masks, style_loss, cut):
    """Content, style (Grams or W2 moments, guided with content masks too) and TV: same loss and gradient in 9
    tiles, whether the whole network runs in tiles or only its layers up to a split (`cut`), the rest whole."""
    content = _gradient_photo(176, 132)
    options = dict(size=176, precision="fp32", style_loss=style_loss)
    styles = [style_image]
    if masks:
        left = np.zeros((132, 176), np.uint8)
        left[:, :90] = 255
        options["content_masks"] = [Image.fromarray(left), Image.fromarray(255 - left)]
        styles.append(_stripes(64, 64, colours=((10, 10, 200), (240, 240, 240))))
    whole, tiled = _objectives(StyleConfig(**options).validate(), content, styles, tile=64, cut=cut)
    pixels = torch.rand(1, 3, 132, 176, generator=torch.Generator().manual_seed(0))
    total, parts, grad = value_and_grad(whole, pixels)
    total_t, parts_t, grad_t = value_and_grad(tiled, pixels)
    assert len(tiled.tiles(pixels)) == 9
    assert float(total_t) == pytest.approx(float(total), rel=1e-5)
    assert list(parts_t) == list(parts) and all(
        float(parts_t[k]) == pytest.approx(float(parts[k]), rel=1e-5) for k in parts
    )
    assert float((grad_t - grad).norm() / grad.norm()) < 1e-4


def test_total_variation_in_place_equals_autograd():
    """Tiled runs take TV's value and gradient without a graph over the whole picture: the same numbers."""
    image = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    expected = 3.0 * total_variation(image)
    expected.backward()
    grad = torch.full_like(image.detach(), 1e-3)  # accumulates onto what is there
    value = TotalVariation().accumulate(image.detach(), 3.0, grad)
    assert float(value) == pytest.approx(float(expected.detach()), rel=1e-6)
    torch.testing.assert_close(grad - 1e-3, image.grad, rtol=1e-5, atol=1e-9)


def test_tiled_targets_equal_whole_ones():
    vgg = frozen_network(TO_RELU5_1, resolve("cpu", "fp32"))
    pixels = torch.rand(1, 3, 150, 200, generator=torch.Generator().manual_seed(1))
    mask = torch.rand(1, 1, 150, 200, generator=torch.Generator().manual_seed(2))
    layers = ["relu1_1", "relu3_1", "relu5_1"]
    whole, tiled = Measure(vgg, None), Measure(vgg, 64)
    for with_mean in (False, True):
        for layer, g in whole.grams(pixels, mask, layers, with_mean).items():
            # atol at the matrix's scale: an entry near zero is a sum of terms as large as the others
            tiles_g = tiled.grams(pixels, mask, layers, with_mean)[layer]
            assert torch.allclose(tiles_g, g, rtol=1e-4, atol=1e-6 * float(g.abs().max()))
    full, parts = whole.features(pixels, ["relu4_2"]), tiled.features(pixels, ["relu4_2"])
    assert torch.allclose(parts["relu4_2"], full["relu4_2"], rtol=1e-4, atol=1e-4)


def test_tiles_partition_the_picture_on_the_pooling_grid():
    tiles = plan_tiles(300, 500, 128, 96, 16)
    covered = np.zeros((300, 500), int)
    for t in tiles:
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert t.y0 % 16 == 0 and t.x0 % 16 == 0 and t.cy0 % 16 == 0 and t.cx0 % 16 == 0
        assert t.y1 - t.y0 <= 128 and t.cy0 == max(0, t.y0 - 96) and t.cx1 == min(500, t.x1 + 96)
    assert (covered == 1).all()
    vgg = frozen_network(TO_RELU5_1, resolve("cpu", "fp32"))
    assert halo(vgg) == 96 and vgg.min_side == 16  # relu5_1's receptive-field radius, on the 16 px grid


def test_memory_plan_tiles_only_over_the_budget_and_names_the_minimum():
    bf16 = torch.bfloat16
    small = memory.plan((512, 384), bf16, 3.5 * memory.GIB, 20, 96, 16)
    assert small.tile is None and small.history == 20 and small.history_dtype == torch.float32
    # 1024 px: the whole picture with 20 float32 pairs is ~2.75 GiB; a history in bf16 fits a smaller
    # budget untiled (tiles cost time), and only a budget too small for that tiles
    roomy, squeezed = (memory.plan((1024, 768), bf16, gib * memory.GIB, 20, 96, 16) for gib in (3.5, 2.65))
    assert roomy.tile is None and roomy.history_dtype == torch.float32
    assert squeezed.tile is None and squeezed.history_dtype == torch.bfloat16 and squeezed.estimate <= 2.65 * memory.GIB
    large = memory.plan((2048, 1536), bf16, 3.5 * memory.GIB, 20, 96, 16)
    assert large.tile is not None and large.tile % 16 == 0 and 5 <= large.history <= 20
    assert large.history_dtype == torch.bfloat16 and large.estimate <= 3.5 * memory.GIB
    forced = memory.plan((512, 384), bf16, 3.5 * memory.GIB, 20, 96, 16, tile_size=256)
    assert forced.tile == 256 and forced.history == 20
    with pytest.raises(ImpastoError, match=r"too small for a 4096x3072 picture: one tile needs at least [\d.]+ GiB"):
        memory.plan((4096, 3072), bf16, 1.0 * memory.GIB, 20, 96, 16)


def test_tiles_split_the_network_where_its_deep_layers_fit_whole():
    """The shallowest cut whose deep layers fit the budget whole beside a tile of SPLIT_TILE px and
    SPLIT_HISTORY pairs; the whole network in tiles where none does; never below the budget."""
    bf16, splits = torch.bfloat16, {"pool1": 8, "pool2": 16, "pool3": 32}
    options = dict(history=20, margin=48, align=8, splits=splits)
    at = {gib: memory.plan((2048, 1536), bf16, gib * memory.GIB, **options) for gib in (3.0, 3.5, 5.0)}
    assert [at[g].cut for g in (3.0, 3.5, 5.0)] == [None, "pool2", "pool1"]  # 3.0: no split leaves 256 px tiles
    for gib, fit in at.items():
        assert fit.tile is not None and fit.estimate <= gib * memory.GIB
        assert fit.cut is None or (fit.tile >= memory.SPLIT_TILE and fit.history >= memory.SPLIT_HISTORY)
    assert "tiles of 360 px up to pool2, L-BFGS history 10 (bf16)" in at[3.5].describe()
    whole = memory.plan((4096, 3072), bf16, 4.0 * memory.GIB, **options)  # no deep part fits beside a tile
    assert whole.cut is None and whole.tile is not None and whole.estimate <= 4.0 * memory.GIB
    assert memory.plan((2048, 1536), bf16, 3.5 * memory.GIB, 20, 48, 8).cut is None  # no splits offered
    forced = memory.plan((512, 384), bf16, 3.5 * memory.GIB, 20, 48, 8, tile_size=128, splits=splits)
    assert forced.tile == 128 and forced.cut == "pool1"
    # a whole 2048 px picture with 15 bf16 pairs peaked at 7.6-8.3 GiB in full runs: 7.5 GiB is too
    # tight for it (memory.WHOLE_SLACK), 8.5 is not (measured: 7.9 GiB with 19 pairs)
    tight, ample = (memory.plan((2048, 1536), bf16, gib * memory.GIB, **options) for gib in (7.5, 8.5))
    assert tight.cut == "pool1" and ample.tile is None and ample.estimate <= 8.5 * memory.GIB


def test_resuming_from_a_cut_gives_the_same_features():
    vgg = frozen_network(StyleConfig(precision="fp32"), resolve("cpu", "fp32"))
    pixels = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(3))
    whole, shallow = vgg(pixels), vgg(pixels, until="pool2")
    assert set(shallow) == {"relu1_1", "relu2_1", "pool2"} and vgg.split_points() == ["pool1", "pool2", "pool3"]
    deep = vgg.resume(shallow["pool2"], "pool2")
    assert set(deep) == {"relu3_1", "relu4_1", "relu4_2"}
    for layer, features in deep.items():
        assert torch.equal(features, whole[layer])


def test_the_default_budget_is_frugal_for_cheap_plans_and_stretches_only_for_a_picture_that_cannot_fit(
    monkeypatch,
):
    """On the CPU a sixth of the free RAM for plans that cost little (whole, or split tiles), a third for
    tiles through the whole network; a picture too large for any tile within a third may take half;
    a budget the user gave is never stretched."""
    monkeypatch.setattr(memory, "available_bytes", lambda device: 24 * memory.GIB)
    cpu, bf16 = torch.device("cpu"), torch.bfloat16
    options = dict(history=20, margin=48, align=8, splits={"pool1": 8, "pool2": 16})
    frugal, default, stretched = memory.budgets(None, cpu)
    assert frugal == (4 * memory.GIB, True) and default == (8 * memory.GIB, False)
    assert stretched == (12 * memory.GIB, False)
    tiers = [frugal, default, stretched]
    assert memory.plan_within(tiers, (1024, 768), bf16, **options).tile is None  # whole, within a sixth
    split = memory.plan_within(tiers, (2048, 1536), bf16, **options)
    assert split.budget == frugal.bytes and split.cut == "pool2" and split.estimate <= 4 * memory.GIB
    tiled = memory.plan_within(tiers, (4096, 3072), bf16, **options)
    assert tiled.budget == default.bytes and tiled.cut is None and tiled.tile is not None
    huge = memory.plan_within(tiers, (8192, 6144), bf16, **options)
    assert huge.budget == stretched.bytes and huge.tile is not None and huge.estimate <= stretched.bytes
    with pytest.raises(ImpastoError, match="a memory budget of 8.00 GiB is too small for a 8192x6144 picture"):
        memory.plan_within(memory.budgets(8.0, cpu), (8192, 6144), bf16, **options)
    assert [b.cheap_only for b in memory.budgets(None, torch.device("cuda"))] == [False, False]  # a GPU: no frugal tier


def test_tiles_trim_the_heap_only_when_the_next_tile_might_not_fit(monkeypatch):
    trims: list[int] = []
    resident = {"now": 3 * memory.GIB}
    monkeypatch.setattr(memory, "release_free_memory", lambda: trims.append(resident["now"]))
    monkeypatch.setattr(memory, "resident_bytes", lambda: resident["now"])
    guard = memory.HeapGuard(budget=4 * memory.GIB, need=0.5 * memory.GIB)
    guard()
    assert trims == []  # 3 + 0.5 GiB fits in 4
    resident["now"] = 3.6 * memory.GIB
    guard()
    assert trims == [resident["now"]]
    memory.HeapGuard(budget=None, need=0.0)()  # no budget (a caller of build_objective without one): always
    assert len(trims) == 2


def test_the_first_pass_stops_at_the_deepest_layer_it_needs():
    vgg = frozen_network(StyleConfig(precision="fp32"), resolve("cpu", "fp32"))
    pixels = torch.rand(1, 3, 64, 64)
    whole, shallow = vgg(pixels), vgg(pixels, until="relu3_1")
    assert set(shallow) == {"relu1_1", "relu2_1", "relu3_1"} and "relu4_2" in whole
    for layer, features in shallow.items():
        assert torch.equal(features, whole[layer])


def test_a_tiled_run_paints_the_same_picture(content_image, style_image):
    options = dict(size=128, scales=1, iterations=[4], seed=0, precision="fp32")
    whole = impasto.run(content_image, style_image, **options)
    seen = []
    tiled = impasto.run(content_image, style_image, **options, tile_size=64, callback=lambda p: seen.append(p.tiles))
    assert set(seen) == {4}
    assert tiled.loss == pytest.approx(whole.loss, rel=1e-4)
    diff = np.abs(np.asarray(tiled.image, np.int16) - np.asarray(whole.image, np.int16))
    assert diff.max() <= 2


def test_a_budget_below_one_tile_fails_before_the_run(image_files, tmp_path, capsys):
    from impasto.cli import main

    content, style = image_files
    out = tmp_path / "out.png"
    assert main([str(content), str(style), "-o", str(out), "--size", "2048", "--max-memory", "0.5", "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("impasto: error: a memory budget of 0.50 GiB is too small") and "\n" not in err
    assert not out.exists()


def test_the_progress_output_says_what_the_budget_chose(image_files, tmp_path, capsys):
    from impasto.cli import main

    content, style = image_files
    args = [str(content), str(style), "-o", str(tmp_path / "out.png"), "--size", "128", "--scales", "1"]
    assert main([*args, "--iterations", "2", "--tile-size", "64"]) == 0
    err = capsys.readouterr().err
    # split: conv1_1..pool1 in tiles, the rest on the whole 64 x 48 map (it fits)
    assert "scale 1/1 128x" in err and "tiles of 64 px up to pool1, L-BFGS history 20" in err and "in 4 tiles" in err
    assert "GiB of a " in err and "GiB budget" in err  # the estimate against the budget it was fitted to
    assert main([*args, "--iterations", "2"]) == 0
    assert "L-BFGS history" not in capsys.readouterr().err  # within the budget: nothing to say


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_output_keeps_the_float_pixels(image_files, tmp_path, suffix):
    """--bit-depth 16 writes 65536 levels (the float image, not the 8-bit one scaled) with the parameters."""
    import json

    import png
    import tifffile

    from impasto.cli import main

    content, style = image_files
    out = tmp_path / f"out{suffix}"
    assert (
        main([str(content), str(style), "-o", str(out), "--size", "48", "--iterations", "3", "--bit-depth", "16", "-q"])
        == 0
    )
    if suffix == ".png":
        reader = png.Reader(filename=str(out))
        width, height, rows, info = reader.read()
        array = np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(height, width, 3)
        texts = [data for kind, data in png.Reader(filename=str(out)).chunks() if kind == b"iTXt"]
        assert info["bitdepth"] == 16 and any(t.startswith(b"impasto:size\0") for t in texts)
    else:
        with tifffile.TiffFile(out) as tiff:
            array = tiff.asarray()
            assert json.loads(tiff.pages[0].description)["impasto:size"] == "48"
    assert array.dtype == np.uint16 and array.shape == (36, 48, 3)
    assert np.any(array % 257 != 0)  # levels between the 8-bit ones: the float image itself
    assert not list(tmp_path.glob(".*.tmp"))


def test_sixteen_bit_needs_png_or_tiff(image_files, tmp_path, capsys):
    from impasto.cli import main

    content, style = image_files
    assert main([str(content), str(style), "-o", str(tmp_path / "o.jpg"), "--bit-depth", "16"]) == 1
    assert "--bit-depth 16 needs a .png or .tif output" in capsys.readouterr().err
