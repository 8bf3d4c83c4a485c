"""NXDOMAIN shortcuts by closest encloser (`node.image.enclosers`): once `ImageTable` has
answered one NXDOMAIN below an encloser, the names next to it are answered by the shortcut,
byte for byte as `ZoneTable` answers them, and never where the shortcut's reasoning does
not hold (wildcards, cuts, names that exist, a zone served below, AXFR, class CH)."""

from __future__ import annotations

import tracemalloc

import dns.name
import dns.rdatatype
import pytest

from node.image import ImageTable, ZoneImage, build_image, enclosers
from node.image import table as image_table
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.unit.server.signed_zone import ZONE, signed_snapshot

T = dns.rdatatype
# closest enclosers of the names asked: the apex, names, an empty non-terminal, a wildcard's
# parent, cuts, names below a cut, and an empty non-terminal above a cut
PARENTS = ["", "web.", "mail.", "c.ent.", "b.c.ent.", "wild.", "secure.", "insecure.",
           "deep.x.y.", "x.y.", "y.", "nope."]
QTYPES = [T.A, T.AAAA, T.MX, T.DS, T.ANY, T.RRSIG, T.NSEC3, 4711]


def _key(name: str, rdtype: int, rdclass: bytes = b"\x00\x01") -> bytes:
    return dns.name.from_text(name).to_wire().lower() + int(rdtype).to_bytes(2, "big") + rdclass


def _keys(n: int) -> list[bytes]:
    labels = ["a", "zz", "q" * 12, "x" * 31, "w" * 32, "m" * 40, "Mixed-Case", "*", "\\000x"]
    out = []
    for i in range(n):
        parent = PARENTS[i % len(PARENTS)]
        label = f"{labels[i % len(labels)]}{i}" if i % 3 else f"n{i:05d}"
        out.append(_key(f"{label}.{parent}example.", QTYPES[i % len(QTYPES)]))
    # names that exist, next to the learned ones
    out += [_key(name, T.A) for name in (
        "web.example.", "c.ent.example.", "ns1.example.", "x.y.example.", "a.b.c.ent.example.",
        "ent.example.", "y.example.", "wild.example.", "cw.example.", "insecure.example.",
        "secure.example.", "big.example.", "chain.example.", "www.example.", "mail.example.",
        "ns.secure.example.", "x.wild.example.", "deep.x.y.example.")]
    out += [_key("nx1.example.", T.AXFR), _key("nx2.example.", T.IXFR)]
    out += [_key("nx3.example.", T.A, b"\x00\x03")]  # class CH: REFUSED
    return out


def _same(snap: ZoneSnapshot, keys: list[bytes]) -> ImageTable:
    old = ZoneTable()
    old.publish(snap)
    new = ImageTable()
    new.install(ZoneImage.from_bytes(build_image(snap)))
    for key in keys + keys:  # the second round: learned shortcuts and admitted answers
        for do in (0, 1):
            assert new.lookup(key, do) == old.lookup(key, do), \
                f"{dns.name.from_wire(key, 0)[0]} {key[-4:].hex()} DO={do}"
    return new


@pytest.mark.parametrize("mode", ["plain", "nsec", "nsec3", "nsec3-salt-optout"])
def test_shortcut_answers_equal_the_general_path(mode: str) -> None:
    text = ZONE + "leaf.longlabel-ent 300 A 192.0.2.1\nleaf.ab 300 A 192.0.2.1\n"
    if mode == "plain":
        snap = snapshot_from_text(text, "example.", revision=1)
    else:
        snap = signed_snapshot(mode, text=text)
    extra = [_key(f"{name}.example.", T.A) for name in ("longlabel-ent", "ab", "longlabel")]
    table = _same(snap, _keys(400) + extra)
    apex = dns.name.from_text("example.").to_wire()
    for do in (0, 1):
        learned = table.shortcuts[do]
        assert apex in learned and b"\x03web" + apex in learned
        assert b"\x04wild" + apex not in learned  # a wildcard below: synthesis
        assert b"\x06secure" + apex not in learned  # a cut: referrals
        assert b"\x04deep\x01x\x01y" + apex not in learned  # below a cut
    kind = table.shortcuts[1][apex].__name__
    assert kind == {"plain": "plain", "nsec": "nsec", "nsec3": "nsec3",
                    "nsec3-salt-optout": "nsec3"}[mode]


def test_nsec3_flood_at_the_apex_equals_the_general_path() -> None:
    """Many labels of every length below the apex: covers, the wildcard's piece, pointers."""
    snap = signed_snapshot("nsec3-salt-optout")
    chars = "abcdefghij0123456789" * 4
    keys = [_key(f"{chars[i % 7 : i % 7 + 1 + i % 63]}.example.", T.A) for i in range(200)]
    keys += [_key(f"r{i}x{'k' * (i % 50)}.example.", QTYPES[i % len(QTYPES)])
             for i in range(300)]
    _same(snap, keys)


