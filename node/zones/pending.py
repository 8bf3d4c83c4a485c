"""Generations being written (an import, a create with content), decoded as the watch brings them.

An import writes a whole new generation of a zone, then flips the zone's
head to it in one transaction. The replica's watch sees every one of those
puts anyway; instead of skipping them and reading the generation again
with a range read at the flip (127k keys for the 100k-name bench zone),
`PendingGenerations` keeps them and decodes them in a heavy thread (node/priority.py), in
parts, while the import is still writing. At the flip, `take` hands over the decoded owners.

Complete by construction: a generation's id is the revision of its `gen`
key put (`BulkWriter.allocate`), and its data keys are written
after it; a generation is followed only from that put, seen by this watch,
so every later put under its data prefix is seen too. The replica forgets
everything on a full load (after a compaction the watch does not resume). A
delete under a followed generation (no import does that; a create that lost
its race deletes what it wrote) stops following it, and `take` returns None:
the replica then reads the generation as before. At most `KEEP` generations
per zone are followed, and a flip lets go of those of the zone started before
the one it takes (an import that failed or was cancelled never flips; one
that still flips later is read from etcd): nothing decoded stays that no flip
will take.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType

import dns.name
import dns.rrset

from node.priority import heavy_thread
from node.store.values import KeyValue
from node.zones.decode import NodeDecoder

Name = dns.name.Name
Nodes = dict[Name, MappingProxyType[int, dns.rrset.RRset]]
CHUNK = 2000  # keys decoded per thread call
KEEP = 2  # generations followed per zone
# While the import writes, its decoding runs in a heavy thread (node/priority.py:
# SCHED_BATCH; on the importing node it shares the interpreter lock with the writer); at
# the flip, the rest is decoded in a thread of normal policy: the zone waits for it.
_decoder: ThreadPoolExecutor | None = None
_flip: ThreadPoolExecutor | None = None


def _lower_priority() -> None:
    """The decoding thread is a heavy thread (node/priority.py), named in `top -H`."""
    heavy_thread(b"import-decoder")


def _at_flip() -> ThreadPoolExecutor:
    """The thread that decodes what is left at the flip, at the event loop's own priority
    (threads inherit their creator's nice value; asyncio.to_thread would use the control
    loop's default executor, whose threads run SCHED_BATCH, node/priority.py)."""
    global _flip
    if _flip is None:
        _flip = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-flip")
    return _flip


def _background() -> ThreadPoolExecutor:
    global _decoder
    if _decoder is None:
        _decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-decoder",
                                      initializer=_lower_priority)
    return _decoder


@dataclass(slots=True)
class _Pending:
    zone: Name
    decoder: NodeDecoder
    waiting: list[KeyValue] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    flipped: bool = False  # the zone waits: the rest is decoded at normal priority

    async def drain(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            while self.waiting and not self.flipped:  # a chunk at a time, in the heavy thread
                batch = self.waiting[:CHUNK]
                del self.waiting[:CHUNK]
                await loop.run_in_executor(_background(), self.decoder.add, batch)
        finally:
            self.task = None

    async def finish(self) -> Nodes:
        self.flipped = True
        if self.task is not None:  # its chunk at most
            await self.task
        batch, self.waiting = self.waiting, []

        def last() -> Nodes:
            self.decoder.add(batch)
            return self.decoder.nodes()

        return await asyncio.get_running_loop().run_in_executor(_at_flip(), last)


class PendingGenerations:
    """The generations this replica follows, by data prefix."""

    def __init__(self) -> None:
        self._gens: dict[bytes, _Pending] = {}

    def started(self, zone: Name, prefix: bytes) -> None:
        """The `gen` key of `zone` was put: follow the generation under `prefix` (from its
        start again if already followed: the put applied again)."""
        if prefix in self._gens:
            self._drop(prefix)  # else its drain task decodes on for nobody
        self._gens[prefix] = _Pending(zone, NodeDecoder(prefix))
        mine = [p for p, g in self._gens.items() if g.zone == zone]
        for old in mine[:-KEEP]:  # insertion order: the oldest first
            self._drop(old)

    def offer(self, prefix: bytes, kv: KeyValue, is_put: bool) -> None:
        """A watch event for a data key under `prefix` (a generation nobody serves yet)."""
        gen = self._gens.get(prefix)
        if gen is None:
            return
        if not is_put:  # not followed whole: let go of what it holds
            self._drop(prefix)
            return
        gen.waiting.append(kv)
        if len(gen.waiting) >= CHUNK and gen.task is None:
            gen.task = asyncio.get_running_loop().create_task(gen.drain())

    async def take(self, prefix: bytes) -> tuple[Nodes, float] | None:
        """The decoded owners of the generation under `prefix`, which is now served; None
        if it was not followed whole (then read it from etcd); with the CPU seconds of their
        decoding."""
        gen = self._gens.get(prefix)
        if gen is None:
            return None
        mine = [p for p, g in self._gens.items() if g.zone == gen.zone]
        for older in mine[:mine.index(prefix)]:  # started before this flip: failed, or
            self._drop(older)  # racing it (then read from etcd if it flips after all)
        del self._gens[prefix]
        return await gen.finish(), gen.decoder.cpu

    def forget(self, zone: Name) -> None:
        for prefix in [p for p, g in self._gens.items() if g.zone == zone]:
            self._drop(prefix)

    def clear(self) -> None:
        for prefix in list(self._gens):
            self._drop(prefix)

    def __len__(self) -> int:
        return len(self._gens)

    def _drop(self, prefix: bytes) -> None:
        gen = self._gens.pop(prefix)
        if gen.task is not None:
            gen.task.cancel()
