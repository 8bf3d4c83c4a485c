"""`ImageTable`'s answer cache in bytes: bounded by a share of the served images' size, and a
sweep of existing names asked once (pre-rendered answers) never evicts the hot answers."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest

from node.image import ImageTable, ZoneImage, build_image
from node.image import table as table_module
from node.image.table import CACHE_BYTES_MIN
from node.server.answercache import ENTRY_COST
from node.zones.model import snapshot_from_text

ORIGIN = "big.example."
HOSTS = 3000


def _table() -> ImageTable:
    lines = ["@ 300 SOA ns h 1 2 3 4 5", "@ 300 NS ns", "ns 300 A 192.0.2.1"]
    lines += [f"h{i} 300 A 192.0.2.{i % 250}\nh{i} 300 TXT \"t{i}\"" for i in range(HOSTS)]
    table = ImageTable()
    table.install(ZoneImage.from_bytes(build_image(
        snapshot_from_text("\n".join(lines) + "\n", ORIGIN))))
    return table


def _key(name: str, rdtype: int = dns.rdatatype.A) -> bytes:
    return dns.name.from_text(name).to_wire().lower() + rdtype.to_bytes(2, "big") + b"\x00\x01"


def _held(table: ImageTable, do: int) -> list[int]:
    """The hot and the cold segment's bytes, recounted from what is cached."""
    cache = table.caches[do]
    return [sum(ENTRY_COST + len(k) + len(cache[k][2]) for k in seg)
            for seg in (table._segment(do, True), table._segment(do, False))]


def test_a_sweep_of_existing_names_asked_once_never_evicts_hot_answers() -> None:
    table = _table()
    table.cache_max = 400  # hot segment: 300 entries
    hot = [_key(f"h{i}.{ORIGIN}") for i in range(50)]
    for k in hot:  # the clients' names, asked again and again
        table.lookup(k, 1)
        table.lookup(k, 1)
    for i in range(50, HOSTS):  # every other name once (a scan, an enumeration)
        for rdtype in (dns.rdatatype.A, dns.rdatatype.TXT):
            table.lookup(_key(f"h{i}.{ORIGIN}", rdtype), 1)
    assert all(k in table.caches[1] for k in hot)
    assert len(table._segment(1, True)) <= 300


def test_cached_answers_stay_within_their_bytes() -> None:
    table = _table()
    # a small zone: room for cache_max entries (the bound bites on large answers only)
    assert table.cache_bytes > ENTRY_COST * table.cache_max
    table.cache_bytes = 200_000  # hot segment 150,000 bytes, cold 50,000
    for _ in range(2):  # twice: once full, the second ask admits (oldest out)
        for i in range(HOSTS):
            table.lookup(_key(f"h{i}.{ORIGIN}", dns.rdatatype.TXT), 1)
            table.lookup(_key(f"n{i}.{ORIGIN}"), 1)  # NXDOMAIN: the cold segment
            table.lookup(_key(f"n{i}.{ORIGIN}"), 1)
    newest = _key(f"h{HOSTS - 1}.{ORIGIN}", dns.rdatatype.TXT)
    # once more: the doorkeeper may have forgotten it between the two passes (its slot
    # taken by one of the ~9,000 later offers, ~3% with the per-process hash salt)
    table.lookup(newest, 1)
    held = _held(table, 1)
    assert table._bytes[1] == held
    assert 100_000 < held[0] <= 150_000
    assert 0 < held[1] <= 50_000
    assert newest in table.caches[1]  # newest in
    assert _key(f"h0.{ORIGIN}", dns.rdatatype.TXT) not in table.caches[1]  # oldest out
    # a new version drops the zone's answers, and their bytes with them
    table.install(ZoneImage.from_bytes(build_image(snapshot_from_text(
        "@ 300 SOA ns h 2 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n", ORIGIN, serial=2,
        revision=2))))
    assert table._bytes[1] == [0, 0] and not table.caches[1]


def test_the_byte_bound_follows_the_images_served() -> None:
    table = _table()
    img = table.get(dns.name.from_text(ORIGIN).to_wire())
    assert img is not None
    table.cache_bytes = 0
    table.install(ZoneImage.from_bytes(bytes(img._buf)))  # same revision: served again
    assert table.cache_bytes == max(CACHE_BYTES_MIN,
                                    int(0.75 * img.size) + ENTRY_COST * table.cache_max)


def test_every_pre_rendered_answer_fits_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zone's every answer asked again and again (the bench mix) stays cached: a bound of a
    share of the image's bytes alone held a fraction, and each ask then churned the cache."""
    monkeypatch.setattr(table_module, "CACHE_BYTES_MIN", 0)  # the zone's own bound, no floor
    table = _table()
    keys = [_key(f"h{i}.{ORIGIN}", t) for i in range(HOSTS)
            for t in (dns.rdatatype.A, dns.rdatatype.TXT)]
    for _ in range(3):
        for k in keys:
            if table.caches[0].get(k) is None:
                table.lookup(k, 0)
    missing = sum(1 for k in keys if table.caches[0].get(k) is None)
    assert missing == 0, f"{missing} of {len(keys)} answers not cached after three passes"



def _small(revision: int = 1) -> ZoneImage:
    return ZoneImage.from_bytes(build_image(snapshot_from_text(
        "@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n", "small.example.",
        revision=revision)))


def test_the_byte_bound_follows_a_zone_removed() -> None:
    """Removing a large zone brings the bound back to the zones still served: it stayed at
    the removed zone's (until some zone's next version), so a flood could then fill the
    cache to a share of an image no longer served."""
    table = _table()
    table.install(_small())
    alone = ImageTable()
    alone.install(_small())
    assert table.cache_bytes > alone.cache_bytes
    assert table.remove(dns.name.from_text(ORIGIN).to_wire())
    assert (table.cache_bytes, table.cache_max) == (alone.cache_bytes, alone.cache_max)


def test_a_new_version_gives_the_dropped_answers_tables_back() -> None:
    """A dict keeps its slots as its keys go: the cache of a DO bit that the new version's
    clients never ask (a signed zone's, DO=0) held ~6 MiB of empty slots at 100k names."""
    import sys
    table = _table()
    for do in (0, 1):
        for i in range(HOSTS):
            table.lookup(_key(f"h{i}.{ORIGIN}"), do)
        assert len(table.caches[do]) == HOSTS
    caches = table.caches
    table.install(ZoneImage.from_bytes(build_image(snapshot_from_text(
        "@ 300 SOA ns h 2 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n", ORIGIN, serial=2,
        revision=2))))
    assert table.caches is caches  # the hot path's objects, kept
    for do in (0, 1):
        assert sys.getsizeof(table.caches[do]) == sys.getsizeof({})
        for hot in (True, False):  # nor do the segments keep the dropped keys' order
            seg = table._segment(do, hot)
            assert not seg.zones and not seg.order and seg.stale == 0
    table.lookup(_key(f"ns.{ORIGIN}"), 1)  # and the cache works on
    assert _key(f"ns.{ORIGIN}") in table.caches[1]
