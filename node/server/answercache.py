"""`AnswerCache`: the answer cache both zone tables share, and its policy (issue 10 point 3).

Base of `node.server.table.ZoneTable` (answers computed in process, `server.workers = 0`)
and `node.image.table.ImageTable` (answers from mapped images, the serving workers). Owns
`caches[do]` (one dict per DO bit, key = lowercased qname wire + QTYPE + QCLASS as sent),
which the hot path reads first and which is never replaced nor cleared wholesale, and what
enters and leaves it. Two segments with their own bounds, in entries (`cache_max`) and in
bytes (`cache_bytes`: each entry's key and body plus `ENTRY_COST` for its objects and table
slots), each evicting its oldest entries first:

* hot: answers that exist anyway (pre-rendered in an image, a compiled zone's eager
  answers), admitted at once while the segment has room; once it is full, only when their
  key is asked again while the doorkeeper (`node.server.admission.Doorkeeper`) remembers it;
* cold: answers assembled on the cold path (negative answers, wildcard synthesis, CNAME
  chains, referrals below cuts) and SERVFAIL/REFUSED, admitted only when their key is
  asked again while the doorkeeper remembers it.

A flood of one-off names, existing or not, fills at most the cold segment and the hot
one's free room: it never evicts a hot answer. The table sets `cache_bytes` (default
`NO_BYTE_BOUND`): `ImageTable` from its images' size (the cached entries are copies it
alone holds); `ZoneTable` sets none (its entries are the compiled zones' own, shared).
Each key is recorded under the origin of the zone that answered it (`NO_ZONE` for
REFUSED), so a zone's new version drops only that zone's keys (`_drop`), and a change of
the set of served or held origins those of the zones above and below it (`_drop_related`).
The table computes the answers and decides hot or cold; it calls `_keep` once admitted.

One structure per entry besides the cache dict's slot (issue 10: the worker's heap is
mostly this cache): a segment holds each zone's keys in a deque, oldest first, and one
deque of references to those, one per entry in the order they came, which finds the
oldest entry across zones (`_Segment`): 16 octets an entry, where a slot in the
segment's `OrderedDict` and one in the zone's key set cost ~140.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator

from node.server.admission import Doorkeeper
from node.server.render import Entry

CACHE_MAX = 200_000
COLD_SHARE = 4  # the cold segment holds at most cache_max // COLD_SHARE entries (and bytes)
NO_BYTE_BOUND = sys.maxsize  # cache_bytes when the entries only are bounded
# an entry's octets besides its key's and body's: the key and body objects' headers (33
# each), the entry tuple (88; its ints and headers are shared), its slot in the cache dict
# (~35 on average) and its two references in its segment's deques (~16)
ENTRY_COST = 205
NO_ZONE = b""  # pseudo-origin of cached REFUSED answers
STALE_MIN = 4096  # dropped entries' references a segment's order keeps before a rebuild


def under(name: bytes, ancestor: bytes) -> bool:
    """True if the wire name is at or below `ancestor` (label-aligned)."""
    while len(name) > len(ancestor):
        name = name[name[0] + 1 :]
    return name == ancestor


class _Keys(deque[bytes]):
    """One zone's keys in one segment, oldest first."""

    __slots__ = ("origin",)

    def __init__(self, origin: bytes) -> None:
        super().__init__()
        self.origin = origin


class _Segment:
    """One segment of one DO bit: `zones` (origin -> its keys, oldest first) and `order` (a
    reference to a zone's keys per entry, in the order the entries came: the first one whose
    keys are not empty is the zone of the oldest entry, whose key is that zone's oldest).

    A zone's keys are dropped at once (`drop`: O(its keys)) and emptied, and their references
    left in `order` (`stale`, skipped) until there are more of them than live ones: then
    `order` is rebuilt without them (O(entries), at most once per as many dropped)."""

    __slots__ = ("order", "stale", "zones")

    def __init__(self) -> None:
        self.zones: dict[bytes, _Keys] = {}
        self.order: deque[_Keys] = deque()
        self.stale = 0

    def __len__(self) -> int:
        return len(self.order) - self.stale

    def __iter__(self) -> Iterator[bytes]:
        """The keys held (by zone, each zone's oldest first)."""
        for keys in self.zones.values():
            yield from keys

    def add(self, key: bytes, origin: bytes) -> None:
        keys = self.zones.get(origin)
        if keys is None:
            keys = self.zones[origin] = _Keys(origin)
        keys.append(key)
        self.order.append(keys)

    def pop_oldest(self) -> bytes:
        """The oldest key, taken out (the segment must not be empty)."""
        order = self.order
        keys = order.popleft()
        while not keys:  # a dropped zone's
            self.stale -= 1
            keys = order.popleft()
        key = keys.popleft()
        if not keys and self.zones.get(keys.origin) is keys:
            del self.zones[keys.origin]  # nothing in `order` refers to it any more
        return key

    def drop(self, origin: bytes) -> _Keys | None:
        """Take the zone's keys out; the caller empties them (`forget`) once it has read them."""
        keys = self.zones.pop(origin, None)
        if keys is not None:
            self.stale += len(keys)
        return keys

    def forget(self, keys: _Keys) -> None:
        """Empty keys `drop` returned, and rebuild `order` if the dropped now outnumber it."""
        keys.clear()
        if not self.zones:
            self.order = deque()
            self.stale = 0
        elif self.stale > max(STALE_MIN, len(self)):
            self.order = deque(k for k in self.order if k)
            self.stale = 0


