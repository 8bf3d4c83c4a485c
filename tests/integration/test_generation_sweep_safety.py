"""The sweep deletes orphaned generations and never one a live writer will still flip.

Real etcd, a real session lease, the repository and the sweep
(`node/zones/sweep.py`): the data a zone deletion left when it stopped
between `unlink_zone` and its data parts is swept; a generation being
written is registered under its writer's lease and kept while the lease
lives; once the lease is gone it is swept, and its flip is refused (so a
writer that lost its lease never makes a generation the sweep cut live: the
import fails, saying so). `BulkWriter.write_pause` (the test-only
`testing.import_write_pause`) holds a write half done without a race.
The `sweeper` key is held by one node at a time, under its lease.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import dns.name
import pytest

from node.config import Config
from node.errors import EtcdUnavailable
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.zones.model import ZoneHead
from node.zones.repository import ZoneRepository
from node.zones.sweep import GenerationSweep
from tests.support.sweep import count, make_sweep, running_session
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("swept.test.")
TEXT = "\n".join(["$ORIGIN swept.test.", "$TTL 300",
                  "@ IN SOA ns1 hostmaster 1 3600 600 604800 300", "@ IN NS ns1",
                  *(f"h{i} IN A 192.0.2.{i % 250 + 1}" for i in range(300))]) + "\n"


@pytest.fixture
async def session(etcd_client: EtcdClient) -> AsyncIterator[Session]:
    async with running_session(etcd_client) as s:
        yield s


def _sweep(client: EtcdClient, layout: KeyLayout, repo: ZoneRepository, session: Session,
           node_id: str = "t1") -> GenerationSweep:
    return make_sweep(client, layout, repo, session, Config(node_id=node_id))


async def test_the_data_an_interrupted_deletion_left_is_swept(
        etcd_client: EtcdClient, key_prefix: str, session: Session) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    sweep = _sweep(etcd_client, layout, repo, session)
    await repo.import_zone(Z, TEXT)
    assert await sweep.sweep() == 0  # the head's generation stays
    await repo.unlink_zone(Z)  # the node stops here: its data parts never run
    assert await count(etcd_client, layout.data_root(Z)) == 302
    assert await sweep.sweep() == 1
    assert await count(etcd_client, layout.data_root(Z)) == 0
    assert sweep.counts == {"generations": 1, "keys": 302}


async def test_a_registered_generation_is_kept_until_its_lease_ends(
        etcd_client: EtcdClient, key_prefix: str, session: Session) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    sweep = _sweep(etcd_client, layout, repo, session)
    info = await repo.import_zone(Z, TEXT)
    generation = await repo.bulk.allocate(Z)  # a writer on another node, mid-import
    parsed = await repo.bulk.parse(TEXT, Z)
    await repo.bulk.write(Z, generation, parsed.records[:100])
    assert await sweep.sweep() == 0
    assert await count(etcd_client, layout.data_prefix(Z, generation)) == 100

    lease = session.lease_id
    assert lease is not None
    await etcd_client.lease_revoke(lease)  # the writer's lease ends (kill -9, then its TTL)
    assert not await repo.bulk.registered(Z, generation)
    assert await sweep.sweep() == 1
    assert await count(etcd_client, layout.data_prefix(Z, generation)) == 0
    head = ZoneHead.from_json((await etcd_client.get(layout.head_key(Z))).value)  # type: ignore[union-attr]
    assert head.generation == info.generation
    assert await count(etcd_client, layout.data_prefix(Z, info.generation)) == 302

    registered, done = repo.bulk.written(Z, generation)  # the writer tries its flip now
    flip = await etcd_client.txn(when=[registered], then=[done])
    assert not flip.succeeded


async def test_one_node_holds_the_sweeper_key_until_its_lease_ends(
        etcd_client: EtcdClient, key_prefix: str, session: Session) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    async with running_session(etcd_client) as other:
        first, second = (_sweep(etcd_client, layout, repo, session, "t1"),
                         _sweep(etcd_client, layout, repo, other, "t2"))
        assert await first.claim() and await first.claim()
        assert not await second.claim()
        lease = session.lease_id
        assert lease is not None
        await etcd_client.lease_revoke(lease)
        assert await second.claim()
        assert not await first.claim()


async def test_an_import_whose_lease_lapsed_is_refused_at_its_flip(
        etcd_client: EtcdClient, key_prefix: str, session: Session) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    sweep = _sweep(etcd_client, layout, repo, session)
    info = await repo.import_zone(Z, TEXT)
    repo.bulk.write_pause = 10.0  # half written (the first batch of four) for 10 s
    task = asyncio.create_task(repo.import_zone(Z, TEXT.replace("192.0.2.", "198.51.100.")))
    try:
        generation = 0

        async def half_written() -> bool:
            nonlocal generation
            kv = await etcd_client.get(layout.gen_key(Z))
            generation = kv.mod_revision if kv is not None else 0
            return generation > info.generation and \
                await count(etcd_client, layout.data_prefix(Z, generation)) > 0

        await async_wait_until(half_written, 20, message="the import never wrote a batch")
        lease = session.lease_id
        assert lease is not None
        await etcd_client.lease_revoke(lease)  # the importer's lease lapses mid-write
        assert await sweep.sweep() == 1
        with pytest.raises(EtcdUnavailable, match="lost its etcd lease"):
            await task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    head = ZoneHead.from_json((await etcd_client.get(layout.head_key(Z))).value)  # type: ignore[union-attr]
    assert head.generation == info.generation
    assert await count(etcd_client, layout.data_prefix(Z, generation)) == 0
    assert await count(etcd_client, layout.data_prefix(Z, info.generation)) == 302
