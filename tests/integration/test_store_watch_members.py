"""Watch on a real 3-member etcd: a stream on a member cut off from its peers moves elsewhere.

Cutting a member off needs iptables as root (`tests.support.partition`); elsewhere
these tests skip with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from node.errors import EtcdUnavailable
from node.store.client import EtcdClient
from tests.integration.test_store_watch import Collector
from tests.support import partition
from tests.support.etcd import EtcdCluster
from tests.support.wait import async_wait_until


@pytest.fixture
def etcd3() -> AsyncIterator[EtcdCluster]:
    reason = partition.unusable()
    if reason:
        pytest.skip(reason)
    with EtcdCluster(3, name="w", own_groups=True) as cluster:
        yield cluster


async def _leaderless(cluster: EtcdCluster, index: int) -> bool:
    return (cluster.status(cluster.members[index]) or {}).get("leader") in ("", "0")


async def _put_when_possible(client: EtcdClient, key: str, value: str) -> int:
    """The two connected members may still be electing a leader: retry the (idempotent) put."""
    revision = 0

    async def put() -> bool:
        nonlocal revision
        try:
            revision = await client.put(key, value)
        except EtcdUnavailable:
            return False
        return True

    await async_wait_until(put, 30, interval=0.1, message=f"no put of {key} within 30 s")
    return revision


@pytest.mark.parametrize("require_leader", [True, False], ids=["hasleader", "lag-check-only"])
async def test_watch_leaves_a_member_cut_off_from_its_peers(
    etcd3: EtcdCluster, key_prefix: str, monkeypatch: pytest.MonkeyPatch, require_leader: bool
) -> None:
    client = EtcdClient(etcd3.endpoints, timeout=1.0)  # the cut member first
    writer = EtcdClient(etcd3.endpoints[1:], timeout=1.0)
    if not require_leader:  # as if etcd ignored `hasleader`: only the lag check can notice
        monkeypatch.setattr(client, "metadata", lambda require_leader=False: ())
    await client.connect()
    await writer.connect()
    start = await writer.put(key_prefix + "a", "1")
    c = Collector(client.watch(key_prefix, start))
    try:
        await c.wait_for_revision(start)
        with partition.PeerPartition(etcd3.members[0], etcd3.members):
            await async_wait_until(lambda: _leaderless(etcd3, 0), 30,
                                   message="the cut member still has a leader")
            rev = await _put_when_possible(writer, key_prefix + "b", "2")
            await c.wait_for_revision(rev, timeout=20)
        # a put that timed out may have been applied before its retry: b once or twice
        assert c.keys[0] == (key_prefix + "a").encode()
        assert set(c.keys[1:]) == {(key_prefix + "b").encode()}
        assert c.watch.streams_opened >= 2
    finally:
        await c.stop()
        await client.close()
        await writer.close()
