"""A compaction of etcd's history in the middle of a sweep does not end the pass.

Real etcd of its own (the test compacts it), a real session lease, the sweep. The
pass read every zone at the revision of its first read; a compaction past that
revision (etcd's auto-compaction, or an operator's) made every later read fail
("required revision has been compacted"), so a pass longer than the compaction
period (many zones) never reached the zones at the end of the keyspace, whatever
their orphans. The client here compacts etcd, for real, once the pass has read its
first zone: a zone after it with orphaned data is swept all the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import dns.name
import pytest

from node.config import Config
from node.nodes.membership import NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.store.txn import Compare, Op
from node.store.values import TxnResult
from node.zones.repository import ZoneRepository
from node.zones.sweep import GenerationSweep
from tests.support.etcd import EtcdProcess

pytestmark = pytest.mark.integration

FIRST, LEFT = dns.name.from_text("a-first.test."), dns.name.from_text("zz-left.test.")
PREFIX = "/compact/dnscluster/v1/"


class CompactingClient(EtcdClient):
    """A client of a real etcd that compacts its history, once, right before the first
    read of a zone's head and registrations (the sweep's one txn without compares)."""

    armed = False

    async def txn(self, when: Sequence[Compare], then: Sequence[Op],
                  otherwise: Sequence[Op] = ()) -> TxnResult:
        if self.armed and not when and len(then) == 2:
            self.armed = False
            await self.compact(await self.put(PREFIX + "tick", b""))
        return await super().txn(when, then, otherwise)


@pytest.fixture
async def client() -> AsyncIterator[CompactingClient]:
    proc = EtcdProcess("sweepcompact")
    proc.start()
    c = CompactingClient([proc.endpoint], timeout=10.0)
    try:
        await c.connect()
        yield c
    finally:
        await c.close()
        proc.close()


async def _count(client: EtcdClient, prefix: str) -> int:
    return (await client.range(prefix, prefix=True, count_only=True)).count


async def test_a_compaction_during_a_pass_does_not_end_it(client: CompactingClient) -> None:
    session = Session(client, 6, keepalive_interval=1.0)
    task = asyncio.create_task(session.run())
    try:
        await session.wait_ready(10)
        layout = KeyLayout(PREFIX)
        repo = ZoneRepository(client, layout)
        sweep = GenerationSweep(client, layout, repo.bulk, session,
                                NodeDirectory(client, layout), Config(node_id="t1"))
        await repo.create_zone(FIRST)
        await repo.create_zone(LEFT)
        await repo.unlink_zone(LEFT)  # a deletion cut short: its data is an orphan
        assert await _count(client, layout.data_root(LEFT)) == 2
        client.armed = True
        assert await sweep.sweep() == 1
        assert not client.armed, "the pass never read a zone's head"
        assert await _count(client, layout.data_root(LEFT)) == 0
        assert await _count(client, layout.data_root(FIRST)) == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