def test_a_zone_served_below_the_encloser_is_not_shortcut() -> None:
    """`kid.example.` is its own zone (the parent has no delegation): once the apex's
    shortcut exists, `kid.example.` is still answered by the child zone, and SERVFAIL
    while the child is held."""
    parent = snapshot_from_text(ZONE, "example.", revision=1)
    kid = snapshot_from_text("$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n@ A 192.0.2.99\n"
                             "ns1 A 192.0.2.1\n", "kid.example.", revision=1)
    table = ImageTable()
    table.install(ZoneImage.from_bytes(build_image(parent)))
    assert table.lookup(_key("nx.example.", T.A), 0)[5] & 0xF == 3  # NXDOMAIN, learned
    assert table.shortcuts[0]
    table.install(ZoneImage.from_bytes(build_image(kid)))
    assert table.shortcuts == ({}, {})  # the zone set changed: every shortcut dropped
    for _ in range(2):
        assert table.lookup(_key("nx.example.", T.A), 0)[5] & 0xF == 3
        entry = table.lookup(_key("kid.example.", T.A), 0)
        assert entry[5] & 0xF == 0 and entry[0][0][4:6] == b"\x00\x01"  # the child's A
    assert not table.shortcuts[0]  # a served origin one label below: no shortcut for the apex
    table.hold(dns.name.from_text("kid.example.").to_wire())
    assert table.lookup(_key("kid.example.", T.A), 0)[5] & 0xF == 2  # SERVFAIL


def test_new_versions_drop_the_shortcuts_and_their_images() -> None:
    snap = snapshot_from_text(ZONE, "example.", revision=1)
    table = ImageTable()
    first = ZoneImage.from_bytes(build_image(snap))
    table.install(first)
    table.lookup(_key("nx.example.", T.A), 0)
    assert next(iter(table.shortcuts[0].values())).__self__.img is first  # type: ignore
    table.install(ZoneImage.from_bytes(build_image(snapshot_from_text(
        ZONE + "nx2 A 192.0.2.1\n", "example.", serial=2, revision=2))))
    assert table.shortcuts == ({}, {})
    assert table.lookup(_key("nx2.example.", T.A), 0)[5] & 0xF == 0  # the new name exists
    assert table.lookup(_key("nx3.example.", T.A), 0)[5] & 0xF == 3


def test_shortcuts_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_table, "SHORTCUTS_MAX", 3)
    text = ZONE + "".join(f"h{i} A 192.0.2.{i}\n" for i in range(10))
    table = ImageTable()
    table.install(ZoneImage.from_bytes(build_image(snapshot_from_text(text, "example.",
                                                                      revision=1))))
    for i in range(10):
        table.lookup(_key(f"nx.h{i}.example.", T.A), 0)
    assert len(table.shortcuts[0]) == 3  # the last three enclosers
    assert dns.name.from_text("h9.example.").to_wire() in table.shortcuts[0]


def test_compression_pointer() -> None:
    assert enclosers._ptr(12) == b"\xc0\x0c"
    assert enclosers._ptr(0x3FFF) == b"\xff\xff"


@pytest.mark.parametrize("mode", ["plain", "nsec", "nsec3"])
def test_no_shortcut_below_a_dname(mode: str) -> None:
    """A DNAME at the encloser: `x.d.example.` is synthesized to `x.t.example.`, which does
    not exist, so the general path answers NXDOMAIN (RFC 6672 §2.2 with the chain's last
    RCODE); that must not teach a shortcut for `d.example.`, or `y.d.example.` (whose
    target `y.t.example.` exists) is answered NXDOMAIN without the DNAME."""
    text = ZONE + "d 300 DNAME t.example.\nt 300 A 192.0.2.7\ny.t 300 A 192.0.2.8\n"
    if mode == "plain":
        snap = snapshot_from_text(text, "example.", revision=1)
    else:
        snap = signed_snapshot(mode, text=text)
    keys = [_key("x.d.example.", T.A), _key("y.d.example.", T.A), _key("z.d.example.", T.A)]
    table = _same(snap, keys)
    assert table.lookup(_key("y.d.example.", T.A), 1)[5] & 0xF == 0  # NOERROR: the CNAME
    assert dns.name.from_text("d.example.").to_wire() not in table.shortcuts[0]


