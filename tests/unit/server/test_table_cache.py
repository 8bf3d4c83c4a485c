"""`ZoneTable`'s answer cache (server.workers = 0) as the image table's (issue 10 point 3):
bounded, never cleared wholesale, a flood of one-off names never evicts a hot answer, and a
zone's new version, hold or removal drops its own cached answers, not other zones'."""

from __future__ import annotations

import dataclasses

import dns.name
import dns.rdatatype
import pytest

from node.server import answercache
from node.server.answer import name_wire
from node.server.answercache import ENTRY_COST, NO_BYTE_BOUND
from node.server.table import ZoneTable
from node.zones.model import snapshot_from_text
from tests.support.answercache import flood_keeps_hot
from tests.unit.server.signed_zone import ZONE as SIGNED
from tests.unit.server.signed_zone import signed_snapshot

ZONE = "$TTL 60\n@ SOA ns hm {serial} 1 1 1 1\n@ NS ns\nns A 192.0.2.1\n" \
    "www A 192.0.2.{last}\nweb A 192.0.2.11\nweb AAAA 2001:db8::11\nmail A 192.0.2.12\n"


def _publish(t: ZoneTable, origin: str, serial: int, last: int = 10) -> None:
    snap = snapshot_from_text(ZONE.format(serial=serial, last=last), origin, revision=serial)
    if t.get(dns.name.from_text(origin)) is not None:  # an incremental version, as the replica's
        snap = dataclasses.replace(snap, changed=frozenset({dns.name.from_text("www." + origin)}))
    t.publish(snap)


def _key(name: str, rdtype: int = dns.rdatatype.A) -> bytes:
    return name_wire(dns.name.from_text(name)) + rdtype.to_bytes(2, "big") + b"\x00\x01"


def _hot(t: ZoneTable, origin: str) -> list[bytes]:
    keys = [_key(f"{n}.{origin}", r) for n, r in (("www", 1), ("web", 1), ("web", 28),
                                                   ("mail", 1), ("ns", 1))]
    for k in keys:
        assert t.lookup(k, 0) is not None
    assert all(k in t.caches[0] for k in keys)
    return keys


def test_a_flood_of_one_off_names_never_evicts_hot_answers_nor_clears_the_cache() -> None:
    t = ZoneTable()
    _publish(t, "example.com.", 1)
    flood_keeps_hot(t, t.lookup, _hot(t, "example.com."), _key, "example.com.")


def test_a_new_version_drops_only_its_zone_s_answers() -> None:
    t = ZoneTable()
    _publish(t, "example.com.", 1)
    _publish(t, "example.org.", 1)
    caches = t.caches
    com, org = _hot(t, "example.com."), _hot(t, "example.org.")
    nx = _key("nx.example.org.")
    t.lookup(nx, 0)
    t.lookup(nx, 0)  # asked twice: admitted
    assert nx in t.caches[0]
    _publish(t, "example.com.", 2, last=20)
    assert t.caches is caches  # the same dicts: a reader holding them sees no other set
    assert all(k in t.caches[0] for k in org) and nx in t.caches[0]
    assert not any(k in t.caches[0] for k in com)  # nothing stale of the old version
    www = t.lookup(_key("www.example.com."), 0)
    assert www is not None and bytes([192, 0, 2, 20]) in www[2]


def test_hold_and_remove_drop_only_that_zone_s_answers() -> None:
    t = ZoneTable()
    for origin in ("example.com.", "example.org.", "example.net."):
        _publish(t, origin, 1)
    com, org, net = (_hot(t, o) for o in ("example.com.", "example.org.", "example.net."))
    t.hold(dns.name.from_text("example.com."))
    assert not any(k in t.caches[0] for k in com)
    assert all(k in t.caches[0] for k in org + net)
    assert t.remove(dns.name.from_text("example.net."))
    assert not any(k in t.caches[0] for k in net)
    assert all(k in t.caches[0] for k in org)
    servfail = t.lookup(com[0], 0)
    assert servfail is not None and servfail[5] & 0xF == 2  # SERVFAIL while held
    refused = t.lookup(net[0], 0)
    assert refused is not None and refused[5] & 0xF == 5  # REFUSED once removed


def test_a_child_zone_added_drops_the_parent_s_answers_below_it() -> None:
    t = ZoneTable()
    _publish(t, "example.com.", 1)
    nx = _key("www.sub.example.com.")
    t.lookup(nx, 0)
    t.lookup(nx, 0)  # NXDOMAIN from the parent, admitted
    assert nx in t.caches[0]
    _publish(t, "sub.example.com.", 1)
    entry = t.lookup(nx, 0)
    assert entry is not None and entry[5] & 0xF == 0  # the child's answer, not the parent's


