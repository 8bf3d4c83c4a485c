"""Batched generation writes against an etcd whose --max-txn-ops is below the writer's batch
(`node.zones.bulk`): the writer tries etcd's default size, then halves, and every record is
written."""

from __future__ import annotations

from collections.abc import AsyncIterator

import dns.name
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones import bulk
from node.zones.bulk import BulkWriter
from tests.support.etcd import private_client

pytestmark = pytest.mark.integration

Z = dns.name.from_text("bulk.test.")


@pytest.fixture
async def low_limit_client() -> AsyncIterator[EtcdClient]:
    """A client of a private etcd that takes at most 24 operations per txn."""
    async with private_client("txnops", "--max-txn-ops", "24") as client:
        yield client


def _records(count: int) -> list[tuple[str, bytes]]:
    return [(f"h{i:05d}/A", b'{"ttl":300,"rdata":["192.0.2.%d"]}' % (i % 250 + 1))
            for i in range(count)]


async def test_a_low_max_txn_ops_is_met_by_smaller_batches(
        low_limit_client: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    writer = BulkWriter(low_limit_client, layout, None)
    records = _records(1000)
    seen: list[int] = []
    await writer.write(Z, 7, records, lambda stage, done, total: seen.append(done))
    assert writer.max_ops <= 24
    kvs, _ = await low_limit_client.range_all(layout.data_prefix(Z, 7))
    prefix = layout.data_prefix(Z, 7).encode()
    assert sorted((kv.key[len(prefix):].decode(), kv.value) for kv in kvs) == records
    assert seen[-1] == len(records)  # progress counts each record once
    # the next import starts at the size that passed: no refusal again
    await writer.write(Z, 8, records[:100])
    assert len((await low_limit_client.range_all(layout.data_prefix(Z, 8)))[0]) == 100


async def test_batches_larger_than_the_old_cap_with_the_default_limit_raised(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session etcd has the default limit (128): the writer's first batch is refused,
    then the import completes."""
    monkeypatch.setattr(bulk, "BATCH_OPS", 1000)
    layout = KeyLayout(key_prefix)
    writer = BulkWriter(etcd_client, layout, None)
    records = _records(3000)
    await writer.write(Z, 9, records)
    assert writer.max_ops == 128
    kvs, _ = await etcd_client.range_all(layout.data_prefix(Z, 9))
    assert len(kvs) == len(records)


async def test_an_etcd_run_as_deploy_runs_it_takes_batches_of_1000_puts(
        key_prefix: str) -> None:
    """deploy/ runs etcd with --max-txn-ops 1000 (docs/large-zones.md): an import's batches
    are 1000 puts each (issue 10: less CPU per put for etcd, the writer and every watcher
    than 100), one revision each, and none is refused."""
    async with private_client("txnops1000", "--max-txn-ops", "1000") as client:
        layout = KeyLayout(key_prefix)
        writer = BulkWriter(client, layout, None)
        writer.in_flight = 1  # one batch after the other: their revisions count the txns
        before = await client.put(layout.gen_key(Z), b"")
        await writer.write(Z, 12, _records(3000))
        after = await client.put(layout.gen_key(Z), b"")
        assert writer.max_ops == 1000
        assert after - before - 1 == 3  # 3000 puts in 3 txns
        assert len((await client.range_all(layout.data_prefix(Z, 12)))[0]) == 3000


async def test_a_generation_is_deleted_in_parts_of_one_revision_each(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No revision carries more than DELETE_KEYS delete events (etcd fragments a large one
    in quadratic time); the neighbouring generation is untouched."""
    monkeypatch.setattr(bulk, "DELETE_KEYS", 100)
    layout = KeyLayout(key_prefix)
    writer = BulkWriter(etcd_client, layout, None)
    await writer.write(Z, 11, _records(950))
    await writer.write(Z, 110, _records(20))  # its prefix shares "11" with the first
    before = await etcd_client.put(layout.gen_key(Z), b"")
    assert await writer.delete(Z, 11) == 950
    after = await etcd_client.put(layout.gen_key(Z), b"")
    assert after - before - 1 == 10  # ceil(950 / 100) delete txns, one revision each
    assert (await etcd_client.range_all(layout.data_prefix(Z, 11)))[0] == []
    assert len((await etcd_client.range_all(layout.data_prefix(Z, 110)))[0]) == 20
    assert await writer.delete(Z, 11) == 0
