"""The studio as an attacker or a careless script meets it (issue 11): one table of requests, one app.

Every case runs against the same app instance (and the same worker) and asserts the HTTP status,
a one-line JSON error, the security headers, no traceback in the log and no file left behind.
At the end the process's memory high-water mark over the whole table is held to a bound (stated
in docs/web.md) and the page must still answer.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
from starlette.testclient import TestClient  # noqa: E402

from impasto.web.app import create_app  # noqa: E402
from impasto.web.transport import MAX_JSON_BYTES  # noqa: E402

BASE_URL = "http://127.0.0.1:8000"
EVIL = "http://evil.example"
OCTET = {"Content-Type": "application/octet-stream"}
JSON = {"Content-Type": "application/json"}
TINY = {"size": 48, "scales": 1, "iterations": [2]}
MEMORY_BOUND_MB = 400  # growth of the process's peak RSS over the whole table (measured: 255-274); see docs/web.md


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _photo(seed: int, size: tuple[int, int] = (80, 60)) -> bytes:
    pixels = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    return _png(Image.fromarray(pixels))


def _peak_rss_mb() -> float | None:
    """VmHWM of this process (Linux), or None where /proc does not say."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(found.group(1)) / 1024 if found else None


def _reset_peak_rss() -> bool:
    """Start the high-water mark afresh (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Studio:
    """The one app of this module, its work folder, and ids made along the way."""

    def __init__(self, client: TestClient, workdir: Path):
        self.client, self.workdir = client, workdir
        self.ids: dict[str, str] = {}
        self.rss_start: float | None = None

    def upload(self, data: bytes, name: str) -> str:
        response = self.client.post(f"/api/uploads?name={name}", content=data, headers=OCTET)
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def finished_job(self, name: str) -> str:
        image = self.upload(_photo(11), name)
        response = self.client.post("/api/jobs", json={"content": image, "style": image, "options": TINY})
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        deadline = time.monotonic() + 120
        while self.client.get(f"/api/jobs/{job_id}").json()["status"] not in ("done", "failed", "cancelled"):
            assert time.monotonic() < deadline, "the job never finished"
            time.sleep(0.05)
        return job_id


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    workdir = tmp_path_factory.mktemp("studio")
    with TestClient(create_app(workdir=workdir), base_url=BASE_URL) as client:
        state = Studio(client, workdir)
        state.ids["image"] = state.upload(_photo(1), "photo.png")
        state.ids["job"] = state.finished_job("日本 photo.png")  # a name that is not Latin-1
        if _reset_peak_rss():
            state.rss_start = _peak_rss_mb()
        yield state


def _deep(depth: int) -> bytes:
    return b'{"options": ' + b"[" * depth + b"]" * depth + b"}"


# name: (method, path, request keyword arguments, status, words of the one-line error)
CASES: dict[str, tuple[str, str, dict[str, Any], int, str]] = {
    # -- other web pages (item 1) ------------------------------------------------------------
    "cross-origin form post starts no job": (
        "POST",
        "/api/jobs",
        {
            "content": '{"content": "sample", "style": "sample"}',
            "headers": {"Origin": EVIL, "Content-Type": "text/plain"},
        },
        403,
        "requests from other web pages are refused",
    ),
    "cross-site fetch of an upload": (
        "POST",
        "/api/uploads?name=x.png",
        {"content": b"x", "headers": {"Sec-Fetch-Site": "cross-site", **OCTET}},
        403,
        "requests from other web sites are refused",
    ),
    "same-site (another port or subdomain) post": (
        "POST",
        "/api/jobs",
        {"json": {}, "headers": {"Sec-Fetch-Site": "same-site"}},
        403,
        "other web sites",
    ),
    "cross-origin read of the job list": ("GET", "/api/jobs", {"headers": {"Origin": EVIL}}, 403, "other web pages"),
    "cross-site read of a result": (
        "GET",
        "/api/jobs/{job}/result",
        {"headers": {"Sec-Fetch-Site": "cross-site"}},
        403,
        "other web sites",
    ),
    "cross-site read of an upload's thumbnail": (
        "GET",
        "/api/uploads/{image}/image",
        {"headers": {"Sec-Fetch-Site": "cross-site"}},
        403,
        "other web sites",
    ),
    "cross-origin read of an upload's name": (
        "GET",
        "/api/uploads/{image}",
        {"headers": {"Origin": EVIL}},
        403,
        "other web pages",
    ),
    "opaque origin (sandboxed frame, file://)": (
        "POST",
        "/api/jobs/{job}/cancel",
        {"headers": {"Origin": "null"}},
        403,
        "Origin: null",
    ),
    "same host, other port": (
        "POST",
        "/api/jobs",
        {"json": {}, "headers": {"Origin": "http://127.0.0.1:9999"}},
        403,
        "other web pages",
    ),
    "DNS rebinding: the page under a foreign name": (
        "GET",
        "/",
        {"headers": {"Host": "evil.example:8000"}},
        400,
        "does not answer to the host name 'evil.example:8000'",
    ),
    "DNS rebinding: results under a foreign name": (
        "GET",
        "/api/jobs/{job}/result",
        {"headers": {"Host": "rebind.example"}},
        400,
        "host name",
    ),
    "CORS preflight is not granted": ("OPTIONS", "/api/jobs", {"headers": {"Origin": EVIL}}, 403, "other web pages"),
    "job as text/plain": (
        "POST",
        "/api/jobs",
        {"content": "{}", "headers": {"Content-Type": "text/plain"}},
        415,
        "JSON",
    ),
    "job as a form": (
        "POST",
        "/api/jobs",
        {"content": "a=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        415,
        "application/json",
    ),
    "upload as text/plain": (
        "POST",
        "/api/uploads?name=a.png",
        {"content": b"x", "headers": {"Content-Type": "text/plain"}},
        415,
        "application/octet-stream",
    ),
    "upload as multipart form": (
        "POST",
        "/api/uploads?name=a.png",
        {"content": b"x", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
        415,
        "application/octet-stream",
    ),
    # -- work per request (items 2 and 6) ------------------------------------------------------
    "size 8192": ("POST", "/api/jobs", {"json": {"options": {"size": 8192}}}, 400, "size must be from 16 to 1024"),
    "style scale 8": ("POST", "/api/jobs", {"json": {"options": {"style_scale": 8}}}, 400, "style scale must be from"),
    "12 scales": ("POST", "/api/jobs", {"json": {"options": {"scales": 12}}}, 400, "scales must be from 1 to 6"),
    "1e9 iterations": ("POST", "/api/jobs", {"json": {"options": {"iterations": [1e9]}}}, 400, "from 1 to 1000"),
    "0 iterations": ("POST", "/api/jobs", {"json": {"options": {"iterations": "0"}}}, 400, "from 1 to 1000"),
    "20 iteration values": (
        "POST",
        "/api/jobs",
        {"json": {"options": {"iterations": [10] * 20}}},
        400,
        "at most 6 values",
    ),
    "seed beyond 64 bits": ("POST", "/api/jobs", {"json": {"options": {"seed": 2**64}}}, 400, "seed must be from 0"),
    "negative seed": ("POST", "/api/jobs", {"json": {"options": {"seed": -1}}}, 400, "seed must be from 0"),
    "NaN style weight": (
        "POST",
        "/api/jobs",
        {"content": '{"options": {"style_weight": NaN}}', "headers": JSON},
        400,
        "style weight must be a non-negative number",
    ),
    "infinite size": ("POST", "/api/jobs", {"content": '{"options": {"size": 1e999}}', "headers": JSON}, 400, "size"),
    "style weight overflowing float32 (would paint noise)": (
        "POST",
        "/api/jobs",
        {"json": {"options": {"style_weight": 1e308}}},
        400,
        "overflows float32",
    ),
    "unknown quality": ("POST", "/api/jobs", {"json": {"quality": "ultra"}}, 400, "unknown quality 'ultra'"),
    "a path as the image": (
        "POST",
        "/api/jobs",
        {"json": {"content": "/etc/passwd", "style": "sample", "options": TINY}},
        400,
        "no longer on the server",
    ),
    # -- request bodies (items 4 and 6) ----------------------------------------------------------
    "JSON over the cap, with a length": (
        "POST",
        "/api/jobs",
        {"content": b"[" + b"1," * MAX_JSON_BYTES + b"1]", "headers": JSON},
        413,
        "the request body is over 64 KiB",
    ),
    "JSON over the cap, chunked": (
        "POST",
        "/api/jobs",
        {"content": (b" " * 8192 for _ in range(100)), "headers": JSON},
        413,
        "over 64 KiB",
    ),
    "JSON nested 100,000 deep": ("POST", "/api/jobs", {"content": _deep(100_000), "headers": JSON}, 413, "64 KiB"),
    "JSON nested 30,000 deep, under the cap": (
        "POST",
        "/api/jobs",
        {"content": _deep(30_000), "headers": JSON},
        400,
        "the JSON is nested too deeply",
    ),
    "not JSON": ("POST", "/api/jobs", {"content": b"{oops", "headers": JSON}, 400, "the request body must be JSON"),
    "a JSON list": ("POST", "/api/jobs", {"json": [1, 2]}, 400, "must be a JSON object"),
    # -- uploads (item 3) -------------------------------------------------------------------------
    "88 MP in an 11 KB PNG": (
        "POST",
        "/api/uploads?name=bomb.png",
        {"content": _png(Image.new("1", (9400, 9400))), "headers": OCTET},
        413,
        "bomb.png: image is too large (88.4 MP; the limit is 40 MP)",
    ),
    "over Pillow's bomb guard": (
        "POST",
        "/api/uploads?name=big.png",
        {"content": _png(Image.new("1", (10000, 9000))), "headers": OCTET},
        413,
        "big.png: image is too large",
    ),
    "truncated PNG": (
        "POST",
        "/api/uploads?name=cut.png",
        {"content": _photo(3)[:300], "headers": OCTET},
        415,
        "cut.png: corrupt or truncated image",
    ),
    "text named .jpg": (
        "POST",
        "/api/uploads?name=notes.jpg",
        {"content": b"hello", "headers": OCTET},
        415,
        "notes.jpg: not an image",
    ),
    "empty upload": (
        "POST",
        "/api/uploads?name=e.png",
        {"content": b"", "headers": OCTET},
        415,
        "e.png: file is empty",
    ),
    "21 MB upload": (
        "POST",
        "/api/uploads?name=huge.png",
        {"content": b"\0" * (21 * 1024 * 1024), "headers": OCTET},
        413,
        "huge.png: file is too large (21.0 MB); the limit is 20 MB",
    ),
    # -- the rest --------------------------------------------------------------------------------
    "unknown job": ("GET", "/api/jobs/nope/result", {}, 404, "no such job"),
    "unknown upload": ("GET", "/api/uploads/nope/image", {}, 404, "no longer on the server"),
    # -- what the router answers itself: the same {"error": ...} shape (issue 22 item 14) --------------
    "wrong method": ("GET", "/api/uploads", {}, 405, "GET is not allowed on /api/uploads; use POST"),
    "wrong method on /api/jobs": (
        "DELETE",
        "/api/jobs",
        {},
        405,
        "DELETE is not allowed on /api/jobs; use GET, HEAD, POST",
    ),  # noqa: E501
    "wrong method on a job": (
        "PUT",
        "/api/jobs/nope/cancel",
        {},
        405,
        "PUT is not allowed on /api/jobs/nope/cancel; use POST",
    ),  # noqa: E501
    "POST to the page": ("POST", "/", {}, 405, "POST is not allowed on /; use GET, HEAD"),
    "unknown route": ("GET", "/nope", {}, 404, "no such page or API endpoint: /nope"),
    "unknown API route": ("POST", "/api/nope", {}, 404, "no such page or API endpoint: /api/nope"),
    "unknown static file": ("GET", "/static/nope.js", {}, 404, "no such page or API endpoint: /static/nope.js"),
}


def _one_line_error(response: Any) -> str:
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


@pytest.mark.parametrize("name", list(CASES))
def test_refused(studio: Studio, name: str, caplog: pytest.LogCaptureFixture) -> None:
    method, path, kwargs, status, words = CASES[name]
    caplog.set_level(logging.WARNING)
    if "json" in kwargs:
        kwargs = {**kwargs, "json": _with_images(kwargs["json"], studio.ids["image"])}
    before = {p.name for p in studio.workdir.iterdir()}
    response = studio.client.request(method, path.format(**studio.ids), **kwargs)
    assert response.status_code == status, response.text
    message = _one_line_error(response)
    assert "\n" not in message.strip() and words in message, message
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in response.headers
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert {p.name for p in studio.workdir.iterdir()} == before  # nothing kept, no temp file left


def _with_images(body: Any, image: str) -> Any:
    """A job request that is complete but for what the case tests."""
    if isinstance(body, dict):
        return {"content": image, "style": image, **body}
    return body


def test_result_with_a_non_latin1_name_downloads(studio: Studio) -> None:
    response = studio.client.get(f"/api/jobs/{studio.ids['job']}/result?download=1")
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="__ photo-impasto-')
    assert "filename*=UTF-8''%E6%97%A5%E6%9C%AC%20photo-impasto-" in disposition
    assert Image.open(io.BytesIO(response.content)).info["impasto:content"] == "日本 photo.png"


def test_same_origin_requests_pass(studio: Studio) -> None:
    """The page's own requests (what a browser sends from it) are served: the guard is not a wall."""
    same = {"Origin": BASE_URL, "Sec-Fetch-Site": "same-origin"}
    image = studio.upload(_photo(5), "again.png")
    response = studio.client.post(
        "/api/jobs", json={"content": image, "style": "sample", "options": TINY}, headers=same
    )
    assert response.status_code == 202, response.text
    studio.client.post(f"/api/jobs/{response.json()['id']}/cancel", headers=same)
    for host in ("localhost:8000", "[::1]:8000", "127.0.0.1"):
        assert studio.client.get("/api/config", headers={"Host": host}).status_code == 200, host


