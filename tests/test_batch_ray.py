"""`impasto batch --engine ray` on a Ray cluster started here (2 CPUs, this machine only).

Same outputs as the local engine, a worker killed mid-job retried with nothing lost or duplicated,
reruns that skip everything, a corrupt input failing alone, an unreachable address in one line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ray = pytest.importorskip("ray", reason="the cluster extra (Ray) is not installed: pip install 'impasto[cluster]'")

from impasto.batch import batch  # noqa: E402
from impasto.batch.ledger import LEDGER  # noqa: E402
from impasto.cli import main  # noqa: E402

TINY = {"size": 64, "scales": 1, "iterations": [8]}
GRID = {"style_weight": [1, 10]}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from conftest import _gradient_photo, _stripes

    folder = tmp_path_factory.mktemp("in")
    paths = {"a": folder / "a.png", "b": folder / "b.png", "style": folder / "stripes.png"}
    _gradient_photo(96, 72).save(paths["a"])
    _gradient_photo(72, 96).save(paths["b"])
    _stripes(80, 80).save(paths["style"])
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    """The same batch on the local engine."""
    out = tmp_path_factory.mktemp("local")
    assert batch([inputs["a"], inputs["b"]], [inputs["style"]], out, grid=GRID, options=TINY).ok
    return out


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _ledger(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / LEDGER).read_text().splitlines()]


def _same_outputs(folder: Path, reference: Path) -> None:
    names = sorted(p.name for p in reference.glob("*.png"))
    assert sorted(p.name for p in folder.glob("*.png")) == names and len(names) == 4
    for name in names:
        assert np.array_equal(_pixels(folder / name), _pixels(reference / name)), name
    ok = [e for e in _ledger(folder) if e["status"] == "ok"]
    assert sorted(e["output"] for e in ok) == names  # each output recorded once: nothing duplicated
    keys = {e["output"]: e["key"] for e in _ledger(reference)}
    assert all(e["key"] == keys[e["output"]] for e in ok)


def test_unreachable_address_is_one_line(inputs, tmp_path, capsys):
    start = time.perf_counter()
    code = main(["batch", "-c", inputs["a"], "-s", inputs["style"], "-o", str(tmp_path / "o"),
                 "--engine", "ray", "--address", "127.0.0.1:9"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("impasto: error: cannot reach a Ray cluster at 127.0.0.1:9 (")
    assert err.count("\n") == 1 and time.perf_counter() - start < 30
    assert main(["batch", "-c", inputs["a"], "-s", inputs["style"], "-o", str(tmp_path / "o"),
                 "--engine", "ray", "--address", "http://x"]) == 1  # fmt: skip
    assert "expected auto, HOST:PORT or ray://HOST:PORT" in capsys.readouterr().err


def test_ray_paints_what_local_paints_and_a_rerun_skips_all(local_ray, inputs, reference, tmp_path):
    out = tmp_path / "ray"
    report = batch([inputs["a"], inputs["b"]], [inputs["style"]], out, grid=GRID, options=TINY, engine="ray")
    assert report.ok and report.painted == 4
    _same_outputs(out, reference)
    assert all(e["worker"] for e in _ledger(out))
    again = batch([inputs["a"], inputs["b"]], [inputs["style"]], out, grid=GRID, options=TINY, engine="ray")
    assert again.ok and (again.painted, again.skipped) == (0, 4)
    assert len(_ledger(out)) == 4


def _painting_worker() -> int | None:
    """The pid of a Ray worker process inside Painter.paint (Ray names its process after the call)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::Painter.paint"):
            return int(pid)
    return None


def test_a_worker_killed_mid_job_is_retried_with_nothing_lost(local_ray, inputs, reference, tmp_path):
    out = tmp_path / "ray"
    reports = []
    thread = threading.Thread(
        target=lambda: reports.append(
            batch([inputs["a"], inputs["b"]], [inputs["style"]], out, grid=GRID, options=TINY, engine="ray")
        )
    )
    thread.start()
    deadline, killed = time.monotonic() + 120, None
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        if (pid := _painting_worker()) is not None:
            os.kill(pid, signal.SIGKILL)
            killed = pid
        time.sleep(0.01)
    thread.join(300)
    assert killed is not None, "never saw a worker painting"
    assert reports and reports[0].ok and reports[0].painted == 4
    _same_outputs(out, reference)
    assert not any(e["worker"].endswith(f":{killed}") for e in _ledger(out))  # its job was redone elsewhere


def test_a_corrupt_input_fails_only_its_job_on_ray(local_ray, inputs, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    report = batch([inputs["a"], str(bad)], [inputs["style"]], tmp_path / "o", options=TINY, engine="ray")
    assert report.painted == 1 and [e["output"] for e in report.failed] == ["bad--stripes.png"]
    assert report.failed[0]["error"] == f"{bad}: not an image Pillow can read"
