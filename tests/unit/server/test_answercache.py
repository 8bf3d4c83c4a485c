"""`AnswerCache` itself: its doorkeepers across the tables' bound changes, and its segments'
order across zones and their drops."""

from __future__ import annotations

from node.server.answercache import CACHE_MAX, ENTRY_COST, STALE_MIN, AnswerCache
from node.server.render import Entry, make_entry


def test_a_zone_that_grows_by_a_name_keeps_the_doorkeepers_and_what_they_remember() -> None:
    """A version with one more name raises the bound a little (`_bound`, every install):
    the doorkeepers have slots for it already, so they stay, with the keys asked once
    before it. Replaced whenever the bound passed the window asked at first, they were
    reallocated (2 x 8 MiB zeroed per version of a 1M-name zone, in the serving loop) and
    forgot every key asked once, on each UPDATE that added a name."""
    table = AnswerCache()
    table._bound(3 * CACHE_MAX // 2)  # a zone over the floor: 300,000, 2^19 slots
    doors = table._doors
    key = b"\x03www\x07example\x00\x00\x01\x00\x01"
    assert not doors[0].admit(key)  # asked once
    for grown in range(3 * CACHE_MAX // 2 + 2, 3 * CACHE_MAX // 2 + 20, 2):
        table._bound(grown)  # one name more per version
    assert table._doors is doors
    assert table._doors[0].admit(key)  # asked again: remembered
    table._bound(4 * CACHE_MAX)  # past the slots: larger doorkeepers
    assert table._doors is not doors and table.cache_max == 4 * CACHE_MAX


def _entry(body: bytes = b"x" * 40) -> Entry:
    return make_entry(0x8400, 1, 20, body, 1)


def _keys(seg: object) -> list[bytes]:
    return sorted(seg)  # type: ignore[call-overload]


def test_the_oldest_entry_goes_first_across_zones_and_dropped_zones() -> None:
    """One structure per entry (each zone's keys, and one order across zones): eviction
    still takes the oldest entry of the segment, whichever zone it is in, and a dropped
    zone's entries neither count nor are evicted in place of live ones."""
    table = AnswerCache()
    table.cache_max = 8  # cold segment: 2 entries, hot: 6
    a, b, c = b"\x01a\x00", b"\x01b\x00", b"\x01c\x00"
    for i, origin in enumerate((a, b, a, c, b, a)):
        table._keep(b"%d" % i, 0, _entry(), origin, True)
    table._drop(b)  # keys 1 and 4
    assert _keys(table._segment(0, True)) == [b"0", b"2", b"3", b"5"]
    assert len(table._segment(0, True)) == 4
    for i in range(6, 10):  # 4 more: two fit, then the two oldest go (0, then 2)
        table._keep(b"%d" % i, 0, _entry(), c if i % 2 else b, True)
        table._doors[0].admit(b"%d" % i)  # asked again, if the segment is full
        table._keep(b"%d" % i, 0, _entry(), c if i % 2 else b, True)
    assert _keys(table._segment(0, True)) == [b"3", b"5", b"6", b"7", b"8", b"9"]
    assert set(table.caches[0]) == {b"3", b"5", b"6", b"7", b"8", b"9"}
    assert table._bytes[0] == [sum(ENTRY_COST + len(k) + 40 for k in table.caches[0]), 0]


def test_dropped_zones_leave_no_references_behind() -> None:
    """The order keeps a dropped zone's references until they outnumber the live ones:
    a zone's versions dropping its answers again and again leave the order bounded."""
    table = AnswerCache()
    table.cache_max = 4 * CACHE_MAX
    big, small = b"\x03big\x00", b"\x05small\x00"
    table._keep(b"s", 0, _entry(), small, True)
    for _version in range(20):
        for i in range(1000):
            table._keep(b"%d" % i, 0, _entry(), big, True)
        seg = table._segment(0, True)
        assert len(seg.order) <= 2 * max(STALE_MIN, len(seg)) + 1000
        table._drop(big)
    seg = table._segment(0, True)
    assert len(seg) == 1 and list(seg) == [b"s"] and set(table.caches[0]) == {b"s"}
    table._drop(small)
    assert not seg.order and not seg.zones and seg.stale == 0 and not table.caches[0]
