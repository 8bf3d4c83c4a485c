"""An import whose parse and writes overlap (`node/zones/bulkstream.py`): real etcd.

A text longer than `BulkWriter.piece_chars` is read in pieces in the pool, each
written while the next is read. Stored, it is exactly what a parse at once
stores ($ORIGIN, $TTL and inherited owners across the cuts; RRsets and owners
spread over pieces), and it fails as a parse at once fails (the same message,
for an error near its end) leaving the zone as it was: the keys written before
the error is found are gone, no registration is left, the sweep finds nothing.
Each test checks that keys of the new generation were in etcd while a later
piece was still to be read (the pool's jobs wait for them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import dns.name
import pytest

from node.config import Config
from node.errors import EtcdUnavailable, ValidationError
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.zones import bulkstream
from node.zones.model import ZoneHead
from node.zones.repository import ZoneRepository
from tests.support.sweep import count, make_sweep, running_session
from tests.support.wait import async_wait_until

pytestmark = pytest.mark.integration

Z = dns.name.from_text("pieces.test.")
PIECE = 3000  # characters: the texts below are read in 8 or more pieces
SEEN_WITHIN = 30.0  # seconds a later piece waits for the first pieces' keys in etcd


def _text(hosts: int, serial: int, tail: str = "") -> str:
    """A zone with every kind of state a cut carries: $ORIGIN and $TTL changed part-way,
    relative owners, owners inherited by blank starts, the SOA's minimum as the default."""
    lines = ["$ORIGIN pieces.test.", f"@ IN SOA ns1 hostmaster {serial} 3600 600 604800 120",
             "  IN NS ns1", "ns1 IN A 192.0.2.1"]
    for i in range(hosts):
        if i % 97 == 0:
            lines.append(f"$ORIGIN s{i // 97}.pieces.test.")
        if i % 131 == 0:
            lines.append(f"$TTL {300 + i}")
        lines += [f"h{i} {'' if i % 3 else str(60 + i) + ' '}IN A 192.0.2.{i % 250 + 1}",
                  f"  IN TXT \"host {i}\"", f"h{i} IN AAAA 2001:db8::{i:x}"]
    return "\n".join(lines) + "\n" + tail


class _Pool(Executor):
    """Runs jobs in threads; from the `wait_at`th job on, each first waits until `ready()`
    (checked on the test's loop) holds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ready: Callable[[], Any],
                 wait_at: int = 4) -> None:
        self._threads = ThreadPoolExecutor(2)
        self._loop, self._ready, self._wait_at = loop, ready, wait_at
        self.jobs = 0
        self.saw_keys = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.jobs += 1
        return self._threads.submit(self._run, self.jobs, fn, *args, **kwargs)

    def _run(self, job: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if job == self._wait_at:
            self.saw_keys = asyncio.run_coroutine_threadsafe(
                self._ready(), self._loop).result(SEEN_WITHIN + 5)
        return fn(*args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._threads.shutdown(wait, cancel_futures=cancel_futures)


async def _written(client: EtcdClient, prefix: str, more_than: int) -> bool:
    """Whether more than `more_than` keys are under `prefix` within `SEEN_WITHIN` s."""
    async def more() -> bool:
        return await count(client, prefix) > more_than
    try:
        await async_wait_until(more, SEEN_WITHIN)
    except AssertionError:
        return False
    return True


@pytest.fixture
async def session(etcd_client: EtcdClient) -> AsyncIterator[Session]:
    async with running_session(etcd_client) as s:
        yield s


async def _pieces_repo(client: EtcdClient, layout: KeyLayout) -> tuple[ZoneRepository, _Pool]:
    """A repository whose imports of more than `PIECE` characters are read in pieces; its
    pool's 4th job waits until etcd holds more keys of the zone than before the import."""
    before = await count(client, layout.data_root(Z))
    pool = _Pool(asyncio.get_running_loop(),
                 lambda: _written(client, layout.data_root(Z), before))
    repo = ZoneRepository(client, layout, pool=pool)
    repo.bulk.piece_chars = PIECE
    return repo, pool


