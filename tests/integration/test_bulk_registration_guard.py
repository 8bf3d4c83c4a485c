"""A generation's data goes into etcd only while the writer's registration holds
(`node.zones.bulk`): every batch of a new generation compares `writing/<zone>/<G>`.

A writer whose lease lapsed (the registration gone with it) may still be running: paused,
then resumed, or cut off from etcd and back. Before, its remaining batches landed after the
sweep could have checked the zone and cleared its mark, leaving keys no head references
and no mark points at until the daily full pass. Now etcd refuses them at apply time, and
the import fails with "lost its etcd lease" and leaves nothing of the generation (real etcd).
"""

from __future__ import annotations

import dns.name
import pytest

from node.errors import EtcdUnavailable
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.bulk import BulkWriter

pytestmark = pytest.mark.integration

Z = dns.name.from_text("guarded.test.")


def _records(n: int) -> list[tuple[str, bytes]]:
    return [(f"h{i:05d}.guarded.test./A", b'{"ttl": 300, "rdata": ["192.0.2.1"]}')
            for i in range(n)]


async def test_batches_after_the_registration_went_are_refused(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    writer = BulkWriter(etcd_client, layout, None)
    generation = await writer.allocate(Z)
    await etcd_client.delete(layout.writing_key(Z, generation))  # as its lease lapsing does
    with pytest.raises(EtcdUnavailable, match="lost its etcd lease"):
        await writer.write_new(Z, generation, _records(450))
    left, _ = await etcd_client.range_all(layout.data_prefix(Z, generation))
    assert not left, f"{len(left)} keys of generation {generation} written after it lapsed"


async def test_a_registered_generation_is_written_whole(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    writer = BulkWriter(etcd_client, layout, None)
    generation = await writer.allocate(Z)
    await writer.write_new(Z, generation, _records(450))
    kept, _ = await etcd_client.range_all(layout.data_prefix(Z, generation))
    assert len(kept) == 450
