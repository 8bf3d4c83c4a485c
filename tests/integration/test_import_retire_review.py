"""Review of s10-load (node/zones/retire.py): the import RPC now blocks after its flip.

The import is applied at the flip; holding its RPC (and its ImportJobs entry) for up to
WAIT_MAX afterwards (a node that is dead but still leased, a stuck or slow node) has
user-visible effects a background deletion (the generation sweep as the safety net:
the zone stays marked `unswept/` until the old generation is gone) would not have:
- a second import of the zone on that node is refused with Conflict meanwhile;
- a zone deleted during the wait still holds the import for the whole WAIT_MAX, and the
  import (applied) then fails with NotFound.
"""

from __future__ import annotations

import asyncio
import json

import dns.name
import pytest

from node.errors import Conflict, NotFound
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones import retire
from node.zones.imports import ImportJobs
from node.zones.repository import ZoneRepository
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("retire-review.test.")


def _text(www: str) -> str:
    return (f"$ORIGIN {Z}\n@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 300\n"
            f"@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\nwww 300 IN A {www}\n")


async def _generation(client: EtcdClient, layout: KeyLayout) -> int:
    kv = await client.get(layout.head_key(Z))
    assert kv is not None
    return int(json.loads(kv.value)["generation"])


async def _stuck_node(client: EtcdClient, layout: KeyLayout, serial: int) -> None:
    """A live node (its lease not expired yet: killed, partitioned, or slow) at `serial`."""
    await client.put(layout.alive_key("stuck"), json.dumps(
        {"ready": True, "served": {Z.to_text(): serial}, "problems": {}}).encode())


async def test_a_second_import_right_after_a_first_one_is_not_refused(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retire, "WAIT_MAX", 5.0)
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    jobs = ImportJobs(repo)
    info = await jobs.run(Z, _text("192.0.2.10"), create=True)
    await _stuck_node(etcd_client, layout, info.serial)
    before = await _generation(etcd_client, layout)
    first = asyncio.create_task(jobs.run(Z, _text("192.0.2.20"), create=True))
    await async_wait_until(lambda: _flipped(etcd_client, layout, before), 30)
    try:  # applied at its flip, the call returns then, not after the deletion's wait (5 s)
        await asyncio.wait_for(asyncio.shield(first), 3)
    except TimeoutError:
        pytest.fail("the first import was applied, yet its call still waits")
    try:
        await jobs.run(Z, _text("192.0.2.30"), create=True)
    except Conflict as exc:
        pytest.fail(f"the first import was applied, yet the next one is refused: {exc}")
    finally:
        await asyncio.gather(first, return_exceptions=True)


async def _flipped(client: EtcdClient, layout: KeyLayout, before: int) -> bool:
    return await _generation(client, layout) != before


async def test_a_zone_deleted_during_the_wait_ends_the_wait(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retire, "WAIT_MAX", 8.0)
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    info = await repo.import_zone(Z, _text("192.0.2.10"))
    await _stuck_node(etcd_client, layout, info.serial)
    before = await _generation(etcd_client, layout)
    task = asyncio.create_task(repo.import_zone(Z, _text("192.0.2.20")))
    await async_wait_until(lambda: _flipped(etcd_client, layout, before), 30)
    await repo.delete_zone(Z)
    done, _ = await asyncio.wait([task], timeout=2.0)
    assert done, "the import went on waiting for the nodes to serve a zone that is gone"
    exc = task.exception()
    assert not isinstance(exc, NotFound), "an applied import reported as failed"
