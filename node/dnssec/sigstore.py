"""The zone signer's signature cache: per owner and type, the signed RRset, its RRSIGs as
one blob (`rrsigset`) and their expiration, with the refresh heap.

Owns what a `ZoneSigner` may reuse between passes and when each entry falls
due. Keyed by canonical keys (`denial.canonical_key`). Each entry is its own
heap item; the heap goes stale lazily: an entry that is no longer the
current one of its (key, type) is skipped when it reaches the top.
No dnspython rdata is kept here: a 100k-name signed zone has ~230k entries.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import NamedTuple

import dns.rrset

from node.dnssec.denial import CKey


class Signed(NamedTuple):
    """One signed RRset and its signatures; also its own refresh heap entry (ordered by
    expiration, then `seq`: a tuple, built ~230k times per full sign of a 100k zone)."""

    expiration: int
    seq: int  # 0 for a full pass's entries (their keys break ties), else unique
    key: CKey
    rdtype: int
    rrset: dns.rrset.RRset
    blob: bytes  # its RRSIG rdatas, one per key (`rrsigset.blob`)


class SigStore:
    """Signatures per (owner key, type) and the heap of their expirations."""

    __slots__ = ("_heap", "_seq", "sigs")

    def __init__(self) -> None:
        # per owner its entries sorted by type: a tuple, not a dict (~200 octets less)
        self.sigs: dict[CKey, tuple[Signed, ...]] = {}
        self._heap: list[Signed] = []
        self._seq = 0

    def clear(self) -> None:
        self.sigs.clear()
        self._heap.clear()

    def replace_all(self) -> dict[CKey, tuple[Signed, ...]]:
        """Start a full pass: empty the store, return the old entries (to reuse from)."""
        old = self.sigs
        self.sigs, self._heap = {}, []
        return old

    def get(self, key: CKey, rdtype: int) -> Signed | None:
        return find(self.sigs.get(key, ()), rdtype)

    def owner(self, key: CKey) -> tuple[Signed, ...]:
        """The owner's entries, by type."""
        return self.sigs.get(key, ())

    def drop(self, key: CKey, rdtype: int) -> None:
        """Forget the signatures of one RRset (its heap item goes stale)."""
        have = self.sigs.get(key)
        if have is not None and find(have, rdtype) is not None:
            self.sigs[key] = tuple(s for s in have if s.rdtype != rdtype)

    def forget(self, key: CKey) -> None:
        self.sigs.pop(key, None)

    def put(self, key: CKey, rdtype: int, rrset: dns.rrset.RRset, blob: bytes,
            expiration: int, *, refresh: bool = True, bulk: bool = False) -> None:
        """Store a signed RRset; `refresh`: due for re-signing at its expiration (on the
        heap); `bulk`: a full pass, whose heap is ordered by `heapify()` at the end."""
        if bulk:
            seq = 0
        else:
            self._seq += 1
            seq = self._seq
        self.keep(Signed(expiration, seq, key, rdtype, rrset, blob), refresh=refresh, bulk=bulk)

    def keep(self, signed: Signed, *, refresh: bool = True, bulk: bool = False) -> None:
        """Store an entry made before (a full pass reusing it)."""
        have = self.sigs.get(signed.key, ())
        t = signed.rdtype
        if not have or have[-1].rdtype < t:
            self.sigs[signed.key] = (*have, signed)
        else:
            self.sigs[signed.key] = tuple(sorted((*(s for s in have if s.rdtype != t), signed),
                                                 key=_rdtype))
        if not refresh:
            return
        if bulk:
            self._heap.append(signed)
        else:
            heapq.heappush(self._heap, signed)

    def heapify(self) -> None:
        heapq.heapify(self._heap)

    def due(self, until: int, skip: set[tuple[CKey, int]]) -> Iterator[Signed]:
        """Pop the entries expiring at or before `until` (not in `skip`), still current."""
        heap = self._heap
        while heap and heap[0].expiration <= until:
            c = heapq.heappop(heap)
            if self.get(c.key, c.rdtype) is not c or (c.key, c.rdtype) in skip:
                continue
            yield c

    def earliest(self) -> int | None:
        """The earliest expiration among current entries on the heap (stale tops dropped)."""
        heap = self._heap
        while heap:
            c = heap[0]
            if self.get(c.key, c.rdtype) is c:
                return c.expiration
            heapq.heappop(heap)
        return None


def _rdtype(s: Signed) -> int:
    return s.rdtype


def find(entries: tuple[Signed, ...], rdtype: int) -> Signed | None:
    """The entry of `rdtype` among one owner's."""
    for s in entries:
        if s.rdtype == rdtype:
            return s
    return None
