"""A generation write leaves no reference cycle behind (`node.zones.bulk.BulkWriter.write`).

Its batch writer refers to itself (a refused batch is written again in smaller
ones), and its closure holds the import's records and progress callback: as a
cycle, they were freed only by a later collection, and a `gc.freeze()` in between
(`node.gcwatch`: after a long full collection, each decode part of the replica,
each image build) kept them for good. The bench zone (100k names) lost ~29 MiB
per import this way (bench/RESULTS.md, issue 10, session 13, repeated imports)."""

from __future__ import annotations

import gc
import weakref

import dns.name
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.bulk import BulkWriter

pytestmark = pytest.mark.integration

Z = dns.name.from_text("nocycle.test.")


class _Records(list[tuple[str, bytes]]):
    """A list one can hold a weak reference to."""


async def test_the_records_are_freed_when_the_write_returns(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    writer = BulkWriter(etcd_client, KeyLayout(key_prefix), None)
    records = _Records((f"h{i:04d}/A", b'{"ttl":300,"rdata":["192.0.2.1"]}')
                       for i in range(500))
    gone = weakref.ref(records)
    seen: list[int] = []
    enabled = gc.isenabled()
    gc.disable()  # only reference counting frees them: no collection may hide a cycle
    try:
        await writer.write(Z, 3, records, lambda stage, done, total: seen.append(done))
        del records
        assert gone() is None, "the records outlived the write (a reference cycle)"
    finally:
        if enabled:
            gc.enable()
    assert seen[-1] == 500
