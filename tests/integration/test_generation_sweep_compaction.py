"""A compaction of etcd's history in the middle of a sweep does not end the pass.

Real etcd of its own (the test compacts it), a real session lease, the sweep. The
pass read every zone at the revision of its first read; a compaction past that
revision (etcd's auto-compaction, or an operator's) made every later read fail
("required revision has been compacted"), so a pass longer than the compaction
period (many zones) never reached the zones at the end of the keyspace, whatever
their orphans. The client here compacts etcd, for real, once the pass has read its
first zone: a zone after it with orphaned data is swept all the same, in a full pass
(every zone) as in a pass over the marked zones (`unswept/`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import dns.name
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.store.values import TxnResult
from node.zones import sweep as sweep_module
from node.zones.repository import ZoneRepository
from tests.support.etcd import EtcdProcess
from tests.support.sweep import count, make_sweep, running_session

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


@pytest.mark.parametrize("full", [True, False], ids=["full-pass", "marked-pass"])
async def test_a_compaction_during_a_pass_does_not_end_it(
        client: CompactingClient, full: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_module, "HEADS_PER_READ", 1)  # a read of heads a zone
    monkeypatch.setattr(sweep_module, "ZONE_PAGE", 3)  # pages that cut zones
    async with running_session(client) as session:
        layout = KeyLayout(PREFIX)
        repo = ZoneRepository(client, layout)
        sweep = make_sweep(client, layout, repo, session)
        await repo.create_zone(FIRST)
        await repo.create_zone(LEFT)
        if not full:  # the first pass (full) clears the marks; then two zones are marked
            assert await sweep.sweep() == 0
            await client.put(layout.unswept_key(FIRST), b"")  # as a bulk write would
        await repo.unlink_zone(LEFT)  # a deletion cut short: its data is an orphan
        assert await count(client, layout.data_root(LEFT)) == 2
        client.armed = True
        assert await sweep.sweep() == 1
        assert not client.armed, "the pass never read a zone's head"
        assert await count(client, layout.data_root(LEFT)) == 0
        assert await count(client, layout.data_root(FIRST)) == 2