def test_limits_are_on_the_page(studio: Studio) -> None:
    limits = studio.client.get("/api/config").json()["limits"]
    assert limits == {
        "max_size": 1024,
        "max_scales": 6,
        "max_iterations": 1000,
        "max_style_scale": 2.0,
        "max_megapixels": 40.0,
        "max_upload_mb": 20.0,
        "body_timeout": 60.0,
    }


def test_large_uploads_are_kept_small(studio: Studio) -> None:
    """A 36 MP upload (under the cap) is accepted, but what the server keeps is at most 2048 px."""
    for _ in range(4):
        response = studio.client.post(
            "/api/uploads?name=wide.png", content=_png(Image.new("1", (6000, 6000), 1)), headers=OCTET
        )
        assert response.status_code == 200 and (response.json()["width"], response.json()["height"]) == (6000, 6000)
    kept = [Image.open(p).size for p in studio.workdir.glob("upload-*.png")]
    assert max(max(size) for size in kept) == 2048
    assert not list(studio.workdir.glob("*.bin"))


def test_memory_stays_bounded_and_the_page_still_answers(studio: Studio) -> None:
    """Last in this module: after every case above, in the same process."""
    assert studio.client.get("/").status_code == 200
    if studio.rss_start is None:
        pytest.skip("this system cannot reset or read the peak RSS (/proc/self/clear_refs, VmHWM)")
    peak = _peak_rss_mb()
    assert peak is not None
    growth = peak - studio.rss_start
    print(f"peak RSS {peak:.0f} MB, {growth:.0f} MB over the idle studio's {studio.rss_start:.0f} MB")
    assert growth < MEMORY_BOUND_MB, f"the studio's peak grew by {growth:.0f} MB over the table"
    assert json.loads(studio.client.get("/api/config").text)["limits"]["max_size"] == 1024
