"""A full load (start-up or the resync after a compaction) that meets a compaction while it
pages is started again at a new revision; it never ends the replica (issue #8, finding 4).

The compaction is real: a client of the test compacts etcd right after the load's first
page, so the next page, read at the first page's revision, is refused as compacted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import dns.name
import pytest

from node.store.client import EtcdClient, RangeResult
from node.store.keys import KeyLayout
from node.store.txn import KeyLike
from node.zones.replica import Replica
from node.zones.repository import ZoneRepository
from tests.support.etcd import EtcdProcess

pytestmark = pytest.mark.integration

ZONE = dns.name.from_text("resync.test.")


class CompactingClient(EtcdClient):
    """Compacts etcd once, right after the first page of a paged read (when armed)."""

    armed = False

    async def range(self, key: KeyLike, range_end: KeyLike | None = None,
                    **options: object) -> RangeResult:
        result = await super().range(key, range_end, **options)  # type: ignore[arg-type]
        if self.armed and result.more:
            self.armed = False
            revision = await self.put(b"/compaction-marker", b"x")
            await self.compact(revision)
        return result


@pytest.fixture
async def client(private_etcd: EtcdProcess) -> AsyncIterator[CompactingClient]:
    c = CompactingClient([private_etcd.endpoint], timeout=2.0)
    await c.connect()
    try:
        yield c
    finally:
        await c.close()


async def test_a_load_that_meets_a_compaction_starts_again(
        client: CompactingClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    lines = ["@ 3600 IN SOA ns1 hostmaster 7 3600 600 604800 300", "@ 3600 IN NS ns1",
             "ns1 300 IN A 192.0.2.1"]
    lines += [f"h{i} 300 IN A 192.0.2.{i % 250 + 1}" for i in range(1500)]  # two pages
    await ZoneRepository(client, layout).create_zone(ZONE, text="\n".join(lines) + "\n")
    replica = Replica(client, layout, retry_interval=0.05)
    client.armed = True
    await asyncio.wait_for(replica.load(), 30)
    assert not client.armed, "the load did not meet the compaction"
    snap = replica.snapshot(ZONE)
    assert snap is not None and snap.serial == 7
    assert len(snap.nodes) == 1502
