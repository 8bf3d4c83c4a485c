"""`MirroredTable` (the control process's table with serving workers) answers from the
images' table, which has its own answer cache: it grows no doorkeepers of its own."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from node.server import answercache
from node.serving.images import MirroredTable
from node.serving.local import LocalImages
from node.zones.model import ZoneSnapshot, snapshot_from_text


def test_a_large_zone_grows_no_doorkeepers_the_table_never_asks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its `lookup` is the images' table's, so its own doorkeepers are never asked; they grew
    with its zones anyway (4 slots per name, 2 octets each, per DO bit: 16 MiB in the control
    process for a 1M-name zone)."""
    monkeypatch.setattr(answercache, "CACHE_MAX", 1)  # the zone's own bound, no floor
    published: list[ZoneSnapshot] = []
    local = LocalImages()
    images = SimpleNamespace(local=local, publish=published.append)
    table = MirroredTable(None, images)  # type: ignore[arg-type]
    doors = table._doors
    lines = ["@ 300 SOA ns h 1 2 3 4 5", "@ 300 NS ns", "ns 300 A 192.0.2.1"]
    lines += [f"h{i} 300 A 192.0.2.{i % 250}" for i in range(3000)]
    table.publish(snapshot_from_text("\n".join(lines) + "\n", "big.example."))
    assert published and table.caches is local.table.caches
    assert table._doors is doors
