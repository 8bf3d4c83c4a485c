"""Session (the node's lease) against a real etcd: keepalive, local validity deadline
while etcd is paused, re-grant after loss, revoke on stop."""

from __future__ import annotations

import asyncio
import time

from node.store.client import EtcdClient
from node.store.session import Session
from tests.support.etcd import EtcdProcess
from tests.support.wait import async_wait_until


async def test_keepalive_keeps_leased_key_past_ttl(
    etcd_client: EtcdClient, key_prefix: str
) -> None:
    session = Session(etcd_client, ttl=2, margin=0.5)
    granted: list[int] = []
    session.on_new_lease(granted.append)
    task = asyncio.create_task(session.run())
    try:
        lease = await session.wait_ready(5)
        assert granted == [lease] and session.lease_id == lease and session.is_valid()
        await etcd_client.put(key_prefix + "node", "alive", lease=lease)
        first_deadline = session.valid_until()
        # keepalives must push the deadline past the first lease's whole TTL
        await async_wait_until(lambda: session.valid_until() > first_deadline + 2.5, 10,
                               message="valid_until did not advance")
        kv = await etcd_client.get(key_prefix + "node")
        assert kv is not None and kv.lease == lease
        assert await etcd_client.lease_ttl(lease) > 0
        assert session.is_valid() and granted == [lease]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # stopping revokes the lease: its keys vanish at once
    assert await etcd_client.lease_ttl(lease) == -1
    assert await etcd_client.get(key_prefix + "node") is None
    assert session.lease_id is None and not session.is_valid()


async def test_paused_etcd_invalidates_locally_then_new_lease(private_etcd: EtcdProcess) -> None:
    client = EtcdClient([private_etcd.endpoint], timeout=0.5)
    session = Session(client, ttl=2, keepalive_interval=0.3, margin=0.5)
    new_leases: list[int] = []
    lost: list[int] = []

    async def registered(lease_id: int) -> None:  # async callbacks are awaited
        await client.put("/node/me", "here", lease=lease_id)
        new_leases.append(lease_id)

    session.on_new_lease(registered)
    session.on_lease_lost(lost.append)
    task = asyncio.create_task(session.run())
    loop = asyncio.get_running_loop()
    try:
        old = await session.wait_ready(5)
        await async_wait_until(lambda: new_leases == [old], 5)
        private_etcd.pause()
        paused_at = loop.time()
        try:
            # etcd answers nothing, yet the node gives its authority up by its own deadline
            await async_wait_until(lambda: not session.is_valid(), 2 + 1,
                                   message="is_valid() stayed True while etcd was paused")
            assert session.lease_id == old  # not known lost: only unreachable
            assert session.valid_until() <= loop.time()
            # stay paused past the TTL so etcd expires the lease when it runs again
            await async_wait_until(lambda: loop.time() > paused_at + 3.5, 10)
        finally:
            private_etcd.resume()
        await async_wait_until(lambda: len(new_leases) == 2, 15,
                               message="no new lease after etcd resumed")
        assert lost == [old]
        # when and why, for clusterctl nodes: etcd was unreachable, so keepalives failed
        assert session.last_loss.startswith("lease lost at ")
        assert "keepalive failed for" in session.last_loss, session.last_loss
        assert new_leases[1] != old and session.lease_id == new_leases[1]
        assert session.is_valid()
        assert await client.lease_ttl(old) == -1
        kv = await client.get("/node/me")
        assert kv is not None and kv.lease == new_leases[1]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


async def test_wait_ready_waits_for_etcd(private_etcd: EtcdProcess) -> None:
    private_etcd.stop()
    client = EtcdClient([private_etcd.endpoint], timeout=0.5)
    await client.connect()  # etcd down: connect does not fail
    session = Session(client, ttl=5)
    task = asyncio.create_task(session.run())
    try:
        assert session.lease_id is None and not session.is_valid()
        private_etcd.start()
        lease = await session.wait_ready(15)
        assert await client.lease_ttl(lease) > 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


async def test_revoke_then_run_grants_a_new_lease(etcd_client: EtcdClient) -> None:
    session = Session(etcd_client, ttl=5, keepalive_interval=0.2)
    leases: list[int] = []
    session.on_new_lease(leases.append)
    task = asyncio.create_task(session.run())
    try:
        first = await session.wait_ready(5)
        await session.revoke()
        assert not session.is_valid()
        assert await etcd_client.lease_ttl(first) == -1
        await async_wait_until(lambda: len(leases) == 2, 10)
        assert leases[1] != first and session.is_valid()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_lease_survives_a_blocked_loop(etcd_client: EtcdClient, key_prefix: str) -> None:
    """Issue 10: a loop held by heavy work for longer than the TTL keeps its lease."""
    session = Session(etcd_client, ttl=2, keepalive_interval=0.5, margin=0.5)
    lost: list[int] = []
    session.on_lease_lost(lost.append)
    task = asyncio.create_task(session.run())
    try:
        lease = await session.wait_ready(5)
        await etcd_client.put(key_prefix + "node", "alive", lease=lease)
        time.sleep(4)  # noqa: ASYNC251 -- on purpose: the loop is blocked, as by a long parse
        assert session.is_valid(), "the local deadline lapsed while the loop was blocked"
        assert await etcd_client.lease_ttl(lease) > 0, "etcd let the lease expire"
        kv = await etcd_client.get(key_prefix + "node")
        assert kv is not None and kv.lease == lease
        await asyncio.sleep(1)  # the loop's own keepalive runs again: still the same lease
        assert session.lease_id == lease and lost == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
