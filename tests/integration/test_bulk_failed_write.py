"""A generation write that etcd refuses half-way (`node.zones.bulk`, `ZoneRepository`): the
writer's other batches stop with it, and the import or create leaves no keys of the
generation it never activated (real etcd that takes requests of at most 64 KiB: a batch of
large values is refused as too large, not for its number of operations)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import dns.name
import pytest

from node.errors import ValidationError
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.bulk import BulkWriter
from tests.support.etcd import EtcdProcess

pytestmark = pytest.mark.integration

Z = dns.name.from_text("refused.test.")
HEAD = ("@ 300 IN SOA ns1 hostmaster 7 3600 600 604800 300\n@ 300 IN NS ns1\n"
        "ns1 300 IN A 192.0.2.1\n")


@pytest.fixture
async def small_requests() -> AsyncIterator[EtcdClient]:
    """A client of a private etcd that takes requests of at most 64 KiB."""
    proc = EtcdProcess("smallreq", extra_args=("--max-request-bytes", "65536"))
    proc.start()
    client = EtcdClient([proc.endpoint], timeout=10.0)
    try:
        await client.connect()
        yield client
    finally:
        await client.close()
        proc.close()


def _records(large: int, small: int) -> list[tuple[str, bytes]]:
    """`large` records of 2 KB (100 of them make a batch etcd refuses), then `small` ones."""
    out = [(f"l{i:05d}/TXT", b'{"ttl": 300, "rdata": ["\\"%s\\""]}' % (b"x" * 2000))
           for i in range(large)]
    return out + [(f"s{i:05d}/A", b'{"ttl": 300, "rdata": ["192.0.2.1"]}') for i in range(small)]


async def test_a_refused_batch_stops_the_others(
        small_requests: EtcdClient, key_prefix: str) -> None:
    """No batch of a failed write goes on being sent after the error is raised (it would
    land after the caller has deleted what was written, or answered the client)."""
    writer = BulkWriter(small_requests, KeyLayout(key_prefix), None)
    with pytest.raises(ValidationError, match="too large"):
        await writer.write(Z, 5, _records(100, 2000))
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not left, f"{len(left)} write tasks still running after the write failed"

