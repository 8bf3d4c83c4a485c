"""The flood's miss path in `Responder.fast_udp`: a name one label below the encloser of
one of the table's NXDOMAIN shortcuts is answered by that shortcut directly (no label walk,
no `ImageTable.lookup`), which offers its answer to the doorkeeper itself. Whole datagrams
answered over images equal, byte for byte, those answered over `ZoneTable` (no shortcuts)
for every fallback: QTYPEs (AXFR/IXFR, ANY, NSEC3, unknown, octets that are ASCII
capitals), class CH, label lengths 0, 1-63, 64 and a compression pointer with the rest
being the encloser, names of 255 octets and over, NSEC3 owner labels, mixed case,
wildcards (at the apex: no shortcut; below it), opt-out and delegations (secure and not,
names below them), NSEC, unsigned zones, no EDNS, DO=0 and DO=1, small payloads."""

from __future__ import annotations

import random

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import pytest

from node.dnssec.denial import DenialParams
from node.image import ImageTable, ZoneImage, build_image
from node.server import responder as responder_module
from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.unit.image.test_image_nsec3_shapes import BODY, LONG, PARAMS, _sign

T = dns.rdatatype
ORIGIN = "example."
OWIRE = dns.name.from_text(ORIGIN).to_wire()
WILD_APEX = BODY + "* TXT \"everything\"\n"
WILD_BELOW = BODY + "*.w TXT \"below w\"\nw TXT \"w\"\n"
ZONES = {
    "nsec3": lambda: _sign(ORIGIN, PARAMS["plain"]),
    "nsec3-salt-iterations": lambda: _sign(ORIGIN, PARAMS["salt-iterations"]),
    # a salt without iterations: the image's digest, not the unsalted SHA-1's copy
    "nsec3-salt-only": lambda: _sign(ORIGIN, DenialParams(salt=bytes.fromhex("c0ffee"))),
    "nsec3-opt-out": lambda: _sign(ORIGIN, PARAMS["opt-out"]),
    "nsec": lambda: _sign(ORIGIN, DenialParams(nsec3=False)),
    "nsec3-long-origin": lambda: _sign(LONG, PARAMS["plain"]),  # 202 octets: labels to 52
    "nsec3-wildcard-apex": lambda: _sign(ORIGIN, PARAMS["plain"], text=WILD_APEX),
    "nsec3-wildcard-below": lambda: _sign(ORIGIN, PARAMS["plain"], text=WILD_BELOW),
    "unsigned": lambda: snapshot_from_text(BODY, ORIGIN, revision=1),
}
EDNS = [None, (0, 1232), (1, 1232), (1, 512), (1, 4096)]  # (DO, payload) of the OPT


def _datagram(qid: int, qname: bytes, qtype: int, qclass: int, edns: tuple[int, int] | None
              ) -> bytes:
    head = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00"
    question = qname + qtype.to_bytes(2, "big") + qclass.to_bytes(2, "big")
    if edns is None:
        return head + b"\x00" + question
    do, payload = edns
    opt = b"\x00\x00\x29" + payload.to_bytes(2, "big") + b"\x00\x00" + bytes((do << 7,)) \
        + b"\x00\x00\x00"
    return head + b"\x01" + question + opt


