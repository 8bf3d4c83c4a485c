"""EtcdClient against a real etcd: KV, paged reads pinned to one revision, txns,
leases, and behaviour while etcd is down or paused."""

from __future__ import annotations

import asyncio
import threading

import pytest

from node.errors import EtcdUnavailable, NotFound
from node.store import client as client_module
from node.store.client import Compacted, EtcdClient, RangeResult
from node.store.txn import Compare, Op
from tests.support.etcd import EtcdProcess
from tests.support.wait import async_wait_until


async def test_put_get_delete(etcd_client: EtcdClient, key_prefix: str) -> None:
    key = key_prefix + "a"
    rev = await etcd_client.put(key, "one")
    kv = await etcd_client.get(key)
    assert kv is not None
    assert (kv.key, kv.value, kv.mod_revision, kv.create_revision, kv.version) == (
        key.encode(), b"one", rev, rev, 1)
    rev2 = await etcd_client.put(key, b"two")
    kv2 = await etcd_client.get(key)
    assert kv2 is not None and kv2.value == b"two" and kv2.mod_revision == rev2 > rev
    assert kv2.version == 2 and kv2.create_revision == rev
    assert await etcd_client.delete(key) == 1
    assert await etcd_client.get(key) is None
    assert await etcd_client.delete(key) == 0


async def test_range_prefix_limit_count_keys_only(etcd_client: EtcdClient, key_prefix: str) -> None:
    for i in range(5):
        await etcd_client.put(f"{key_prefix}r/{i}", f"v{i}")
    await etcd_client.put(key_prefix + "s", "outside")
    full = await etcd_client.range(key_prefix + "r/", prefix=True)
    assert [kv.value for kv in full.kvs] == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    assert full.count == 5 and not full.more
    page = await etcd_client.range(key_prefix + "r/", prefix=True, limit=2)
    assert len(page.kvs) == 2 and page.more and page.count == 5
    keys = await etcd_client.range(key_prefix + "r/", prefix=True, keys_only=True)
    assert all(kv.value == b"" for kv in keys.kvs) and len(keys.kvs) == 5
    counted = await etcd_client.range(key_prefix + "r/", prefix=True, count_only=True)
    assert counted.kvs == () and counted.count == 5
    explicit = await etcd_client.range(key_prefix + "r/1", key_prefix + "r/3")
    assert [kv.value for kv in explicit.kvs] == [b"v1", b"v2"]
    old = await etcd_client.range(key_prefix + "r/", prefix=True, revision=full.kvs[0].mod_revision)
    assert [kv.value for kv in old.kvs] == [b"v0"]
    assert await etcd_client.delete(key_prefix, prefix=True) == 6


async def test_range_all_pages_at_one_revision(etcd: EtcdProcess, key_prefix: str) -> None:
    late_key = key_prefix + "zz-late"

    class WritesBetweenPages(EtcdClient):
        """Changes the prefix right after the first page was read."""

        pages = 0

        async def range(self, *args: object, **kwargs: object) -> RangeResult:  # type: ignore[override]
            result = await super().range(*args, **kwargs)  # type: ignore[arg-type]
            self.pages += 1
            if self.pages == 1:
                await self.put(late_key, "late")
                await self.put(key_prefix + "k24", "changed")
                await self.delete(key_prefix + "k12")
            return result

    client = WritesBetweenPages([etcd.endpoint], timeout=2.0)
    await client.connect()
    try:
        for i in range(25):
            await client.put(f"{key_prefix}k{i:02d}", f"v{i}")
        kvs, revision = await client.range_all(key_prefix, page=10)
        assert client.pages == 3
        assert [kv.key.decode() for kv in kvs] == [f"{key_prefix}k{i:02d}" for i in range(25)]
        assert kvs[24].value == b"v24" and kvs[12].value == b"v12"
        assert max(kv.mod_revision for kv in kvs) == revision
        now, _ = await client.range_all(key_prefix, page=10)
        assert late_key.encode() in [kv.key for kv in now]
    finally:
        await client.close()


