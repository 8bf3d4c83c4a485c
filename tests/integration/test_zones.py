"""Zone repository and replica against a real etcd: one txn per change, serials, generations."""

from __future__ import annotations

import asyncio

import dns.name
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from node.errors import Conflict, EtcdUnavailable, NotFound, Refused, ValidationError
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.model import RecordChange, ZoneSnapshot
from node.zones.replica import Replica
from node.zones.repository import ZoneRepository
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("example.test.")


def rr(owner: str, ttl: int, rdtype: str, *rdata: str) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(dns.name.from_text(owner, Z), ttl, "IN", rdtype, list(rdata))


def zone_text(n: int, tag: str) -> str:
    lines = [
        "$ORIGIN example.test.",
        "@ 3600 IN SOA ns1 hostmaster 7 3600 600 604800 300",
        "@ 3600 IN NS ns1",
        "ns1 300 IN A 192.0.2.1",
    ]
    lines += [f"h{i} 300 IN TXT \"{tag}\"" for i in range(n)]
    return "\n".join(lines) + "\n"


@pytest.fixture
async def env(etcd_client: EtcdClient, key_prefix: str):  # type: ignore[no-untyped-def]
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    seen: list[ZoneSnapshot] = []
    removed: list[dns.name.Name] = []
    replica = Replica(etcd_client, layout, on_update=seen.append, on_remove=removed.append)
    await replica.load()
    task = asyncio.create_task(replica.run())
    try:
        yield repo, replica, seen, removed, layout
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_create_change_and_replicate(env) -> None:  # type: ignore[no-untyped-def]
    repo, replica, seen, _, _ = env
    info = await repo.create_zone(Z, ns=(dns.name.from_text("ns1.example.test."),))
    assert info.serial == 1
    serial = (await repo.add_records(Z, rr("www", 300, "A", "192.0.2.80"))).serial
    assert serial == 2
    serial = (await repo.add_records(Z, rr("www", 600, "A", "192.0.2.81"))).serial
    assert serial == 3
    await async_wait_until(lambda: (s := replica.snapshot(Z)) is not None and s.serial == 3, 5)
    snap = replica.snapshot(Z)
    www = snap.get(dns.name.from_text("www.example.test."), dns.rdatatype.A)
    assert {r.to_text() for r in www} == {"192.0.2.80", "192.0.2.81"} and www.ttl == 600
    assert snap.soa()[0].serial == 3
    # incremental versions say what changed (the SOA's owner always, plus the record's owner)
    assert seen[-1].changed == frozenset({Z, dns.name.from_text("www.example.test.")})
    serial = await repo.delete_records(Z, dns.name.from_text("www.example.test."),
                                       dns.rdatatype.A, rr("www", 300, "A", "192.0.2.80"))
    assert serial == 4
    await async_wait_until(lambda: replica.snapshot(Z).serial == 4, 5)
    www = replica.snapshot(Z).get(dns.name.from_text("www.example.test."), dns.rdatatype.A)
    assert [r.to_text() for r in www] == ["192.0.2.81"]
    info = await repo.get_zone(Z)
    assert info.serial == 4 and info.rrset_count == 3  # SOA, NS, www A


async def test_adding_what_is_there_writes_nothing(env, etcd_client: EtcdClient) -> None:  # type: ignore[no-untyped-def]
    # fails on main: the add bumped the serial (an empty IXFR step, a re-sign for nothing)
    repo, _, _, _, layout = env
    await repo.create_zone(Z)
    added = await repo.add_records(Z, rr("www", 300, "A", "192.0.2.80", "192.0.2.81"))
    assert added.changed
    head = await etcd_client.get(layout.head_key(Z))
    again = await repo.add_records(Z, rr("www", 300, "A", "192.0.2.81"))
    assert again == RecordChange(added.serial, changed=False)
    same = await repo.replace_rrset(Z, rr("www", 300, "A", "192.0.2.81", "192.0.2.80"))
    assert same == RecordChange(added.serial, changed=False)
    after = await etcd_client.get(layout.head_key(Z))
    assert after is not None and head is not None and after.mod_revision == head.mod_revision
    # another TTL is a change: the RRset takes it, as an RFC 2136 add does
    ttl = await repo.add_records(Z, rr("www", 600, "A", "192.0.2.80"))
    assert ttl == RecordChange(added.serial + 1)
    listed = await repo.list_records(Z, dns.name.from_text("www", Z), dns.rdatatype.A)
    assert listed[0].ttl == 600 and len(listed[0]) == 2
    # deleting what is not there already says so (NotFound) and bumps nothing
    with pytest.raises(NotFound):
        await repo.delete_records(Z, dns.name.from_text("www", Z), dns.rdatatype.A,
                                  rr("www", 0, "A", "192.0.2.99"))
    assert (await repo.get_zone(Z)).serial == added.serial + 1


async def test_reloading_an_etcd_zone_says_an(env) -> None:  # type: ignore[no-untyped-def]
    repo, _, _, _, _ = env  # main said "is a etcd zone"
    await repo.create_zone(Z)
    with pytest.raises(Refused, match="is an etcd zone: only a file-backed zone is reloaded"):
        await repo.files.reload(Z)


