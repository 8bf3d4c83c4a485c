"""Deleting a zone: what makes it exist goes in one revision, its data after, in parts.

Issue 10: one range delete of a 127k-key zone is one revision, whose watch
event etcd cuts into fragments in quadratic time (~10 s of CPU per watcher).
Now the first transaction removes the zone's config, head and settings (the
replicas drop the zone at that revision), then each generation's data keys go
in parts of at most `bulk.DELETE_KEYS` keys. A zone created again under the
name while those parts are deleted has a new generation: none of the old data
reaches it, and a replica serves exactly the new zone. Real etcd, a real
`Replica` watching it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import dns.name
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones import bulk
from node.zones.replica import Replica
from node.zones.repository import ZoneRepository
from tests.integration.test_replica_pending import zone_text
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("deleted.test.")


@asynccontextmanager
async def _serving(client: EtcdClient, layout: KeyLayout, text: str
                   ) -> AsyncIterator[tuple[ZoneRepository, Replica, int]]:
    """A repository and a replica following etcd, with `Z` imported from `text` and served;
    yields them and the import's generation."""
    repo = ZoneRepository(client, layout)
    replica = Replica(client, layout)
    await replica.load()
    task = asyncio.create_task(replica.run())
    try:
        info = await repo.import_zone(Z, text)
        await async_wait_until(lambda: (s := replica.snapshot(Z)) is not None
                               and s.serial == info.serial, 30)
        yield repo, replica, info.generation
    finally:
        task.cancel()


async def _events_by_revision(client: EtcdClient, prefix: str, start: int,
                              until: int) -> dict[int, list[tuple[str, bytes]]]:
    """The events under `prefix` from revision `start` to `until`, per revision."""
    out: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
    watch = client.watch(prefix, start)
    try:
        async with asyncio.timeout(30):
            async for batch in watch:
                for ev in batch.events:
                    out[ev.kv.mod_revision or batch.revision].append((ev.type, ev.kv.key))
                if batch.revision >= until:
                    return out
    finally:
        await watch.close()
    return out


async def test_the_zone_goes_in_one_revision_then_its_data_in_parts(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "DELETE_KEYS", 300)
    layout = KeyLayout(key_prefix)
    async with _serving(etcd_client, layout, zone_text(5, 900, "a")) as (repo, replica, _):
        data = await etcd_client.range(layout.data_root(Z), prefix=True, count_only=True)
        before = (await etcd_client.range(layout.zone_prefix(Z), prefix=True,
                                          count_only=True)).revision
        await repo.delete_zone(Z)
        after = (await etcd_client.range(layout.zone_prefix(Z), prefix=True)).revision
        assert not (await etcd_client.range(layout.zone_prefix(Z), prefix=True)).kvs
        await async_wait_until(lambda: replica.snapshot(Z) is None, 30)
    events = await _events_by_revision(etcd_client, layout.zone_prefix(Z), before + 1, after)
    revisions = sorted(events)
    first = {key for _, key in events[revisions[0]]}
    root = layout.data_root(Z).encode()
    assert layout.head_key(Z).encode() in first and layout.config_key(Z).encode() in first
    assert not any(k.startswith(root) for k in first), "no data in the revision of the head"
    parts = [events[r] for r in revisions[1:]]
    assert all(len(p) <= 300 and all(k.startswith(root) for _, k in p) for p in parts)
    assert sum(map(len, parts)) == data.count and len(parts) >= data.count // 300


async def test_a_zone_created_again_while_the_old_data_goes_gets_none_of_it(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "DELETE_KEYS", 200)
    layout = KeyLayout(key_prefix)
    async with _serving(etcd_client, layout, zone_text(5, 600, "a")) as (repo, replica, gen):
        revision = await repo.unlink_zone(Z)  # delete_zone's first step: the zone is gone
        await async_wait_until(lambda: replica.snapshot(Z) is None, 30)
        new = await repo.create_zone(Z, text=zone_text(9, 50, "b"))
        assert new.generation != gen
        await async_wait_until(lambda: (s := replica.snapshot(Z)) is not None
                               and s.serial == new.serial, 30)
        await repo.delete_data(Z, revision)  # then its data, in parts, after the new zone
        keys = (await etcd_client.range(layout.data_root(Z), prefix=True, keys_only=True)).kvs
        assert keys and all(kv.key.startswith(layout.data_prefix(Z, new.generation).encode())
                            for kv in keys), "only the new generation's data is left"
        assert len(keys) == new.rrset_count
        fresh = Replica(etcd_client, layout)
        await fresh.load()
        served, full = replica.snapshot(Z), fresh.snapshot(Z)
        assert served is not None and full is not None
        assert {k: dict(v) for k, v in served.nodes.items()} == \
            {k: dict(v) for k, v in full.nodes.items()}
        assert not any(o.to_text().startswith("a") for o in served.nodes), "no old owner"
