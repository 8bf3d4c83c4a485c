"""The replica hands each version's owner map on as the previous one plus the changed
owners (`LayeredNodes`, no copy of the zone): every snapshot reads as a full load of
its revision would, and stays so while later versions are made (and flattened)."""

from __future__ import annotations

import asyncio

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones import layered
from node.zones.layered import LayeredNodes
from node.zones.model import ZoneSnapshot
from node.zones.replica import Replica
from node.zones.repository import ZoneRepository
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("layered.test.")


def _plain(snap: ZoneSnapshot) -> dict[dns.name.Name, dict[int, object]]:
    return {k: dict(v) for k, v in snap.nodes.items()}


async def test_versions_read_as_full_loads(etcd_client: EtcdClient, key_prefix: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layered, "FLAT_MIN", 3)  # flatten every few versions
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    seen: list[tuple[ZoneSnapshot, dict[dns.name.Name, dict[int, object]]]] = []
    replica = Replica(etcd_client, layout, on_update=lambda s: seen.append((s, _plain(s))))
    await replica.load()
    task = asyncio.create_task(replica.run())
    try:
        await repo.create_zone(Z, ns=(dns.name.from_text("ns1.layered.test."),))
        for i in range(12):
            owner = dns.name.from_text(f"h{i % 5}", Z)
            if i % 3 == 2:  # the name the last step added
                await repo.delete_records(Z, dns.name.from_text(f"h{(i - 1) % 5}", Z),
                                          dns.rdatatype.A)
            else:
                await repo.add_records(Z, dns.rrset.from_text(owner, 300, "IN", "A",
                                                              f"192.0.2.{i}"))
        last = await repo.get_zone(Z)
        await async_wait_until(lambda: (s := replica.snapshot(Z)) is not None
                               and s.serial == last.serial, 10)
        snap = replica.snapshot(Z)
        assert snap is not None and isinstance(snap.nodes, LayeredNodes)
        fresh = Replica(etcd_client, layout)
        await fresh.load()
        full = fresh.snapshot(Z)
        assert full is not None and full.serial == snap.serial
        assert _plain(snap) == _plain(full)
        assert len(seen) > 10
        for old, at_delivery in seen:
            assert _plain(old) == at_delivery, f"serial {old.serial} changed afterwards"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
