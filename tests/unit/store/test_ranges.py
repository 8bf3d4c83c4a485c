"""`node.store.ranges.read_range` over an in-memory sorted key space with etcd's Range
semantics (limit, `more`, `count` = keys in [start, end)): the sub-ranges partition the
range exactly for every page and key-page size, and the keys walked stay linear."""

from __future__ import annotations

import bisect

import pytest

from node.store.ranges import read_range, scan_range
from node.store.values import KeyValue, RangeResult


class Space:
    """A sorted key space answering Range like etcd, counting the keys it walks."""

    def __init__(self, n: int) -> None:
        self.keys = [f"k{i:05d}".encode() for i in range(n)]
        self.walked = 0

    async def call(self, start: bytes, end: bytes, limit: int, revision: int,
                   keys_only: bool) -> RangeResult:
        lo, hi = bisect.bisect_left(self.keys, start), bisect.bisect_left(self.keys, end)
        inside = self.keys[lo:hi]
        self.walked += len(inside)
        shown = inside[:limit] if limit else inside
        kvs = tuple(KeyValue(k, b"" if keys_only else k.upper(), 1, 1, 1, 0) for k in shown)
        return RangeResult(kvs, len(shown) < len(inside), len(inside), 7)


@pytest.mark.parametrize(("n", "page", "key_page"), [
    (0, 10, 100), (1, 10, 100), (10, 10, 100), (80, 10, 100), (81, 10, 100),
    (1000, 10, 100), (1000, 7, 33), (999, 10, 10), (5000, 10, 3), (2500, 100, 1000),
])
async def test_sub_ranges_partition_the_range(n: int, page: int, key_page: int) -> None:
    space = Space(n)
    kvs, revision = await read_range(space.call, b"k", b"l", page=page, revision=0,
                                     key_page=key_page)
    assert [kv.key for kv in kvs] == space.keys
    assert all(kv.value == kv.key.upper() for kv in kvs)
    assert revision == 7
    if n > 8 * page:  # split: the first page, the keys-only pages, then each key once
        key_reads = -(-(n - page) // max(key_page, page))
        assert space.walked <= 2 * n + key_reads * n


@pytest.mark.parametrize(("n", "page", "key_page"), [
    (0, 10, 100), (10, 10, 100), (80, 10, 100), (1000, 7, 33), (5000, 10, 3),
])
async def test_a_scan_hands_over_parts_of_a_page_at_most(n: int, page: int,
                                                         key_page: int) -> None:
    space = Space(n)
    parts: dict[int, list[bytes]] = {}

    def sink(index: int, kvs) -> None:  # type: ignore[no-untyped-def]
        assert index not in parts and len(kvs) <= page
        parts[index] = [kv.key for kv in kvs]

    revision = await scan_range(space.call, b"k", b"l", page=page, revision=0,
                                key_page=key_page, sink=sink)
    assert revision == 7
    assert [k for i in sorted(parts) for k in parts[i]] == space.keys