def test_in_process_bounded_in_entries_not_bytes_a_full_hot_segment_admits_when_asked_again(
) -> None:
    t = ZoneTable()
    _publish(t, "example.com.", 1)
    assert t.cache_bytes == NO_BYTE_BOUND  # its entries are the zones' own (see the module)
    keys = _hot(t, "example.com.")[:3]
    t.cache_max = 4  # hot segment: 3 entries
    late = _key("mail.example.com.")
    t._drop(name_wire(dns.name.from_text("example.com.")))
    for k in keys:
        t.lookup(k, 0)
    t.lookup(late, 0)  # asked once while the segment is full: not admitted
    assert late not in t.caches[0] and all(k in t.caches[0] for k in keys)
    t.lookup(late, 0)  # asked again: admitted, the oldest out
    assert late in t.caches[0] and keys[0] not in t.caches[0]
    assert t._bytes[0][0] == sum(ENTRY_COST + len(k) + len(t.caches[0][k][2])
                                 for k in t._segment(0, True))


def test_the_bound_follows_a_zone_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Removing a zone brings the entry bound back to the zones still served (it stayed at
    theirs with the removed one's until some zone's next version)."""
    monkeypatch.setattr(answercache, "CACHE_MAX", 1)  # the zones' own bound, no floor
    t, alone = ZoneTable(), ZoneTable()
    _publish(t, "example.com.", 1)
    _publish(t, "example.org.", 1)
    _publish(alone, "example.org.", 1)
    assert t.cache_max > alone.cache_max
    assert t.remove(dns.name.from_text("example.com."))
    assert t.cache_max == alone.cache_max


def test_answers_of_a_flood_asked_twice_stay_within_the_table_s_bound() -> None:
    """One-off names asked twice each are admitted to the cold segment, which evicts its
    oldest: the zone must not keep them besides (its lazy caches held every admitted answer
    up to 100,000 per DO bit and zone, whatever the table's bound, then were cleared)."""
    t = ZoneTable()
    _publish(t, "example.com.", 1)
    t.cache_max = 400  # cold segment: 100 entries per DO bit
    for i in range(3000):
        for do in (0, 1):
            k = _key(f"nx{i}.example.com.")
            t.lookup(k, do)
            t.lookup(k, do)
    zone = t.get(dns.name.from_text("example.com."))
    assert zone is not None
    assert len(t._segment(0, False)) == len(t._segment(1, False)) == 100
    assert len(zone.lazy) + len(zone.lazy_do) <= 2 * t.cache_max


def test_ds_at_a_child_apex_is_servfail_while_the_parent_is_held() -> None:
    """The DS RRset is the parent's: while the parent is held, DS at a served child's apex
    is SERVFAIL (the child answered an authoritative "no DS" for a signed delegation)."""
    t = ZoneTable()
    child = snapshot_from_text(ZONE.format(serial=1, last=10), "sub.example.com.", revision=1)
    t.publish(child)
    t.publish(snapshot_from_text(ZONE.format(serial=1, last=10) + "sub NS ns.sub\n"
                                 "sub DS 12345 13 2 " + "ab" * 32 + "\nns.sub A 192.0.2.9\n",
                                 "example.com.", revision=2))
    ds = _key("sub.example.com.", dns.rdatatype.DS)
    entry = t.lookup(ds, 0)
    assert entry is not None and entry[5] & 0xF == 0 and b"\xab" * 32 in entry[2]
    t.hold(dns.name.from_text("example.com."))
    for _ in range(3):  # and so it stays once cached
        entry = t.caches[0].get(ds) or t.lookup(ds, 0)
        assert entry is not None and entry[5] & 0xF == 2  # SERVFAIL


def test_signed_do1_answers_asked_once_are_not_kept_past_the_policy() -> None:
    """A signed zone's DO=1 answers are rendered on demand (`secure.resolve`): they are
    kept by the table's hot segment at once while it has room, and once it is full only
    when asked again (the doorkeeper), as the image table keeps its copies. The zone kept
    every one besides, admitted or not (`keep=True`), so a sweep of the zone's names asked
    once, DO=1, held each answer beyond the table's bound, and cleared that lazy cache
    wholesale when full."""
    hosts = "".join(f"h{i} 3600 A 192.0.2.{i % 250}\n" for i in range(300))
    t = ZoneTable()
    t.publish(signed_snapshot("nsec3", text=SIGNED + hosts))
    zone = t.get(dns.name.from_text("example."))
    assert zone is not None and zone.denial is not None
    t.cache_max = 40  # hot segment: 30 entries
    hot = [_key(f"h{i}.example.") for i in range(10)]
    for k in hot:
        t.lookup(k, 1)
    for i in range(10, 300):  # every other name once (a sweep)
        t.lookup(_key(f"h{i}.example."), 1)
    assert all(k in t.caches[1] for k in hot)
    assert len(t.caches[1]) <= 30
    kept = set(zone.lazy_do) - set(t.caches[1])
    assert not kept, f"{len(kept)} DO=1 answers kept by the zone past the table's policy"
