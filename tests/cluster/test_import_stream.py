"""`zone import` streams the zone in chunks and a busy node never fails the call (issue 10).

One node with the test-only `testing.import_pause` (the import waits after
parsing, so the client's deadline passes while the node works): the CLI exits
3 ("still in progress"), `zone show` on that node reports the import's
progress, and the import completes on its own, with its events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.nodes import NodeProcess, events
from tests.support.wait import wait_until

ZONE = "stream.test."
NAMES = 40_000  # about 1.3 MB of text: more than one 1 Mi-character chunk
IMPORT_STARTED, IMPORT_PROGRESS, IMPORT_DONE = 1840, 1841, 1842


@pytest.fixture(scope="module")
def slow_import_node() -> Iterator[Cluster]:
    c = make_cluster(count=1, extra_toml="[testing]\nimport_pause = 6.0\n")
    try:
        yield c
    finally:
        c.close()


def zone_text() -> str:
    lines = [f"$ORIGIN {ZONE}", "$TTL 300", "@ IN SOA ns1 hostmaster 7 3600 600 604800 300",
             "@ IN NS ns1", "ns1 IN A 192.0.2.1"]
    lines += [f"host-{i:06d} IN TXT \"streamed import record {i}\"" for i in range(NAMES)]
    return "\n".join(lines) + "\n"


def test_import_past_the_deadline_exits_3_and_goes_on(slow_import_node: Cluster,
                                                      tmp_path: Path) -> None:
    node = slow_import_node.nodes[0]
    created = node.ctl("zone", "create", ZONE, timeout=60)
    assert created.returncode == 0, created.stderr
    path = tmp_path / "stream.zone"
    text = zone_text()
    assert len(text) > 1 << 20
    path.write_text(text)
    res = node.ctl("--timeout", "2", "zone", "import", ZONE, str(path), timeout=60)
    assert res.returncode == 3, res.stderr
    assert "still in progress" in res.stderr
    shown = show(node)
    assert shown.get("progress", "").startswith("import: "), shown
    wait_until(lambda: show(node)["rrset_count"] == NAMES + 3, 180)
    assert "progress" not in show(node)
    assert len(events(node, IMPORT_STARTED)) == 1
    stages = {e["stage"] for e in events(node, IMPORT_PROGRESS)}
    assert {"parsing", "writing", "activating"} <= stages, stages
    done = events(node, IMPORT_DONE)
    assert len(done) == 1 and done[0]["rrsets"] == NAMES + 3, done


def test_a_zone_created_by_an_import_shows_its_progress_before_it_exists(
        slow_import_node: Cluster, tmp_path: Path) -> None:
    node = slow_import_node.nodes[0]
    zone = "fresh.test."
    path = tmp_path / "fresh.zone"
    path.write_text(zone_text().replace(ZONE, zone))
    res = node.ctl("--timeout", "2", "zone", "import", zone, str(path), timeout=60)
    assert res.returncode == 3, res.stderr
    shown = show(node, zone)
    assert shown["serial"] == 0 and shown["progress"].startswith("import: "), shown
    wait_until(lambda: show(node, zone)["rrset_count"] == NAMES + 3, 180)


def show(node: NodeProcess, zone: str = ZONE) -> dict:  # type: ignore[type-arg]
    res = node.ctl("--json", "zone", "show", zone, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]
