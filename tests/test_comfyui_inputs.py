"""What a ComfyUI user meets first (issue 40): LoadImage's masks, the seed, ComfyUI's device and memory, and
tooltips that state impasto's own defaults. A fake `comfy` (comfy_fakes) stands in for ComfyUI; real VGG-19.
"""

from __future__ import annotations

import logging
import re
import sys
import types
from typing import Any

import comfy_fakes
import numpy as np
import pytest
import torch
from comfy_fakes import as_image, paint
from PIL import Image

import impasto
from impasto import ImpastoError, StyleConfig, memory
from impasto.comfyui import NODE_CLASS_MAPPINGS, host
from impasto.comfyui.paint import _room
from impasto.config import INITS, default
from impasto.runtime import resolve
from impasto.stylize import Progress

STYLIZE, PRINT = NODE_CLASS_MAPPINGS["ImpastoStylize"], NODE_CLASS_MAPPINGS["ImpastoStylizePrint"]
FAST = dict(strength=3.0, preserve_color="none", seed=0, iterations=4, size=64)


@pytest.fixture
def pictures(content_image: Image.Image, style_image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
    """conftest's photo (1 x 72 x 96 x 3) and painting as ComfyUI IMAGE tensors."""
    return as_image(content_image), as_image(style_image)


def _loadimage_mask(picture: Image.Image) -> torch.Tensor:
    """LoadImage's MASK: 1 - alpha for a picture with alpha, else a 64x64 placeholder of zeros (nodes.py)."""
    if "A" not in picture.getbands():
        return torch.zeros(1, 64, 64)
    return 1.0 - torch.from_numpy(np.asarray(picture.getchannel("A"), np.float32) / 255.0)[None]


def _right_half_transparent(width: int, height: int) -> Image.Image:
    picture = Image.new("RGBA", (width, height), (90, 90, 90, 255))
    picture.paste((90, 90, 90, 0), (width // 2, 0, width, height))
    return picture


@pytest.mark.parametrize("kind", ["placeholder", "faint"])
def test_loadimage_mask_of_a_picture_without_alpha_paints_as_no_mask(
    pictures: tuple[torch.Tensor, torch.Tensor], caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """It was refused: 'content mask 1 is 64x64 but the content image is 96x72: aspect ratios differ'. A mask
    fainter than one 8-bit level is nothing too (it was 'content mask 1 is empty (all black)')."""
    content, style = pictures
    empty = _loadimage_mask(Image.new("RGB", (96, 72))) if kind == "placeholder" else torch.full((1, 72, 96), 1e-3)
    with caplog.at_level(logging.WARNING, logger="impasto"):
        masked = paint(STYLIZE, content=content, style=style, mask=empty, **FAST)
    assert "mask is 0 everywhere (the style nowhere)" in caplog.text and "as if no mask were connected" in caplog.text
    unmasked = paint(STYLIZE, content=content, style=style, **FAST)
    assert torch.allclose(masked, unmasked, atol=2 / 255)


@pytest.mark.parametrize("mask_size", [(96, 72), (48, 36), (64, 64)], ids=["same", "half", "other-aspect"])
def test_the_style_goes_where_loadimages_picture_is_transparent_at_any_mask_size(
    pictures: tuple[torch.Tensor, torch.Tensor], mask_size: tuple[int, int]
) -> None:
    content, style = pictures
    mask = _loadimage_mask(_right_half_transparent(*mask_size))  # 1 on the right (transparent), 0 on the left
    out = paint(STYLIZE, content=content, style=style, mask=mask, **{**FAST, "iterations": 8})
    photo = as_image(Image.fromarray((content[0].numpy() * 255).astype(np.uint8)).resize((64, 48)))
    change = (out - photo).abs().mean(dim=(0, 1, 3))  # per column
    left, right = change[:28].mean(), change[36:].mean()
    assert right > 3 * left, (float(left), float(right))


def test_the_seed_counts_with_init_noise_only_and_is_not_rerolled(pictures: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Seeds 0, 1, 2 and 5 gave one picture from the photo while the frontend re-rolled the seed on every Queue."""
    content, style = pictures
    for node in NODE_CLASS_MAPPINGS.values():
        spec = node.INPUT_TYPES()["required"]
        assert spec["seed"][1]["control_after_generate"] is False  # the frontend adds "randomize" to any `seed`
        assert spec["init"][0] == list(INITS) and spec["init"][1]["default"] == default("init")
        assert "init noise" in spec["seed"][1]["tooltip"] and "changes nothing" in spec["seed"][1]["tooltip"]
    by_seed = {
        (init, seed): paint(STYLIZE, content=content, style=style, **{**FAST, "init": init, "seed": seed})
        for init, seed in [("noise", 0), ("noise", 1), ("content", 0), ("content", 5)]
    }
    noise = [by_seed["noise", 0], paint(STYLIZE, content=content, style=style, **{**FAST, "init": "noise"})]
    assert torch.equal(noise[0], noise[1])  # same seed, same picture
    assert (by_seed["noise", 1] - by_seed["noise", 0]).abs().mean() > 0.01
    assert torch.equal(by_seed["content", 0], by_seed["content", 5])


@pytest.fixture
def comfy(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    return comfy_fakes.install(monkeypatch)


def test_the_node_paints_on_comfyuis_device_and_gives_its_memory_back(
    comfy: types.SimpleNamespace, pictures: tuple[torch.Tensor, torch.Tensor], caplog: pytest.LogCaptureFixture
) -> None:
    content, style = pictures
    comfy.dtype = torch.float16  # `--fp16-intermediates`: ComfyUI's nodes pass IMAGE tensors in half precision
    out = paint(STYLIZE, content=content, style=style, **FAST)
    assert out.dtype == torch.float16 and out.device.type == "cpu" and comfy.emptied == 1
    assert comfy.frees == []  # the CPU: nothing of ComfyUI's is unloaded
    comfy.device = torch.device("cuda", 0)  # ComfyUI on a GPU (no `--cpu`)
    if torch.cuda.is_available():
        paint(STYLIZE, content=content, style=style, **FAST)
        ((room, where),) = comfy.frees
        assert where.type == "cuda" and room > memory.BASE_BYTES and comfy.emptied == 2
    else:  # impasto's `auto` would have painted on this CPU: the device is ComfyUI's
        with pytest.raises(ImpastoError, match="^device cuda asked for, but this PyTorch sees no CUDA GPU$"):
            paint(STYLIZE, content=content, style=style, **FAST)
    comfy.device = torch.device("xpu")
    with caplog.at_level(logging.WARNING, logger="impasto"):
        assert host.device() == "cpu"
    assert "ComfyUI runs on xpu, which impasto does not support: painting on the CPU" in caplog.text


def test_without_comfyui_the_device_is_impastos_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "comfy", None)  # `import comfy...` fails, as where ComfyUI is not installed
    assert host.device() == "auto"
    host.make_room(torch.device("cuda"), 1e9)  # nothing to ask, and no error
    host.release()


@pytest.mark.parametrize("fraction", [1.0, 0.9])
def test_the_room_asked_of_comfyui_lets_the_picture_paint_untiled(
    comfy: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch, fraction: float
) -> None:
    """With the room it asks ComfyUI for free on the GPU, impasto's automatic budget paints the picture whole;
    with less, in tiles: the room is what the painting needs, not a guess."""
    runtime = resolve("cpu", "fp32")
    gpu = types.SimpleNamespace(device=torch.device("cuda"), dtype=runtime.dtype)
    room = _room([(768, 1024)], gpu, {"size": 2048})  # type: ignore[arg-type]
    host.make_room(gpu.device, room)
    assert comfy.frees == [(room, gpu.device)]
    monkeypatch.setattr(memory, "available_bytes", lambda device: fraction * room)
    fit = memory.plan_within(memory.budgets(None, gpu.device), (2048, 1536), gpu.dtype, history=20, margin=0, align=16)
    assert (fit.tile is None) == (fraction == 1.0), fit.describe()
    host.make_room(torch.device("cpu"), room)
    assert len(comfy.frees) == 1  # never on the CPU
    assert _room([(768, 1024)], runtime, {"size": 2048, "max_memory": 2.0}) == 2.0 * memory.GIB


SCHEDULE = re.compile(r"0: impasto's schedule, at (\d+) px ([\d, ]+) \(at ([\d, ]+) px\)\.$")


@pytest.mark.parametrize("node", [STYLIZE, PRINT], ids=["stylize", "print"])
def test_the_iterations_tooltip_states_the_schedule_a_run_takes(
    node: type, pictures: tuple[torch.Tensor, torch.Tensor]
) -> None:
    """It said '0: impasto's schedule (300, 150, 75, ...)' while a 512 px run took 40, 30, 60."""
    content, style = pictures
    tooltip = node.INPUT_TYPES()["required"]["iterations"][1]["tooltip"]
    match = SCHEDULE.search(tooltip)
    assert match, tooltip
    size, counts, sides = int(match[1]), *([int(n) for n in group.split(", ")] for group in match.groups()[1:])
    seen: list[Progress] = []
    impasto.run(content[0].numpy(), style[0].numpy(), size=size, callback=lambda p: seen.append(p) or True)
    (first,) = seen  # stopped at once: the first scale's figures and the whole run's budget
    assert (first.scales, first.iterations, first.total_steps) == (len(counts), counts[0], sum(counts))
    assert max(first.size) == sides[0] and sides[-1] == size
    declared = {
        name: options.get("default") for name, (_, *rest) in node.INPUT_TYPES()["required"].items() for options in rest
    }
    assert size == declared.get("size") or size == round(declared["inches"] * declared["dpi"])  # the node's default


def test_every_default_and_limit_in_the_nodes_is_the_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    as_config: dict[str, tuple[str, Any]] = {  # node input -> (StyleConfig field, what the node's default means)
        "size": ("size", None), "strength": ("style_weight", None), "seed": ("seed", None), "init": ("init", None),
        "iterations": ("iterations", 0), "preserve_color": ("preserve_color", "none"),
        "tile_size": ("tile_size", 0), "max_memory": ("max_memory", 0.0),
    }  # fmt: skip
    for node in NODE_CLASS_MAPPINGS.values():
        spec = node.INPUT_TYPES()
        inputs = {**spec["required"], **spec["optional"]}
        for name, (field, none) in as_config.items():
            if name in inputs:
                declared = inputs[name][1]["default"]
                assert (None if declared == none else declared) == default(field), name
        for name in ("size", "seed"):
            if name in inputs:
                low, high = inputs[name][1]["min"], inputs[name][1]["max"]
                StyleConfig(**{name: low}).validate(), StyleConfig(**{name: high}).validate()
                for outside in (low - 1, high + 1):
                    with pytest.raises(ImpastoError):
                        StyleConfig(**{name: outside})
    tiles = PRINT.INPUT_TYPES()["required"]
    multiple, least = map(int, re.search(r"a multiple of (\d+), from (\d+)", tiles["tile_size"][1]["tooltip"]).groups())  # type: ignore[union-attr]
    assert tiles["tile_size"][1]["step"] == multiple
    StyleConfig(tile_size=least), StyleConfig(tile_size=least + multiple)
    for refused in (least - multiple, least + multiple // 2):
        with pytest.raises(ImpastoError, match="tile size"):
            StyleConfig(tile_size=refused)
    share = "(half|a third|a quarter|a sixth)"
    shares = re.search(
        rf"{share} of the free RAM for the whole picture or split tiles, {share} for tiles through the whole "
        rf"network, {share} for a picture that cannot fit .*; {share} of a GPU's", tiles["max_memory"][1]["tooltip"]
    )  # fmt: skip
    assert shares, tiles["max_memory"][1]["tooltip"]
    parts = {"half": 2, "a third": 3, "a quarter": 4, "a sixth": 6}
    monkeypatch.setattr(memory, "available_bytes", lambda device: 600.0)
    cpu, gpu = (memory.budgets(None, torch.device(kind)) for kind in ("cpu", "cuda"))
    assert [round(600 / b.bytes) for b in (*cpu, gpu[0])] == [parts[word] for word in shares.groups()]
    strength = STYLIZE.INPUT_TYPES()["required"]["strength"][1]
    assert f"{default('style_weight'):g} the default" in strength["tooltip"]