async def test_rules_refuse_bad_changes_and_change_nothing(env) -> None:  # type: ignore[no-untyped-def]
    repo, _, _, _, _ = env
    await repo.create_zone(Z)
    await repo.add_records(Z, rr("alias", 300, "CNAME", "www"))
    before = (await repo.get_zone(Z)).serial
    bad = [
        lambda: repo.add_records(Z, rr("alias", 300, "A", "192.0.2.1")),
        lambda: repo.add_records(Z, rr("@", 300, "CNAME", "www")),
        lambda: repo.add_records(Z, rr("x", 300, "SOA", "a. b. 1 2 3 4 5")),
        lambda: repo.add_records(Z, rr("x", 300, "NSEC", "y A")),
        lambda: repo.delete_records(Z, Z, dns.rdatatype.SOA),
        lambda: repo.add_records(
            Z, dns.rrset.from_text("www.other.test.", 300, "IN", "A", "192.0.2.1")),
    ]
    for call in bad:
        with pytest.raises(ValidationError):
            await call()
    with pytest.raises(NotFound):
        await repo.delete_records(Z, dns.name.from_text("nope.example.test."), dns.rdatatype.A)
    with pytest.raises(Conflict):
        await repo.create_zone(Z)
    with pytest.raises(NotFound):
        await repo.add_records(dns.name.from_text("absent.test."),
                               rr("www.absent.test.", 1, "A", "192.0.2.1"))
    assert (await repo.get_zone(Z)).serial == before


async def test_concurrent_writers_lose_nothing(env, etcd) -> None:  # type: ignore[no-untyped-def]
    repo, replica, _, _, layout = env
    await repo.create_zone(Z)
    start = (await repo.get_zone(Z)).serial
    clients = [EtcdClient([etcd.endpoint], timeout=5.0) for _ in range(3)]
    for c in clients:
        await c.connect()
    try:
        repos = [ZoneRepository(c, layout) for c in clients]

        async def writer(i: int, r: ZoneRepository) -> None:
            for j in range(60):
                await r.add_records(Z, rr(f"w{i}-{j}", 300, "A", f"192.0.2.{j + 1}"))

        await asyncio.gather(*(writer(i, r) for i, r in enumerate(repos)))
    finally:
        for c in clients:
            await c.close()
    info = await repo.get_zone(Z)
    assert info.serial == start + 180
    assert info.rrset_count == 2 + 180
    await async_wait_until(lambda: replica.snapshot(Z).serial == start + 180, 10)
    assert len(replica.snapshot(Z).nodes) == 1 + 180


async def test_import_is_atomic_for_replicas(env) -> None:  # type: ignore[no-untyped-def]
    repo, replica, seen, _, _ = env
    await repo.create_zone(Z, text=zone_text(400, "old"))
    await async_wait_until(lambda: replica.snapshot(Z) is not None, 5)
    old_serial = replica.snapshot(Z).serial
    assert old_serial == 7  # a new zone keeps its file's serial
    seen.clear()
    info = await repo.import_zone(Z, zone_text(300, "new"))
    assert info.serial == 8 and info.rrset_count == 3 + 300
    await async_wait_until(lambda: replica.snapshot(Z).serial == 8, 10)
    for snap in seen:  # every version a replica published is one whole zone
        tags = {
            rrset[0].strings[0]
            for rrset in snap.rrsets()
            if rrset.rdtype == dns.rdatatype.TXT
        }
        assert tags in ({b"old"}, {b"new"})
        assert len(snap.nodes) in (2 + 400, 2 + 300)
    assert len(replica.snapshot(Z).nodes) == 2 + 300
    text = await repo.export_zone(Z)
    exported = dns.zone.from_text(text, origin=Z, relativize=False)
    assert exported.get_rdataset("h299.example.test.", "TXT") is not None
    assert exported.get_rdataset("h300.example.test.", "TXT") is None


async def test_delete_zone_removes_it_from_replicas(env) -> None:  # type: ignore[no-untyped-def]
    repo, replica, _, removed, _ = env
    await repo.create_zone(Z)
    await async_wait_until(lambda: replica.snapshot(Z) is not None, 5)
    await repo.delete_zone(Z)
    await async_wait_until(lambda: replica.snapshot(Z) is None, 5)
    assert removed == [Z]
    assert await repo.list_zones() == []
    with pytest.raises(NotFound):
        await repo.delete_zone(Z)


async def test_load_after_the_fact_matches(env, etcd_client: EtcdClient) -> None:  # type: ignore[no-untyped-def]
    repo, replica, _, _, layout = env
    await repo.create_zone(Z, text=zone_text(50, "x"))
    await repo.add_records(Z, rr("late", 300, "A", "192.0.2.9"))
    fresh = Replica(etcd_client, layout)
    await fresh.load()
    await async_wait_until(lambda: replica.snapshot(Z) is not None
                           and replica.snapshot(Z).serial == fresh.snapshot(Z).serial, 5)
    a, b = replica.snapshot(Z), fresh.snapshot(Z)
    assert {k: dict(v) for k, v in a.nodes.items()} == {k: dict(v) for k, v in b.nodes.items()}


async def test_an_import_batch_without_an_answer_is_written_again(
    etcd: object, etcd_client: EtcdClient, key_prefix: str
) -> None:
    """A batch of a new generation whose txn got no answer (a loaded etcd past the
    deadline: the write may or may not be applied) is sent again: writing the same keys
    into a generation nobody reads yet is idempotent. It failed the whole 1M-name import."""

    class LosesAnswers(EtcdClient):
        lost = 0

        async def txn(self, when, then, otherwise=()):  # type: ignore[no-untyped-def]
            result = await super().txn(when, then, otherwise)
            if len(then) > 50 and self.lost < 2:  # a data batch: applied, answer lost
                self.lost += 1
                raise EtcdUnavailable("etcd Txn: no answer within the deadline (test)")
            return result

    client = LosesAnswers(etcd_client.endpoints, timeout=2.0)
    await client.connect()
    try:
        repo = ZoneRepository(client, KeyLayout(key_prefix))
        info = await repo.import_zone(Z, zone_text(300, "x"))
        assert client.lost == 2
        assert info.rrset_count == 3 + 300
        snap = await repo.snapshot(Z)
        assert len(snap.nodes) == 2 + 300
    finally:
        await client.close()
