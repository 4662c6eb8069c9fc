"""The ComfyUI node pack, driven as ComfyUI drives it: IMAGE [B, H, W, C] floats in 0-1, MASK [B, H, W],
inputs by name, inside torch.inference_mode(). ComfyUI itself is not installed: a fake `comfy` package
in sys.modules stands in for its progress bar and its Cancel check. Real VGG-19, 64-128 px, few steps.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import subprocess
import sys
import types
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import comfy_fakes
import numpy as np
import pytest
import torch
from comfy_fakes import as_image, paint
from PIL import Image

import impasto
from impasto import ImpastoError, StyleConfig
from impasto.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, example
from impasto.comfyui.host import PREVIEW_SIDE
from impasto.objective import _cached_weights

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "comfyui_workflow_api.json"
CORE_NODES = {"LoadImage", "SaveImage", "PreviewImage"}  # ComfyUI's own nodes the example uses
STYLIZE, PRINT = NODE_CLASS_MAPPINGS["ImpastoStylize"], NODE_CLASS_MAPPINGS["ImpastoStylizePrint"]
UNIT, RANGE = "must hold", r"\[0, 1\]"
FAST = dict(strength=3.0, preserve_color="none", seed=0, iterations=4)


def resized(image: Image.Image, shape: torch.Size) -> torch.Tensor:
    return as_image(image.resize((shape[2], shape[1]), Image.Resampling.LANCZOS))


@pytest.fixture
def content(content_image: Image.Image) -> torch.Tensor:
    return as_image(content_image)  # 1 x 72 x 96 x 3


@pytest.fixture
def style(style_image: Image.Image) -> torch.Tensor:
    return as_image(style_image)


def test_nodes_follow_comfyui_conventions() -> None:
    assert set(NODE_DISPLAY_NAME_MAPPINGS) == set(NODE_CLASS_MAPPINGS)
    for node in NODE_CLASS_MAPPINGS.values():
        spec = node.INPUT_TYPES()
        assert set(spec) == {"required", "optional"} and node.RETURN_TYPES == ("IMAGE",) and node.CATEGORY
        method = inspect.signature(getattr(node(), node.FUNCTION))
        for group in spec.values():
            for name, (kind, *options) in group.items():
                assert kind in ("IMAGE", "MASK", "INT", "FLOAT") or isinstance(kind, list), (name, kind)
                if kind in ("INT", "FLOAT"):
                    limits = options[0]
                    assert limits["min"] <= limits["default"] <= limits["max"], name
        method.bind(**{name: None for name in spec["required"]})  # every required input is a parameter
        method.bind(**{name: None for group in spec.values() for name in group})


def test_stylize_gives_an_image_batch_in_comfyui_layout(content: torch.Tensor, style: torch.Tensor) -> None:
    out = paint(STYLIZE, content=content, style=style, size=64, **FAST)
    assert out.shape == (1, 48, 64, 3) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert 0.0 <= out.min() and out.max() <= 1.0
    change = (out - resized(Image.fromarray((content[0].numpy() * 255).astype(np.uint8)), out.shape)).abs().mean()
    assert change > 0.02  # painted, not the photo handed back


def test_batch_is_painted_one_by_one_with_the_network_loaded_once(content: torch.Tensor, style: torch.Tensor) -> None:
    second = torch.flip(content, dims=[2])  # another photo: the same one mirrored
    other = torch.flip(style, dims=[3])  # and another painting: its colours turned around
    _cached_weights.cache_clear()
    both = paint(STYLIZE, content=torch.cat([content, second]), style=torch.cat([style, other]), size=64, **FAST)
    assert _cached_weights.cache_info().misses == 1  # decoded once, kept for the second picture
    alone = paint(STYLIZE, content=second, style=other, size=64, **FAST)  # content 2 goes with style 2
    assert both.shape == (2, 48, 64, 3)
    assert torch.allclose(both[1], alone[0], atol=2 / 255)  # item 2 is its own painting, not item 1's
    assert (both[0] - both[1]).abs().mean() > 0.05


def test_mask_keeps_the_photo_where_it_is_zero(content: torch.Tensor, style: torch.Tensor) -> None:
    mask = torch.zeros(1, 72, 96)
    mask[:, :, 48:] = 1.0  # style on the right half only
    out = paint(STYLIZE, content=content, style=style, size=64, mask=mask, **{**FAST, "iterations": 8})
    photo = resized(Image.fromarray((content[0].numpy() * 255).astype(np.uint8)), out.shape)
    change = (out - photo).abs().mean(dim=(0, 1, 3))  # per column
    left, right = change[:28].mean(), change[36:].mean()
    assert right > 3 * left, (float(left), float(right))


def test_style_2_blend_weight_0_is_style_1_alone(content: torch.Tensor, style: torch.Tensor) -> None:
    other = as_image(Image.new("RGB", (64, 64), (20, 120, 40)))
    one = paint(STYLIZE, content=content, style=style, size=64, **FAST)
    blended = paint(STYLIZE, content=content, style=style, style_2=other, blend=0.0, size=64, **FAST)
    assert torch.allclose(one, blended, atol=2 / 255)
    towards_2 = paint(STYLIZE, content=content, style=style, style_2=other, blend=1.0, size=64, **FAST)
    assert (towards_2 - one).abs().mean() > 0.02


def test_print_size_paints_inches_times_dpi_in_tiles(
    content: torch.Tensor, style: torch.Tensor, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="impasto"):
        out = paint(PRINT, content=content, style=style, inches=1.0, dpi=128, tile_size=64, **{**FAST, "iterations": 3})
    assert out.shape == (1, 96, 128, 3) and 0.0 <= out.min() and out.max() <= 1.0
    assert "tiles of 64 px" in caplog.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(content=np.zeros((1, 64, 64, 3), np.float32)), "content must be a ComfyUI IMAGE tensor, got ndarray"),
        (dict(content=torch.rand(1, 3, 64, 64)), r"content must be an IMAGE of shape \[B, H, W, 3\]"),
        (
            dict(content=torch.full((1, 64, 64, 3), float("nan"))),
            r"content must hold finite values in \[0, 1\], got NaN",
        ),
        (
            dict(content=torch.rand(1, 64, 64, 3) * 255),
            r"content must hold values in \[0, 1\], got values from 0\.\d+ to 25\d",
        ),
        (
            dict(style=torch.full((1, 32, 32, 3), -0.2)),
            r"style must hold values in \[0, 1\], got values from -0\.2 to -0\.2",
        ),
        (dict(mask=torch.full((1, 64, 64), 2.0)), r"mask must hold values in \[0, 1\], got values from 2 to 2 \(0-255"),
        (dict(content=torch.zeros(0, 64, 64, 3)), "content is empty"),
        (dict(style=torch.rand(3, 32, 32, 3)), "style has a batch of 3; give 1 .* or 2"),
        (
            dict(content=torch.rand(1, 64, 64, 3), style=torch.rand(3, 32, 32, 3)),
            "^style has a batch of 3; give 1, as there is one content image$",
        ),
        (dict(mask=torch.rand(1, 1, 64, 64)), r"mask must be a MASK of shape \[B, H, W\]"),
        (
            dict(mask=torch.ones(1, 64, 64), style_2=torch.rand(1, 32, 32, 3)),
            "^mask of content image 1 is 1 everywhere, which leaves style_2 nowhere to go: disconnect style_2",
        ),
        (dict(blend=1.5), "blend must be from 0 to 1"),
    ],
)
def test_bad_input_is_one_clear_line(change: dict[str, Any], message: str) -> None:
    inputs = dict(content=torch.rand(2, 64, 64, 3), style=torch.rand(1, 32, 32, 3), size=64, **FAST) | change
    with pytest.raises(ImpastoError, match=message) as error:
        paint(STYLIZE, **inputs)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("inches", "dpi", "message"),
    [
        (20.0, 600, "20 in at 600 dpi is 12000 px; the print node paints 16 to 8192 px: lower the dpi"),
        (0.1, 10, "0.1 in at 10 dpi is 1 px; the print node paints 16 to 8192 px: raise the dpi"),  # named `size`
    ],
)
def test_print_size_out_of_range_is_refused_in_the_nodes_own_inputs(inches: float, dpi: int, message: str) -> None:
    inputs = dict(content=torch.rand(1, 64, 64, 3), style=torch.rand(1, 32, 32, 3), inches=inches, dpi=dpi, **FAST)
    with pytest.raises(ImpastoError) as error:
        paint(PRINT, **inputs)
    assert str(error.value) == message


def test_a_float_image_out_of_range_is_refused_as_the_python_api_refuses_it(content: torch.Tensor) -> None:
    """Issue 39 item 6: a 0-255 float IMAGE was clamped to a near-white picture without a word. One rule
    (imageio.check_unit_floats): what the API refuses the node refuses, what the API takes the node takes."""
    for values in (content * 255, content - 0.01, content + 1e-7):
        refused = None
        try:
            impasto.run(values[0].numpy(), content[0].numpy(), size=32, scales=1, iterations=[1])
        except ImpastoError as exc:
            refused = str(exc).replace("a float32 array image", "content").replace(", or pass uint8", "")
        try:
            paint(STYLIZE, content=values, style=content, size=64, **{**FAST, "iterations": 1})
        except ImpastoError as exc:
            assert str(exc) == refused
        else:
            assert refused is None


def test_the_seed_range_declared_is_the_range_painting_takes() -> None:
    """Issue 39 item 7: the node declared seeds up to 2^64-1 and painting refused those above 2^63-1."""
    for node in NODE_CLASS_MAPPINGS.values():
        seed = node.INPUT_TYPES()["required"]["seed"][1]
        StyleConfig(seed=seed["min"]).validate()
        StyleConfig(seed=seed["max"]).validate()
        with pytest.raises(ImpastoError, match="seed must be"):
            StyleConfig(seed=seed["max"] + 1).validate()


@pytest.fixture
def comfy(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A fake ComfyUI: the progress bar records its updates; Cancel is pressed after `cancel_after` checks."""
    return comfy_fakes.install(monkeypatch)


