"""A node's processes unmap the zone images they no longer serve (node/image/table.py).

Each import gives a zone a full image; the control process (`LocalImages`)
and every serving worker map it, and the control process unlinks the one it
replaces once the workers moved on. A superseded image that stays mapped keeps
its memory and the disk space of its deleted file: after several imports,
the control process and each worker map at most the current version (and a
version being replaced) of the zone's images.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_availability_while_working import big_zone, ok
from tests.cluster.test_heavy_threads_batch import _serving_children
from tests.support.nodes import SERVING_WORKERS
from tests.support.wait import wait_until

ZONE = "work.test."
IMPORTS = 5


@pytest.fixture(scope="module")
def node_with_workers() -> Iterator[Cluster]:
    c = make_cluster(count=1, env=SERVING_WORKERS)
    try:
        yield c
    finally:
        c.close()


def _deleted_images(pid: int) -> int:
    with open(f"/proc/{pid}/maps") as maps:
        return len({line.split(None, 5)[-1] for line in maps
                    if "work.test" in line and "(deleted)" in line})


def test_superseded_images_are_unmapped(node_with_workers: Cluster, tmp_path: Path) -> None:
    n1 = node_with_workers.nodes[0]
    assert n1.proc is not None
    text = big_zone(500)
    for serial in range(1, IMPORTS + 1):
        zone_file = tmp_path / f"work{serial}.zone"
        zone_file.write_text(text.replace("hostmaster 1 ", f"hostmaster {serial * 10} "))
        ok(n1, "zone", "import", ZONE, str(zone_file))
        wait_until(lambda: n1.serial(ZONE) is not None, 60)
    pids = [n1.proc.pid, *_serving_children(n1.proc.pid)]
    assert len(pids) == 3
    # the last replaced image is unlinked once every worker acknowledged the last version
    try:
        wait_until(lambda: all(_deleted_images(p) <= 1 for p in pids), 30)
    except AssertionError:
        pytest.fail(f"deleted image files still mapped after {IMPORTS} imports, by pid: "
                    f"{ {p: _deleted_images(p) for p in pids} }")
