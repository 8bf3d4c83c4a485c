"""An import's generation reaches the replica by its watch, decoded while it is written
(`node.zones.pending`): the version it serves reads as a full load of the flip revision,
and a generation the watch did not follow from its start is read from etcd, as before."""

from __future__ import annotations

import asyncio
import json
import logging

import dns.name
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Op
from node.work.zoneparse import parse_for_store
from node.zones import pending
from node.zones.bulk import BulkWriter
from node.zones.model import ZoneHead, ZoneSnapshot
from node.zones.replica import Replica
from node.zones.repository import ZoneRepository
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("pending.test.")


def zone_text(serial: int, names: int, tag: str) -> str:
    lines = [f"@ 3600 IN SOA ns1 hostmaster {serial} 3600 600 604800 300", "@ 3600 IN NS ns1",
             "ns1 300 IN A 192.0.2.1"]
    for i in range(names):
        lines.append(f"{tag}{i} 300 IN A 192.0.2.{i % 250 + 1}")
        if i % 3 == 0:
            lines.append(f"{tag}{i} 300 IN TXT \"t {i}\"")
    return "\n".join(lines) + "\n"


def _plain(snap: ZoneSnapshot) -> dict[dns.name.Name, dict[int, object]]:
    return {k: dict(v) for k, v in snap.nodes.items()}


def _sources(caplog: pytest.LogCaptureFixture) -> list[str]:
    out = []
    for r in caplog.records:
        message = r.getMessage()
        if "ZONE_RELOAD_DONE" in message:
            out.append(json.loads(message)["source"])
    return out


async def _same_as_a_load(client: EtcdClient, layout: KeyLayout, replica: Replica,
                          serial: int) -> None:
    await async_wait_until(lambda: (s := replica.snapshot(Z)) is not None
                           and s.serial == serial, 30)
    fresh = Replica(client, layout)
    await fresh.load()
    full, snap = fresh.snapshot(Z), replica.snapshot(Z)
    assert full is not None and snap is not None and full.serial == serial
    assert _plain(snap) == _plain(full)


async def test_imports_are_served_from_what_the_watch_brought(
        etcd_client: EtcdClient, key_prefix: str, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pending, "CHUNK", 300)  # several parts decoded while it is written
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    replica = Replica(etcd_client, layout)
    await replica.load()
    task = asyncio.create_task(replica.run())
    try:
        with caplog.at_level(logging.INFO, logger="node.events"):
            info = await repo.import_zone(Z, zone_text(5, 1500, "a"))  # creates the zone
            await _same_as_a_load(etcd_client, layout, replica, info.serial)
            info = await repo.import_zone(Z, zone_text(6, 1200, "b"))  # replaces its content
            await _same_as_a_load(etcd_client, layout, replica, info.serial)
        assert _sources(caplog) == ["watch", "watch"]
        assert len(replica._pending) == 0  # nothing left followed once flipped
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_generation_begun_before_the_watch_is_read_from_etcd(
        etcd_client: EtcdClient, key_prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    await repo.import_zone(Z, zone_text(5, 50, "a"))
    generation = await etcd_client.put(layout.gen_key(Z), b"")  # begun before the replica
    parsed = parse_for_store(zone_text(9, 400, "c"), Z.to_text())
    await BulkWriter(etcd_client, layout, None).write(Z, generation, parsed.records[:200])
    replica = Replica(etcd_client, layout)
    await replica.load()
    task = asyncio.create_task(replica.run())
    try:
        with caplog.at_level(logging.INFO, logger="node.events"):
            await BulkWriter(etcd_client, layout, None).write(Z, generation,
                                                              parsed.records[200:])
            head = ZoneHead(serial=9, generation=generation)
            await etcd_client.txn(when=[], then=[Op.put(layout.head_key(Z), head.to_json())])
            await _same_as_a_load(etcd_client, layout, replica, 9)
        assert _sources(caplog) == ["etcd"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
