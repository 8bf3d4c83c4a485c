"""Bulk zone content for create-with-content and import: parse off the loop, write in batches.

Parsing runs in the node's worker pool (`node/work/zoneparse.py`), so the
interpreter that keeps the lease and the watch never holds a zone-sized
parse; what comes back is plain (key suffix, value) pairs, and writing them
is key concatenation and batched transactions, four in flight, the loop
yielding every few thousand records. A batch that gets no answer (a loaded
etcd past the call deadline) is sent again: the generation is not live until
it is activated, so putting the same keys twice is harmless. A `Progress`
callback hears each stage.

A new generation (`allocate`) is registered as being written, under the
writing node's session lease (`writing/<zone>/<G>`), before any of its data
is put, in the transaction that marks the zone for the sweep (`unswept/<zone>`,
no lease: a pass looks only at marked zones); every batch of its data
(`write_new`) and the flip that makes it live (`written`: a compare and a
delete in the flip's txn) succeed only while that key exists, so only while
the writer's lease never lapsed: a writer paused past its lease and resumed
writes nothing more (`lapsed`). The sweep
(`node/zones/sweep.py`) deletes the generations no head references and no
`writing/` key holds: never one a live writer will still flip.

Deleting a generation (the one an import replaced: once this node serves the
flip, `replaced`; a create's that lost its race, or each one of a deleted
zone: `generations`) goes in parts of at most
`DELETE_KEYS` keys and `DELETE_BYTES` of keys, one revision each: etcd
sends the events of one revision in one watch response, and one larger than
`--max-request-bytes` in fragments, which it cuts in time quadratic in the
events per fragment (issue 10: one delete of the bench zone's 127k keys cost
etcd 10 s of CPU and reached a watcher after 37 s; every node watches).

Batch size: up to `BATCH_OPS` puts and about `BATCH_BYTES` per txn. etcd
refuses a txn of more than `--max-txn-ops` operations (128 by default; this
repository's etcds run with 1000, docs/large-zones.md): at a refusal the
writer tries etcd's default, then halves the batch until etcd takes it, and
keeps the size that passed for its later batches. Larger txns cost etcd, the
writer and every watcher less CPU per put (issue 10, session 15: 1000-put txns
against 100, the bench zone's import through one node: etcd ~1.0 CPU-s less,
the node ~0.8); in session 6 the watchers fell behind with them (58% of the
keys decoded when the last put was written, against 97% with 100), and what
is missing at the flip is decoded on the way to answering.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor
from typing import TypeVar

import dns.name
import dns.rdatatype
import dns.rrset

from node.errors import EtcdUnavailable, ValidationError
from node.events import Event, emit
from node.store.client import EtcdClient
from node.store.keys import KeyLayout, name_component
from node.store.txn import Compare, Op, prefix_range_end
from node.work.zoneparse import ParsedZone, parse_for_store
from node.zones.model import ZoneHead, rrset_to_json

log = logging.getLogger(__name__)
R = TypeVar("R")
Progress = Callable[[str, int, int], None]  # (stage, done, total)
BATCH_OPS = 1000  # puts per txn, at most: etcd's --max-txn-ops in deploy/ (see above)
DEFAULT_MAX_TXN_OPS = 128  # etcd's default --max-txn-ops: the size tried after a refusal
BATCH_BYTES = 1_000_000  # under etcd's --max-request-bytes (1.5 MiB by default)
IN_FLIGHT = 4
PIECE_CHARS = 400_000  # a longer text's parse and writes overlap (`bulkstream`)
DELETE_KEYS = 10_000  # keys deleted per revision at most
DELETE_BYTES = 1_000_000  # and about this many octets of events (fragments from 1.5 MiB)
WRITE_ATTEMPTS = 5  # a batch without an answer is sent again (the generation is not live)
SETTLE_ATTEMPTS = 25  # an unanswered flip is settled within about 10 minutes of etcd's return


def quiet(stage: str, done: int, total: int) -> None:
    """No one listens to this bulk write's progress."""


