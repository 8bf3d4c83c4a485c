"""A generation write that etcd refuses half-way (`node.zones.bulk`, `ZoneRepository`): the
writer's other batches stop with it, and the import or create leaves no keys of the
generation it never activated (real etcd that takes requests of at most 64 KiB: a batch of
large values is refused as too large, not for its number of operations)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import dns.name
import pytest

from node.errors import ValidationError
from node.events import Event
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.bulk import BulkWriter
from node.zones.bulkstream import streamed
from node.zones.imports import ImportJobs
from node.zones.repository import ZoneRepository
from tests.support.etcd import private_client

pytestmark = pytest.mark.integration

Z = dns.name.from_text("refused.test.")
HEAD = ("@ 300 IN SOA ns1 hostmaster 7 3600 600 604800 300\n@ 300 IN NS ns1\n"
        "ns1 300 IN A 192.0.2.1\n")


@pytest.fixture
async def small_requests() -> AsyncIterator[EtcdClient]:
    """A client of a private etcd that takes requests of at most 64 KiB."""
    async with private_client("smallreq", "--max-request-bytes", "65536") as client:
        yield client


def _records(large: int, small: int) -> list[tuple[str, bytes]]:
    """`large` records of 2 KB (100 of them make a batch etcd refuses), then `small` ones."""
    out = [(f"l{i:05d}/TXT", b'{"ttl": 300, "rdata": ["\\"%s\\""]}' % (b"x" * 2000))
           for i in range(large)]
    return out + [(f"s{i:05d}/A", b'{"ttl": 300, "rdata": ["192.0.2.1"]}') for i in range(small)]


def _text() -> str:
    """A zone whose small records come first, then 300 RRsets of 2 KB: the batches of the
    large ones are refused after some of the small ones were written."""
    big = " ".join(f'"{"x" * 200}"' for _ in range(10))
    return HEAD + "".join(f"s{i} 300 IN A 192.0.2.1\n" for i in range(2000)) + "".join(
        f"z{i} 300 IN TXT {big}\n" for i in range(300))


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


async def test_a_failed_import_leaves_no_keys_of_its_generation(
        small_requests: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(small_requests, layout)
    await repo.create_zone(Z, text=HEAD)
    live, _ = await small_requests.range_all(layout.data_root(Z))
    text = _text()
    with pytest.raises(ValidationError, match="too large"):
        await repo.import_zone(Z, text)
    after, _ = await small_requests.range_all(layout.data_root(Z))
    assert len(after) == len(live), f"{len(after) - len(live)} keys of the failed import left"
    assert (await repo.get_zone(Z)).serial == 7


async def test_a_failed_create_leaves_no_keys_of_its_generation(
        small_requests: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(small_requests, layout)
    text = _text()
    with pytest.raises(ValidationError, match="too large"):
        await repo.create_zone(Z, text=text)
    left, _ = await small_requests.range_all(layout.data_root(Z))
    assert not left, f"{len(left)} keys of the failed create left"


async def test_a_failed_import_in_pieces_says_it_failed_writing(
        small_requests: EtcdClient, key_prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    """Read in pieces, the import's batches of large records are refused, the first while
    later pieces may still be read: IMPORT_FAILED names the stage "writing", not "parsing"."""
    caplog.set_level(logging.INFO, logger="node.events")
    repo = ZoneRepository(small_requests, KeyLayout(key_prefix))
    await repo.create_zone(Z, text=HEAD)
    repo.bulk.piece_chars = 60_000  # about 25 large RRsets a piece: each piece's batch refused
    text = _text()
    assert streamed(repo.bulk, text)
    with pytest.raises(ValidationError, match="too large"):
        await ImportJobs(repo).run(Z, text, create=False)
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "node.events"]
    failed = [e for e in events if e["event"] == Event.IMPORT_FAILED]
    assert [e["stage"] for e in failed] == ["writing"], failed
