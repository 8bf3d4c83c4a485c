"""`ZoneTable`: the zones this node serves, by origin, swapped atomically per version.

Owns the set of compiled zones and the longest-suffix zone match; the
table-wide answer cache the hot path reads first (one dict lookup per query:
key = lowercased qname wire + QTYPE + QCLASS as sent, one dict per DO bit) and
its policy are `node.server.answercache.AnswerCache`'s, shared with the serving
workers' `ImageTable`: bounded, never cleared wholesale, and what enters it is
an answer that exists anyway (a zone's eager answers, the hot segment) at once
while that segment has room, any other one (the cold segment, which alone a
flood of one-off names can fill), or a hot one once its segment is full, only
when its key is asked a second time (`admission.Doorkeeper`). It is bounded in
entries (4 per name of the zones served) and not in bytes (`cache_bytes` stays
`NO_BYTE_BOUND`): its hot entries are the compiled zones' own eager answer tuples,
or a signed zone's DO=1 answers at its names, and those and the cold ones are kept
by their segment alone (never by the zone besides), so the entry bound bounds
what it holds; the image table's floor of
16 MiB per DO bit would cap a 100k-name zone's cache at a fraction of its
working set (~40k entries at ~430 octets counted each, against 400k). `publish`
builds the new `CompiledZone` first and only then swaps it in and drops that
zone's cached answers (a hold or a removal, or a zone new to the table, also
those of the zones above and below it, and the REFUSED ones), so no answer of
an older version is served once `publish` returns, and other zones' answers stay.

The replica calls `publish(snapshot)` (or `await publish_async(snapshot)`,
which compiles in a worker thread) for every new version of a zone, in order;
`snapshot.changed` must be relative to the previous snapshot published for that
zone. Snapshots older (by etcd revision) than the one served are ignored.
`publish_async` also hands each version to the IXFR journals
(`node.server.journal`), which diff it while it compiles, and serves it once
both are done: an IXFR for the served version is always answered
incrementally when the journal reaches the client's serial. (Except a zone's
first version since the start: it is served at once, while the journal reads
and checks its file, O(zone), in the background; and a version with new
content throughout, `changed` None, an import: served at once, its O(zone)
step recorded in the background, an IXFR to it meanwhile in AXFR form; with serving
workers that step starts once the workers serve the version, `Journals.settle`, so its
~1 CPU-s per 100k names does not delay the answers: issue 10.) `publish` does not
(the journal then diffs from its last version at the next `publish_async`).
A `remove` wins over a version still compiling (a publisher that the removal
does not cancel, e.g. a file zone's `record` edit): that version is not served.
`hold(origin)` makes a zone answer SERVFAIL (and refuse transfers) until its
next `publish`: the signing worker uses it for a published signed zone this
node has not signed yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import dns.name

from node.server.answer import DS, name_wire
from node.server.answercache import NO_ZONE, AnswerCache
from node.server.compile import CompiledZone
from node.server.journal import Journals
from node.server.render import QR, Entry, make_entry
from node.server.wire import REFUSED, SERVFAIL, TYPE_AXFR, TYPE_IXFR
from node.zones.model import ZoneSnapshot

log = logging.getLogger(__name__)

IN_CLASS = b"\x00\x01"


class _Publishing:
    """An origin's `publish_async` calls under way: the lock that keeps its versions in order,
    how many wait for it or hold it, and the removals since (a compile spanning one is
    discarded)."""

    __slots__ = ("lock", "removals", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.removals = 0
        self.users = 0


class ZoneTable(AnswerCache):
    """Compiled zones by origin; `caches[do]` is the hot path's first stop."""

    __slots__ = ("_held", "_publishing", "_zones", "journals")
    compile_in_thread = True  # False: `_compile` is cheap (a subclass's shell): no thread hop
    # NXDOMAIN shortcuts by closest encloser, per DO bit, as `ImageTable.shortcuts`: none here
    shortcuts: tuple[dict[bytes, Callable[[bytes], Entry | None]], ...] = ({}, {})

    def __init__(self, journals: Journals | None = None) -> None:
        super().__init__()
        self.journals = journals  # IXFR journals, fed by publish_async
        self._zones: dict[bytes, CompiledZone] = {}
        self._held: set[bytes] = set()  # origins answered SERVFAIL until their next publish
        # per origin with a `publish_async` under way only (dropped with its last one: a
        # node whose zones come and go does not keep a lock per origin it ever served)
        self._publishing: dict[bytes, _Publishing] = {}

    # --- zone management ------------------------------------------------------

    def publish(self, snapshot: ZoneSnapshot) -> None:
        """Compile `snapshot` (incrementally when possible) and serve it."""
        prev = self._zones.get(name_wire(snapshot.origin))
        if self._stale(prev, snapshot):
            return
        self._install(self._compile(prev, snapshot))

    async def publish_async(self, snapshot: ZoneSnapshot) -> None:
        """As `publish`, compiling in a worker thread; versions of a zone stay ordered."""
        origin = name_wire(snapshot.origin)
        pub = self._publishing.get(origin)
        if pub is None:
            pub = self._publishing[origin] = _Publishing()
        pub.users += 1
        try:
            async with pub.lock:
                await self._publish_locked(origin, pub, snapshot)
        finally:
            pub.users -= 1
            if not pub.users and self._publishing.get(origin) is pub:
                del self._publishing[origin]

    async def _publish_locked(self, origin: bytes, pub: _Publishing,
                              snapshot: ZoneSnapshot) -> None:
        """`publish_async` holding the origin's lock."""
        prev = self._zones.get(origin)
        if self._stale(prev, snapshot):
            return
        removals = pub.removals
        recorded = None
        journals = self.journals
        if journals is not None:
            # the first version is not held up by a load, nor a whole new content (an
            # import: its step is O(zone), and an IXFR to it is the zone anyway) by its
            # step: an IXFR reaching it meanwhile is answered in AXFR form
            deferred = not journals.tracking(snapshot.origin) or snapshot.changed is None
            recorded = journals.record(None if prev is None else prev.snapshot, snapshot,
                                       deferred)
            if deferred:
                recorded.add_done_callback(lambda _: journals.installed(snapshot))
                recorded = None
        zone = await asyncio.to_thread(self._compile, prev, snapshot) \
            if self.compile_in_thread else self._compile(prev, snapshot)
        if recorded is not None:  # an IXFR can reach this version once it is served
            await recorded
        if pub.removals != removals:  # a caller not cancelled by it
            log.info("not serving zone %s serial %d: removed while it compiled",
                     snapshot.origin, snapshot.serial)
            return
        self._install(zone)
        if journals is not None:
            journals.installed(snapshot)

    def remove(self, origin: dns.name.Name) -> bool:
        """Stop serving `origin`; False if it was not served."""
        wire = name_wire(origin)
        zone = self._zones.pop(wire, None)
        pub = self._publishing.get(wire)
        if pub is not None:  # a version compiling now is not served
            pub.removals += 1
        held = wire in self._held
        self._held.discard(wire)
        self._drop_related(wire)
        if zone is not None:
            self._size()
        if self.journals is not None:
            self.journals.remove(origin)
        return zone is not None or held

    def hold(self, origin: dns.name.Name) -> None:
        """Answer SERVFAIL for `origin` (and refuse transfers) until it is next published.

        For a published signed zone this node has not signed yet (DESIGN.md:
        never serve it unsigned).
        """
        wire = name_wire(origin)
        self._held.add(wire)
        self._drop_related(wire)

    def held(self, origin: dns.name.Name) -> bool:
        return name_wire(origin) in self._held

    def get(self, origin: dns.name.Name) -> CompiledZone | None:
        return self._zones.get(name_wire(origin))

    def zones(self) -> list[dns.name.Name]:
        return sorted(z.snapshot.origin for z in self._zones.values())

    def _stale(self, prev: CompiledZone | None, snapshot: ZoneSnapshot) -> bool:
        if prev is not None and snapshot.revision < prev.snapshot.revision:
            log.info(
                "ignoring zone %s at revision %d: revision %d is served",
                snapshot.origin,
                snapshot.revision,
                prev.snapshot.revision,
            )
            return True
        return False

    def _install(self, zone: CompiledZone) -> None:
        origin = zone.origin
        new = self._zones.get(origin) is None or origin in self._held
        self._zones[origin] = zone
        self._held.discard(origin)
        if new:  # the served origins change: the answers of the zones above and below
            self._drop_related(origin)
        else:
            self._drop(origin)
        self._size()

    def _size(self) -> None:
        """The cache's bound from the zones served now (after each install and removal): it
        must hold the working set of every zone, or it thrashes."""
        self._bound(sum(4 * len(z.snapshot.nodes) for z in self._zones.values()))

    @staticmethod
    def _compile(prev: CompiledZone | None, snapshot: ZoneSnapshot) -> CompiledZone:
        """What the table holds for `snapshot` (a subclass may hold less)."""
        return _compile(prev, snapshot)

    # --- lookups ----------------------------------------------------------------

    def find(self, lname: bytes) -> CompiledZone | None:
        """The served zone with the longest origin that is a suffix of the lowercased wire
        name; None if there is none or if that zone is held."""
        zone, held = self._match(lname)
        return None if held is not None else zone

    def held_origin(self, lname: bytes) -> bytes | None:
        """The origin (wire) of the held zone that answers for `lname`, if one does."""
        return self._match(lname)[1]

    def _match(self, lname: bytes) -> tuple[CompiledZone | None, bytes | None]:
        """The zone answering for `lname`, or the held origin that does (then no zone)."""
        zones = self._zones
        held = self._held
        n = lname
        while True:
            if held and n in held:
                return None, n
            zone = zones.get(n)
            if zone is not None:
                return zone, None
            if len(n) <= 1:
                return None, None
            n = n[n[0] + 1 :]

    def lookup(self, key: bytes, do: int) -> Entry | None:
        """The entry for a hot-path key after a cache miss; None for AXFR/IXFR (slow path)."""
        qtype = key[-4] << 8 | key[-3]
        if qtype in (TYPE_AXFR, TYPE_IXFR):
            return None
        lname = key[:-4]
        zone, held = self._match(lname)
        if zone is not None and qtype == DS and lname == zone.origin and len(lname) > 1:
            above, held = self._match(lname[lname[0] + 1 :])  # the parent's, if we serve it
            zone = None if held is not None else above or zone
        hot = False
        if held is not None:
            entry = make_entry(QR | SERVFAIL, qtype, len(key), b"")
            origin = held
            admit = self._doors[do].admit(key)
        elif zone is None or key[-2:] != IN_CLASS:
            entry = make_entry(QR | REFUSED, qtype, len(key), b"")
            origin = NO_ZONE
            admit = self._doors[do].admit(key)
        else:
            origin = zone.origin
            # an eager answer (an image's pre-rendered one) is hot; what is rendered here (a
            # cold answer, or a signed zone's DO=1 one at its names) lives in its segment
            # alone, not in the zone's lazy caches besides, or the segment's bound and its
            # admission would not bound what a flood or a sweep of the names leaves
            hot = key in zone.answers
            admit = hot or self._doors[do].admit(key)
            entry = zone.answer(key, do, keep=False)
        if admit:
            self._keep(key, do, entry, origin, hot)
        return entry

    def resolve(self, key: bytes, do: int) -> Entry | None:
        """`lookup` (`ImageTable.resolve`'s contract: there are no shortcuts here to skip);
        a subclass's `lookup` is the one called."""
        return self.lookup(key, do)


def _compile(prev: CompiledZone | None, snapshot: ZoneSnapshot) -> CompiledZone:
    start = time.perf_counter()
    if prev is None or snapshot.changed is None:
        zone = CompiledZone.build(snapshot)
    else:
        zone = CompiledZone.evolve(prev, snapshot)
    log.debug(
        "compiled zone %s serial %d (%s) in %.1f ms: %d eager answers",
        snapshot.origin,
        snapshot.serial,
        "full" if snapshot.changed is None else "incremental",
        (time.perf_counter() - start) * 1000,
        len(zone.answers),
    )
    return zone
