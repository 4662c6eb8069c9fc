"""End-to-end test of the studio page in headless Chromium, as a user would use it.

Needs Debian's `chromium` (at /usr/bin/chromium) and the Python `playwright` package (its own
browser download is not used); skips with the reason where either is missing. The painting is
done by a stepped fake runner (web_fakes.py) that moves on only once the page shows each step,
so the test is exact however fast the machine is; the API tests run the real thing.
"""

from __future__ import annotations

import base64
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian package 'chromium' is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Python package 'playwright' is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")

from web_fakes import SteppedRunner  # noqa: E402

from impasto.web.app import create_app  # noqa: E402

STEPS = 8

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def runner() -> SteppedRunner:
    return SteppedRunner(steps=STEPS)


@pytest.fixture(scope="module")
def server_url(runner: SteppedRunner) -> Iterator[str]:
    port = _free_port()
    app = create_app(preview_interval=0.0, runner=runner)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the studio server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        # Playwright gives each launch a fresh temporary profile of its own.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def viewport() -> dict[str, int]:
    return {"width": 1200, "height": 900}


@pytest.fixture
def page(browser: sync_api.Browser, viewport: dict[str, int]) -> Iterator[sync_api.Page]:
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors


def _open(page: sync_api.Page, url: str) -> None:
    """Load the page and wait until it is ready for input (its script clears aria-busy once set up)."""
    page.goto(url)
    sync_api.expect(page.locator("body")).not_to_have_attribute("aria-busy", "true")


def _picture(path: Path, seed: int, size: tuple[int, int] = (96, 72)) -> Path:
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rng = np.random.default_rng(seed)
    pixels = np.stack([x * 240 / size[0], y * 216 / size[1], rng.random(size[::-1]) * 255], axis=-1)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def test_upload_paint_watch_and_download(
    page: sync_api.Page, server_url: str, runner: SteppedRunner, tmp_path: Path
) -> None:
    _open(page, server_url)
    page.set_input_files("#pick-content input[type=file]", str(_picture(tmp_path / "content.png", 1)))
    page.set_input_files("#pick-style input[type=file]", str(_picture(tmp_path / "style.png", 2)))
    sync_api.expect(page.locator("#pick-content .name")).to_have_text("content.png (96×72)")
    sync_api.expect(page.locator("#pick-style .name")).to_have_text("style.png (96×72)")
    sync_api.expect(page.locator("#limits")).to_contain_text("up to 1024 px")
    assert page.get_attribute("input[name=size]", "max") == "1024"

    page.fill("input[name=size]", "96")
    page.select_option("select[name=quality]", "custom")
    page.fill("input[name=iterations]", str(STEPS))
    page.click("#start")

    previews: list[str] = []
    for step in range(1, STEPS + 1):  # the runner waits at each step until the page has shown it
        sync_api.expect(page.locator("#stats")).to_contain_text(f"iteration {step}/{STEPS}")
        sync_api.expect(page.locator("#status")).to_have_text("Painting — scale 1 of 1")
        previews.append(page.get_attribute("#preview", "src") or "")
        if step == STEPS // 2:
            page.screenshot(path=str(tmp_path / "studio-running.png"))
        runner.release()
    sync_api.expect(page.locator("#status")).to_have_text(re.compile("^Done in"))
    assert previews == [f"/api/jobs/{previews[0].split('/')[3]}/preview?v={n}" for n in range(1, STEPS + 1)]
    assert "/result" in (page.get_attribute("#preview", "src") or "")
    sync_api.expect(page.locator("#stats")).to_contain_text(f"iteration {STEPS}/{STEPS}")
    assert page.locator("#strip figure").count() == 1

    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / "downloaded.png"
    info.value.save_as(saved)
    assert info.value.suggested_filename.startswith("content-impasto-")
    image = Image.open(saved)
    assert image.format == "PNG" and image.size == (96, 72)
    assert image.info["impasto:size"] == "96" and image.info["impasto:iterations"] == f"[{STEPS}]"
    page.screenshot(path=str(tmp_path / "studio-done.png"))
    assert (tmp_path / "studio-running.png").stat().st_size > 10_000


def test_bad_upload_shows_the_loaders_message(page: sync_api.Page, server_url: str, tmp_path: Path) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is text, not a photo\n")
    _open(page, server_url)
    page.set_input_files("#pick-content input[type=file]", str(fake))
    sync_api.expect(page.locator("#pick-content .message")).to_have_text("holiday.jpg: not an image Pillow can read")


# -- issue 40 items 7 and 8: the page at a desktop's and a phone's width ----------------------------------

DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
BOTH_WIDTHS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])
LONG_NAME = ("the_whole_family_at_grandmothers_on_the_first_day_of_the_summer_holidays_" * 2)[:116] + ".png"
Box = dict[str, float]