async def _stored(client: EtcdClient, layout: KeyLayout) -> tuple[int, dict[bytes, bytes]]:
    """The live serial and the live generation's data, keyed without its prefix."""
    kv = await client.get(layout.head_key(Z))
    assert kv is not None
    head = ZoneHead.from_json(kv.value)
    prefix = layout.data_prefix(Z, head.generation).encode()
    kvs, _ = await client.range_all(prefix)
    return head.serial, {item.key[len(prefix):]: item.value for item in kvs}


def _whole_layout(key_prefix: str) -> KeyLayout:
    return KeyLayout(key_prefix.replace("/dnscluster/", "-whole/dnscluster/"))


@pytest.mark.parametrize("queued", [bulkstream.QUEUED, 1], ids=["queue", "each-waits"])
async def test_an_import_in_pieces_is_stored_as_one_parsed_at_once(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch,
        queued: int) -> None:
    """Created, then replaced; with pieces read ahead of the writes, or each read only once
    the RRsets before it are written."""
    monkeypatch.setattr(bulkstream, "QUEUED", queued)
    layout, whole_layout = KeyLayout(key_prefix), _whole_layout(key_prefix)
    whole = ZoneRepository(etcd_client, whole_layout)
    for text in (_text(400, 5), _text(420, 6, "h7.s0 IN A 192.0.2.99\n")):  # create, replace
        repo, pool = await _pieces_repo(etcd_client, layout)
        info = await repo.import_zone(Z, text)
        reference = await whole.import_zone(Z, text)
        assert pool.jobs >= 8 and pool.saw_keys, f"{pool.jobs} pieces; written while read"
        assert (info.serial, info.rrset_count) == (reference.serial, reference.rrset_count)
        assert await _stored(etcd_client, layout) == await _stored(etcd_client, whole_layout)
        assert await count(etcd_client, layout.data_root(Z)) == info.rrset_count  # old: gone
        pool.shutdown()