def test_progress_goes_to_comfyuis_bar_over_the_whole_batch(
    comfy: types.SimpleNamespace, content: torch.Tensor, style: torch.Tensor
) -> None:
    paint(STYLIZE, content=torch.cat([content, content]), style=style, size=64, **{**FAST, "iterations": 12})
    assert comfy.bars == [24]  # one bar: 2 pictures x 12 evaluations
    values = [value for value, _, _ in comfy.updates]
    assert values == sorted(values) and values[-1] == 24 and all(total == 24 for _, total, _ in comfy.updates)
    previews = [preview for _, _, preview in comfy.updates if preview is not None]
    assert previews and all(kind == "JPEG" and side == PREVIEW_SIDE for kind, _, side in previews)
    assert all(isinstance(image, Image.Image) and image.size == (64, 48) for _, image, _ in previews)
    assert comfy.checks >= 24


def test_cancel_in_comfyui_stops_the_painting(
    comfy: types.SimpleNamespace, content: torch.Tensor, style: torch.Tensor
) -> None:
    comfy.cancel_after = 5
    with pytest.raises(comfy_fakes.Interrupted):
        paint(STYLIZE, content=torch.cat([content, content]), style=style, size=64, **{**FAST, "iterations": 50})
    assert len(comfy.updates) <= 5  # stopped at the check, not after the batch's 100 evaluations


