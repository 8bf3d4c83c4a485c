"""RRSIG and NSEC at an alias: the alias's own node answers, the CNAME is not followed.

RFC 2181 §10.1 (with RFC 3755's renaming of SIG/NXT to RRSIG/NSEC): an alias
may carry RRSIG and NSEC records besides its CNAME, so these two types are data
of the alias's own node, not of its target. A query for them at an alias gets
what the node has (the RRSIGs and the NSEC of a signed NSEC zone), else NODATA
with the node's own denial (an NSEC3 zone's NSEC, an unsigned zone's RRSIG or
NSEC): never the CNAME and its target's answer (NXDOMAIN for a dangling alias).
Knot and BIND answer so. Both answer paths (`CompiledZone`, the zone image).
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from signed_zone import MODES, Denial, signed_snapshot, types_of, validate_sections

from node.image import ImageTable, ZoneImage, build_image
from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.zones import EXAMPLE

T = dns.rdatatype


def _responders(snap: ZoneSnapshot) -> list[Responder]:
    compiled = ZoneTable()
    compiled.publish(snap)
    image = ImageTable()
    assert image.install(ZoneImage.from_bytes(build_image(snap)))
    return [Responder(compiled), Responder(image)]


def _ask(responder: Responder, name: str, rdtype: str, do: bool) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, want_dnssec=do, use_edns=0)
    out = responder.handle(q.to_wire(), ("127.0.0.1", 5300), "udp")
    assert isinstance(out, bytes)
    return dns.message.from_wire(out)


@pytest.mark.parametrize("qtype", ["RRSIG", "NSEC"])
@pytest.mark.parametrize("alias", ["www", "dangling", "external", "loop1"])
@pytest.mark.parametrize("path", ["compiled", "image"])
def test_unsigned_alias_is_nodata(path: str, alias: str, qtype: str) -> None:
    snap = snapshot_from_text(EXAMPLE, "example.com.")
    responder = _responders(snap)[path == "image"]
    for do in (False, True):
        resp = _ask(responder, f"{alias}.example.com.", qtype, do)
        assert resp.rcode() == dns.rcode.NOERROR
        assert resp.flags & dns.flags.AA
        assert not resp.answer, resp
        assert [r.rdtype for r in resp.authority] == [T.SOA]


@pytest.mark.parametrize("mode", sorted(m for m in MODES if MODES[m].nsec3))
@pytest.mark.parametrize("path", ["compiled", "image"])
def test_nsec3_alias_nsec_is_nodata(path: str, mode: str) -> None:
    snap = signed_snapshot(mode)
    responder = _responders(snap)[path == "image"]
    dnskey = snap.nodes[dns.name.from_text("example.")][T.DNSKEY]
    for alias in ("www.example.", "chain.example."):
        resp = _ask(responder, alias, "NSEC", True)
        assert resp.rcode() == dns.rcode.NOERROR and not resp.answer, resp
        validate_sections(resp, dnskey)
        assert resp.authority[0].rdtype == T.SOA
        d = Denial(resp, MODES[mode])
        m = d.n3_match(dns.name.from_text(alias))
        assert m is not None and types_of(m) == {T.CNAME, T.RRSIG}  # the alias's own


@pytest.mark.parametrize("path", ["compiled", "image"])
def test_nsec_alias_answers_its_own_records(path: str) -> None:
    snap = signed_snapshot("nsec")
    responder = _responders(snap)[path == "image"]
    resp = _ask(responder, "www.example.", "NSEC", True)
    assert resp.rcode() == dns.rcode.NOERROR
    assert {(r.rdtype, r.covers) for r in resp.answer} == {(T.NSEC, 0), (T.RRSIG, T.NSEC)}
    resp = _ask(responder, "www.example.", "RRSIG", True)
    assert {r[0].type_covered for r in resp.answer} == {T.CNAME, T.NSEC}
