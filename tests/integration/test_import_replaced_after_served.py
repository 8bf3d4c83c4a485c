"""An import's replaced generation is deleted once the importing node serves the flip.

Issue 10: the deletion of the old generation right after the flip (127k keys for the
bench zone: etcd's deletes and every watcher's 127k delete events) competed with every
node's decode and image of the new version, on the way to answering it. With the node's
hook (`BulkWriter.after_flip`: the daemon's replica has applied, and the node serves, the
flip's revision) the import returns after the flip and the old generation goes after the
hook; without a hook (no node) it goes before the import returns, as before. Real etcd,
a real `Replica`.
"""

from __future__ import annotations

import asyncio

import dns.name
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.replica import Replica
from node.zones.repository import ZoneRepository
from tests.integration.test_replica_pending import zone_text
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("replaced.test.")


async def _keys(client: EtcdClient, layout: KeyLayout, generation: int) -> int:
    return len((await client.range_all(layout.data_prefix(Z, generation)))[0])


async def test_the_replaced_generation_goes_after_the_node_serves_the_flip(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    replica = Replica(etcd_client, layout)
    await replica.load()
    task = asyncio.create_task(replica.run())
    flips: list[int] = []
    release = asyncio.Event()

    async def after_flip(revision: int) -> None:
        flips.append(revision)
        await release.wait()
        await replica.wait_revision(revision, 30)

    try:
        first = await repo.import_zone(Z, zone_text(1, 300, "a"))
        assert await _keys(etcd_client, layout, first.generation) == 403
        repo.bulk.after_flip = after_flip
        second = await asyncio.wait_for(repo.import_zone(Z, zone_text(2, 200, "b")), 30)
        kv = await etcd_client.get(layout.head_key(Z))
        assert kv is not None and flips == [kv.mod_revision], "the hook waits for the flip"
        assert await _keys(etcd_client, layout, first.generation) == 403, \
            "the replaced generation was deleted before the node served the flip"
        release.set()
        await async_wait_until(
            lambda: (s := replica.snapshot(Z)) is not None and s.serial == second.serial, 30)
        async def replaced_gone() -> bool:
            return not await _keys(etcd_client, layout, first.generation)

        await async_wait_until(replaced_gone, 30, interval=0.05, message="never deleted")
        assert await _keys(etcd_client, layout, second.generation) == 270
        repo.bulk.after_flip = None  # no node: deleted before the import returns
        third = await repo.import_zone(Z, zone_text(3, 10, "c"))
        assert await _keys(etcd_client, layout, second.generation) == 0
        assert await _keys(etcd_client, layout, third.generation) == 17
    finally:
        task.cancel()
