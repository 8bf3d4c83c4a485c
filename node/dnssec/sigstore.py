"""The zone signer's signature cache: per owner and type, the signed RRset, its RRSIGs as
one blob (`rrsigset`) and their expiration, with the refresh heap.

Owns what a `ZoneSigner` may reuse between passes and when each entry falls
due. Keyed by canonical keys (`denial.canonical_key`). The heap holds
(expiration, sequence, key, type) and goes stale lazily: an entry whose
signature was replaced or dropped is skipped when it reaches the top.
No dnspython rdata is kept here: a 100k-name signed zone has ~230k entries.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import NamedTuple

import dns.rrset

from node.dnssec.denial import CKey


class Signed(NamedTuple):
    """One signed RRset and its signatures (a tuple: built ~200k times per full sign)."""

    rrset: dns.rrset.RRset
    blob: bytes  # its RRSIG rdatas, one per key (`rrsigset.blob`)
    expiration: int


class SigStore:
    """Signatures per (owner key, type) and the heap of their expirations."""

    __slots__ = ("_heap", "_seq", "sigs")

    def __init__(self) -> None:
        self.sigs: dict[CKey, dict[int, Signed]] = {}
        self._heap: list[tuple[int, int, CKey, int]] = []
        self._seq = 0

    def clear(self) -> None:
        self.sigs.clear()
        self._heap.clear()

    def replace_all(self) -> dict[CKey, dict[int, Signed]]:
        """Start a full pass: empty the store, return the old entries (to reuse from)."""
        old = self.sigs
        self.sigs, self._heap = {}, []
        return old

    def get(self, key: CKey, rdtype: int) -> Signed | None:
        return self.sigs.get(key, {}).get(rdtype)

    def put(self, key: CKey, rdtype: int, signed: Signed, *, refresh: bool = True,
            bulk: bool = False) -> None:
        """Store `signed`; `refresh`: due for re-signing at its expiration (on the heap);
        `bulk`: the heap is ordered by `heapify()` after a batch of puts."""
        self.sigs.setdefault(key, {})[rdtype] = signed
        if not refresh:
            return
        if bulk:
            self._heap.append((signed.expiration, 0, key, rdtype))
        else:
            self._seq += 1
            heapq.heappush(self._heap, (signed.expiration, self._seq, key, rdtype))

    def heapify(self) -> None:
        heapq.heapify(self._heap)

    def due(self, until: int, skip: set[tuple[CKey, int]]) -> Iterator[tuple[CKey, Signed]]:
        """Pop the entries expiring at or before `until` (not in `skip`), still current."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            exp, _, key, t = heapq.heappop(heap)
            c = self.get(key, t)
            if c is None or c.expiration != exp or (key, t) in skip:
                continue
            yield key, c

    def earliest(self) -> int | None:
        """The earliest expiration among current entries on the heap (stale tops dropped)."""
        heap = self._heap
        while heap:
            exp, _, key, t = heap[0]
            c = self.get(key, t)
            if c is not None and c.expiration == exp:
                return exp
            heapq.heappop(heap)
        return None
