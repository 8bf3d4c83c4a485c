"""`AnswerCache` itself: its doorkeepers across the tables' bound changes."""

from __future__ import annotations

from node.server.answercache import CACHE_MAX, AnswerCache


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