def _boxes(page: sync_api.Page, *selectors: str) -> list[Box]:
    """The elements' boxes, measured at one moment (the page may be scrolling)."""
    boxes = page.evaluate(
        "sels => sels.map(s => { const el = document.querySelector(s); if (!el || !el.offsetParent) return null;"
        " const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; })",
        list(selectors),
    )
    missing = [sel for sel, box in zip(selectors, boxes) if box is None]
    assert not missing, f"not shown: {missing}"
    return boxes


def _inside(inner: Box, outer: Box) -> bool:
    return (
        inner["x"] >= outer["x"]
        and inner["y"] >= outer["y"]
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"]
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"]
    )


def _overlap(a: Box, b: Box) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def _on_screen(page: sync_api.Page, selector: str) -> bool:
    """The element's box lies wholly within the viewport as it is scrolled now."""
    return bool(
        page.eval_on_selector(
            selector,
            "el => { const r = el.getBoundingClientRect();"
            " return r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; }",
        )
    )


def _choose(page: sync_api.Page, tmp_path: Path, content: str, style: str, style_size: tuple[int, int] = (96, 72)):
    page.set_input_files("#pick-content input[type=file]", str(_picture(tmp_path / content, 3)))
    sync_api.expect(page.locator("#pick-content .name")).to_have_text(f"{content[:80]} (96×72)")
    page.set_input_files("#pick-style input[type=file]", str(_picture(tmp_path / style, 4, style_size)))
    sync_api.expect(page.locator("#pick-style .name")).to_have_text(f"{style} ({style_size[0]}×{style_size[1]})")


def _small_job(page: sync_api.Page, size: int = 96) -> None:
    page.fill("input[name=size]", str(size))
    page.select_option("select[name=quality]", "custom")
    page.fill("input[name=iterations]", str(STEPS))


def _to_the_end(page: sync_api.Page, runner: SteppedRunner) -> None:
    """Let the runner go through all its steps, and the page show the job done."""
    for _ in range(STEPS):
        runner.release()
    sync_api.expect(page.locator("#status")).to_have_text(re.compile("^Done in"))


def _paint(page: sync_api.Page, runner: SteppedRunner) -> None:
    _small_job(page)
    page.click("#start")
    _to_the_end(page, runner)


@BOTH_WIDTHS
def test_long_file_names_stay_inside_their_panels(
    page: sync_api.Page, server_url: str, tmp_path: Path, viewport: dict[str, int]
) -> None:
    """Item 7: a 120-character name widened its picker out of the panel, and the phone's page to 788 px."""
    _open(page, server_url)
    _choose(page, tmp_path, LONG_NAME, "starry_night.jpg", (1024, 640))
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    for kind in ("content", "style"):
        panel, picker, name, dims = _boxes(
            page, ".panel.setup", f"#pick-{kind}", f"#pick-{kind} .name", f"#pick-{kind} .name .dims"
        )
        assert _inside(picker, panel), (kind, picker, panel)
        assert _inside(name, picker) and _inside(dims, picker)  # the pixel size is never cut off
    shown = page.locator("#pick-content .name .file")
    assert shown.evaluate("el => el.scrollWidth > el.clientWidth")  # the name is ellipsized, not hidden
    assert page.get_attribute("#pick-content .name", "title") == f"{LONG_NAME[:80]} (96×72)"
    for selector in ("#start", "input[name=size]", "select[name=quality]"):
        panel, box = _boxes(page, ".panel.setup", selector)
        assert _inside(box, panel) and box["x"] + box["width"] <= viewport["width"], selector


@BOTH_WIDTHS
def test_an_upload_error_is_shown_by_its_picker(page: sync_api.Page, server_url: str, tmp_path: Path) -> None:
    """Item 8: the error sat under Paint, half off a phone's first screen."""
    fake = tmp_path / "notes.jpg"
    fake.write_text("not a picture\n")
    _open(page, server_url)
    page.set_input_files("#pick-style input[type=file]", str(fake))
    message = page.locator("#pick-style .message")
    sync_api.expect(message).to_have_text("notes.jpg: not an image Pillow can read")
    assert _inside(*_boxes(page, "#pick-style .message", "#pick-style"))
    assert _on_screen(page, "#pick-style .message")
    assert page.locator("#message").text_content() == ""


@BOTH_WIDTHS
def test_paint_shows_the_preview_and_a_curve_under_its_caption(
    page: sync_api.Page, server_url: str, runner: SteppedRunner, tmp_path: Path, viewport: dict[str, int]
) -> None:
    """Item 8: on a phone Paint left the preview below the screen; the caption was drawn over the curve."""
    _open(page, server_url)
    _choose(page, tmp_path, "street.png", "waves.png")
    _small_job(page)
    page.evaluate("document.querySelector('#start').scrollIntoView({block: 'end'})")  # as a thumb would
    scrolled = page.evaluate("window.scrollY")
    page.click("#start")
    _to_the_end(page, runner)
    page.wait_for_function(
        "() => { const r = document.querySelector('.stage').getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= innerHeight; }"
    )
    if viewport is DESKTOP:
        assert page.evaluate("window.scrollY") == scrolled  # the preview was in view: nothing moves
    # The new job is in the strip's view (it was redrawn scrolled back to its start at every step).
    assert _inside(*_boxes(page, "#strip figure.selected", "#strip"))
    caption = page.locator("#curve-caption")
    sync_api.expect(caption).to_have_text(f"Loss (log scale): 1.00 → {1 / STEPS:.3}")
    caption_box, curve, panel = _boxes(page, "#curve-caption", "#curve", ".panel.canvas")
    assert not _overlap(caption_box, curve) and _inside(caption_box, panel)


