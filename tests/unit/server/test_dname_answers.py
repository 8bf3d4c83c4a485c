"""DNAME synthesis (RFC 6672) in both answer paths: `CompiledZone` (answer.py, secure.py)
and zone images (node/image/resolve.py), unsigned and signed, DO=0 and DO=1: the same
bytes from both, and the answers RFC 6672 asks for (the DNAME, a CNAME synthesized with
its TTL, the target chased in the zone, YXDOMAIN past 255 octets, a DNAME at the apex)."""

from __future__ import annotations

import time

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from node.image import ZoneImage, build_image
from node.image import resolve as image_resolve
from node.server.compile import CompiledZone
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.dnssec import signed_snapshot
from tests.support.zones import APEX_DNAME_ZONE, DNAME_ZONE, LONG_TARGET

T = dns.rdatatype
NOW = int(time.time())
LONG_Q = "x" * 63 + ".long.dname.test."  # 64 + 193 octets once synthesized: YXDOMAIN

QUESTIONS = [
    ("a.old", "A"), ("old", "DNAME"), ("old", "A"), ("b.old", "A"), ("x.y.old", "TXT"),
    ("a.ext", "A"), ("cn", "A"), ("cn2", "MX"), ("a.loop", "A"), ("x.long", "A"),
    ("a.new", "MX"), ("q.wd", "A"), ("q.wd", "TXT"), ("x.tosub", "A"), ("", "DNAME"),
    ("old", "ANY"), ("a.old", "DNAME"), ("a.old", "CNAME"), ("new", "A"),
]  # fmt: skip


def _snapshots() -> dict[str, ZoneSnapshot]:
    return {
        "plain": snapshot_from_text(DNAME_ZONE, "dname.test."),
        "nsec": signed_snapshot(DNAME_ZONE, "dname.test.", False, NOW),  # type: ignore[dict-item]
        "nsec3": signed_snapshot(DNAME_ZONE, "dname.test.", True, NOW),  # type: ignore[dict-item]
    }


SNAPS = _snapshots()


def _key(name: str, rdtype: str) -> tuple[bytes, bytes, int]:
    lname = dns.name.from_text(name).to_wire().lower()  # type: ignore[union-attr]
    qtype = T.from_text(rdtype)
    return lname + qtype.to_bytes(2, "big") + b"\x00\x01", lname, qtype


def _message(key: bytes, entry: tuple) -> dns.message.Message:  # type: ignore[type-arg]
    return dns.message.from_wire(b"\x00\x00" + entry[0][0] + key + entry[2])


def _both(snap: ZoneSnapshot, name: str, rdtype: str, do: int) -> dns.message.Message:
    """The answer from a CompiledZone and from an image of it: the same bytes."""
    key, lname, qtype = _key(name, rdtype)
    compiled = CompiledZone.build(snap).answer(key, do)
    img = ZoneImage.from_bytes(build_image(snap))
    imaged, _ = image_resolve.answer(img, key, lname, qtype, do)
    assert imaged[:4] == compiled[:4], (name, rdtype, do)
    return _message(key, compiled)


@pytest.mark.parametrize("kind", sorted(SNAPS))
@pytest.mark.parametrize("do", [0, 1])
def test_image_and_compiled_zone_agree_through_dnames(kind: str, do: int) -> None:
    for name, rdtype in [*QUESTIONS, (LONG_Q.removesuffix(".dname.test."), "A")]:
        _both(SNAPS[kind], f"{name}.dname.test." if name else "dname.test.", rdtype, do)


def _rrs(section: list) -> list[str]:  # type: ignore[type-arg]
    return [f"{r.name} {r.ttl} {T.to_text(r.rdtype)} {rd}" for r in section for rd in r]