def _names(snap: ZoneSnapshot, rng: random.Random) -> list[bytes]:
    """Wire names (some not names at all, some over 255 octets) around the apex."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-ABCXYZ"
    origin = snap.origin.to_wire()  # type: ignore[union-attr]
    out = []
    for size in [*range(1, 64), 1, 3, 12, 12, 12, 31, 32, 33]:
        out.append(bytes((size,)) + bytes(rng.choices(alphabet, k=size)) + origin)
    for name in snap.nodes:  # existing names, NSEC3 owners among them, and names below
        wire = name.to_wire()  # type: ignore[union-attr]
        out.append(wire)
        out.append(b"\x03zzz" + wire)
    for size in (0, 64, 65, 90, 0xC0):  # not a label length: the walk decides, as before
        out.append(bytes((size,)) + origin)
        out.append(bytes((size,)) + b"q" * min(size, 63) + origin)
    return out


def _responders(snap: ZoneSnapshot) -> tuple[Responder, Responder, ImageTable]:
    old = ZoneTable()
    old.publish(snap)
    new = ImageTable()
    new.install(ZoneImage.from_bytes(build_image(snap)))
    return Responder(old), Responder(new), new


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_flood_datagrams_answer_as_over_zone_table(zone: str) -> None:
    snap = ZONES[zone]()
    old, new, _ = _responders(snap)
    rng = random.Random(zone)
    names = _names(snap, rng)
    qtypes = [T.A, T.AAAA, T.NSEC3, T.ANY, T.TXT, 4711, 65, 97, T.AXFR, T.IXFR]
    queries = []
    for i, name in enumerate(names):
        for edns in EDNS:
            for qtype in (qtypes[i % len(qtypes)], qtypes[(i * 7 + 3) % len(qtypes)]):
                queries.append(_datagram(i, name, qtype, 1 if i % 13 else 3, edns))
                if i % 5 == 0:  # mixed case, as sent
                    queries.append(_datagram(i, name.upper(), qtype, 1, edns))
    for _ in range(2):  # the second round: shortcuts learned, answers admitted and cached
        for data in queries:
            want = old.fast_udp(data)
            assert new.fast_udp(data) == want, (zone, data)
            if want is None:  # the slow path answers both alike
                assert new.udp(data, ("192.0.2.1", 53)) == old.udp(data, ("192.0.2.1", 53))
    assert new.stats.counts == old.stats.counts  # by RCODE and QTYPE (other: one key)


@pytest.mark.parametrize("zone", ["nsec3", "nsec3-opt-out", "nsec", "unsigned"])
def test_learned_shortcuts_answer_without_the_walk_or_the_lookup(
        zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a shortcut is learned, new names one label below its encloser are answered by
    it from `fast_udp` (the walk and `lookup` are not called), alike, and each is admitted
    to the answer cache on its second ask."""
    snap = ZONES[zone]()
    old, new, table = _responders(snap)
    rng = random.Random(3)

    def flood(n: int, edns: tuple[int, int] | None) -> list[bytes]:
        return [_datagram(i, b"\x0c" + bytes(rng.choices(b"abcdefgh0123", k=12)) + OWIRE,
                          T.A, 1, edns) for i in range(n)]

    for edns in (None, (1, 1232), (0, 1232)):
        for data in flood(2, edns):
            assert new.fast_udp(data) == old.fast_udp(data)  # learns the apex's shortcut
    assert table.shortcuts[0] and table.shortcuts[1]
    wants = {edns: [(d, old.fast_udp(d)) for d in flood(40, edns)]
             for edns in (None, (1, 1232), (0, 1232))}

    def forbidden(*args: object) -> object:
        raise AssertionError("the flood's name took the walk or the table's lookup")

    monkeypatch.setattr(responder_module, "name_end", forbidden)
    monkeypatch.setattr(ImageTable, "lookup", forbidden)
    for edns, pairs in wants.items():
        do = 0 if edns is None else edns[0]
        for data, want in pairs:
            assert new.fast_udp(data) == want
            key = data[12 : len(data) - (11 if edns else 0)]
            assert key not in table.caches[do]  # asked once: not admitted
            assert new.fast_udp(data) == want
            assert key in table.caches[do]  # asked twice: admitted by the shortcut


def test_a_shortcut_answer_is_admitted_once_by_lookup() -> None:
    """`ImageTable.lookup` no longer admits what a shortcut answered (it did it itself): a
    name's first ask through `lookup` is not cached, its second is."""
    snap = ZONES["nsec3"]()
    _, _, table = _responders(snap)
    first = b"\x05first" + OWIRE + b"\x00\x01\x00\x01"
    table.lookup(first, 1)
    assert table.shortcuts[1]
    key = b"\x06second" + OWIRE + b"\x00\x01\x00\x01"
    entry = table.lookup(key, 1)
    assert entry is not None and key not in table.caches[1]
    assert table.lookup(key, 1) == entry and table.caches[1][key] == entry


