"""Reading a whole key range at one revision in bounded sub-ranges (`EtcdClient.range_all`,
and `EtcdClient.range_scan` for callers that reduce the range part by part).

etcd 3.4 walks its whole in-memory index from a request's start key to its
range end for every limited read (to fill `count`), whatever the limit. Paging
a range of N keys by "last key + \\x00" with a limit therefore costs
N²/(2·page) index steps: for a 1M-name zone (1.27M keys, pages of 1,000)
that is 800M steps, and each page took longer than the call deadline on a
loaded machine. So a range that turns out large is read in two passes, both
at the revision of the first page:

1. keys only, in pages of `key_page` keys (few calls, so the walk stays
   bounded: N²/(2·key_page)), keeping every `page`-th key as a split point;
2. the values, one unlimited read per sub-range [split, next split): each
   walks only its own `page` keys, a few in flight at a time.

The split points are keys that exist at that revision, so the sub-ranges
partition the range exactly: no key twice, none missing, whatever is written
meanwhile (a later write is not visible at the pinned revision; a compaction of
it raises `Compacted`, as a paged read always did).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from node.store.values import KeyValue, RangeResult

# (start, end, limit, revision, keys_only) -> one Range call
RangeCall = Callable[[bytes, bytes, int, int, bool], Awaitable[RangeResult]]
PartSink = Callable[[int, Sequence[KeyValue]], None]  # (part index, its kvs in key order)
SMALL_PAGES = 8  # a range of up to this many pages is paged as usual (the walk stays small)
KEY_PAGE = 100_000  # keys per keys-only read of the split pass (~6 MB of keys for zone data)
IN_FLIGHT = 4


async def read_range(call: RangeCall, start: bytes, end: bytes, *, page: int,
                     revision: int, key_page: int = KEY_PAGE) -> tuple[list[KeyValue], int]:
    """Every key in [start, end) at `revision` (0: the first read's); (kvs in key order,
    revision)."""
    parts: dict[int, Sequence[KeyValue]] = {}
    revision = await scan_range(call, start, end, page=page, revision=revision,
                                key_page=key_page, sink=parts.__setitem__)
    return [kv for i in sorted(parts) for kv in parts[i]], revision


async def scan_range(call: RangeCall, start: bytes, end: bytes, *, page: int, revision: int,
                     sink: PartSink, key_page: int = KEY_PAGE) -> int:
    """`read_range` without the list: each part of [start, end) at `revision` goes to
    `sink(index, kvs)` as it arrives (parts in index order are the keys in order; they may
    arrive out of order), so a caller that reduces a range never holds all of it. Returns
    the revision read at."""
    first = await call(start, end, page, revision, False)
    revision = revision or first.revision
    sink(0, first.kvs)
    if not first.more or not first.kvs:
        return revision
    cursor = first.kvs[-1].key + b"\x00"
    if first.count <= SMALL_PAGES * page:
        index = 1
        while True:  # at most SMALL_PAGES pages, each walking at most the whole range
            result = await call(cursor, end, page, revision, False)
            sink(index, result.kvs)
            index += 1
            if not result.more or not result.kvs:
                return revision
            cursor = result.kvs[-1].key + b"\x00"
    splits = await _split_points(call, cursor, end, page, revision, max(key_page, page))
    bounds = [*splits, end]
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def part(i: int) -> None:
        async with sem:
            sink(i + 1, (await call(bounds[i], bounds[i + 1], 0, revision, False)).kvs)

    await asyncio.gather(*(part(i) for i in range(len(splits))))
    return revision


async def _split_points(call: RangeCall, cursor: bytes, end: bytes, page: int,
                        revision: int, key_page: int) -> list[bytes]:
    """Every `page`-th key from `cursor` on (the first included), read keys-only."""
    splits: list[bytes] = []
    seen = 0
    while True:
        result = await call(cursor, end, key_page, revision, True)
        keys = [kv.key for kv in result.kvs]
        splits.extend(keys[(-seen) % page::page])
        seen += len(keys)
        if not result.more or not keys:
            return splits
        cursor = keys[-1] + b"\x00"
