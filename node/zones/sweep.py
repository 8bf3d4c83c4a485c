"""The sweep of orphaned generations: zone data that no head references and no writer holds.

A generation's data keys can stay in etcd with nothing pointing at them: a
node killed (`kill -9`, a lost machine) in the middle of an import or a
create leaves what it wrote; a zone deletion cut short between `unlink_zone`
and its data parts leaves the data; so does an import's old generation whose
deletion after the flip was cut short, and a failed write whose clean-up
failed (event 1892). Nothing ever serves those keys, but they cost etcd space
and every node's watch decodes them.

Who: one writable node at a time, the one holding the `sweeper` key (put
under its session lease when the key is free: when the holder stops or dies,
its lease ends and another node takes the key), at start and then every
`server.generation_sweep_interval` seconds. It sweeps only while every live
writable node's record has the feature `registers-generations`: an earlier
release registers no generation it writes (below), so during a rolling
upgrade the sweep waits. Not the version string: an earlier release may
carry this one's (0.1.0 before and after).

What a pass reads: the zones marked `unswept/<zone>` (paged keys-only
reads, each at the current revision), not every zone: a bulk write marks its
zone in the transaction that registers its generation (`BulkWriter.allocate`),
a zone deletion in its `unlink_zone` transaction: a generation comes to exist
only by a bulk write, and loses its head only by a bulk write's flip (its zone
marked since its `allocate`) or a deletion. So a pass over a cluster with
nothing written since the last one costs one etcd call, whatever its zone
count (issue 10, session 9: the walk over every zone cost 4 calls a zone, and
each limit-1 read made etcd walk the rest of `zones/`: 1,000 zones 4-5 s,
10,000 zones 126-134 s of which 76-79 s of etcd CPU: bench/RESULTS.md). A full pass (every zone
with keys under `zones/`, a deleted zone's left data included) runs on this
node's first pass as the sweeper, every `FULL_EVERY` passes after, on the pass
after one whose walk failed (etcd unavailable), and while a live writable node of
the release before marks (its record lacks the feature `marks-generations`) and
on the pass after (what it left after the last walk it saw; the same once
the nodes of the release before registrations, which the sweep waits for,
are gone): it finds what
was left before the marks (an upgrade) and what a writer that lost its lease
went on writing after a pass cleared its zone's mark.

What a pass does with a zone: the generations with data (one key read each,
at the current revision: never a revision pinned for the whole pass, which a
compaction during a long pass would end; in a full pass, from the keys-only
page of `zones/` that holds the zone whole), then, in one read after those,
the head and the `writing/<zone>/` registrations (of `HEADS_PER_READ` zones at
once: a full pass over 10,000 zones is 348 calls, not 40,001). Each
generation that is neither the head's nor registered then is deleted in
parts (`BulkWriter.delete`: at most 10k keys / 1 MB of events per revision,
never one big txn), with event 1866 GENERATION_SWEPT and the metrics
`dnscluster_generations_swept_total` and `dnscluster_generation_keys_swept_total`.
A marked zone found clean (no registration, no generation but the head's,
nothing deleted in this pass) has its mark deleted in a transaction that
compares the mark's mod revision (a bulk write that marked it again since
the mark was read keeps it) and that no data key outside the head's
generation exists (`Compare.no_key`: a range compare, no read). A mark
only says where to look: whether a generation is deleted is decided by the
reads above alone.

Why it never deletes a generation that is still to go live (an import in
progress on another node): a writer registers its generation under its
session lease before it writes any data (`BulkWriter.allocate`), and the
flip that makes it live compares that the registration still exists. A
registration once gone (its lease expired or revoked) is never written
again, so a generation with data at the revision R of its read and no
registration at the later read can never be flipped to (its data was written
after its registration, so the registration existed before R); and a later
head references only a generation registered at the time of that read, or
allocated after it (which has no data the pass read).

Why a mark cleared leaves no orphan behind: a generation is registered in the
transaction that marks its zone, so at the revision the pass read the mark at,
every generation allocated before had its registration put; the zone is clean
only if no registration is left at the read after its generations' (so each
such writer flipped, or lost its lease), the mark's deletion compares that
no data outside the head's generation exists (a writer that put its first
key between the two reads and lost its lease before the second left one
neither read showed), and a generation allocated after the mark was read
marked the zone again, which the compare of the mark's mod revision sees.
A writer that lost its lease and still runs (a paused process, resumed) writes
nothing more: every batch of a new generation compares its registration
(`bulk.py`), checked by etcd when it applies the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from functools import partial

import dns.exception
import dns.name
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from node import __version__
from node.config import Config
from node.errors import NodeError, ValidationError
from node.events import Event, emit
from node.nodes.membership import MARKS_GENERATIONS, REGISTERS_GENERATIONS, NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout, parse_name_component
from node.store.session import Session
from node.store.txn import Compare, Op, prefix_range_end
from node.zones.bulk import BulkWriter, too_many_ops
from node.zones.model import ZoneHead

log = logging.getLogger(__name__)
FULL_EVERY = 144  # passes from one full pass to the next: a day at the default interval
MARK_PAGE = 1000  # marks read per call
ZONE_PAGE = 1000  # keys per read of a full pass's walk over zones/
HEADS_PER_READ = 50  # zones whose head and registrations one txn reads (2 ops each: < 128)


class GenerationSweep:
    """Finds and deletes orphaned generations; `run` on every writable node (one sweeps)."""

    def __init__(self, client: EtcdClient, layout: KeyLayout, bulk: BulkWriter,
                 session: Session, directory: NodeDirectory, config: Config) -> None:
        self._etcd = client
        self._keys = layout
        self._bulk = bulk  # registers each generation it writes under the session lease
        bulk.lease, bulk.writer = partial(session.wait_ready, session.ttl), config.node_id
        bulk.write_pause = config.testing.import_write_pause
        self._node_id = config.node_id
        self._session = session
        self._directory = directory
        self._interval = config.server.generation_sweep_interval
        self.counts = {"generations": 0, "keys": 0}  # swept by this node (the metrics)
        self._waiting: list[str] = []  # versions the sweep waits for (logged on a change)
        self._passes = 0  # by this node: the first one and every FULL_EVERY-th are full
        # a full pass owed: this node's first, one that failed, the one after a pass that
        # saw a live writable node marking nothing (what it left after that pass's walk)
        self._full_due = True

    def collector(self) -> Collector:
        return _SweepCollector(self.counts)

    async def run(self) -> None:
        """At start, then every interval: sweep if this node holds the sweeper key."""
        while True:
            try:
                await self._session.wait_ready(self._session.ttl * 3)  # the first: at start
                if await self.claim():
                    unmarking = await self._writers()
                    if unmarking is None:  # they mark nothing either: once they are gone,
                        self._full_due = True  # a full pass finds what they left
                    else:
                        await self.sweep(full=unmarking)
            except NodeError as exc:  # etcd unavailable, a compacted revision: next round
                log.warning("the sweep of orphaned generations failed, retried in %.0f s: %s",
                            self._interval, exc)
            await asyncio.sleep(self._interval)

    async def claim(self) -> bool:
        """True while this node holds the `sweeper` key under its current lease."""
        lease = self._session.lease_id
        if lease is None:
            return False
        key = self._keys.sweeper_key()
        res = await self._etcd.txn(when=[Compare.version(key) == 0],
                                   then=[Op.put(key, self._node_id, lease=lease)],
                                   otherwise=[Op.get(key)])
        if res.succeeded:
            return True
        kvs = res.responses[0].kvs  # type: ignore[union-attr]
        return bool(kvs) and kvs[0].value == self._node_id.encode() and kvs[0].lease == lease

    async def _writers(self) -> bool | None:
        """None while a live writable node of an earlier release runs: its record lacks
        REGISTERS_GENERATIONS (an earlier release may carry this one's version string);
        else True while one lacks MARKS_GENERATIONS (its bulk writes mark no zone)."""
        writers = [n for n in await self._directory.list_nodes()
                   if n.alive and n.role == "writable"]
        others = sorted(f"{n.id} ({n.version or 'no version'})" for n in writers
                        if REGISTERS_GENERATIONS not in n.features)
        if others and others != self._waiting:
            log.info("the sweep of orphaned generations waits: writable nodes %s run an "
                     "earlier release than %s (they register no generation they write)",
                     ", ".join(others), __version__)
        self._waiting = others
        if others:
            return None
        return any(MARKS_GENERATIONS not in n.features for n in writers)

    async def sweep(self, full: bool = False) -> int:
        """One pass over the marked zones, after one over every zone when `full` (a live
        writable node marks nothing) or due (this node's first pass, every FULL_EVERY-th,
        the one after a full pass failed or after a pass with `full`); returns the number
        of generations deleted."""
        if self._passes % FULL_EVERY == 0:
            self._full_due = True
        self._passes += 1
        swept = 0
        if full or self._full_due:
            self._full_due = True  # until this walk ends: one that fails is owed
            swept = await self._every_zone()
            # while a node marks nothing, what it leaves after this walk needs the next
            self._full_due = full
        return swept + await self._marked()

    async def _every_zone(self) -> int:
        """Every zone with keys under `zones/`, from keys-only pages of ZONE_PAGE keys (each
        at the current revision: no compaction ends the pass), skipping from the last zone
        of a page past its end. A zone whole in a page has its generations from the page;
        the one a page cuts, read on (`BulkWriter.generations`)."""
        root = self._keys.zones_prefix().encode()
        start, end = root, prefix_range_end(root)
        swept = 0
        while True:
            page = await self._etcd.range(start, end, keys_only=True, limit=ZONE_PAGE)
            if not page.kvs:
                return swept
            found: dict[bytes, set[int]] = {}  # zone component: generations with data
            for kv in page.kvs:
                component, _, rest = kv.key[len(root):].partition(b"/")
                generations = found.setdefault(component, set())
                if rest.startswith(b"data/"):
                    text = rest[5:].split(b"/", 1)[0]
                    if text.isdigit():
                        generations.add(int(text))
            last = page.kvs[-1].key[len(root):].split(b"/", 1)[0]
            zones: list[tuple[dns.name.Name, list[int]]] = []
            for component, generations in found.items():
                try:
                    zone = parse_name_component(component.decode())
                except (ValueError, dns.exception.DNSException):
                    continue  # not a zone's key: not ours to delete
                if component == last and page.more:  # the page cut it: read on
                    zones.append((zone, await self._bulk.generations(zone, 0)))
                elif generations:
                    zones.append((zone, sorted(generations)))
            for i in range(0, len(zones), HEADS_PER_READ):
                swept += sum(n for n, _ in await self._decide(zones[i:i + HEADS_PER_READ]))
            if not page.more:
                return swept
            start = prefix_range_end(root + last + b"/")

    async def _marked(self) -> int:
        """Each marked zone; its mark deleted if the zone is clean (and not marked since)."""
        root = self._keys.unswept_root().encode()
        start, end = root, prefix_range_end(root)
        swept = 0
        while True:  # each page at the current revision: no compaction ends the pass
            page = await self._etcd.range(start, end, keys_only=True, limit=MARK_PAGE)
            marks = [(kv, zone) for kv in page.kvs
                     if (zone := self._keys.parse_unswept_key(kv.key)) is not None]
            for i in range(0, len(marks), HEADS_PER_READ):
                part = marks[i:i + HEADS_PER_READ]
                zones = [(zone, await self._bulk.generations(zone, 0)) for _, zone in part]
                for (kv, zone), (deleted, held) in zip(part, await self._decide(zones),
                                                       strict=True):
                    swept += deleted
                    # clean: a bulk write that marked it since keeps the mark, and so
                    # does a generation but the head's with data now (a writer that put
                    # its first key between the two reads and lost its registration before
                    # the second left one neither read showed): the compares
                    if held is not None:
                        await self._etcd.txn(
                            when=[Compare.mod_revision(kv.key) == kv.mod_revision,
                                  *self._only(zone, held)],
                            then=[Op.delete(kv.key)])
            if not page.more or not page.kvs:
                return swept
            start = page.kvs[-1].key + b"\0"

    def _only(self, zone: dns.name.Name, held: set[int]) -> list[Compare]:
        """The compares that `zone` has data keys in no generation but `held` (its head's,
        or none)."""
        root = self._keys.data_root(zone).encode()
        end = prefix_range_end(root)
        if not held:
            return [Compare.no_key(root, end)]
        prefix = self._keys.data_prefix(zone, next(iter(held))).encode()
        return [Compare.no_key(root, prefix), Compare.no_key(prefix_range_end(prefix), end)]

    async def _decide(self, zones: list[tuple[dns.name.Name, list[int]]]
                      ) -> list[tuple[int, set[int] | None]]:
        """Delete each of these zones' generations (read before) that neither its head nor
        a registration holds; per zone (how many, and if it was clean, no registration, no
        generation but the head's, nothing deleted: the head's generation, or none)."""
        if not zones:
            return []
        # the heads and the registrations now (one read, after the generations'): a
        # generation that had data at its read and that neither holds now never goes live
        ops: list[Op] = []
        for zone, _ in zones:
            ops += [Op.get(self._keys.head_key(zone)),
                    Op.get(self._keys.writing_prefix(zone), prefix=True)]
        try:
            read = await self._etcd.txn(when=[], then=ops)
        except ValidationError as exc:  # etcd's --max-txn-ops is lower: halves, each after
            if len(zones) == 1 or not too_many_ops(exc):  # the generations' reads still
                raise
            half = len(zones) // 2
            return await self._decide(zones[:half]) + await self._decide(zones[half:])
        out: list[tuple[int, set[int] | None]] = []
        for i, (zone, generations) in enumerate(zones):
            head = read.responses[2 * i].kvs  # type: ignore[union-attr]
            writing = read.responses[2 * i + 1].kvs  # type: ignore[union-attr]
            keep = {ZoneHead.from_json(head[0].value).generation} if head else set()
            keep |= {int(t) for kv in writing if (t := kv.key.rsplit(b"/", 1)[1]).isdigit()}
            swept = 0
            for generation in generations:
                if generation in keep:
                    continue
                keys = await self._bulk.delete(zone, generation)
                swept += 1
                self.counts["generations"] += 1
                self.counts["keys"] += keys
                emit(Event.GENERATION_SWEPT, zone=zone.to_text(), generation=generation,
                     keys=keys, head=bool(head))
            out.append((swept, keep if not writing and not swept else None))
        return out


class _SweepCollector(Collector):
    """What this node's sweep deleted, read at scrape time."""

    def __init__(self, counts: dict[str, int]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[CounterMetricFamily]:
        yield CounterMetricFamily(
            "dnscluster_generations_swept", "Orphaned zone generations (no head references "
            "them, no live writer holds them) this node deleted",
            value=self._counts["generations"])
        yield CounterMetricFamily("dnscluster_generation_keys_swept",
                                  "Data keys of those generations deleted",
                                  value=self._counts["keys"])