async def test_txn_success_and_failure_on_mod_revision(
    etcd_client: EtcdClient, key_prefix: str
) -> None:
    role, data = key_prefix + "role", key_prefix + "data"
    token = await etcd_client.put(role, "holder-a")
    ok = await etcd_client.txn(
        [Compare.mod_revision(role) == token],
        [Op.put(data, "x"), Op.get(role), Op.delete(key_prefix + "absent")],
        [Op.get(role)],
    )
    assert ok.succeeded and ok.revision > token
    assert ok.responses[0] == ok.revision
    got = ok.responses[1]
    assert isinstance(got, RangeResult) and got.kvs[0].value == b"holder-a"
    assert ok.responses[2] == 0

    await etcd_client.put(role, "holder-b")  # the role changes hands: token is stale
    stale = await etcd_client.txn(
        [Compare.mod_revision(role) == token], [Op.put(data, "y")], [Op.get(role)]
    )
    assert not stale.succeeded
    assert isinstance(stale.responses[0], RangeResult)
    assert stale.responses[0].kvs[0].value == b"holder-b"
    kv = await etcd_client.get(data)
    assert kv is not None and kv.value == b"x"

    created = await etcd_client.txn([Compare.version(key_prefix + "new") == 0],
                                    [Op.put(key_prefix + "new", "1")])
    again = await etcd_client.txn([Compare.version(key_prefix + "new") == 0],
                                  [Op.put(key_prefix + "new", "2")])
    assert created.succeeded and not again.succeeded


async def test_no_key_compares_a_whole_range(etcd_client: EtcdClient, key_prefix: str) -> None:
    """`Compare.no_key(start, end)`: true while no key is in [start, end), whatever lies
    around it (the sweep deletes a zone's mark on it)."""
    start, end = key_prefix + "r/b", key_prefix + "r/d"
    await etcd_client.put(key_prefix + "r/a", "below")
    await etcd_client.put(key_prefix + "r/d", "at the end: outside")
    assert (await etcd_client.txn([Compare.no_key(start, end)], [])).succeeded
    await etcd_client.put(key_prefix + "r/c/1", "inside")
    assert not (await etcd_client.txn([Compare.no_key(start, end)], [])).succeeded
    await etcd_client.delete(key_prefix + "r/c/1")
    assert (await etcd_client.txn([Compare.no_key(start, end)], [])).succeeded


async def test_leases(etcd_client: EtcdClient, key_prefix: str) -> None:
    lease, ttl = await etcd_client.lease_grant(30)
    assert lease > 0 and ttl == 30
    await etcd_client.put(key_prefix + "leased", "x", lease=lease)
    kv = await etcd_client.get(key_prefix + "leased")
    assert kv is not None and kv.lease == lease
    assert 0 < await etcd_client.lease_ttl(lease) <= 30
    assert await etcd_client.lease_keepalive_once(lease) == 30
    await etcd_client.lease_revoke(lease)
    assert await etcd_client.get(key_prefix + "leased") is None
    assert await etcd_client.lease_ttl(lease) == -1
    assert await etcd_client.lease_keepalive_once(lease) == 0
    await etcd_client.lease_revoke(lease)  # already gone: not an error
    with pytest.raises(NotFound):
        await etcd_client.put(key_prefix + "x", "y", lease=lease)


async def test_range_at_compacted_revision_raises_compacted(private_etcd: EtcdProcess) -> None:
    client = EtcdClient([private_etcd.endpoint], timeout=2.0)
    try:
        first = await client.put("/c/k", "1")
        last = await client.put("/c/k", "2")
        await client.compact(last)
        await client.compact(last)  # idempotent
        with pytest.raises(Compacted):
            await client.range("/c/k", revision=first)
    finally:
        await client.close()


async def test_calls_fail_within_deadline_while_etcd_down_then_recover(
    private_etcd: EtcdProcess,
) -> None:
    client = EtcdClient([private_etcd.endpoint], timeout=1.0)
    await client.connect()
    try:
        await client.put("/d/k", "before")
        private_etcd.stop()
        # wait_for guards against a hang: EtcdUnavailable must come from the client's deadline
        with pytest.raises(EtcdUnavailable, match=private_etcd.endpoint):
            await asyncio.wait_for(client.get("/d/k"), 10)
        with pytest.raises(EtcdUnavailable):
            await asyncio.wait_for(client.put("/d/k", "during"), 10)
        with pytest.raises(EtcdUnavailable):
            await asyncio.wait_for(client.txn([], [Op.put("/d/k", "during")]), 10)
        private_etcd.start()

        async def readable() -> bool:
            try:
                return (await client.get("/d/k")) is not None
            except EtcdUnavailable:
                return False

        await async_wait_until(readable, 15, interval=0.1, message="client did not recover")
        kv = await client.get("/d/k")
        assert kv is not None and kv.value == b"before"
        assert await client.put("/d/k", "after") > kv.mod_revision
    finally:
        await client.close()