class AnswerCache:
    """`caches[do]` and its two segments per DO bit (see the module docstring)."""

    __slots__ = ("_bytes", "_doors", "_segs", "cache_bytes", "cache_max", "caches")

    def __init__(self) -> None:
        self.caches: tuple[dict[bytes, Entry], dict[bytes, Entry]] = ({}, {})
        # per DO bit: the hot and the cold segment
        self._segs = ((_Segment(), _Segment()), (_Segment(), _Segment()))
        self.cache_max = CACHE_MAX
        self.cache_bytes = NO_BYTE_BOUND
        self._bytes = ([0, 0], [0, 0])  # per DO bit: the hot and the cold segment's bytes
        self._doors = (Doorkeeper(CACHE_MAX), Doorkeeper(CACHE_MAX))

    def _bound(self, cache_max: int) -> None:
        """Bound the cache at `cache_max` entries (at least `CACHE_MAX`) per DO bit; the
        doorkeepers grow with it once it passes their slots, not before (a version with a
        name more would reallocate them and forget every key asked once), and the segments
        shrink as entries are next kept."""
        self.cache_max = max(CACHE_MAX, cache_max)
        if self._doors[0].window < self.cache_max:
            self._doors = (Doorkeeper(self.cache_max), Doorkeeper(self.cache_max))

    def _segment(self, do: int, hot: bool) -> _Segment:
        """The hot or the cold segment of a DO bit (its keys: iterate it)."""
        return self._segs[do][0 if hot else 1]

    def _drop(self, origin: bytes) -> None:
        """Drop the keys answered by the zone `origin` (`NO_ZONE`: the REFUSED ones). A
        table left empty gives its slots back: a dict keeps its size as its keys go (a
        100k-name zone's answers at one DO bit: ~3 MiB of empty slots in the cache dict,
        kept for a DO bit that a signed zone's clients never ask)."""
        for do in (0, 1):
            cache = self.caches[do]
            used = self._bytes[do]
            for i, seg in enumerate(self._segs[do]):
                keys = seg.drop(origin)
                if keys is None:
                    continue
                freed = 0
                for k in keys:
                    entry = cache.pop(k, None)
                    if entry is not None:
                        freed += ENTRY_COST + len(k) + len(entry[2])
                used[i] -= freed
                seg.forget(keys)
            if not cache:
                cache.clear()  # the same object (the hot path holds it): slots freed

    def _drop_related(self, origin: bytes) -> None:
        """Drop the keys of `origin`, of the zones above and below it, and REFUSED ones."""
        cached = {o for segs in self._segs for seg in segs for o in seg.zones}
        for o in cached:
            if o == NO_ZONE or under(o, origin) or under(origin, o):
                self._drop(o)

    def _keep(self, key: bytes, do: int, entry: Entry, origin: bytes, hot: bool) -> None:
        """Cache `entry` (hot: it exists anyway; else admitted by the doorkeeper already)
        under the zone `origin`, evicting the segment's oldest entries down to its bounds.
        A hot answer that would evict is admitted only as a cold one is: asked again while
        the doorkeeper remembers it (a sweep of names asked once never evicts a hot one)."""
        cache = self.caches[do]
        if key in cache:
            return
        i = 0 if hot else 1
        seg = self._segs[do][i]
        cold_max = self.cache_max // COLD_SHARE
        limit = self.cache_max - cold_max if hot else cold_max
        cold_bytes = self.cache_bytes // COLD_SHARE
        byte_limit = self.cache_bytes - cold_bytes if hot else cold_bytes
        used = self._bytes[do]
        cost = ENTRY_COST + len(key) + len(entry[2])
        if cost > byte_limit:
            return
        n = len(seg)
        if hot and (n >= limit or used[0] + cost > byte_limit) \
                and not self._doors[do].admit(key):
            return
        while n and (n >= limit or used[i] + cost > byte_limit):
            old = seg.pop_oldest()
            n -= 1
            gone = cache.pop(old, None)
            if gone is not None:
                used[i] -= ENTRY_COST + len(old) + len(gone[2])
        seg.add(key, origin)
        cache[key] = entry
        used[i] += cost
