"""End-to-end test of the studio page in headless Chromium, as a user would use it.

Needs Debian's `chromium` (at /usr/bin/chromium) and the Python `playwright` package (its own
browser download is not used); skips with the reason where either is missing. The painting is
done by a stepped fake runner (web_fakes.py) that moves on only once the page shows each step,
so the test is exact however fast the machine is; the API tests run the real thing.
"""

from __future__ import annotations

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


@pytest.fixture
def page(tmp_path: Path) -> Iterator[sync_api.Page]:
    with sync_api.sync_playwright() as playwright:
        # Playwright gives each launch a fresh temporary profile of its own.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
        yield context.new_page()
        context.close()
        browser.close()


def _picture(path: Path, seed: int) -> Path:
    y, x = np.mgrid[0:72, 0:96]
    rng = np.random.default_rng(seed)
    pixels = np.stack([x * 2.5, y * 3.0, rng.random((72, 96)) * 255], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_upload_paint_watch_and_download(
    page: sync_api.Page, server_url: str, runner: SteppedRunner, tmp_path: Path
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server_url)
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
    assert not errors, errors


def test_bad_upload_shows_the_loaders_message(page: sync_api.Page, server_url: str, tmp_path: Path) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is text, not a photo\n")
    page.goto(server_url)
    page.set_input_files("#pick-content input[type=file]", str(fake))
    sync_api.expect(page.locator("#message")).to_have_text("holiday.jpg: not an image Pillow can read")