@pytest.mark.parametrize("edns", [(0, 1232), (1, 1232)])
def test_an_opt_without_a_question_is_not_an_error(edns: tuple[int, int]) -> None:
    """Header (QDCOUNT 1, ARCOUNT 1) + a known OPT and no question octets at all (23 octets):
    the question placed before the OPT is empty. The old path answered it as the general
    path does (FORMERR from the slow path); `fast_udp` must not raise (IndexError on the
    empty key's first octet: the listener drops it and logs a handler error)."""
    old, new, _ = _responders(ZONES["nsec3"]())
    full = _datagram(7, b"\x03www" + OWIRE, T.A, 1, edns)  # teaches the header and the OPT
    assert new.fast_udp(full) == old.fast_udp(full)
    bare = full[:12] + full[-11:]
    assert new.fast_udp(bare) == old.fast_udp(bare)
    assert new.udp(bare, ("192.0.2.1", 53)) == old.udp(bare, ("192.0.2.1", 53))
    for extra in (b"\x00", b"\x00\x00", b"\x00\x00\x01", b"\x00\x00\x01\x00"):  # 1-4 octets
        short = full[:12] + extra + full[-11:]
        assert new.fast_udp(short) == old.fast_udp(short)


@pytest.mark.parametrize("zone", ["nsec3", "nsec3-opt-out", "nsec", "unsigned"])
@pytest.mark.parametrize("edns", [None, (0, 1232), (1, 1232)])
def test_a_declining_shortcut_is_asked_once(zone: str, edns: tuple[int, int] | None) -> None:
    """A name one label below a shortcut's encloser that the shortcut declines (it exists,
    or its QTYPE or class is not the shortcut's) is answered by the general path without
    asking the shortcut again (`ImageTable.resolve`, not `lookup`), alike."""
    snap = ZONES[zone]()
    old, new, table = _responders(snap)
    do = 0 if edns is None else edns[0]
    first = _datagram(1, b"\x05first" + OWIRE, T.A, 1, edns)
    assert new.fast_udp(first) == old.fast_udp(first)  # learns the apex's shortcut
    short = table.shortcuts[do][OWIRE]
    calls: list[bytes] = []

    def counted(key: bytes) -> object:
        calls.append(key)
        return short(key)

    table.shortcuts[do][OWIRE] = counted  # type: ignore[assignment]
    below = [n.to_wire() for n in snap.nodes if len(n) == 3]  # type: ignore[arg-type]
    assert below
    asked = 0
    for i, name in enumerate([*below, b"\x05fresh" + OWIRE]):
        for qtype, qclass in ((T.A, 1), (T.AXFR, 1), (T.A, 3), (T.TXT, 1)):
            data = _datagram(i, name, qtype, qclass, edns)
            key = data[12 : len(data) - (11 if edns else 0)]
            if key in table.caches[do]:
                continue
            before = len(calls)
            assert new.fast_udp(data) == old.fast_udp(data)
            assert len(calls) - before <= 1, (name, qtype, qclass)
            asked += len(calls) - before
    assert asked  # the shortcut was asked, and declined some


@pytest.mark.parametrize(("zone", "do", "mode"), [("nsec3", 1, "nsec3"), ("unsigned", 0, "plain"),
                                                 ("unsigned", 1, "plain")])
def test_the_offer_written_out_agrees_with_the_doorkeeper(zone: str, do: int, mode: str) -> None:
    """`Shortcut.nsec3` and `.plain` write `Doorkeeper.admit` out: a key they offered is
    remembered by the table's doorkeeper (its slot holds that fingerprint), and a key the
    doorkeeper saw is admitted and kept by the shortcut's first answer."""
    snap = ZONES[zone]()
    _, _, table = _responders(snap)
    table.lookup(b"\x05first" + OWIRE + b"\x00\x01\x00\x01", do)
    short = table.shortcuts[do][OWIRE]
    assert short.__name__ == mode  # type: ignore[attr-defined]
    door = table._doors[do]
    rng = random.Random(9)
    kept = 0
    for i in range(2000):
        key = b"\x0c" + bytes(rng.choices(b"abcdefgh0123", k=12)) + OWIRE + b"\x00\x01\x00\x01"
        if i % 2:
            assert short(key) is not None and key not in table.caches[do]
            assert door.admit(key)  # remembered: the same slot and fingerprint
        else:
            assert not door.admit(key)
            assert short(key) is not None
            kept += key in table.caches[do]
    assert kept == 1000
