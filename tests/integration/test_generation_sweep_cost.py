"""A pass of the sweep over many zones costs etcd a few calls, not three or more a zone.

Real etcd, a real session lease, the repository and the sweep. The pass walked every
zone: a skip read to find it, a read per generation and one past the last, then the
head and the registrations, four calls a zone with nothing to delete (1,200 for 300
zones, 400k for 100k, every interval). A pass now reads the zones marked `unswept/`
(a bulk write marks its zone with its registration, a deletion in its unlink) and
clears the mark of each zone it finds clean: the pass after that costs one call
whatever the zone count, and a deletion cut short costs the zone it left. The client
counts its KV calls (reads, writes, transactions).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import dns.name
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.store.txn import Compare, Op
from node.store.values import TxnResult
from node.zones import sweep as sweep_module
from node.zones.repository import ZoneRepository
from tests.support.etcd import EtcdProcess
from tests.support.sweep import connected, count, make_sweep, running_session

pytestmark = pytest.mark.integration

ZONES = 300
NAMES = [dns.name.from_text(f"z{i:04d}.cost.test.") for i in range(ZONES)]


class CountingClient(EtcdClient):
    """A client of a real etcd that counts its KV calls; `on_unmark`, when set, runs right
    before a transaction that deletes a mark (a bulk write racing the sweep)."""

    calls = 0
    on_unmark: Any = None

    async def _unary(self, service: str, method: str, req: Any, *, idempotent: bool) -> Any:
        if service == "KV":
            self.calls += 1
        return await super()._unary(service, method, req, idempotent=idempotent)

    async def txn(self, when: Sequence[Compare], then: Sequence[Op],
                  otherwise: Sequence[Op] = ()) -> TxnResult:
        hook, self.on_unmark = self.on_unmark, None
        if hook is not None and len(then) == 1 and then[0].kind == "delete" \
                and b"/unswept/" in then[0].key:
            await hook()
        else:
            self.on_unmark = hook
        return await super().txn(when, then, otherwise)


@pytest.fixture
async def client(etcd: EtcdProcess) -> AsyncIterator[CountingClient]:
    async with connected(CountingClient, etcd) as c:
        yield c


@pytest.fixture
async def session(client: CountingClient) -> AsyncIterator[Session]:
    async with running_session(client) as s:
        yield s


async def test_a_pass_over_many_clean_zones_costs_a_few_etcd_calls(
        client: CountingClient, key_prefix: str, session: Session) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(client, layout)
    sweep = make_sweep(client, layout, repo, session)
    for i in range(0, ZONES, 20):
        await asyncio.gather(*(repo.create_zone(n) for n in NAMES[i:i + 20]))
    assert await sweep.sweep() == 0  # this node's first pass (every zone): nothing to delete
    client.calls = 0
    assert await sweep.sweep() == 0
    assert client.calls <= 2, f"a pass over {ZONES} clean zones made {client.calls} etcd calls"

    left = NAMES[ZONES // 2]
    await repo.unlink_zone(left)  # a deletion cut short: its data is an orphan
    client.calls = 0
    assert await sweep.sweep() == 1
    assert client.calls <= 12, f"sweeping one zone's orphan made {client.calls} etcd calls"
    assert await count(client, layout.data_root(left)) == 0
    for name in (NAMES[0], NAMES[ZONES // 2 + 1], NAMES[-1]):
        assert await count(client, layout.data_root(name)) == 2  # the served ones stay
    assert await sweep.sweep() == 0  # the zone is clean now: its mark goes
    client.calls = 0
    assert await sweep.sweep() == 0
    assert client.calls <= 2


async def test_a_zone_marked_again_during_its_check_keeps_its_mark(
        client: CountingClient, key_prefix: str, session: Session) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(client, layout)
    sweep = make_sweep(client, layout, repo, session)
    zone = NAMES[0]
    await repo.create_zone(zone)
    await sweep.sweep()  # first pass: the zone is clean, its mark gone
    assert await client.get(layout.unswept_key(zone)) is None
    generation = 0

    async def import_begins() -> None:  # another node allocates between check and unmark
        nonlocal generation
        generation = await repo.bulk.allocate(zone)

    await repo.unlink_zone(zone)
    assert await sweep.sweep() == 1  # the left data: not clean, the mark stays
    client.on_unmark = import_begins
    assert await sweep.sweep() == 0
    assert generation, "the pass never tried to delete the mark"
    assert await client.get(layout.unswept_key(zone)) is not None  # kept for the writer
    await repo.bulk.write(zone, generation, [("z0000.cost.test./TXT", b'{"ttl": 1}')])
    lease = session.lease_id
    assert lease is not None
    await client.lease_revoke(lease)  # the writer dies: its registration goes
    assert await sweep.sweep() == 1  # the next pass finds its generation
    assert await count(client, layout.data_root(zone)) == 0


async def test_a_full_pass_in_small_pages_finds_every_orphan(
        client: CountingClient, key_prefix: str, session: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The full pass reads `zones/` in keys-only pages and skips past a page's last zone:
    with pages of 7 keys (5 a zone), each page cuts a zone; no orphan is missed."""
    monkeypatch.setattr(sweep_module, "ZONE_PAGE", 7)
    monkeypatch.setattr(sweep_module, "HEADS_PER_READ", 3)
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(client, layout)
    sweep = make_sweep(client, layout, repo, session)
    names = NAMES[:30]
    for name in names:
        await repo.create_zone(name)
    for name in names[::7]:
        await repo.unlink_zone(name)  # deletions cut short
    for name in names[3::5]:  # an import's old generation whose deletion was cut short
        await repo.bulk.write(name, 17, [(f"{name}/TXT", b'{"ttl": 1}')])
    await client.delete(layout.unswept_root(), prefix=True)  # only a full pass finds them
    orphans = len(names[::7]) + len(names[3::5])
    assert await sweep.sweep(full=True) == orphans
    for name in names:
        left = await count(client, layout.data_root(name))
        assert left == (0 if name in names[::7] else 2), name
