"""A mark `unswept/<zone>` is cleared only when no orphan is left behind, and a full pass is
never skipped while one is owed.

Real etcd, a real session lease, the repository, the sweep and (for the upgrade) its own
loop (`GenerationSweep.run`). Three ways an orphan outlived the marks:

- a pass read a zone's generations, then (a read later) its head and registrations: a
  writer that put its first data key between the two reads and died (its registration
  gone at the second) left a generation neither read showed; the zone looked clean, its
  mark went, and no later marked pass looked at it again;
- a full pass that failed (etcd unavailable mid-walk) counted as done: the next full
  pass came `FULL_EVERY` passes (a day) later;
- the last node that marks nothing (a rolling upgrade) left an orphan after the last full
  pass it saw and then stopped: the pass after it left was a marked one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import dns.name
import pytest

from node.errors import EtcdUnavailable
from node.nodes.membership import REGISTERS_GENERATIONS
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.store.txn import Compare, Op
from node.store.values import RangeResult, TxnResult
from node.zones import sweep as sweep_module
from node.zones.bulk import BulkWriter
from node.zones.repository import ZoneRepository
from tests.support.etcd import EtcdProcess
from tests.support.sweep import connected, count, live_sweeper, make_sweep, running_session
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("marked.test.")
LEFT = dns.name.from_text("zz-left.marked.test.")
WATCHED = dns.name.from_text("zzz-watched.marked.test.")  # its mark goes at a pass's end
TXT = [("marked.test./TXT", b'{"ttl": 1}')]


class HookedClient(EtcdClient):
    """A client of a real etcd: `before_heads` runs once right before the sweep's read of
    heads and registrations (a txn of gets only); `fail_walk` makes the full pass's
    keys-only read of `zones/` fail (etcd unavailable) that many times."""

    before_heads: Callable[[], Awaitable[None]] | None = None
    fail_walk = 0
    zones_root = b""

    async def txn(self, when: Sequence[Compare], then: Sequence[Op],
                  otherwise: Sequence[Op] = ()) -> TxnResult:
        if self.before_heads is not None and then and all(op.kind == "get" for op in then):
            hook, self.before_heads = self.before_heads, None
            await hook()
        return await super().txn(when, then, otherwise)

    async def range(self, key: Any, range_end: Any = None, **kw: Any) -> RangeResult:
        start = key if isinstance(key, bytes) else str(key).encode()
        if self.fail_walk and start.startswith(self.zones_root) \
                and kw.get("limit") == sweep_module.ZONE_PAGE and kw.get("keys_only"):
            self.fail_walk -= 1
            raise EtcdUnavailable("etcd unavailable (injected: the full pass's walk)")
        return await super().range(key, range_end, **kw)


@pytest.fixture
async def client(etcd: EtcdProcess) -> AsyncIterator[HookedClient]:
    async with connected(HookedClient, etcd) as c:
        yield c


@pytest.fixture
async def session(client: HookedClient) -> AsyncIterator[Session]:
    async with running_session(client) as s:
        yield s


async def _orphan_without_mark(client: EtcdClient, layout: KeyLayout) -> None:
    """What a deletion cut short by a node that marks nothing leaves: data, no head, no
    mark (only a full pass finds it)."""
    await BulkWriter(client, layout, None).write(LEFT, 12345, TXT)
    assert await client.get(layout.unswept_key(LEFT)) is None


async def test_a_writer_that_dies_between_the_passs_two_reads_leaves_the_mark(
        client: HookedClient, key_prefix: str, session: Session) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(client, layout)
    sweep = make_sweep(client, layout, repo, session)
    await repo.create_zone(Z)
    await sweep.sweep()  # the first pass: Z is clean, its mark goes
    assert await client.get(layout.unswept_key(Z)) is None

    writer = BulkWriter(client, layout, None)  # another node: its own lease
    lease, _ = await client.lease_grant(30)

    async def its_lease() -> int:
        return lease

    writer.lease, writer.writer = its_lease, "w"
    generation = await writer.allocate(Z)  # registered, Z marked

    async def writes_and_dies() -> None:  # after the pass read Z's generations
        await writer.write(Z, generation, TXT)
        await client.lease_revoke(lease)  # its registration goes: its flip never comes

    client.before_heads = writes_and_dies
    await sweep.sweep()
    assert client.before_heads is None, "the pass never read the heads"
    assert await count(client, layout.data_prefix(Z, generation)) == 1
    await sweep.sweep()  # a marked pass: the orphan's zone must still be marked
    left = await count(client, layout.data_prefix(Z, generation))
    assert left == 0, (f"the orphaned generation {generation} of {Z} outlived its mark "
                       f"({left} key left, unswept/ holds "
                       f"{await count(client, layout.unswept_root())} marks)")
    assert await count(client, layout.data_root(Z)) == 2  # the head's generation stays


async def test_a_full_pass_that_failed_is_owed_to_the_next_pass(
        client: HookedClient, key_prefix: str, session: Session) -> None:
    layout = KeyLayout(key_prefix)
    client.zones_root = layout.zones_prefix().encode()
    repo = ZoneRepository(client, layout)
    sweep = make_sweep(client, layout, repo, session)
    await repo.create_zone(Z)
    await _orphan_without_mark(client, layout)
    client.fail_walk = 1
    with pytest.raises(EtcdUnavailable):
        await sweep.sweep()  # this node's first pass (full): etcd goes away mid-pass
    assert await sweep.sweep() == 1, "the full pass that failed was not run again"
    assert await count(client, layout.data_root(LEFT)) == 0
    assert await count(client, layout.data_root(Z)) == 2


@pytest.mark.parametrize("features", [[REGISTERS_GENERATIONS], []],
                         ids=["registers-only", "registers-nothing"])
async def test_the_pass_after_the_last_node_that_marks_nothing_left_is_full(
        client: HookedClient, key_prefix: str, session: Session, features: list[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """A node of session 8 (it registers, marks nothing: every pass is full while it runs)
    or of the release before (it registers nothing: the sweep waits while it runs)."""
    caplog.set_level(logging.INFO, logger="node.zones.sweep")
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(client, layout)
    sweep = await live_sweeper(client, layout, repo, session, 0.05)
    s8 = {"id": "s8", "role": "writable", "version": "0.1.0", "dns_addresses": [],
          "api_address": "127.0.0.9:50051", "metrics_address": "127.0.0.9:9100",
          "started_at": "2026-12-06T19:00:00+00:00", "kek": "", "lease_lost": "",
          "tls_addresses": [], "features": features}
    s8_lease, _ = await client.lease_grant(30)
    await client.put(layout.node_key("s8"), json.dumps(s8).encode())
    await repo.create_zone(Z)

    async def one_pass(waits: bool = False) -> None:  # the loop's next pass, whole (its
        await repo.create_zone(WATCHED)  # end: WATCHED's mark goes), or its wait logged
        task = asyncio.create_task(sweep.run())
        try:
            async def done() -> bool:
                if waits:
                    return "waits" in caplog.text
                return await client.get(layout.unswept_key(WATCHED)) is None
            await async_wait_until(done, 30, message="no pass of the sweep")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await repo.delete_zone(WATCHED)
        await client.delete(layout.unswept_key(WATCHED))

    await one_pass()  # this node's first pass (full), before s8 runs
    await client.put(layout.alive_key("s8"), b"{}", lease=s8_lease)
    await one_pass(waits=not features)
    await one_pass(waits=not features)  # passes while s8 runs: full ones (or waits)
    # s8's last deletion is cut short after the last full pass it saw; then it stops
    await _orphan_without_mark(client, layout)
    await client.lease_revoke(s8_lease)
    await one_pass()
    left = await count(client, layout.data_root(LEFT))
    assert left == 0, "the pass after the last node that marks nothing left was not full"
