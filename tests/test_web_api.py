"""API tests of the web studio (`impasto serve`): uploads, jobs, progress stream, cancel, queue.

Runs are real (real VGG weights) but tiny: 64 px, one scale, a few iterations; the live-progress
test uses a stepped fake runner (web_fakes.py) so that it is exact on any machine.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
from starlette.testclient import TestClient  # noqa: E402
from web_fakes import SteppedRunner  # noqa: E402

from impasto.cli.serve import build_parser as _parser  # noqa: E402
from impasto.config import default  # noqa: E402
from impasto.errors import ImpastoError  # noqa: E402
from impasto.web.app import create_app  # noqa: E402
from impasto.web.options import Limits, parse_options  # noqa: E402

BASE_URL = "http://127.0.0.1:8000"  # the studio answers only to the names it is bound to
TINY = {"size": 64, "scales": 1, "iterations": [4]}
LONG = {"size": 64, "scales": 1, "iterations": [1000]}  # only ever cancelled


def png_bytes(seed: int, size: tuple[int, int] = (80, 60)) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**kwargs: Any) -> TestClient:
        client = TestClient(create_app(preview_interval=0.0, **kwargs), base_url=BASE_URL)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def upload(client: TestClient, data: bytes, name: str = "photo.png") -> str:
    response = post_image(client, data, name)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def post_image(client: TestClient, data: Any, name: str) -> Any:
    headers = {"Content-Type": "application/octet-stream"}
    return client.post(f"/api/uploads?name={name}", content=data, headers=headers)


def start(client: TestClient, options: dict, content: str, style: str, **extra: Any) -> dict:
    response = client.post("/api/jobs", json={"content": content, "style": style, "options": options, **extra})
    assert response.status_code == 202, response.text
    return response.json()


def wait_for(client: TestClient, job_id: str, predicate: Callable[[dict], bool], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job_id}").json()
        if predicate(state):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there; last state {state}")


def events(client: TestClient, job_id: str) -> list[dict]:
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        return [json.loads(line[5:]) for line in stream.iter_lines() if line.startswith("data:")]


def test_page_and_static_files_are_served_with_no_external_url(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<title>impasto studio</title>" in page.text
    served = {"/": page.text}
    for path in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        response = client.get(path)
        assert response.status_code == 200, path
        served[path] = response.text
    assert set(served) == {"/", "/static/style.css", "/static/app.js"}
    for path, text in served.items():  # no CDN, no font service, no analytics: nothing leaves this computer
        assert not re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}", text, re.I), path


def test_config_reads_defaults_from_styleconfig(client: TestClient) -> None:
    body = client.get("/api/config").json()
    assert body["defaults"]["size"] == default("size")
    assert body["defaults"]["style_weight"] == default("style_weight")
    assert body["defaults"]["init"] == default("init")
    assert body["max_upload_bytes"] == 20 * 1024 * 1024


def test_upload_returns_id_and_size(client: TestClient) -> None:
    response = post_image(client, png_bytes(1, (80, 60)), "../../etc/cat.png")
    assert response.status_code == 200
    body = response.json()
    assert (body["width"], body["height"], body["name"]) == (80, 60, "cat.png")


def test_upload_of_text_named_jpg_gets_the_loaders_message(client: TestClient) -> None:
    response = post_image(client, b"just some text, not a picture\n", "notes.jpg")
    assert response.status_code == 415
    assert response.json()["error"] == "notes.jpg: not an image Pillow can read"


def test_an_image_too_elongated_for_any_job_is_refused_at_upload(client: TestClient) -> None:
    """Issue 39 item 10: a 20000x20 upload was taken, and the job failed later."""
    response = post_image(client, png_bytes(1, (20000, 20)), "strip.png")
    assert response.status_code == 415
    assert response.json()["error"] == (
        "strip.png: 20000x20 is too elongated for this studio: at 2048 px, the most it paints, its short side "
        "would be 2 px, under the 8 px the network needs"
    )  # 2048: the studio's 1024 px times its largest style scale, 2


def test_a_content_too_thin_for_the_size_asked_is_refused_before_queueing(client: TestClient) -> None:
    thin, style = upload(client, png_bytes(2, (2000, 20))), upload(client, png_bytes(3))
    response = client.post("/api/jobs", json={"content": thin, "style": style, "options": {**TINY, "size": 512}})
    assert response.status_code == 400 and client.get("/api/jobs").json() == []
    assert response.json()["error"] == (
        "the output would be 512x5, but the network's layers need at least 8 px on the short side: use a larger "
        "size (at least 750) or a less elongated image"
    )
    thinner = upload(client, png_bytes(4, (1500, 10)))  # 8 px tall needs 1125 px: over the studio's 1024
    response = client.post("/api/jobs", json={"content": thinner, "style": style, "options": TINY})
    assert response.json()["error"].endswith("no size up to 1024 gives it that: use a less elongated image")


def test_empty_upload_is_refused(client: TestClient) -> None:
    response = post_image(client, b"", "empty.png")
    assert response.status_code == 415
    assert response.json()["error"] == "empty.png: file is empty"


def test_too_large_upload_is_refused_by_its_length(make_client: Callable[..., TestClient]) -> None:
    client = make_client(limits=Limits(max_upload_mb=0.05))
    response = post_image(client, b"\0" * 60_000, "big.png")
    assert response.status_code == 413
    assert response.json()["error"] == "big.png: file is too large (0.1 MB); the limit is 0.05 MB"


def test_too_large_upload_without_length_is_cut_off(make_client: Callable[..., TestClient]) -> None:
    client = make_client(limits=Limits(max_upload_mb=0.05))
    chunks = (b"\0" * 10_000 for _ in range(100))  # chunked: no Content-Length to trust
    response = post_image(client, chunks, "big.png")
    assert response.status_code == 413
    assert "the limit is 0.05 MB" in response.json()["error"]


def test_client_paths_are_never_opened(client: TestClient) -> None:
    for ref in ("/etc/passwd", "../pyproject.toml"):
        response = client.post("/api/jobs", json={"content": ref, "style": ref, "options": TINY})
        assert response.status_code == 400
        assert "no longer on the server" in response.json()["error"]
    image = upload(client, png_bytes(2))
    response = client.post(
        "/api/jobs", json={"content": image, "style": image, "options": {**TINY, "init": "/etc/hostname"}}
    )
    assert response.status_code == 400 and "unknown init" in response.json()["error"]
    response = client.post("/api/jobs", json={"content": image, "style": image, "options": {"weights": "/x"}})
    assert response.status_code == 400 and "unknown option 'weights'" in response.json()["error"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"size": "big"}, "size must be an integer, got 'big'"),
        ({"size": [1]}, "size must be a number, got [1]"),
        ({"size": 8}, "size must be from 16 to 1024 in this studio, got 8"),
        ({"size": 64.5}, "size must be an integer, got 64.5"),
        ({"style_weight": -1}, "style weight must be a non-negative number, got -1.0"),
        ({"style_scale": 2.0000001}, "style scale must be from 0.05 to 2 in this studio, got 2.0000001"),
        ({"iterations": "ten"}, "iterations must be an integer, got 'ten'"),
    ],
)
def test_bad_options_get_one_line_messages(client: TestClient, options: dict, message: str) -> None:
    image = upload(client, png_bytes(3))
    response = client.post("/api/jobs", json={"content": image, "style": image, "options": options})
    assert response.status_code == 400
    assert response.json()["error"] == message


def test_quality_presets_scale_the_automatic_budget() -> None:
    quick, fine = parse_options({"size": 320}, "quick"), parse_options({"size": 320}, "fine")
    assert parse_options({"size": 320}, "standard").iterations is None
    assert quick.iterations is not None and fine.iterations is not None
    assert len(quick.iterations) == len(fine.iterations) == 3  # 128, 202, 320 px
    assert all(4 * q <= f + 4 for q, f in zip(quick.iterations, fine.iterations))
    assert parse_options({"size": 320, "iterations": "30, 10"}, "quick").iterations == [30, 10]


def test_job_streams_every_step_live(make_client: Callable[..., TestClient]) -> None:
    runner = SteppedRunner(steps=12)
    client = make_client(runner=runner)
    content, style = upload(client, png_bytes(4), "street.png"), upload(client, png_bytes(5), "art.png")
    job = start(client, {"size": 64, "scales": 1, "iterations": [12]}, content, style)
    states = []
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data:"):
                states.append(json.loads(line[5:]))
                if states[-1]["status"] == "running" and states[-1]["progress"]:
                    runner.release()  # the runner goes on only once this step has been seen
    running = [s for s in states if s["status"] == "running" and s["progress"]]
    assert [s["progress"]["step"] for s in running] == list(range(1, 13))
    assert [s["preview"] for s in running] == list(range(1, 13))  # a new picture with every step
    assert [len(s["losses"]) for s in running] == [1] * 12  # each event carries only the new loss
    assert states[-1]["status"] == "done" and states[-1]["progress"]["eta"] == 0
    preview = client.get(f"/api/jobs/{job['id']}/preview")
    assert preview.headers["content-type"] == "image/jpeg"


def test_job_gives_a_png_with_metadata(client: TestClient) -> None:
    content, style = upload(client, png_bytes(4), "street.png"), upload(client, png_bytes(5), "art.png")
    job = start(client, TINY, content, style)
    assert events(client, job["id"])[-1]["status"] == "done"
    result = client.get(f"/api/jobs/{job['id']}/result?download=1")
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    assert result.headers["content-disposition"].startswith('attachment; filename="street-impasto-')
    image = Image.open(io.BytesIO(result.content))
    assert image.size == (64, 48)
    assert image.info["impasto:size"] == "64" and image.info["impasto:content"] == "street.png"
    assert image.info["impasto:stopped"] == "iterations"


def test_cancel_keeps_the_best_image(client: TestClient) -> None:
    image = upload(client, png_bytes(6))
    job = start(client, {**LONG, "init": "content"}, image, image)
    wait_for(client, job["id"], lambda s: s["progress"].get("step", 0) >= 2)
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    state = wait_for(client, job["id"], lambda s: s["status"] != "running", timeout=30)
    assert state["status"] == "cancelled" and state["result"]
    assert state["progress"]["step"] < 1000
    result = Image.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/result").content))
    assert result.info["impasto:stopped"] == "callback" and result.size == (64, 48)


def test_one_job_runs_at_a_time_and_the_queue_has_a_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_waiting=1)
    image = upload(client, png_bytes(7))
    first = start(client, LONG, image, image)
    wait_for(client, first["id"], lambda s: s["status"] == "running")
    second = start(client, TINY, image, image)
    assert second["position"] == 1
    full = client.post("/api/jobs", json={"content": image, "style": image, "options": TINY})
    assert full.status_code == 429
    assert full.json()["error"] == "the queue is full (1 jobs waiting); try again when one has finished"
    assert client.get(f"/api/jobs/{second['id']}").json()["status"] == "queued"
    assert client.get(f"/api/jobs/{second['id']}/result").status_code == 409

    client.post(f"/api/jobs/{first['id']}/cancel")
    assert events(client, second["id"])[-1]["status"] == "done"
    assert client.get(f"/api/jobs/{first['id']}").json()["status"] == "cancelled"
    listed = [job["id"] for job in client.get("/api/jobs").json()]
    assert listed == [first["id"], second["id"]]


def test_cancelling_a_waiting_job_drops_it(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_waiting=2)
    image = upload(client, png_bytes(8))
    first = start(client, LONG, image, image)
    wait_for(client, first["id"], lambda s: s["status"] == "running")
    second, third = start(client, TINY, image, image), start(client, TINY, image, image)
    assert (second["position"], third["position"]) == (1, 2)
    cancelled = client.post(f"/api/jobs/{second['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and not cancelled["result"]
    assert client.get(f"/api/jobs/{third['id']}").json()["position"] == 1
    assert client.get(f"/api/jobs/{second['id']}/result").status_code == 409
    client.post(f"/api/jobs/{first['id']}/cancel")


def test_unknown_job_is_404(client: TestClient) -> None:
    for path in ("/api/jobs/nope", "/api/jobs/nope/events", "/api/jobs/nope/result", "/api/jobs/nope/preview"):
        response = client.get(path)
        assert response.status_code == 404 and "no such job" in response.json()["error"]


def test_samples_are_offered(client: TestClient) -> None:
    response = client.get("/api/samples/content")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(response.content)).size) <= 320
    assert client.get("/api/samples/other").status_code == 404


def test_serve_binds_loopback_unless_told() -> None:
    args = _parser().parse_args([])
    assert (args.host, args.port, args.open) == ("127.0.0.1", 8000, False)
    args = _parser().parse_args(["--host", "0.0.0.0", "--port", "9000", "--open"])
    assert (args.host, args.port, args.open) == ("0.0.0.0", 9000, True)


def test_a_reloaded_page_can_show_the_images_a_job_came_from(client: TestClient) -> None:
    """Issue 40 item 8: a job names what the page chose, and the server still answers for those uploads."""
    posted = post_image(client, png_bytes(9, (90, 40)), "harbour.png").json()
    job = start(client, LONG, posted["id"], "sample")
    state = client.get(f"/api/jobs/{job['id']}").json()
    client.post(f"/api/jobs/{job['id']}/cancel")
    assert (state["content"], state["style"]) == (posted["id"], "sample")
    assert client.get(f"/api/uploads/{posted['id']}").json() == posted
    thumbnail = client.get(f"/api/uploads/{posted['id']}/image")
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (90, 40)
    for path in ("/api/uploads/nope", "/api/uploads/nope/image"):
        response = client.get(path)
        assert response.status_code == 404 and "no longer on the server" in response.json()["error"]


def test_the_ranges_served_to_the_page_are_the_ones_checked(make_client: Callable[..., TestClient]) -> None:
    limits = Limits(max_size=640, max_iterations=300)
    ranges = make_client(limits=limits).get("/api/config").json()["ranges"]
    assert ranges["size"] == [16, 640] and ranges["iterations"] == [1, 300]
    for name in ("size", "scales", "seed"):
        low, high = ranges[name]
        parse_options({name: low}, limits=limits), parse_options({name: high}, limits=limits)
        for wrong in (low - 1, high + 1):
            with pytest.raises(ImpastoError, match=f"from {low} to {high} in this studio"):
                parse_options({name: wrong}, limits=limits)
    parse_options({"iterations": [300]}, limits=limits)
    with pytest.raises(ImpastoError, match="from 1 to 300 in this studio"):
        parse_options({"iterations": [301]}, limits=limits)