async def test_calls_fail_within_deadline_while_etcd_paused(private_etcd: EtcdProcess) -> None:
    client = EtcdClient([private_etcd.endpoint], timeout=0.5)
    try:
        await client.put("/p/k", "v")
        private_etcd.pause()
        try:
            with pytest.raises(EtcdUnavailable):
                await asyncio.wait_for(client.get("/p/k"), 10)
            with pytest.raises(EtcdUnavailable, match="may or may not"):
                await asyncio.wait_for(client.put("/p/k", "w"), 10)
        finally:
            private_etcd.resume()
        kv = await client.get("/p/k")  # answers again once etcd runs
        assert kv is not None and kv.value in (b"v", b"w")
    finally:
        await client.close()


async def test_second_endpoint_is_used_when_first_is_down(etcd: EtcdProcess) -> None:
    dead = EtcdProcess("dead")  # ports chosen, never started
    try:
        client = EtcdClient([dead.endpoint, etcd.endpoint], timeout=2.0)
        try:
            assert await client.get("/nothing-here") is None
            assert await client.put("/rotation-test", "x") > 0  # not sent to the dead one
            await client.delete("/rotation-test")
        finally:
            await client.close()
    finally:
        dead.close()


async def test_range_all_of_a_large_range_walks_each_key_a_bounded_number_of_times(
    etcd: EtcdProcess, key_prefix: str
) -> None:
    """etcd 3.4 walks its index from a read's start to its range end for every limited
    read (`count`): paging N keys by start key alone walks N²/(2·page) keys, which made
    a 1M-name zone unreadable. range_all splits a large range by a keys-only pass and
    reads bounded sub-ranges instead; `count` of each reply is what etcd walked. Writes
    between the reads change nothing at the pinned revision: no key twice, none missing."""
    n, page = 3000, 50

    class Recording(EtcdClient):
        walked = 0
        reads = 0

        async def range(self, *args: object, **kwargs: object) -> RangeResult:  # type: ignore[override]
            result = await super().range(*args, **kwargs)  # type: ignore[arg-type]
            self.walked += result.count
            self.reads += 1
            if self.reads == 3:  # in the middle: another writer changes the range
                await self.put(key_prefix + "k0000x-late", "late")
                await self.put(key_prefix + "k2999", "changed")
                await self.delete(key_prefix + "k1500")
            return result

    client = Recording([etcd.endpoint], timeout=10.0)
    await client.connect()
    try:
        for start in range(0, n, 100):
            await client.txn([], [Op.put(f"{key_prefix}k{i:04d}", f"v{i}")
                                  for i in range(start, start + 100)])
        kvs, revision = await client.range_all(key_prefix, page=page)
        assert [kv.key.decode() for kv in kvs] == [f"{key_prefix}k{i:04d}" for i in range(n)]
        assert kvs[1500].value == b"v1500" and kvs[2999].value == b"v2999"
        assert max(kv.mod_revision for kv in kvs) == revision
        assert client.walked <= 5 * n, (client.walked, client.reads)
    finally:
        await client.close()


async def test_a_large_range_is_converted_off_the_event_loop(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """100k key-values took ~0.2 s to convert: on the control loop they held the watch,
    the API and the keep-alives (EVENT_LOOP_STALLED at the start of `zone sign`)."""
    n = client_module.BIG_RANGE + 1
    ops = [Op.put(f"{key_prefix}big/{i:05d}", b"v") for i in range(n)]
    for i in range(0, n, 100):
        await etcd_client.txn([], ops[i:i + 100])
    threads: list[threading.Thread] = []
    convert = RangeResult.from_proto

    def recording(resp: object) -> RangeResult:
        threads.append(threading.current_thread())
        return convert(resp)  # type: ignore[arg-type]

    monkeypatch.setattr(client_module.RangeResult, "from_proto", recording)
    big = await etcd_client.range(key_prefix + "big/", prefix=True, keys_only=True)
    small = await etcd_client.range(key_prefix + "big/", prefix=True, limit=10)
    assert len(big.kvs) == n and big.kvs[-1].key == f"{key_prefix}big/{n - 1:05d}".encode()
    assert len(small.kvs) == 10
    assert threads[0] is not threading.main_thread(), "the large range was converted on the loop"
    assert threads[1] is threading.main_thread()
    await etcd_client.delete(key_prefix, prefix=True)