def test_shortcut_entries_are_bounded_per_image_not_per_encloser() -> None:
    """A flood over many enclosers and QTYPEs (unsigned, DO=0): every NXDOMAIN entry of one
    question shape is the same for all enclosers of the image, so the memory it takes is
    bounded per image (`negative.ENTRIES_MAX`), as on the general path, not per encloser
    (up to SHORTCUTS_MAX x ENTRIES_MAX x 2 entries: gigabytes)."""
    text = ZONE + "".join(f"h{i} A 192.0.2.{i % 250}\n" for i in range(200))
    table = ImageTable()
    table.install(ZoneImage.from_bytes(build_image(snapshot_from_text(text, "example.",
                                                                      revision=1))))
    for i in range(200):  # learn the shortcuts first
        table.lookup(_key(f"nx.h{i}.example.", T.A), 0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(200):
            for qtype in range(1000, 1200):
                assert table.lookup(_key(f"nx.h{i}.example.", qtype), 0)[5] & 0xF == 3
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(table.shortcuts[0]) == 200
    assert grown < 1_000_000, f"{grown} octets for 40,000 one-off NXDOMAIN questions"


@pytest.mark.parametrize("mode", ["nsec", "nsec3"])
def test_a_name_missing_from_a_presigned_chain_is_still_answered(mode: str) -> None:
    """A denial chain from outside (a presigned zone, a transfer from a hidden signer) may
    miss a name that exists: such a zone's shortcut is `plain` (only zones signed here trust
    their chain), which asks the image, and the name is answered."""
    signed = signed_snapshot(mode)
    lines = [rrset.to_text() for types in signed.nodes.values() for rrset in types.values()]
    lines.append("hidden.example. 300 IN A 192.0.2.99")  # in no NSEC/NSEC3 chain
    presigned = snapshot_from_text("\n".join(lines) + "\n", "example.", revision=1)
    table = ImageTable()
    table.install(ZoneImage.from_bytes(build_image(presigned)))
    apex = dns.name.from_text("example.").to_wire()
    assert table.lookup(_key("nothere-1.example.", T.A), 1) is not None
    assert table.shortcuts[1][apex].__name__ == "plain", "a chain from outside was trusted"
    old = ZoneTable()
    old.publish(presigned)
    key = _key("hidden.example.", T.A)
    assert table.lookup(key, 1) == old.lookup(key, 1), "an existing name was answered NXDOMAIN"


def test_a_table_with_learned_shortcuts_is_freed_without_the_collector() -> None:
    """The shortcuts hold the table's `_keep` (a bound method): table -> shortcuts ->
    Shortcut -> table is a reference cycle, so a dropped table (its answer caches, up to
    `cache_max` entries, and its doorkeepers) waits for the cyclic collector, and stays for
    good once `gc.freeze()` (node/gcwatch.py; `build_image` and the worker's install settle)
    has frozen it. Before s10-flood it was freed by its reference count."""
    import gc
    import weakref

    class Sentinel:
        pass

    image = ZoneImage.from_bytes(build_image(snapshot_from_text(ZONE, "example.", serial=1,
                                                                revision=1)))
    enabled = gc.isenabled()
    gc.disable()
    try:
        table = ImageTable()
        table.install(image)
        for do in (0, 1):
            table.lookup(_key("nx.example.", T.A), do)
        assert table.shortcuts[0] and table.shortcuts[1]
        mark = Sentinel()
        table.caches[0][b"sentinel"] = mark  # type: ignore[assignment]
        alive = weakref.ref(mark)
        del mark, table
        assert alive() is None, "an ImageTable with shortcuts is kept alive by a reference cycle"
    finally:
        if enabled:
            gc.enable()


def test_another_zone_s_versions_keep_the_shortcuts() -> None:
    """A shortcut is built from one zone's image: a new version, a removal or a hold of an
    unrelated zone leaves it (every zone operation dropped every shortcut, so a flood on one
    zone re-learned its enclosers, their proof tables with them, at each version of any
    other), while its own zone's next version drops it."""
    other = "$TTL 60\n@ SOA ns1 h {0} 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.{0}\n"
    table = ImageTable()
    table.install(ZoneImage.from_bytes(build_image(snapshot_from_text(ZONE, "example.",
                                                                      revision=1))))
    table.install(ZoneImage.from_bytes(build_image(snapshot_from_text(
        other.format(1), "other.test.", revision=1))))
    assert table.lookup(_key("nx.example.", T.A), 0)[5] & 0xF == 3  # NXDOMAIN, learned
    learned = dict(table.shortcuts[0])
    assert learned
    table.install(ZoneImage.from_bytes(build_image(snapshot_from_text(
        other.format(2), "other.test.", serial=2, revision=2))))
    assert table.shortcuts[0] == learned
    table.hold(dns.name.from_text("other.test.").to_wire())
    assert table.shortcuts[0] == learned
    assert table.remove(dns.name.from_text("other.test.").to_wire())
    assert table.shortcuts[0] == learned
    table.install(ZoneImage.from_bytes(build_image(snapshot_from_text(
        ZONE + "nx A 192.0.2.1\n", "example.", serial=2, revision=2))))
    assert not table.shortcuts[0]  # its own zone's new version: dropped with its image
    assert table.lookup(_key("nx.example.", T.A), 0)[5] & 0xF == 0  # the new name exists