def _load_like_comfyui(module_name: str) -> subprocess.CompletedProcess[str]:
    """Load the repository's root __init__.py the way ComfyUI's loader does, in a fresh interpreter."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location({module_name!r}, {str(ROOT / '__init__.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules[spec.name] = module\n"
        "spec.loader.exec_module(module)\n"
        "import impasto\n"
        "print(sorted(module.NODE_CLASS_MAPPINGS), impasto.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=120)


@pytest.mark.parametrize("module_name", [str(ROOT).replace(".", "_x_"), "impasto"])  # today's ComfyUI; older ones
def test_clone_in_custom_nodes_loads_the_pack(module_name: str) -> None:
    proc = _load_like_comfyui(module_name)
    assert proc.returncode == 0, proc.stderr
    names, package = proc.stdout.split("] ")
    assert names + "]" == str(sorted(NODE_CLASS_MAPPINGS))
    assert Path(package.strip()) == ROOT / "src" / "impasto" / "__init__.py"  # the package, not the shim


def test_installed_package_declares_the_comfyui_entry_point() -> None:
    """Read by hiddenswitch's pip-installable ComfyUI only; upstream ComfyUI loads custom_nodes/ (above)."""
    (point,) = [p for p in entry_points(group="comfyui.custom_nodes") if p.name == "impasto"]
    assert point.load().NODE_CLASS_MAPPINGS is NODE_CLASS_MAPPINGS


