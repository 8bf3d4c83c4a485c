"""When each signed owner falls due for refresh: the zone signer's refresh schedule.

Owns the order in which a `ZoneSigner` renews signatures (issue 10, session 14:
a heap of nodes that each held their due time as an int cost ~48 octets per
signed owner, ~10 MiB for the 100k-name NSEC3 zone). A full pass adds every
owner (`add_bulk`) and `seal`s: the nodes sorted by due time in one list, the
times in a parallel `array('q')` (16 octets per owner), read from the front.
An incremental pass `add`s its few new nodes to a small heap of (due, seq,
node) tuples, which is merged into the sorted list once it outgrows
max(FOLD_MIN, live / FOLD_SHARE), so the schedule stays compact however long
the signer runs incrementally (a merge costs a Python step per heap entry,
~1 us, the front is copied in slices).

A node that is no longer its owner's current one is `retire`d by the caller
(by identity: no look-up of its owner) and dropped when it comes up or at the
next fold; until then it is held, as the heap this replaces held it.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import operator
from array import array
from collections.abc import Iterator
from itertools import compress
from typing import Generic, TypeVar

N = TypeVar("N")
FOLD_MIN = 4096
FOLD_SHARE = 8
_TRIM_MIN = 4096


class RefreshSchedule(Generic[N]):
    """Nodes by due time (ints, seconds): a sorted front and a small heap of recent ones."""

    __slots__ = ("_dues", "_heap", "_order", "_pos", "_seq", "_stale")

    def __init__(self) -> None:
        self._order: list[N | None] = []  # by due time from `_pos` on; None: taken
        self._dues = array("q")  # `_order`'s due times
        self._pos = 0
        self._heap: list[tuple[int, int, N]] = []
        self._seq = itertools.count()
        self._stale: set[int] = set()  # ids of retired nodes still held here

    def __len__(self) -> int:
        """Scheduled nodes, retired ones included."""
        return len(self._order) - self._pos + len(self._heap)

    def __iter__(self) -> Iterator[N]:
        """Every scheduled node (retired ones included), in no particular order."""
        yield from self._order[self._pos:]  # type: ignore[misc]
        for _, _, node in self._heap:
            yield node

    def add_bulk(self, node: N, due: int) -> None:
        """Schedule `node` in a full pass: `seal` orders what was added so."""
        self._order.append(node)
        self._dues.append(due)

    def seal(self) -> None:
        """Order the front after `add_bulk`s (and the heap's nodes with it): ~0.15 s for a
        full pass of 213k owners, all in C but the sort's key calls."""
        nodes: list[N | None] = self._order
        dues = self._dues
        if self._pos or self._heap or self._stale:  # not straight after a full pass
            nodes, dues = [], array("q")
            live = self._live
            order, times = self._order, self._dues
            for i in range(self._pos, len(order)):
                node = order[i]
                if live(node):  # type: ignore[arg-type]
                    nodes.append(node)
                    dues.append(times[i])
            for due, _, node in self._heap:
                if live(node):
                    nodes.append(node)
                    dues.append(due)
        ranks = sorted(range(len(dues)), key=dues.__getitem__)
        self._order = list(map(nodes.__getitem__, ranks))
        self._dues = array("q", map(dues.__getitem__, ranks))
        self._pos = 0
        self._heap = []

    def add(self, node: N, due: int) -> None:
        """Schedule `node` (an incremental pass's)."""
        heap = self._heap
        heapq.heappush(heap, (due, next(self._seq), node))
        if len(heap) > FOLD_MIN and len(heap) * FOLD_SHARE > len(self._order) - self._pos:
            self._fold()

    def retire(self, node: N) -> None:
        """`node`, scheduled, is no longer its owner's: drop it when it comes up. Only for
        a node that is on the schedule now (the id must stay its while it is held)."""
        self._stale.add(id(node))

    def _live(self, node: N) -> bool:
        stale = self._stale
        if stale and id(node) in stale:
            stale.discard(id(node))
            return False
        return True

    def _fold(self) -> None:
        """Merge the heap's nodes into the front: O(heap) Python steps, the front copied in
        slices (C); its retired nodes stay until they come up, unless they are many."""
        live = self._live
        order, dues, start = self._order, self._dues, self._pos
        stale = self._stale
        if len(stale) * FOLD_SHARE > len(self):  # dropped, the front kept in order (C loops)
            front = order[start:]
            kept = list(map(operator.not_, map(stale.__contains__, map(id, front))))
            stale.difference_update(compress(map(id, front), map(operator.not_, kept)))
            dues = array("q", compress(dues[start:], kept))
            order, start = list(compress(front, kept)), 0
        items = sorted(entry for entry in self._heap if live(entry[2]))
        merged: list[N | None] = []
        times = array("q")
        for due, _, node in items:
            i = bisect.bisect_right(dues, due, start)
            merged += order[start:i]
            times += dues[start:i]
            merged.append(node)
            times.append(due)
            start = i
        merged += order[start:]
        times += dues[start:]
        self._order, self._dues, self._pos, self._heap = merged, times, 0, []

    def pop_due(self, until: int) -> list[N]:
        """Take the nodes due at or before `until` (retired ones dropped)."""
        out: list[N] = []
        current = self._live
        order, dues, pos = self._order, self._dues, self._pos
        end = len(order)
        while pos < end and dues[pos] <= until:
            node = order[pos]
            order[pos] = None
            pos += 1
            if current(node):  # type: ignore[arg-type]
                out.append(node)  # type: ignore[arg-type]
        self._pos = pos
        heap = self._heap
        while heap and heap[0][0] <= until:
            node = heapq.heappop(heap)[2]
            if current(node):
                out.append(node)
        self._trim()
        return out

    def earliest(self) -> int | None:
        """The earliest due time among nodes not retired (retired ones at the top dropped)."""
        current = self._live
        order, dues, pos = self._order, self._dues, self._pos
        end = len(order)
        while pos < end and not current(order[pos]):  # type: ignore[arg-type]
            order[pos] = None
            pos += 1
        self._pos = pos
        heap = self._heap
        while heap and not current(heap[0][2]):
            heapq.heappop(heap)
        self._trim()
        first = dues[pos] if pos < end else None
        if heap and (first is None or heap[0][0] < first):
            first = heap[0][0]
        return first

    def _trim(self) -> None:
        """Let go of the taken front once it is most of the list (amortised O(1))."""
        pos = self._pos
        if pos > _TRIM_MIN and pos * 2 > len(self._order):
            del self._order[:pos]
            del self._dues[:pos]
            self._pos = 0
