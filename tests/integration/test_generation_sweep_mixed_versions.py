"""The sweep never takes the generation an import on a node of the previous release is
writing (a rolling upgrade): such a node registers nothing under `writing/`.

Real etcd, a real session lease, the sweep's own loop (`GenerationSweep.run`). The
node of the previous release is what it writes to etcd: its durable record (the
fields that release wrote, its version string "0.1.0", as this one's) and its
`alive/` key under a lease of its own; its import is what that release did: the
`gen` put, then the data in batches, then the flip, which compares the head only.
The version string never told the two releases apart (both say "0.1.0"), so the
sweep took the half-written generation and the old node's flip then made the rest
of it live: the zone lost the records of its first batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import dns.name
import pytest

from node import __version__
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.store.txn import Compare, Op
from node.zones.bulk import BulkWriter
from node.zones.model import ZoneHead
from node.zones.repository import ZoneRepository
from tests.support.sweep import count, live_sweeper, running_session
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("upgrading.test.")
LEFT = dns.name.from_text("zz-left.test.")  # sorts after Z: swept after Z in a pass
NAMES = 300
TEXT = "\n".join(["$ORIGIN upgrading.test.", "$TTL 300",
                  "@ IN SOA ns1 hostmaster 1 3600 600 604800 300", "@ IN NS ns1",
                  *(f"h{i} IN A 192.0.2.{i % 250 + 1}" for i in range(NAMES))]) + "\n"
# the durable record a node of the previous release (4570e7c) writes: these fields only
OLD_RECORD = {"id": "old", "role": "writable", "dns_addresses": ["127.0.0.9:53"],
              "api_address": "127.0.0.9:50051", "metrics_address": "127.0.0.9:9100",
              "version": "0.1.0", "started_at": "2026-12-06T19:00:00+00:00", "kek": "",
              "lease_lost": "", "tls_addresses": []}


@pytest.fixture
async def session(etcd_client: EtcdClient) -> AsyncIterator[Session]:
    async with running_session(etcd_client) as s:
        yield s


async def test_an_import_on_a_node_of_the_previous_release_is_never_swept(
        etcd_client: EtcdClient, key_prefix: str, session: Session,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="node.zones.sweep")
    assert __version__ == OLD_RECORD["version"]  # why the version cannot tell them apart
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    sweep = await live_sweeper(etcd_client, layout, repo, session, 0.2)
    old_lease, _ = await etcd_client.lease_grant(30)
    await etcd_client.put(layout.node_key("old"), json.dumps(OLD_RECORD).encode())
    await etcd_client.put(layout.alive_key("old"), b"{}", lease=old_lease)

    info = await repo.import_zone(Z, TEXT)
    await repo.import_zone(LEFT, TEXT.replace("upgrading.test.", "zz-left.test."))
    await repo.unlink_zone(LEFT)  # a deletion cut short: data the sweep may take

    # the old node imports Z as its release did: gen put, data in batches (half now)
    old_writer = BulkWriter(etcd_client, layout, None)  # registers nothing
    generation = await etcd_client.put(layout.gen_key(Z), b"")
    parsed = await old_writer.parse(TEXT.replace("192.0.2.", "198.51.100."), Z)
    await old_writer.write(Z, generation, parsed.records[:100])

    task = asyncio.create_task(sweep.run())
    try:
        async def decided() -> bool:  # a whole pass ran (LEFT is after Z), or it waits
            return "waits" in caplog.text or await count(etcd_client,
                                                          layout.data_root(LEFT)) == 0
        await async_wait_until(decided, 30, message="the sweep neither ran nor waited")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    left = await count(etcd_client, layout.data_prefix(Z, generation))
    assert left == 100, (f"the sweep took the generation a node of the previous release is "
                         f"writing: {left} of its 100 keys left")

    # the old node writes the rest and flips (its release compares the head only)
    await old_writer.write(Z, generation, parsed.records[100:])
    kv = await etcd_client.get(layout.head_key(Z))
    assert kv is not None
    head = ZoneHead.from_json(kv.value)
    flip = await etcd_client.txn(
        when=[Compare.mod_revision(layout.head_key(Z)) == kv.mod_revision],
        then=[Op.put(layout.head_key(Z), head.bumped(0, generation).to_json())])
    assert flip.succeeded
    await old_writer.delete(Z, info.generation)
    assert await count(etcd_client, layout.data_prefix(Z, generation)) == NAMES + 2

    # once the old node is gone (upgraded), the sweep runs again
    await etcd_client.lease_revoke(old_lease)
    async def swept() -> bool:
        return await count(etcd_client, layout.data_root(LEFT)) == 0

    task = asyncio.create_task(sweep.run())
    try:
        await async_wait_until(swept, 30, message="no sweep after the old node left")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await count(etcd_client, layout.data_prefix(Z, generation)) == NAMES + 2


async def test_while_a_node_that_marks_nothing_runs_every_pass_is_full(
        etcd_client: EtcdClient, key_prefix: str, session: Session) -> None:
    """A node of the release before the marks (session 8: it registers its generations but
    marks no zone) leaves orphans no mark points at; while it runs, each pass reads every
    zone."""
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    sweep = await live_sweeper(etcd_client, layout, repo, session, 0.2)
    await repo.import_zone(Z, TEXT)
    assert await sweep.sweep() == 0  # this node's first pass: every zone; Z is clean
    # what a session-8 node's deletion cut short leaves: data, no head, no mark
    orphan = BulkWriter(etcd_client, layout, None)
    parsed = await orphan.parse(TEXT.replace("upgrading.test.", "zz-left.test."), LEFT)
    await orphan.write(LEFT, 12345, parsed.records[:10])
    assert await sweep.sweep() == 0  # a marked pass: LEFT is not marked
    assert await count(etcd_client, layout.data_root(LEFT)) == 10

    s8 = {**OLD_RECORD, "id": "s8", "features": ["registers-generations"]}
    s8_lease, _ = await etcd_client.lease_grant(30)
    await etcd_client.put(layout.node_key("s8"), json.dumps(s8).encode())
    await etcd_client.put(layout.alive_key("s8"), b"{}", lease=s8_lease)
    task = asyncio.create_task(sweep.run())
    try:
        async def swept() -> bool:
            return await count(etcd_client, layout.data_root(LEFT)) == 0
        await async_wait_until(swept, 30, message="no full pass while a node marks nothing")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await etcd_client.lease_revoke(s8_lease)
    assert await count(etcd_client, layout.data_root(Z)) == NAMES + 2