def test_a_name_below_a_dname_gets_the_dname_a_synthesized_cname_and_the_chase() -> None:
    m = _both(SNAPS["plain"], "a.old.dname.test.", "A", 0)
    assert m.rcode() == dns.rcode.NOERROR and m.flags & dns.flags.AA
    assert _rrs(m.answer) == ["old.dname.test. 300 DNAME new.dname.test.",
                              "a.old.dname.test. 300 CNAME a.new.dname.test.",
                              "a.new.dname.test. 3600 A 192.0.2.5"]
    m = _both(SNAPS["plain"], "b.old.dname.test.", "A", 0)  # the target does not exist
    assert m.rcode() == dns.rcode.NXDOMAIN
    assert _rrs(m.answer)[1] == "b.old.dname.test. 300 CNAME b.new.dname.test."
    assert [T.to_text(r.rdtype) for r in m.authority] == ["SOA"]


def test_the_dname_owner_answers_as_any_name() -> None:
    m = _both(SNAPS["plain"], "old.dname.test.", "DNAME", 0)
    assert _rrs(m.answer) == ["old.dname.test. 300 DNAME new.dname.test."]
    m = _both(SNAPS["plain"], "old.dname.test.", "A", 0)
    assert m.rcode() == dns.rcode.NOERROR and not m.answer
    assert [T.to_text(r.rdtype) for r in m.authority] == ["SOA"]


def test_a_synthesized_name_over_255_octets_is_yxdomain() -> None:
    m = _both(SNAPS["plain"], LONG_Q, "A", 0)
    assert m.rcode() == dns.rcode.YXDOMAIN
    assert _rrs(m.answer) == [f"long.dname.test. 3600 DNAME {LONG_TARGET}"]
    m = _both(SNAPS["plain"], "x.long.dname.test.", "A", 0)  # 255 fits: a CNAME out of zone
    assert m.rcode() == dns.rcode.NOERROR
    assert _rrs(m.answer)[1] == f"x.long.dname.test. 3600 CNAME x.{LONG_TARGET}"


def test_signed_answers_sign_the_dname_not_the_synthesized_cname() -> None:
    m = _both(SNAPS["nsec3"], "a.old.dname.test.", "A", 1)
    covered = [(str(r.name), r[0].type_covered) for r in m.answer if r.rdtype == T.RRSIG]
    assert covered == [("old.dname.test.", T.DNAME), ("a.new.dname.test.", T.A)]
    assert any(r.rdtype == T.CNAME and str(r.name) == "a.old.dname.test." for r in m.answer)


def test_a_loop_of_dnames_stops_after_five_cnames_each_dname_written_once() -> None:
    m = _both(SNAPS["plain"], "a.loop.dname.test.", "A", 0)
    types = [T.to_text(r.rdtype) for r in m.answer for _ in r]
    assert types.count("CNAME") == 5 and types.count("DNAME") == 2


def test_a_dname_at_the_apex_moves_every_name_below_it() -> None:
    snap = snapshot_from_text(APEX_DNAME_ZONE, "apex.test.")
    m = _both(snap, "www.apex.test.", "A", 0)
    assert _rrs(m.answer) == ["apex.test. 3600 DNAME dname.test.",
                              "www.apex.test. 3600 CNAME www.dname.test."]
    m = _both(snap, "apex.test.", "SOA", 0)
    assert [T.to_text(r.rdtype) for r in m.answer] == ["SOA"]
    m = _both(snap, "deep.er.apex.test.", "MX", 0)  # the flood's NXDOMAIN path steps aside
    assert m.rcode() == dns.rcode.NOERROR and len(m.answer) == 2


def test_a_dname_added_and_removed_by_evolve_equals_a_full_build() -> None:
    before = snapshot_from_text(DNAME_ZONE.replace("old      300   DNAME new\n", ""),
                                "dname.test.")
    after = SNAPS["plain"]
    import dataclasses
    changed = frozenset({dns.name.from_text("old.dname.test.")})
    for prev, nxt in ((before, after), (after, before)):
        evolved = CompiledZone.evolve(CompiledZone.build(prev),
                                      dataclasses.replace(nxt, changed=changed))
        full = CompiledZone.build(nxt)
        assert evolved.answers == full.answers and evolved.dnames == full.dnames
        for name, rdtype in QUESTIONS:
            key, _, _ = _key(f"{name}.dname.test." if name else "dname.test.", rdtype)
            assert evolved.answer(key)[2] == full.answer(key)[2], (name, rdtype)
