"""Bulk zone content for create-with-content and import: parse off the loop, write in batches.

Parsing runs in the node's worker pool (`node/work/zoneparse.py`), so the
interpreter that keeps the lease and the watch never holds a zone-sized
parse; what comes back is plain (key suffix, value) pairs, and writing them
is key concatenation and batched transactions (etcd caps a txn at 128
operations and 1.5 MiB), four in flight, the loop yielding every few
thousand records. A batch that gets no answer (a loaded etcd past the call
deadline) is sent again: the generation is not live until it is activated, so
putting the same keys twice is harmless. A `Progress` callback hears each stage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

import dns.name
import dns.rdatatype
import dns.rrset

from node.errors import EtcdUnavailable
from node.store.client import EtcdClient
from node.store.keys import KeyLayout, name_component
from node.store.txn import Op
from node.work.zoneparse import ParsedZone, parse_for_store
from node.zones.model import rrset_to_json

Progress = Callable[[str, int, int], None]  # (stage, done, total)
BATCH_OPS = 100
BATCH_BYTES = 1_000_000
IN_FLIGHT = 4
WRITE_ATTEMPTS = 5  # a batch without an answer is sent again (the generation is not live)


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

    async def parse(self, text: str, name: dns.name.Name) -> ParsedZone:
        if self._pool is None:
            return await asyncio.to_thread(parse_for_store, text, name.to_text())
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, parse_for_store, text, name.to_text())

    async def write(self, zone: dns.name.Name, generation: int,
                    records: Sequence[tuple[str, bytes]], progress: Progress = quiet) -> None:
        """Write (key suffix, value) records into `generation` in batched transactions."""
        prefix = self._keys.data_prefix(zone, generation)
        batches: list[list[Op]] = [[]]
        size = 0
        for i, (suffix, value) in enumerate(records):
            if len(batches[-1]) >= BATCH_OPS or size + len(value) > BATCH_BYTES:
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
                for attempt in range(WRITE_ATTEMPTS):
                    try:
                        await self._etcd.txn(when=[], then=batch)
                        break
                    except EtcdUnavailable:  # applied or not: the same puts again are harmless
                        if attempt == WRITE_ATTEMPTS - 1:
                            raise
                        await asyncio.sleep(0.5 * (attempt + 1))
            written[0] += len(batch)
            progress("writing", written[0], len(records))

        await asyncio.gather(*(write(b) for b in batches if b))
