"""Watch against a real etcd: whole revisions per batch, fragments, resume across
restarts and pauses with no lost or duplicated event, compaction, progress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from node.store.client import Compacted, EtcdClient
from node.store.txn import Op
from node.store.watch import Watch, WatchBatch
from tests.support.etcd import EtcdProcess
from tests.support.wait import async_wait_until


class Collector:
    """Consumes a watch in a background task; records batches or the error."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.batches: list[WatchBatch] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for batch in self.watch:
                self.batches.append(batch)
        except Exception as exc:
            self.error = exc

    @property
    def revisions(self) -> list[int]:
        return [b.revision for b in self.batches]

    @property
    def keys(self) -> list[bytes]:
        return [e.kv.key for b in self.batches for e in b.events]

    async def wait_for_revision(self, rev: int, timeout: float = 15) -> None:
        await async_wait_until(lambda: self.error or (self.batches and self.revisions[-1] >= rev),
                               timeout, message=f"watch did not deliver revision {rev}")
        if self.error:
            raise self.error

    async def stop(self) -> None:
        await self.watch.close()
        await asyncio.wait_for(self.task, 5)


@pytest.fixture
async def private_client(private_etcd: EtcdProcess) -> AsyncIterator[EtcdClient]:
    client = EtcdClient([private_etcd.endpoint], timeout=1.0)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


async def test_txn_events_arrive_in_one_batch(etcd_client: EtcdClient, key_prefix: str) -> None:
    start = await etcd_client.put(key_prefix + "pre", "0")
    c = Collector(etcd_client.watch(key_prefix, start + 1, prev_kv=True))
    try:
        t = await etcd_client.txn([], [Op.put(f"{key_prefix}t{i}", str(i)) for i in range(6)]
                                  + [Op.delete(key_prefix + "pre")])
        solo = await etcd_client.put(key_prefix + "t0", "again")
        await etcd_client.put("/elsewhere-" + key_prefix, "not watched")
        await c.wait_for_revision(solo)
        assert c.revisions == [t.revision, solo]
        first = c.batches[0]
        assert len(first.events) == 7
        assert {e.type for e in first.events} == {"put", "delete"}
        deleted = next(e for e in first.events if e.type == "delete")
        assert deleted.kv.key == (key_prefix + "pre").encode()
        assert deleted.prev_kv is not None and deleted.prev_kv.value == b"0"
        second = c.batches[1].events[0]
        assert second.prev_kv is not None and second.prev_kv.value == b"0"
        assert second.kv.value == b"again"
        assert c.watch.revision == solo
    finally:
        await c.stop()


async def test_fragmented_revision_is_reassembled() -> None:
    # etcd fragments a response above max-request-bytes + 512 KiB of gRPC overhead:
    # one delete of 80 keys with 10 kB values (as prev_kv) is ~800 kB in one revision
    with EtcdProcess("frag", extra_args=("--max-request-bytes", "16384")) as proc:
        client = EtcdClient([proc.endpoint], timeout=2.0)
        try:
            for i in range(80):
                rev = await client.put(f"/f/{i:03d}", b"x" * 10_000)
            c = Collector(client.watch("/f/", rev + 1, prev_kv=True))
            # the watch is created before the delete: wait until it is registered
            await async_wait_until(lambda: c.watch.streams_opened >= 1, 5)
            deleted_at = (await client.txn([], [Op.delete("/f/", prefix=True)])).revision
            await c.wait_for_revision(deleted_at)
            assert c.revisions == [deleted_at]
            assert len(c.batches[0].events) == 80
            assert all(e.prev_kv is not None for e in c.batches[0].events)
            assert c.watch.fragments_received >= 1
            await c.stop()
        finally:
            await client.close()


async def test_watch_resumes_across_etcd_restart_without_loss_or_duplicates(
    private_etcd: EtcdProcess, private_client: EtcdClient
) -> None:
    client = private_client
    written: list[int] = []
    written.append(await client.put("/w/k0", "0"))
    c = Collector(client.watch("/w/", written[0]))
    try:
        for i in range(1, 8):
            written.append(await client.put(f"/w/k{i}", str(i)))
        await c.wait_for_revision(written[3])
        private_etcd.kill()  # a crash: the stream breaks with events possibly unread
        private_etcd.start()
        for i in range(8, 14):
            written.append(await client.put(f"/w/k{i}", str(i)))
        written.append((await client.txn([], [Op.put("/w/a", "a"), Op.put("/w/b", "b")])).revision)
        await c.wait_for_revision(written[-1])
        assert c.revisions == written  # exact: nothing lost, nothing twice, in order
        assert c.keys == [f"/w/k{i}".encode() for i in range(14)] + [b"/w/a", b"/w/b"]
        assert c.watch.streams_opened >= 2
    finally:
        await c.stop()


