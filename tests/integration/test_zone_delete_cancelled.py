"""A zone deletion whose caller goes away (the API call's deadline passed, the client
cancelled) still deletes the zone's data (session 7 review).

The API handler awaits `delete_zone`; gRPC cancels it when the call's deadline
(clusterctl: 30 s) passes, and the parts of a large zone's data take longer
than that on a busy etcd (bench: 11-13 s for 127k keys on a quiet one). Once
the head is gone the name cannot be deleted again, so the parts must go on
without their caller, or the data is left in etcd for good. Real etcd.
"""

from __future__ import annotations

import asyncio

import dns.name
import pytest

from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones import bulk
from node.zones.repository import ZoneRepository
from tests.integration.test_replica_pending import zone_text
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("cancelled.test.")


async def test_the_data_parts_go_on_when_the_caller_is_cancelled(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "DELETE_KEYS", 10)  # many parts: the caller goes during them
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    await repo.import_zone(Z, zone_text(5, 900, "a"))
    root = layout.data_root(Z)
    total = (await etcd_client.range(root, prefix=True, count_only=True)).count
    call = asyncio.create_task(repo.delete_zone(Z))

    async def parts_begun() -> bool:
        left = (await etcd_client.range(root, prefix=True, count_only=True)).count
        return 0 < left < total

    await async_wait_until(parts_begun, 60)
    call.cancel()  # the API call's deadline
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await etcd_client.get(layout.head_key(Z)) is None, "the zone is gone"

    async def no_data() -> bool:
        return (await etcd_client.range(root, prefix=True, count_only=True)).count == 0

    await async_wait_until(no_data, 60, message="the data of the deleted zone is left in etcd")