def test_the_strip_shows_no_broken_image_for_a_job_without_one(
    page: sync_api.Page, server_url: str, runner: SteppedRunner
) -> None:
    """Item 8: a failed job's thumbnail was the broken-image icon under its alt text."""
    _open(page, server_url)
    runner.fail_with = "the network could not be built (a test's failure)"
    for kind in ("content", "style"):  # the last job's images, or the samples on a server with no jobs
        sync_api.expect(page.locator(f"#pick-{kind} .drop img")).to_be_visible()
    page.click("#start")
    sync_api.expect(page.locator("#status")).to_have_text("Failed: the network could not be built (a test's failure)")
    failed = page.locator("#strip figure.selected")
    sync_api.expect(failed.locator(".no-image")).to_have_text("no image")
    assert failed.locator("img").count() == 0
    page.wait_for_function("() => [...document.querySelectorAll('#strip img')].every(img => img.complete)")
    broken = page.eval_on_selector_all("#strip img", "imgs => imgs.filter(i => i.naturalWidth === 0).map(i => i.alt)")
    assert broken == []


def test_the_size_field_takes_any_size_and_says_the_limit(
    page: sync_api.Page, server_url: str, runner: SteppedRunner
) -> None:
    """Item 8: 100 was refused by the browser's step of 8; over the limit, only the browser's bubble spoke."""
    _open(page, server_url)
    ranges = page.evaluate("fetch('/api/config').then(r => r.json())")["ranges"]["size"]
    size = page.locator("input[name=size]")
    assert (size.get_attribute("min"), size.get_attribute("max")) == tuple(str(n) for n in ranges)
    size.fill("100")
    assert size.evaluate("el => el.checkValidity()")  # what the browser's own check says, as it would block
    jobs = page.locator("#strip figure").count()
    _small_job(page, 100)
    page.click("#start")
    sync_api.expect(page.locator("#strip figure")).to_have_count(jobs + 1)
    _to_the_end(page, runner)
    assert page.locator("#strip figure.selected figcaption").text_content().split(" · ")[1] == "100px"

    size.fill(str(ranges[1] + 1))
    page.click("#start")
    message = page.locator('.message[data-for="size"]')
    sync_api.expect(message).to_have_text(
        f"Size must be a whole number of pixels from {ranges[0]} to {ranges[1]} in this studio, got {ranges[1] + 1}"
    )
    field, said = _boxes(page, "input[name=size]", '.message[data-for="size"]')
    assert 0 <= said["y"] - (field["y"] + field["height"]) <= 20  # right under the field
    assert page.locator("#strip figure").count() == jobs + 1  # nothing was sent


def test_after_a_reload_the_pickers_show_what_the_strip_was_painted_from(
    page: sync_api.Page, server_url: str, runner: SteppedRunner, tmp_path: Path
) -> None:
    """Item 8: a reload kept the strip's results but put the samples back in the pickers."""
    _open(page, server_url)
    _choose(page, tmp_path, "harbour.png", "waves.png")
    _paint(page, runner)
    page.reload()
    sync_api.expect(page.locator("body")).not_to_have_attribute("aria-busy", "true")
    sync_api.expect(page.locator("#pick-content .name")).to_have_text("harbour.png (96×72)")
    sync_api.expect(page.locator("#pick-style .name")).to_have_text("waves.png (96×72)")
    page.wait_for_function("() => document.querySelector('#pick-content .drop img').naturalWidth > 0")
    assert "/api/uploads/" in (page.get_attribute("#pick-content .drop img", "src") or "")

    page.evaluate(  # 16 more uploads: the server keeps the last 16, so harbour.png and waves.png are gone
        "async (png) => { const bytes = Uint8Array.from(atob(png), c => c.charCodeAt(0));"
        " for (let i = 0; i < 16; i++) await fetch('/api/uploads?name=x.png', {method: 'POST', body: bytes,"
        " headers: {'Content-Type': 'application/octet-stream'}}); }",
        base64.b64encode((tmp_path / "harbour.png").read_bytes()).decode(),
    )
    page.reload()
    sync_api.expect(page.locator("body")).not_to_have_attribute("aria-busy", "true")
    sync_api.expect(page.locator("#pick-content .name")).to_have_text("harbour.png")
    for kind, name in (("content", "harbour.png"), ("style", "waves.png")):
        sync_api.expect(page.locator(f"#pick-{kind} .message")).to_have_text(
            f"{name}: that uploaded image is no longer on the server; please upload it again"
        )
    page.click("#start")
    sync_api.expect(page.locator("#pick-content .message")).to_have_text("Choose a content image first.")
