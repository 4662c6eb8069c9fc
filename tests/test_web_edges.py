"""The studio over a real socket (issue 22, item 14): clients that leave mid-body or trickle it.

A real uvicorn serves the app on 127.0.0.1 (an ephemeral port) in this process, its log captured;
raw sockets send half a body and close, or send one byte at a time. Each case asserts what the
client gets, one log line and no traceback, no file left in the work folder, and a server that
still answers. Unknown routes and wrong methods are cases of tests/test_web_security.py.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

uvicorn = pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")
from starlette.testclient import TestClient  # noqa: E402
from web_fakes import SteppedRunner  # noqa: E402

from impasto.web.app import create_app  # noqa: E402
from impasto.web.options import Limits  # noqa: E402

BODY_TIMEOUT = 1.0  # seconds; short, so that the slow-body cases take about that long
OCTET = "application/octet-stream"
PNG_START = b"\x89PNG\r\n\x1a\n" + b"\0" * 200


@dataclass
class Served:
    port: int
    workdir: Path

    def request(self, method: str, path: str, media: str, length: int) -> bytes:
        return (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: {media}\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def answers(self) -> bool:
        with self.connect() as sock:
            sock.sendall(b"GET /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return _read_all(sock, 5.0)[0].startswith(b"HTTP/1.1 200 ")


def _read_all(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """What the server sends within `seconds`, and whether it closed the connection."""
    sock.settimeout(0.1)
    data, end = b"", time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("studio")
    app = create_app(limits=Limits(body_timeout=BODY_TIMEOUT), workdir=workdir)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # log_config=None: uvicorn's records reach the root logger, where caplog sees them
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="info", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the studio did not start"
        time.sleep(0.05)
    yield Served(sock.getsockname()[1], workdir)
    server.should_exit = True
    thread.join(10)
    sock.close()


def _wait_for_log(caplog: pytest.LogCaptureFixture, words: str, seconds: float = 5.0) -> list[logging.LogRecord]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not any(words in r.getMessage() for r in caplog.records):
        time.sleep(0.05)
    time.sleep(0.3)  # and whatever else the server logs about the same request
    return list(caplog.records)


def _assert_one_line_no_traceback(records: list[logging.LogRecord], words: str) -> None:
    text = "\n".join(r.getMessage() for r in records)
    assert not [r for r in records if r.exc_info], f"a traceback was logged:\n{text}"
    assert "Traceback" not in text and "ClientDisconnect" not in text, text
    said = [r.getMessage() for r in records if words in r.getMessage()]
    assert len(said) == 1 and "\n" not in said[0], text


CUT_OFF: dict[str, tuple[str, str, int, bytes, str]] = {
    # name: (path, content type, Content-Length claimed, bytes sent before closing, log line)
    "upload cut off": (
        "/api/uploads?name=a.png",
        OCTET,
        100_000,
        PNG_START,
        "POST /api/uploads: the client disconnected",
    ),  # noqa: E501
    "job request cut off": (
        "/api/jobs",
        "application/json",
        1000,
        b'{"content": "sample", ',
        "POST /api/jobs: the client disconnected",
    ),  # fmt: skip  # noqa: E501
    "upload of headers only": (
        "/api/uploads?name=a.png",
        OCTET,
        5000,
        b"",
        "POST /api/uploads: the client disconnected",
    ),  # noqa: E501
}


@pytest.mark.parametrize("name", list(CUT_OFF))
def test_a_client_that_leaves_mid_body_is_one_log_line(
    served: Served, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    path, media, length, sent, words = CUT_OFF[name]
    caplog.set_level(logging.INFO)
    before = sorted(served.workdir.iterdir())
    with served.connect() as sock:
        sock.sendall(served.request("POST", path, media, length) + sent)
        time.sleep(0.1)
    records = _wait_for_log(caplog, words)
    _assert_one_line_no_traceback(records, words)
    assert sorted(served.workdir.iterdir()) == before  # the partial upload's temp file is gone
    assert served.answers()


SLOW: dict[str, tuple[str, str, int]] = {
    "slow upload": ("/api/uploads?name=a.png", OCTET, 100_000),
    "slow job request": ("/api/jobs", "application/json", 10_000),
}


@pytest.mark.parametrize("name", list(SLOW))
def test_a_body_that_trickles_in_is_cut_off(served: Served, caplog: pytest.LogCaptureFixture, name: str) -> None:
    path, media, length = SLOW[name]
    caplog.set_level(logging.INFO)
    before = sorted(served.workdir.iterdir())
    start = time.monotonic()
    answer, closed = b"", False
    with served.connect() as sock:
        sock.sendall(served.request("POST", path, media, length))
        sock.settimeout(0.05)
        while time.monotonic() - start < BODY_TIMEOUT + 5 and not closed:  # bounded: a byte each 50 ms
            try:
                sock.sendall(b" ")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset by the server: cut off
                closed = True
                break
            answer += chunk
            closed = not chunk
        if not closed:
            more, closed = _read_all(sock, 2.0)
            answer += more
    took = time.monotonic() - start
    assert closed, f"still connected after {took:.1f} s: {answer[:200]!r}"
    assert BODY_TIMEOUT - 0.1 < took < BODY_TIMEOUT + 3, took
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert json.loads(body) == {"error": f"the request body did not arrive within {BODY_TIMEOUT:g} s"}
    _assert_one_line_no_traceback(_wait_for_log(caplog, "answered 408"), "answered 408")
    assert sorted(served.workdir.iterdir()) == before
    assert served.answers()


def test_a_whole_body_over_a_real_socket_is_served(served: Served, tmp_path: Path) -> None:
    """The deadline is on slow bodies only: an upload that arrives at once is taken as before."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 100, 50)).save(buffer, format="PNG")
    data = buffer.getvalue()
    with served.connect() as sock:
        sock.sendall(served.request("POST", "/api/uploads?name=ok.png", OCTET, len(data)) + data)
        answer, _ = _read_all(sock, 3.0)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert json.loads(body)["width"] == 40


def test_an_event_stream_outlives_the_body_deadline() -> None:
    """Waiting for a client to leave (server-sent events) is not a body: no 408 however long it lasts."""
    runner = SteppedRunner(steps=2)
    app = create_app(limits=Limits(body_timeout=0.2), runner=runner, preview_interval=0.0)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        body: dict[str, Any] = {"content": "sample", "style": "sample", "options": {"size": 32}}
        response = client.post("/api/jobs", json=body)
        assert response.status_code == 202, response.text
        job = response.json()["id"]

        def release_later() -> None:
            for _ in range(2):
                time.sleep(0.4)  # the stream stays open past the 0.2 s deadline
                runner.release()

        threading.Thread(target=release_later, daemon=True).start()
        with client.stream("GET", f"/api/jobs/{job}/events") as stream:
            assert stream.status_code == 200
            states = [json.loads(line[5:]) for line in stream.iter_lines() if line.startswith("data:")]
    assert states[-1]["status"] == "done", states[-1]