def records_of(rrsets: Sequence[dns.rrset.RRset]) -> tuple[tuple[str, bytes], ...]:
    """(key suffix, stored value) of each RRset, as `zoneparse` returns them."""
    return tuple((f"{name_component(r.name)}/{dns.rdatatype.to_text(r.rdtype)}",
                  rrset_to_json(r)) for r in rrsets)


class BulkWriter:
    """Parses master files in `pool` (a thread when None, as in tests) and writes generations."""

    def __init__(self, client: EtcdClient, layout: KeyLayout, pool: Executor | None) -> None:
        self._etcd = client
        self._keys = layout
        self._pool = pool
        self.max_ops = BATCH_OPS  # lowered to what etcd takes at its first refusal
        # the session lease a generation being written is registered under (the daemon's;
        # None in tests without a session: registered without a lease), and the writer's id
        self.lease: Callable[[], Awaitable[int]] | None = None
        self.writer = ""
        self.in_flight = IN_FLIGHT
        self.piece_chars = PIECE_CHARS  # a text longer is parsed in pieces (`bulkstream`)
        self.write_pause = 0.0  # test-only (testing.import_write_pause): after the first batch
        self._settling: set[asyncio.Task[None]] = set()  # unanswered flips, replaced deletions
        # set by the daemon: waits until this node's replica applied (and serves) a revision;
        # an import's replaced generation is deleted after its flip's (`replaced`)
        self.after_flip: Callable[[int], Awaitable[None]] | None = None

    async def allocate(self, zone: dns.name.Name) -> int:
        """A new generation id of `zone` (the revision of a put to its `gen` key: unique
        cluster-wide), registered as being written by this node under its lease."""
        generation = await self._etcd.put(self._keys.gen_key(zone), b"")
        lease = await self.lease() if self.lease is not None else 0
        await self._etcd.txn(when=[], then=[  # and the zone marked for the sweep, at once
            Op.put(self._keys.writing_key(zone, generation), self.writer, lease=lease),
            Op.put(self._keys.unswept_key(zone), b"")])
        return generation

    def written(self, zone: dns.name.Name, generation: int) -> tuple[Compare, Op]:
        """The compare and the operation of the txn that makes `generation` live: it is
        still registered (the writer's lease held since `allocate`), and no longer is."""
        key = self._keys.writing_key(zone, generation)
        return Compare.version(key) > 0, Op.delete(key)

    async def registered(self, zone: dns.name.Name, generation: int) -> bool:
        return await self._etcd.get(self._keys.writing_key(zone, generation)) is not None

    def flip_unanswered(self, zone: dns.name.Name, generation: int, before: Compare,
                        replaced: int | None) -> None:
        """The txn that makes `generation` live (compare `before` on the head) got no
        answer: applied, not applied, or applied later. Settled in the background, until
        etcd answers: while the head is still as before, the registration goes (a late
        flip then fails) and so does the generation; if the head is at `generation`,
        the flip applied: the generation it `replaced` goes; else no flip of it can apply
        any more: it goes. Else it stayed registered, and kept, until this node restarts."""
        task = asyncio.get_running_loop().create_task(
            self._settle(zone, generation, before, replaced))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(self, zone: dns.name.Name, generation: int, before: Compare,
                      replaced: int | None) -> None:
        key = self._keys.writing_key(zone, generation)
        for attempt in range(SETTLE_ATTEMPTS):
            try:
                result = await self._etcd.txn(when=[before], then=[Op.delete(key)])
                if not result.succeeded:
                    kv = await self._etcd.get(self._keys.head_key(zone))
                    if kv is not None and ZoneHead.from_json(kv.value).generation == generation:
                        if replaced is not None:
                            await self.delete(zone, replaced)
                        return
                await self.discard(zone, generation)
                return
            except EtcdUnavailable:
                await asyncio.sleep(min(30.0, 0.5 * 2 ** attempt))
        log.warning("zone %s: generation %d stays registered until this node's lease ends "
                    "(etcd did not answer)", zone, generation)

    @property
    def keys(self) -> KeyLayout:
        return self._keys

    async def parse(self, text: str, name: dns.name.Name) -> ParsedZone:
        return await self.run(parse_for_store, text, name.to_text())

    async def run(self, job: Callable[..., R], *args: object) -> R:
        """`job(*args)` in the pool (a thread when there is none)."""
        if self._pool is None:
            return await asyncio.to_thread(job, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, job, *args)

    async def put(self, batch: list[Op], guard: list[Compare], zone: dns.name.Name) -> None:
        """One batch in one txn, or, if etcd refuses its size (`_send`), in smaller ones one
        after another. A loop, not a recursion: a closure that refers to itself is a cycle
        holding what it refers to (an import's records and job), kept for good by a
        `gc.freeze()` before a collection frees it (~29 MiB per import of the bench zone)."""
        parts = [batch]
        while parts:
            part = parts.pop()
            if await self._send(part, guard, zone):  # etcd's --max-txn-ops is lower
                parts += (part[i:i + self.max_ops] for i in range(0, len(part), self.max_ops))

    async def write(self, zone: dns.name.Name, generation: int,
                    records: Sequence[tuple[str, bytes]], progress: Progress = quiet, *,
                    registered: bool = False) -> None:
        """Write (key suffix, value) records into `generation` in batched transactions;
        `registered`: each one only while `allocate`'s registration holds (else `lapsed`)."""
        prefix = self._keys.data_prefix(zone, generation)
        guard = [self.written(zone, generation)[0]] if registered else []
        batches: list[list[Op]] = [[]]
        size = 0
        for i, (suffix, value) in enumerate(records):
            if len(batches[-1]) >= self.max_ops or size + len(value) > BATCH_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(Op.put(prefix + suffix, value))
            size += len(value) + 100
            if i % 5000 == 4999:
                await asyncio.sleep(0)  # let keepalives, the watch and queries through
        sem = asyncio.Semaphore(IN_FLIGHT)
        written = [0]
        progress("writing", 0, len(records))

        async def write(batch: list[Op]) -> None:
            async with sem:
                await self.put(batch, guard, zone)
            written[0] += len(batch)
            progress("writing", written[0], len(records))

        if self.write_pause and len(batches) > 1:  # test-only: half written for this long
            await write(batches.pop(0))
            await asyncio.sleep(self.write_pause)
        await _all(write(b) for b in batches if b)

    async def write_new(self, zone: dns.name.Name, generation: int,
                        records: Sequence[tuple[str, bytes]], progress: Progress = quiet) -> None:
        """`write` into a new `generation` no head points at yet; if that fails (a refused
        batch, etcd unavailable, the call cancelled) what was written of it is deleted:
        else it stays in etcd for good, and every node's replica decodes a generation being
        written until it is deleted or a flip of its zone comes (`pending.py`)."""
        try:
            await self.write(zone, generation, records, progress, registered=True)
        except BaseException:
            await self.discard(zone, generation)
            raise

    async def discard(self, zone: dns.name.Name, generation: int) -> None:
        """Delete a generation no head points at, then its `writing/` key; a failure is
        reported (event 1892), not raised (the caller raises why the generation is not
        used): what is left, the sweep removes once the key is gone (its lease at the
        latest)."""
        try:
            await self.delete(zone, generation)
        except Exception as exc:
            emit(Event.ZONE_GENERATION_LEFT, logging.WARNING, zone=zone.to_text(),
                 generation=generation, error=f"{type(exc).__name__}: {exc}")
        try:
            await self._etcd.delete(self._keys.writing_key(zone, generation))
        except Exception as exc:
            log.warning("zone %s: generation %d stays registered until this node's lease "
                        "ends: %s", zone, generation, exc)

    async def replaced(self, zone: dns.name.Name, generation: int, flip: int) -> None:
        """Delete the generation that the flip at revision `flip` replaced. With `after_flip`
        (a node), in the background once this node serves the flip: etcd's deletion and
        every watcher's 127k delete events (bench zone) no longer compete with the nodes'
        decode and image of the new version (issue 10); a deletion cut short (the node
        stops, etcd fails) is left to the sweep, as before."""
        if self.after_flip is None:
            await self.delete(zone, generation)
            return
        task = asyncio.get_running_loop().create_task(self._delete_after(zone, generation, flip))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _delete_after(self, zone: dns.name.Name, generation: int, flip: int) -> None:
        assert self.after_flip is not None
        try:
            await self.after_flip(flip)
        except Exception as exc:  # not served in time: deleted anyway
            log.info("zone %s: deleting generation %d before this node serves revision %d "
                     "(%s)", zone, generation, flip, type(exc).__name__)
        try:
            await self.delete(zone, generation)
        except Exception as exc:
            emit(Event.ZONE_GENERATION_LEFT, logging.WARNING, zone=zone.to_text(),
                 generation=generation, error=f"{type(exc).__name__}: {exc}")

    async def generations(self, zone: dns.name.Name, revision: int) -> list[int]:
        """The generations with data keys at `revision`: one read of a single key each
        (skipping from one generation's prefix to past its end)."""
        root = self._keys.data_root(zone).encode()
        start, end = root, prefix_range_end(root)
        found: list[int] = []
        while True:
            page = await self._etcd.range(start, end, keys_only=True, limit=1, revision=revision)
            if not page.kvs:
                return found
            text = page.kvs[0].key[len(root):].split(b"/", 1)[0]
            if text.isdigit():
                found.append(int(text))
            start = prefix_range_end(root + text + b"/")

    async def delete(self, zone: dns.name.Name, generation: int) -> int:
        """Delete `generation`'s data keys in parts (one revision each); returns the count."""
        prefix = self._keys.data_prefix(zone, generation).encode()
        start, end = prefix, prefix_range_end(prefix)
        deleted = 0
        while True:  # from past the last part: etcd's index still walks the deleted keys
            page = await self._etcd.range(start, end, keys_only=True, limit=DELETE_KEYS)
            if not page.kvs:
                return deleted
            size, last = 0, page.kvs[-1].key
            for kv in page.kvs:
                size += len(kv.key) + 40  # an event's framing
                if size > DELETE_BYTES:
                    last = kv.key
                    break
            result = await self._etcd.txn(
                when=[], then=[Op("delete", page.kvs[0].key, range_end=last + b"\x00")])
            deleted += int(result.responses[0] or 0)  # type: ignore[arg-type]
            start = last + b"\x00"

    async def _send(self, batch: list[Op], guard: list[Compare], zone: dns.name.Name) -> bool:
        """Put `batch` in one txn (if `guard` holds: else `lapsed`); True (nothing written)
        if it has more operations than etcd's --max-txn-ops, after lowering `max_ops`."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                result = await self._etcd.txn(when=guard, then=batch)
            except ValidationError as exc:
                if len(batch) <= 1 or not too_many_ops(exc):
                    raise
                # most etcds have the default: try it first, then halve
                fits = DEFAULT_MAX_TXN_OPS if len(batch) > DEFAULT_MAX_TXN_OPS else len(batch) // 2
                self.max_ops = min(self.max_ops, fits)
                return True
            except EtcdUnavailable:  # applied or not: the same puts again are harmless
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            if not result.succeeded:
                raise lapsed(zone)
            return False
        return False


def lapsed(zone: dns.name.Name) -> EtcdUnavailable:
    """A generation's registration lapsed with this node's lease: the sweep may have
    deleted part of it, so it is never made live (and no more of it is written)."""
    return EtcdUnavailable(f"zone {zone}: this node lost its etcd lease while writing the "
                           "new data; nothing was changed, try again")


async def _all(writes: Iterable[Awaitable[None]]) -> None:
    """Await `writes` together; at the first failure the others are cancelled, and awaited,
    before it is raised: no batch of a failed write is sent after the caller hears of it
    (gather alone would leave them running, to land after the caller deleted what was
    written)."""
    tasks = [asyncio.ensure_future(w) for w in writes]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def too_many_ops(exc: ValidationError) -> bool:
    """etcd refused a txn for its number of operations (`--max-txn-ops`)."""
    return "too many operations in txn request" in str(exc)
