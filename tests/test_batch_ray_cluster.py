"""`impasto batch --engine ray` on two Ray nodes simulated on this machine (ray.cluster_utils.Cluster).

One CPU per node, so the default (all of the smallest node's CPUs per job) gives one painter per node:
every job is painted once, by one of the two nodes, and both nodes take work.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ray = pytest.importorskip("ray", reason="the cluster extra (Ray) is not installed: pip install 'impasto[cluster]'")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from impasto.batch import batch  # noqa: E402
from impasto.batch.ledger import LEDGER  # noqa: E402


@pytest.fixture
def two_nodes() -> Iterator[object]:
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.ERROR)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_two_nodes_paint_every_job_once(two_nodes, tmp_path, content_image, style_image):
    content, style = tmp_path / "photo.png", tmp_path / "art.png"
    content_image.save(content)
    style_image.save(style)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    out = tmp_path / "out"
    grid = {"style_weight": [1, 3, 10], "tv_weight": [0.5, 2.0]}
    options = {"size": 64, "scales": 1, "iterations": [4]}
    report = batch([str(content)], [str(style)], out, grid=grid, options=options, engine="ray")
    assert report.ok and report.painted == 6
    entries = [json.loads(line) for line in (out / LEDGER).read_text().splitlines()]
    names = sorted(p.name for p in out.glob("*.png"))
    assert sorted(e["output"] for e in entries) == names and len(set(names)) == 6
    nodes = {e["worker"].split(":")[0] for e in entries}
    assert len(nodes) == 2, nodes  # both nodes painted
