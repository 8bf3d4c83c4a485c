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
"""

from __future__ import annotations

import sys
from collections import OrderedDict

from node.server.admission import Doorkeeper
from node.server.render import Entry

CACHE_MAX = 200_000
COLD_SHARE = 4  # the cold segment holds at most cache_max // COLD_SHARE entries (and bytes)
NO_BYTE_BOUND = sys.maxsize  # cache_bytes when the entries only are bounded
# an entry's octets besides its key's and body's: the key and body objects' headers (33
# each), the entry tuple (88; its ints and headers are shared), its slots in the cache
# dict, the segment's ordered dict and the zone's key set (~140)
ENTRY_COST = 300
NO_ZONE = b""  # pseudo-origin of cached REFUSED answers


def _under(name: bytes, ancestor: bytes) -> bool:
    """True if the wire name is at or below `ancestor` (label-aligned)."""
    while len(name) > len(ancestor):
        name = name[name[0] + 1 :]
    return name == ancestor


class AnswerCache:
    """`caches[do]` and its two segments per DO bit (see the module docstring)."""

    __slots__ = ("_by_zone", "_bytes", "_cold", "_doors", "_hot", "cache_bytes", "cache_max",
                 "caches")

    def __init__(self) -> None:
        self.caches: tuple[dict[bytes, Entry], dict[bytes, Entry]] = ({}, {})
        self._hot: tuple[OrderedDict[bytes, bytes], ...] = (OrderedDict(), OrderedDict())
        self._cold: tuple[OrderedDict[bytes, bytes], ...] = (OrderedDict(), OrderedDict())
        self._by_zone: tuple[dict[bytes, set[bytes]], ...] = ({}, {})
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

    def _drop(self, origin: bytes) -> None:
        """Drop the keys answered by the zone `origin` (`NO_ZONE`: the REFUSED ones). A
        table left empty gives its slots back: a dict keeps its size as its keys go (a
        100k-name zone's answers at one DO bit: ~6 MiB of empty slots in the cache dict and
        the hot segment, kept for a DO bit that a signed zone's clients never ask)."""
        for do in (0, 1):
            keys = self._by_zone[do].pop(origin, None)
            if not keys:
                continue
            cache, hot, cold = self.caches[do], self._hot[do], self._cold[do]
            used = self._bytes[do]
            for k in keys:
                entry = cache.pop(k, None)
                seg = 0 if hot.pop(k, None) is not None else 1
                if seg:
                    cold.pop(k, None)
                if entry is not None:
                    used[seg] -= ENTRY_COST + len(k) + len(entry[2])
            for table in (cache, hot, cold):
                if not table:
                    table.clear()  # the same object (the hot path holds it): slots freed

    def _drop_related(self, origin: bytes) -> None:
        """Drop the keys of `origin`, of the zones above and below it, and REFUSED ones."""
        related = {o for o in (*self._by_zone[0], *self._by_zone[1])
                   if o == NO_ZONE or _under(o, origin) or _under(origin, o)}
        for o in related:
            self._drop(o)

    def _keep(self, key: bytes, do: int, entry: Entry, origin: bytes, hot: bool) -> None:
        """Cache `entry` (hot: it exists anyway; else admitted by the doorkeeper already)
        under the zone `origin`, evicting the segment's oldest entries down to its bounds.
        A hot answer that would evict is admitted only as a cold one is: asked again while
        the doorkeeper remembers it (a sweep of names asked once never evicts a hot one)."""
        cache = self.caches[do]
        if key in cache:
            return
        seg = self._hot[do] if hot else self._cold[do]
        cold_max = self.cache_max // COLD_SHARE
        limit = self.cache_max - cold_max if hot else cold_max
        cold_bytes = self.cache_bytes // COLD_SHARE
        byte_limit = self.cache_bytes - cold_bytes if hot else cold_bytes
        used = self._bytes[do]
        i = 0 if hot else 1
        cost = ENTRY_COST + len(key) + len(entry[2])
        if cost > byte_limit:
            return
        if hot and (len(seg) >= limit or used[0] + cost > byte_limit) \
                and not self._doors[do].admit(key):
            return
        by_zone = self._by_zone[do]
        while seg and (len(seg) >= limit or used[i] + cost > byte_limit):
            old, old_origin = seg.popitem(last=False)
            gone = cache.pop(old, None)
            if gone is not None:
                used[i] -= ENTRY_COST + len(old) + len(gone[2])
            keys = by_zone.get(old_origin)
            if keys is not None:
                keys.discard(old)
        seg[key] = origin
        cache[key] = entry
        used[i] += cost
        by_zone.setdefault(origin, set()).add(key)