async def test_watch_detects_paused_etcd_and_resumes(
    private_etcd: EtcdProcess, private_client: EtcdClient
) -> None:
    client = private_client
    start = await client.put("/z/0", "0")
    watch = client.watch("/z/", start)
    watch.probe_after, watch.dead_after = 0.2, 0.3
    c = Collector(watch)
    try:
        await c.wait_for_revision(start)
        opened = watch.streams_opened
        private_etcd.pause()
        try:
            # the silent stream is declared dead and reopening is attempted while paused
            await async_wait_until(lambda: watch._call is None or watch.streams_opened > opened,
                                   10, message="dead stream not detected")
        finally:
            private_etcd.resume()
        after = await client.put("/z/1", "1")
        await c.wait_for_revision(after)
        assert c.revisions == [start, after]
        assert watch.streams_opened > opened
    finally:
        await c.stop()


async def test_compacted_start_revision_raises_compacted(private_client: EtcdClient) -> None:
    client = private_client
    first = await client.put("/cw/k", "1")
    await client.put("/cw/k", "2")
    last = await client.put("/cw/k", "3")
    await client.compact(last)
    watch = client.watch("/cw/", first)
    with pytest.raises(Compacted) as info:
        await asyncio.wait_for(anext(aiter(watch)), 10)
    assert info.value.compact_revision == last
    with pytest.raises(StopAsyncIteration):
        await anext(aiter(watch))


async def test_compaction_while_disconnected_raises_compacted(
    private_etcd: EtcdProcess, private_client: EtcdClient
) -> None:
    client = private_client
    first = await client.put("/cd/k", "1")
    watch = client.watch("/cd/", first)
    it = aiter(watch)
    assert (await asyncio.wait_for(anext(it), 10)).revision == first
    # nobody iterates, so the watch cannot resume before the history is compacted
    private_etcd.stop()
    private_etcd.start()
    await client.put("/cd/k", "2")
    last = await client.put("/cd/other", "x")
    await client.compact(last)
    with pytest.raises(Compacted) as info:
        await asyncio.wait_for(anext(it), 15)
    assert info.value.compact_revision == last
    assert watch.revision == first


async def test_progress_probes_keep_an_idle_watch_without_skipping(
    etcd_client: EtcdClient, key_prefix: str
) -> None:
    start = await etcd_client.put(key_prefix + "idle", "0")
    watch = etcd_client.watch(key_prefix + "idle/", start + 1)
    watch.probe_after = 0.1
    c = Collector(watch)
    try:
        await etcd_client.put(key_prefix + "busy", "1")
        # several probe rounds on a silent stream: it stays open and never moves past
        # what it delivered (a requested progress answer may overtake events)
        await async_wait_until(lambda: watch.streams_opened >= 1, 5)
        opened = watch.streams_opened
        await asyncio.sleep(0.5)  # the silence is the behaviour under test
        assert watch.streams_opened == opened
        assert watch.revision == start
        assert c.batches == []
        mine = await etcd_client.put(key_prefix + "idle/x", "1")
        await c.wait_for_revision(mine)
        assert c.revisions == [mine]
    finally:
        await c.stop()


async def test_close_ends_iteration(etcd_client: EtcdClient, key_prefix: str) -> None:
    rev = await etcd_client.put(key_prefix + "c", "0")
    c = Collector(etcd_client.watch(key_prefix, rev + 1))
    await async_wait_until(lambda: c.watch.streams_opened >= 1, 5)
    await c.stop()
    assert c.task.done() and c.error is None


async def test_close_of_a_watch_whose_consumer_fell_behind(
    etcd_client: EtcdClient, key_prefix: str
) -> None:
    """A watch nobody reads fills its stream queue (64 responses); closing it then must end
    it, not raise `QueueFull` (seen in a bench's teardown)."""
    rev = await etcd_client.put(key_prefix + "c", "0")
    watch = etcd_client.watch(key_prefix, rev)
    first = await asyncio.wait_for(watch.__anext__(), 10)  # the stream is open
    assert first.revision == rev
    for i in range(150):  # one revision, one response each: more than the queue holds
        await etcd_client.put(f"{key_prefix}k{i}", str(i))
    await async_wait_until(lambda: watch._queue.full(), 15)
    await watch.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(watch.__anext__(), 10)
