"""The Python API as a careless script meets it (issue 22, items 12, 13 and 15).

Every field of StyleConfig is walked with a value of the wrong type, one out of range and one that
is right; every array dtype and shape an image may arrive as is accepted (with the pixels it
should give) or refused. A refusal is impasto's own one-line ImpastoError, the same whether it
comes through `impasto.stylize`, `impasto.run` or `StyleConfig(...)`, raised before any painting,
and the input files are byte-identical afterwards with nothing written beside them.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import impasto
from impasto import ImpastoError, StyleConfig
from impasto.imageio import load_image

ROOT = Path(__file__).resolve().parents[1]

MAX_SEED = 2**63 - 1

# field: ((wrong type, its message), (out of range, its message), a right value of a type one may pass)
FIELDS: dict[str, tuple[tuple[Any, str], tuple[Any, str], Any]] = {
    "size": (
        ("32", "size must be an integer from 16 to 8192, got '32' of type str"),
        (8, "size must be an integer from 16 to 8192, got 8"),
        np.int64(48),
    ),
    "style_scale": (
        ("1", "style scale must be between 0.05 and 8, got '1' of type str"),
        (9.0, "style scale must be between 0.05 and 8, got 9.0"),
        np.float32(0.5),
    ),
    "min_size": (
        (160.0, "min size must be an integer from 16 to 8192, got 160.0 of type float"),
        (8, "min size must be an integer from 16 to 8192, got 8"),
        32,
    ),
    "scales": (
        ("2", "scales must be an integer from 1 to 12, got '2' of type str"),
        (13, "scales must be an integer from 1 to 12, got 13"),
        None,
    ),
    "iterations": (
        ("abc", "iterations must be a list of numbers (e.g. [200, 100], one per scale), got 'abc' of type str"),
        ([10, -1], "each value of iterations must be a non-negative integer, got -1"),
        np.array([20, 10]),
    ),
    "content_weight": (
        ("1", "content weight must be a non-negative number, got '1' of type str"),
        (float("nan"), "content weight must be a non-negative number, got nan"),
        2,
    ),
    "layout_weight": (
        ([4], "layout weight must be a non-negative number, got [4] of type list"),
        (-1, "layout weight must be a non-negative number, got -1"),
        0.5,
    ),
    "style_weight": (
        (None, "style weight must be a non-negative number, got None"),
        (-3.0, "style weight must be a non-negative number, got -3.0"),
        np.float64(1e3),
    ),
    "tv_weight": (
        (True, "tv weight must be a non-negative number, got True of type bool"),
        (float("inf"), "tv weight must be finite (a non-negative number), got inf"),  # not "not non-negative"
        0,
    ),
    "content_layers": (
        (
            "relu4_2",
            "content layers must be a dict of layer names to weights (e.g. {'relu4_2': 1.0}), got "
            "'relu4_2' of type str",
        ),  # fmt: skip
        ({"relu4_2": -1.0}, "weight of layer relu4_2 must be non-negative, got -1.0"),
        {"relu4_2": 1, "relu3_2": np.float32(0.5)},
    ),
    "style_layers": (
        ({"relu1_1": "1"}, "weight of layer relu1_1 must be non-negative, got '1' of type str"),
        ({"relu9_9": 1.0}, "unknown layer name 'relu9_9'; use names like conv4_2, relu1_1, pool3"),
        {"relu1_1": 1.0},
    ),
    "style_loss": (
        (2, "unknown style_loss 2 of type int; choose from gram, w2"),
        ("l1", "unknown style_loss 'l1'; choose from gram, w2"),
        "w2",
    ),
    "normalize_losses": (
        ("yes", "normalize losses must be True or False, got 'yes' of type str"),
        (1, "normalize losses must be True or False, got 1 of type int"),
        np.bool_(False),
    ),
    "optimizer": (
        (None, "unknown optimizer None; choose from lbfgs, adam"),
        ("sgd", "unknown optimizer 'sgd'; choose from lbfgs, adam"),
        "adam",
    ),
    "lr": (
        ("0.1", "lr must be a non-negative number, got '0.1' of type str"),
        (-0.1, "lr must be a non-negative number, got -0.1"),
        0.05,
    ),
    "lbfgs_history": (
        (20.0, "lbfgs history must be an integer from 1 to 1000, got 20.0 of type float"),
        (0, "lbfgs history must be an integer from 1 to 1000, got 0"),
        5,
    ),
    "max_memory": (
        ("1", "max memory must be a number of GiB from 0.1 up, got '1' of type str"),
        (0.01, "max memory must be a number of GiB from 0.1 up, got 0.01"),
        2,
    ),
    "tile_size": (
        ("128", "tile size must be an integer from 64 to 8192, got '128' of type str"),
        (100, "tile size must be a multiple of 16 px, got 100"),
        128,
    ),
    "init": (
        (3, "init must be 'content', 'noise' or an image (a path, PIL image or array), got 3 of type int"),
        ("", "init must be 'content', 'noise' or an image (a path, PIL image or array), got ''"),
        "noise",
    ),
    "upsample": (
        (3, "unknown upsample 3 of type int; choose from bicubic, detail"),
        ("sharp", "unknown upsample 'sharp'; choose from bicubic, detail"),
        "bicubic",
    ),
    "tolerance": (
        ("x", "tolerance must be a non-negative number, got 'x' of type str"),
        (-1e-3, "tolerance must be a non-negative number, got -0.001"),
        0,
    ),
    "window": (
        (20.0, "window must be an integer from 1 to 10000, got 20.0 of type float"),
        (0, "window must be an integer from 1 to 10000, got 0"),
        np.int32(5),
    ),
    "seed": (
        ("1", f"seed must be an integer from 0 to {MAX_SEED}, got '1' of type str"),
        (-1, f"seed must be an integer from 0 to {MAX_SEED}, got -1"),
        None,
    ),
    "pooling": (
        (0, "unknown pooling 0 of type int; choose from max, avg"),
        ("median", "unknown pooling 'median'; choose from max, avg"),
        "avg",
    ),
    "device": (
        (0, "unknown device 0 of type int; choose from auto, cpu, cuda, mps"),
        ("tpu", "unknown device 'tpu'; choose from auto, cpu, cuda, mps"),
        "cpu",
    ),
    "precision": (
        (16, "unknown precision 16 of type int; choose from auto, bf16, fp32"),
        ("fp8", "unknown precision 'fp8'; choose from auto, bf16, fp32"),
        "fp32",
    ),
    "conv": (
        (3, "unknown conv 3 of type int; choose from auto, direct, winograd"),
        ("fft", "unknown conv 'fft'; choose from auto, direct, winograd"),
        "direct",
    ),
    "weights": (
        (1, "weights must be a file path (str or pathlib.Path), got 1 of type int"),
        ("", "weights must be a file path (str or pathlib.Path), got ''"),
        None,
    ),
    "preserve_color": (
        (True, "unknown preserve_color True of type bool; choose from luminance, histogram"),
        ("lab", "unknown preserve_color 'lab'; choose from luminance, histogram"),
        "luminance",
    ),
    "style_blend": (
        ("1,2", "style blend must be a list of numbers (e.g. [3, 1]), got '1,2' of type str"),
        ([0, 0], "style blend weights must not all be zero"),
        (3, np.float32(1)),
    ),
    "style_scales": (
        (1.0, "style scales must be a list of numbers (e.g. [1, 0.5]), got 1.0 of type float"),
        ([9.0], "each value of style scales must be a number from 0.05 to 8, got 9.0"),
        [1, 0.5],
    ),
    "content_masks": (
        (1, "content masks must be an image (a path, PIL image or NumPy array), got 1 of type int"),
        (
            [np.ones((4, 4), bool), 3],
            "content masks must be an image (a path, PIL image or NumPy array), got 3 of type int",
        ),  # fmt: skip
        np.ones((4, 4), bool),
    ),
    "style_masks": (
        ("mask.png", "style masks must be a list with one mask or None per style image, got 'mask.png' of type str"),
        ([None, 1], "style masks must be an image (a path, PIL image or NumPy array), got 1 of type int"),
        [None],
    ),
    "coarse_style": (
        (1.5, "coarse style must be an image (a path, PIL image or NumPy array), got 1.5 of type float"),
        ({}, "coarse style must be an image (a path, PIL image or NumPy array), got {} of type dict"),
        Image.new("RGB", (8, 8)),
    ),
    "coarse_from": (
        (3, "coarse_from must be a VGG-19 relu layer such as relu3_1, got 3 of type int"),
        ("pool3", "coarse_from must be a VGG-19 relu layer such as relu3_1, got 'pool3'"),
        "relu2_1",
    ),
}

BAD = {f"{name}: {kind}": FIELDS[name][index] for name in FIELDS for index, kind in enumerate(("type", "range"))}
"""Further refusals of the same fields: the cases the issue named, and ones close to valid."""
BAD.update(
    {
        "iterations: an int, not a list": (
            200,
            "iterations must be a list of numbers (e.g. [200, 100], one per scale), got 200 of type int",
        ),  # fmt: skip
        "iterations: a float count": (
            [1.5],
            "each value of iterations must be a non-negative integer, got 1.5 of type float",
        ),  # fmt: skip
        "iterations: a numeric string in the list": (
            ["10"],
            "each value of iterations must be a non-negative integer, got '10' of type str",
        ),  # fmt: skip
        "iterations: all zero": ([0, 0], "iterations are all 0: nothing would be painted"),
        "size: a float": (64.0, "size must be an integer from 16 to 8192, got 64.0 of type float"),
        "size: a bool": (True, "size must be an integer from 16 to 8192, got True of type bool"),
        "seed: beyond 64 bits": (2**64, f"seed must be an integer from 0 to {MAX_SEED}, got {2**64}"),
        "style_blend: a numeric string in the list": (
            ["1"],
            "each value of style blend must be a non-negative number, got '1' of type str",
        ),  # fmt: skip
        "content_layers: an infinite weight": (
            {"relu4_2": float("inf")},
            "weight of layer relu4_2 must be finite (non-negative), got inf",
        ),  # fmt: skip
        "style_scale: infinite": (float("inf"), "style scale must be finite (between 0.05 and 8), got inf"),
        "tv_weight: just over the float32 limit": (
            1.0000001e30,
            "tv weight is 1.0000001e+30; at most 1e+30 (larger overflows float32)",  # not "is 1e+30; at most 1e+30"
        ),  # fmt: skip
        "content_layers: a list of names": (
            ["relu4_2"],
            "content layers must be a dict of layer names to weights "
            "(e.g. {'relu4_2': 1.0}), got ['relu4_2'] of type list",
        ),  # fmt: skip  # noqa: E501
    }
)


def _field(case: str) -> str:
    return case.split(":")[0]


@pytest.fixture
def inputs(image_files: tuple[Path, Path]) -> tuple[Path, Path, dict[Path, bytes]]:
    content, style = image_files
    return content, style, {p: p.read_bytes() for p in content.parent.iterdir()}


def _refused(call: Any, message: str) -> None:
    with pytest.raises(ImpastoError) as caught:
        call()
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)
    assert type(caught.value).__module__.startswith("impasto")


def test_every_field_of_styleconfig_is_walked() -> None:
    assert set(FIELDS) == {f.name for f in dataclasses.fields(StyleConfig)}


@pytest.mark.parametrize("case", list(BAD))
def test_a_wrong_option_is_one_line_before_any_work(case: str, inputs: tuple[Path, Path, dict[Path, bytes]]) -> None:
    content, style, files = inputs
    value, message = BAD[case]
    options = {_field(case): value}
    _refused(lambda: impasto.stylize(content, style, **options), message)
    _refused(lambda: impasto.run(str(content), [style], **options), message)
    _refused(lambda: StyleConfig(**options), message)
    _refused(lambda: dataclasses.replace(StyleConfig(), **options), message)
    assert {p: p.read_bytes() for p in content.parent.iterdir()} == files  # untouched, nothing written


@pytest.mark.parametrize("name", list(FIELDS))
def test_a_right_value_is_taken_as_a_python_value(name: str) -> None:
    value = FIELDS[name][2]
    config = StyleConfig(**{name: value})
    kept = getattr(config, name)
    if isinstance(value, (np.generic, int, float)) and not isinstance(value, bool):
        assert kept == value and type(kept) in (int, float, bool), (kept, type(kept))
    elif isinstance(value, np.ndarray) and name == "iterations":
        assert kept == value.tolist() and all(type(i) is int for i in kept)
    elif isinstance(value, dict):
        assert kept == value and all(type(w) in (int, float) for w in kept.values())
    assert config.validate() is config


def test_numpy_options_and_float_arrays_paint(style_image: Image.Image) -> None:
    """NumPy numbers (as a sweep makes them) and float images run through the real network."""
    y, x = np.mgrid[0:40, 0:56].astype(np.float32)
    photo = np.stack([x / 55, y / 39, 1 - x / 55], axis=2)  # float32 in [0, 1]
    image = impasto.stylize(
        photo,
        np.asarray(style_image),
        size=np.int64(48),
        scales=np.int64(1),
        iterations=np.arange(4, 5),
        style_weight=np.float32(3.0),
    )
    assert image.size == (48, 34)


OTHER_KEYWORDS: dict[str, tuple[dict[str, Any], str]] = {
    "config of another type": (
        {"config": {"size": 64}},
        "config must be an impasto.StyleConfig or None, got {'size': 64} of type dict",
    ),  # fmt: skip
    "callback not callable": ({"callback": 5}, "callback must be a function taking a Progress (or None), got int"),
    "unknown option": ({"colour": "red"}, "unknown option 'colour'; the options are the fields of StyleConfig"),
}


@pytest.mark.parametrize("name", list(OTHER_KEYWORDS))
def test_other_keywords_are_checked(name: str, inputs: tuple[Path, Path, dict[Path, bytes]]) -> None:
    content, style, files = inputs
    options, message = OTHER_KEYWORDS[name]
    with pytest.raises(ImpastoError) as caught:
        impasto.stylize(content, style, **options)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert {p: p.read_bytes() for p in content.parent.iterdir()} == files


# -- item 13: arrays as images -------------------------------------------------------------------


def _full(value: Any, shape: tuple[int, ...] = (6, 8, 3), dtype: Any = None) -> np.ndarray:
    return np.full(shape, value, dtype=dtype)


ACCEPTED: dict[str, tuple[np.ndarray, tuple[int, int, int]]] = {
    # name: (array, the RGB pixel it must give)
    "uint8 RGB": (_full(200, dtype=np.uint8), (200, 200, 200)),
    "float32 in [0, 1]": (_full(0.5, dtype=np.float32), (128, 128, 128)),
    "float64 0 and 1": (_full(1.0), (255, 255, 255)),
    "float16": (_full(0.25, dtype=np.float16), (64, 64, 64)),
    "float a rounding error over 1": (_full(1.0 + 1e-7), (255, 255, 255)),
    "float a rounding error under 0": (_full(-1e-7), (0, 0, 0)),
    "2-D grey uint8": (_full(90, (6, 8), np.uint8), (90, 90, 90)),
    "HxWx1 grey": (_full(90, (6, 8, 1), np.uint8), (90, 90, 90)),
    "RGBA, transparent: white as for files": (_full(0, (6, 8, 4), np.uint8), (255, 255, 255)),
    "RGBA, opaque": (np.dstack([_full(10, dtype=np.uint8), _full(255, (6, 8), np.uint8)]), (10, 10, 10)),
    "bool mask": (_full(True, (6, 8), bool), (255, 255, 255)),
    "uint16 scaled as 16-bit files are": (_full(65535, dtype=np.uint16), (255, 255, 255)),
    "uint16 half": (_full(32768, dtype=np.uint16), (128, 128, 128)),
    "int64 holding 0-255": (_full(200, dtype=np.int64), (200, 200, 200)),
    "a strided view": (_full(7, (12, 16, 3), np.uint8)[::2, ::2], (7, 7, 7)),
}

FLOAT_RANGE = "array image must hold values in [0, 1], got values from"
SHAPES = "an array image must be HxW (grey), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA, composited on white), got shape"
DTYPES = "an array image must be uint8 (0-255), uint16 (0-65535), bool, another integer type holding 0-255, or float"
REFUSED: dict[str, tuple[np.ndarray, str]] = {
    "float 0-255 (was near-white)": (_full(128.0), f"a float64 {FLOAT_RANGE} 128 to 128 (0-255 values: divide by 255"),
    "float32 0-255": (_full(200.0, dtype=np.float32), f"a float32 {FLOAT_RANGE} 200 to 200"),
    "float negative": (_full(-0.5), f"a float64 {FLOAT_RANGE} -0.5 to -0.5"),
    "float NaN (was accepted)": (_full(np.nan), "a float64 array image must hold finite values in [0, 1], got NaN"),
    "float inf": (_full(np.inf), "a float64 array image must hold finite values in [0, 1], got NaN or infinity"),
    "one NaN among good values": (np.where(np.eye(6, 8, dtype=bool)[..., None], np.nan, 0.5), "got NaN or infinity"),
    "int16 negative": (
        _full(-3, dtype=np.int16),
        "an int16 array image must hold values from 0 to 255, got values from -3 to -3",
    ),  # fmt: skip
    "int32 over 255": (
        _full(300, dtype=np.int32),
        "an int32 array image must hold values from 0 to 255, got values "
        "from 300 to 300 (for other ranges use uint16, or float in [0, 1])",
    ),  # fmt: skip  # noqa: E501
    "complex": (_full(0, dtype=complex), f"{DTYPES} in [0, 1]; got dtype complex128"),
    "objects": (_full(None, dtype=object), f"{DTYPES} in [0, 1]; got dtype object"),
    "strings": (_full("a"), f"{DTYPES} in [0, 1]; got dtype <U1"),
    "2 channels": (_full(0, (6, 8, 2), np.uint8), f"{SHAPES} (6, 8, 2)"),
    "channels first": (_full(0, (3, 6, 8), np.uint8), f"{SHAPES} (3, 6, 8)"),
    "a batch of one": (_full(0, (1, 6, 8, 3), np.uint8), f"{SHAPES} (1, 6, 8, 3)"),
    "1-D": (_full(0, (8,), np.uint8), f"{SHAPES} (8,)"),
    "0-D": (np.array(3, np.uint8), f"{SHAPES} ()"),
    "zero height": (_full(0, (0, 8, 3), np.uint8), "the array image has no pixels (shape (0, 8, 3))"),
    "zero width grey": (_full(0, (6, 0), np.uint8), "the array image has no pixels (shape (6, 0))"),
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_an_array_image_is_accepted(name: str) -> None:
    array, pixel = ACCEPTED[name]
    before = array.copy()
    image = load_image(array)
    assert image.mode == "RGB" and image.size == (array.shape[1], array.shape[0])
    assert image.getpixel((0, 0)) == pixel
    assert np.array_equal(array, before, equal_nan=array.dtype.kind == "f")  # the caller's array is not changed


@pytest.mark.parametrize("name", list(REFUSED))
def test_an_array_image_is_refused(name: str, style_image: Image.Image) -> None:
    array, words = REFUSED[name]
    with pytest.raises(ImpastoError) as caught:
        load_image(array)
    message = str(caught.value)
    assert message.startswith(words) or words in message, message
    assert "\n" not in message
    for where in ("content", "style", "init", "coarse_style"):  # each image argument takes the same path
        arguments: dict[str, Any] = {"content": style_image, "style": style_image, "size": 32}
        if where in ("init", "coarse_style"):
            arguments[where] = array
        else:
            arguments[where] = array if where == "content" else [array]
        with pytest.raises(ImpastoError, match=re.escape(message)):
            impasto.run(arguments.pop("content"), arguments.pop("style"), **arguments)


# -- item 15: the docs name the commands that exist ----------------------------------------------


def test_no_doc_says_a_shipped_command_does_not_exist() -> None:
    commands = ["video", "batch", "serve"]  # impasto's subcommands (cli.py)
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        text = " ".join(page.read_text().split())
        for command in commands:
            assert not re.search(rf"\b{command} command does not exist", text, re.I), f"{page.name}: {command}"
    assert "(video.md)" in (ROOT / "docs" / "cluster.md").read_text()