def test_example_workflow_uses_the_nodes_as_declared() -> None:
    workflow = json.loads(WORKFLOW.read_text())
    ours = [node for node in workflow.values() if node["class_type"] in NODE_CLASS_MAPPINGS]
    assert ours and {node["class_type"] for node in workflow.values()} <= set(NODE_CLASS_MAPPINGS) | CORE_NODES
    for node in ours:
        spec = NODE_CLASS_MAPPINGS[node["class_type"]].INPUT_TYPES()
        assert set(spec["required"]) <= set(node["inputs"]) <= set(spec["required"]) | set(spec["optional"])
        for name, value in node["inputs"].items():
            if isinstance(value, list):  # a link: [source node id, output index]
                assert value[0] in workflow and value[1] == 0, (name, value)
        if node is ours[0]:  # the example shows the node's defaults, so a user starts from impasto's own
            declared = {name: options[0] for name, (_, *options) in spec["required"].items() if options}
            defaults = {name: options["default"] for name, options in declared.items() if "default" in options}
            assert {name: node["inputs"][name] for name in defaults} == defaults


def test_example_workflow_runs_as_shipped(tmp_path: Path) -> None:
    """Its LoadImage nodes named photo.png and painting.png, which were nowhere: `python -m impasto.comfyui.example
    ComfyUI/input` writes the two pictures it names. Run here as ComfyUI would, at 64 px to be quick."""
    assert example.main([str(tmp_path)]) == 0
    workflow = json.loads(WORKFLOW.read_text())
    loads = {key: node["inputs"]["image"] for key, node in workflow.items() if node["class_type"] == "LoadImage"}
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(loads.values())
    images = {key: as_image(Image.open(tmp_path / name).convert("RGB")) for key, name in loads.items()}  # LoadImage
    (key, node), *_ = [(k, n) for k, n in workflow.items() if n["class_type"] in NODE_CLASS_MAPPINGS]
    inputs = {name: images[value[0]] if isinstance(value, list) else value for name, value in node["inputs"].items()}
    out = paint(NODE_CLASS_MAPPINGS[node["class_type"]], **{**inputs, "size": 64, "iterations": 2})
    photo = images[node["inputs"]["content"][0]]
    assert out.shape[0] == 1 and abs(out.shape[2] / out.shape[1] - photo.shape[2] / photo.shape[1]) < 0.05
    save = [n for n in workflow.values() if n["class_type"] == "SaveImage"]
    assert save and save[0]["inputs"]["images"] == [key, 0]


def test_example_pictures_need_an_existing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert example.main([str(tmp_path / "ComfyUI" / "input")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is not a folder: give ComfyUI's input folder, e.g. ComfyUI/input" in error


def test_registry_metadata_is_what_comfyui_manager_reads() -> None:
    """ComfyUI-Manager installs a Registry pack from [project] and [tool.comfy] (as `comfy node init` writes
    them): a static X.Y.Z version, which it reads as text, and the dependencies from requirements.txt."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project, comfy = config["project"], config["tool"]["comfy"]
    assert project["version"] == impasto.__version__ and re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert "version" not in project.get("dynamic", [])
    name = project["name"]  # the Registry's node id: a letter first, no run of specials, no "ComfyUI" in it
    assert re.fullmatch(r"[A-Za-z](?:[A-Za-z0-9]|[-_.](?=[A-Za-z0-9]))*", name) and "comfyui" not in name.lower()
    assert {"PublisherId", "DisplayName", "Icon"} <= set(comfy) and comfy["DisplayName"]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == project["dependencies"]
