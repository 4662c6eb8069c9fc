"""Images in (every mode Pillow gives us) and out (formats, metadata, atomic writes)."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from impasto.errors import ImpastoError
from impasto.imageio import TooManyPixels, fit_size, load_image, pil_to_tensor, tensor_to_pil
from impasto.writing import atomic_write, check_writable, save_image


def _roundtrip(tmp_path: Path, image: Image.Image, name: str, **save) -> Image.Image:
    path = tmp_path / name
    image.save(path, **save)
    out = load_image(path)
    assert out.mode == "RGB"
    return out


def test_grey_palette_and_cmyk_become_rgb(tmp_path):
    grey = Image.new("L", (10, 8), 77)
    assert _roundtrip(tmp_path, grey, "g.png").getpixel((3, 3)) == (77, 77, 77)
    pal = Image.new("RGB", (10, 8), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert _roundtrip(tmp_path, pal, "p.gif").getpixel((0, 0)) == pytest.approx((10, 200, 30), abs=4)
    cmyk = Image.new("CMYK", (10, 8), (0, 255, 255, 0))  # pure red in CMYK
    r, g, b = _roundtrip(tmp_path, cmyk, "c.jpg", quality=100).getpixel((5, 5))
    assert r > 240 and g < 15 and b < 15


def test_rgba_and_la_composite_on_white(tmp_path):
    rgba = Image.new("RGBA", (6, 6), (255, 0, 0, 0))  # fully transparent red
    assert _roundtrip(tmp_path, rgba, "t.png").getpixel((1, 1)) == (255, 255, 255)
    half = Image.new("RGBA", (6, 6), (0, 0, 0, 128))
    assert _roundtrip(tmp_path, half, "h.png").getpixel((1, 1)) == pytest.approx((127, 127, 127), abs=2)
    la = Image.new("LA", (6, 6), (0, 0))
    assert _roundtrip(tmp_path, la, "la.png").getpixel((1, 1)) == (255, 255, 255)


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    array = np.full((8, 8), 32768, dtype=np.uint16)  # half of the 16-bit range
    path = tmp_path / "deep.png"
    Image.fromarray(array).save(path)
    assert Image.open(path).mode.startswith("I")
    value = load_image(path).getpixel((2, 2))
    assert value == pytest.approx((128, 128, 128), abs=1)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 10, 20))  # red on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rot.jpg"
    image.save(path, exif=exif, quality=100)
    out = load_image(path)
    assert out.size == (20, 40)
    r, g, b = out.getpixel((10, 2))  # the red strip is now at the top
    assert r > 200 and b < 60


def test_arrays_and_pil_accepted(content_image):
    array = np.asarray(content_image)
    assert load_image(array).size == content_image.size
    floats = array.astype(np.float32) / 255.0
    assert np.abs(np.asarray(load_image(floats), int) - array).max() <= 1
    with pytest.raises(ImpastoError, match="array image"):
        load_image(np.zeros((4, 4, 2), np.uint8))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_text("hello, I am text"), "not an image"),
        (lambda p: p.write_bytes(_truncated_png()), "corrupt or truncated"),
    ],
    ids=["missing", "directory", "empty", "text-as-jpg", "truncated"],
)
def test_bad_files_give_one_line_errors(tmp_path, make, message):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(ImpastoError, match=message) as info:
        load_image(path)
    assert "\n" not in str(info.value)


def _truncated_png() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()[:300]


def test_decompression_bomb_guard_stays_on(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 100x100 > 2x the limit
    with pytest.raises(ImpastoError, match="too large"):
        load_image(path)


def test_tensor_roundtrip_is_exact(content_image):
    assert np.array_equal(np.asarray(tensor_to_pil(pil_to_tensor(content_image))), np.asarray(content_image))


def test_fit_size_keeps_aspect():
    assert fit_size((1024, 768), 512) == (512, 384)
    assert fit_size((300, 1200), 100) == (25, 100)


@pytest.mark.parametrize("ext, fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP"), (".tiff", "TIFF")])
def test_save_by_extension(tmp_path, content_image, ext, fmt):
    path = tmp_path / f"out{ext}"
    save_image(content_image, path, {"impasto:size": "64"})
    assert Image.open(path).format == fmt
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_png_metadata_written(tmp_path, content_image):
    path = tmp_path / "meta.png"
    save_image(content_image, path, {"impasto:style_weight": "1000", "impasto:init": "noise"})
    assert Image.open(path).text == {"impasto:style_weight": "1000", "impasto:init": "noise"}


def test_bad_output_paths(tmp_path, content_image):
    with pytest.raises(ImpastoError, match="unknown output type"):
        save_image(content_image, tmp_path / "out.xyz")
    with pytest.raises(ImpastoError, match="does not exist"):
        save_image(content_image, tmp_path / "nowhere" / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")

    def broken(handle):
        handle.write(b"half")
        raise KeyboardInterrupt  # as if Ctrl-C arrived mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_pixel_cap_is_checked_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    Image.new("1", (3000, 2000)).save(path)  # 6 MP in a few KB
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self) or None)
    with pytest.raises(TooManyPixels, match=r"wide.png: image is too large \(6.0 MP; the limit is 5 MP\)"):
        load_image(path, max_pixels=5_000_000)
    assert not decoded


def test_bomb_warning_is_an_error_not_a_printed_warning(tmp_path, monkeypatch, recwarn):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)  # 10,000 pixels: over the warning limit, under 2x
    with pytest.raises(TooManyPixels, match="decompression-bomb guard is 0.006 MP"):
        load_image(path)
    assert not recwarn.list
    assert not any(f[2] is Image.DecompressionBombWarning for f in warnings.filters)  # the filter was scoped


def test_check_writable_makes_the_real_temp_file(tmp_path, monkeypatch):
    """Permission bits are not the whole story (root on /sys): the temp the write will use is tried for real."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ImpastoError, match="out.png: cannot write there \\(Permission denied\\)"):
        check_writable(tmp_path / "out.png")
    monkeypatch.undo()
    check_writable(tmp_path / ("n" * 246 + ".png"))  # a long legal name leaves room for its temp
    assert list(tmp_path.iterdir()) == []