async def test_an_owner_or_rrset_across_pieces_is_read_as_at_once(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    """An RRset with records far apart (cut into two pieces) and an owner's data apart: the
    pieces stop, the whole text is parsed at once, and stored as at once."""
    layout, whole_layout = KeyLayout(key_prefix), _whole_layout(key_prefix)
    text = _text(400, 9, "h1.s0.pieces.test. IN A 192.0.2.200\n"
                         "$ORIGIN pieces.test.\nns1 IN TXT \"far\"\n")
    repo, pool = await _pieces_repo(etcd_client, layout)
    info = await repo.import_zone(Z, text)
    await ZoneRepository(etcd_client, whole_layout).import_zone(Z, text)
    assert pool.jobs >= 8 and pool.saw_keys
    stored = await _stored(etcd_client, layout)
    assert stored == await _stored(etcd_client, whole_layout)
    assert b"192.0.2.200" in stored[1][b"h1.s0.pieces.test./A"]
    assert await count(etcd_client, layout.data_root(Z)) == info.rrset_count
    pool.shutdown()


@pytest.mark.parametrize("tail", [
    "h9.s1 IN A 300.1.2.3\n",  # a bad address on the last line
    "$ORIGIN s0.pieces.test.\nh1 IN CNAME elsewhere.example.\n",  # CNAME and other data
    "s0.pieces.test. IN DNAME elsewhere.example.\n",  # names below a DNAME (RFC 6672)
], ids=["bad-address", "cname-and-other-data", "data-below-a-dname"])
async def test_an_error_near_the_end_fails_as_at_once_and_changes_nothing(
        etcd_client: EtcdClient, key_prefix: str, session: Session, tail: str) -> None:
    layout, whole_layout = KeyLayout(key_prefix), _whole_layout(key_prefix)
    good, bad = _text(50, 3), _text(400, 4, tail)
    whole = ZoneRepository(etcd_client, whole_layout)
    await whole.import_zone(Z, good)
    with pytest.raises(ValidationError) as at_once:
        await whole.import_zone(Z, bad)

    await ZoneRepository(etcd_client, layout).import_zone(Z, good)
    before = await _stored(etcd_client, layout)
    repo, pool = await _pieces_repo(etcd_client, layout)
    with pytest.raises(ValidationError) as in_pieces:
        await repo.import_zone(Z, bad)
    assert str(in_pieces.value) == str(at_once.value)
    assert pool.jobs > 1 and pool.saw_keys, "no keys were written before the error was found"
    assert await _stored(etcd_client, layout) == before
    assert await count(etcd_client, layout.data_root(Z)) == len(before[1])
    assert await count(etcd_client, layout.writing_key(Z, 0)[:-1]) == 0  # no registration
    sweep = make_sweep(etcd_client, layout, repo, session, Config(node_id="t1"))
    assert await sweep.sweep(full=True) == 0
    assert await count(etcd_client, layout.data_root(Z)) == len(before[1])
    pool.shutdown()


async def _interrupted(etcd_client: EtcdClient, layout: KeyLayout,
                       interrupt: Callable[[asyncio.Task[Any]], Any]) -> BaseException:
    """An import in pieces over a live zone, `interrupt`ed (on the test's loop) once keys
    of the new generation are in etcd, from within the pool's 4th job: its outcome. The
    zone is as before, the new generation deleted and unregistered, no task of it left."""
    await ZoneRepository(etcd_client, layout).import_zone(Z, _text(50, 3))
    before = await _stored(etcd_client, layout)
    keys_before = await count(etcd_client, layout.data_root(Z))
    tasks_before = asyncio.all_tasks()
    holder: list[asyncio.Task[Any]] = []
    reached: list[bool] = []

    async def ready() -> Any:
        reached.append(await _written(etcd_client, layout.data_root(Z), keys_before))
        return await interrupt(holder[0])

    pool = _Pool(asyncio.get_running_loop(), ready)
    repo = ZoneRepository(etcd_client, layout, pool=pool)
    repo.bulk.piece_chars = PIECE
    holder.append(asyncio.create_task(repo.import_zone(Z, _text(400, 4))))
    outcome = (await asyncio.gather(holder[0], return_exceptions=True))[0]
    assert isinstance(outcome, BaseException), outcome
    assert reached == [True], "no keys were written before the interruption"
    assert await _stored(etcd_client, layout) == before
    assert await count(etcd_client, layout.data_root(Z)) == keys_before
    assert await count(etcd_client, layout.writing_key(Z, 0)[:-1]) == 0
    assert asyncio.all_tasks() - tasks_before - {asyncio.current_task()} == set()
    pool.shutdown()
    return outcome


async def test_an_import_cancelled_while_in_pieces_leaves_nothing(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    async def cancel(task: asyncio.Task[Any]) -> bool:
        task.cancel()
        return True

    outcome = await _interrupted(etcd_client, KeyLayout(key_prefix), cancel)
    assert isinstance(outcome, asyncio.CancelledError)


async def test_a_lapsed_registration_while_in_pieces_fails_and_leaves_nothing(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    """The writer's registration gone (its lease lapsed): the next batch is refused, the
    import fails as `lapsed` says, and what was written is deleted."""
    layout = KeyLayout(key_prefix)

    async def lapse(_: asyncio.Task[Any]) -> bool:
        kvs, _rev = await etcd_client.range_all(layout.writing_key(Z, 0)[:-1].encode())
        assert len(kvs) == 1
        await etcd_client.delete(kvs[0].key)
        return True

    outcome = await _interrupted(etcd_client, layout, lapse)
    assert isinstance(outcome, EtcdUnavailable) and "lease" in str(outcome), outcome


async def test_a_worker_lost_while_in_pieces_fails_and_leaves_nothing(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    """A pool job fails as a killed worker's does (BrokenProcessPool): the import fails
    with it, and what was written is deleted."""
    async def broken(_: asyncio.Task[Any]) -> bool:
        raise BrokenProcessPool("a worker died")

    outcome = await _interrupted(etcd_client, KeyLayout(key_prefix), broken)
    assert isinstance(outcome, BrokenProcessPool), outcome
