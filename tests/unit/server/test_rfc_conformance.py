"""Answers the RFCs pin down where Knot DNS and we were compared and we differed (the edge-case
catalogue of session 7): each case through a `ZoneTable` (the control process, `server.workers
= 0`) and an `ImageTable` (the serving workers), via the `Responder` both sit behind."""

from __future__ import annotations

from collections.abc import Callable

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from node.image import ImageTable, ZoneImage, build_image
from node.server.responder import Responder
from node.server.table import ZoneTable
from node.server.update import notify_hook
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.zones import EXAMPLE
from tests.unit.server.signed_zone import MODES, signed_snapshot

T = dns.rdatatype
Ask = Callable[..., dns.message.Message]


def _responder(kind: str, snap: ZoneSnapshot) -> Responder:
    if kind == "image":
        images = ImageTable()
        images.install(ZoneImage.from_bytes(build_image(snap)))
        return Responder(images)  # type: ignore[arg-type]
    table = ZoneTable()
    table.publish(snap)
    return Responder(table)


def _asker(responder: Responder) -> Ask:
    def ask(name: str, rdtype: str, *, do: bool = False, transport: str = "udp"
            ) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype, want_dnssec=do, use_edns=0, payload=4096)
        out = responder.handle(q.to_wire(), ("127.0.0.1", 5300), transport)
        assert isinstance(out, bytes)
        return dns.message.from_wire(out)

    return ask


@pytest.fixture(scope="module", params=[(m, k) for m in sorted(MODES)
                                        for k in ("compiled", "image")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def signed(request: pytest.FixtureRequest) -> tuple[ZoneSnapshot, Ask]:
    mode, kind = request.param
    snap = signed_snapshot(mode)
    return snap, _asker(_responder(kind, snap))


@pytest.mark.parametrize(("name", "rdtype", "do"), [
    ("web.example.", "RRSIG", False),
    ("web.example.", "RRSIG", True),
    ("example.", "RRSIG", True),
    ("web.example.", "ANY", False),
    ("web.example.", "ANY", True),
])
def test_rrsig_ttl_is_the_covered_rrsets(signed: tuple[ZoneSnapshot, Ask], name: str,
                                         rdtype: str, do: bool) -> None:
    """RFC 4034 §3 and RFC 4035 §2.2: an RRSIG's TTL equals the TTL of the RRset it covers,
    also when RRSIGs are asked for (QTYPE RRSIG, ANY) and cover RRsets of different TTLs
    (the NSEC's is the SOA minimum, 300; the others 3600)."""
    snap, ask = signed
    resp = ask(name, rdtype, do=do, transport="tcp")
    assert resp.rcode() == dns.rcode.NOERROR
    types = snap.nodes[dns.name.from_text(name)]
    sigs = [r for r in resp.answer if r.rdtype == T.RRSIG]
    assert sigs, resp
    got = {T.to_text(r.covers): r.ttl for r in sigs}
    want = {T.to_text(r.covers): types[r.covers].ttl for r in sigs}
    assert got == want



@pytest.fixture(params=["compiled", "image"])
def plain(request: pytest.FixtureRequest) -> Responder:
    return _responder(request.param, snapshot_from_text(EXAMPLE, "example.com.",
                                                        allow_transfer=["127.0.0.0/8"]))


def _wire(name: str, rdtype: str, *, do: bool = True, opcode: int = 0) -> bytes:
    q = dns.message.make_query(name, rdtype, want_dnssec=do, use_edns=0)
    q.set_opcode(opcode)
    return q.to_wire()


def _one(responder: Responder, wire: bytes, transport: str = "udp") -> dns.message.Message:
    out = responder.handle(wire, ("127.0.0.1", 5300), transport)
    if isinstance(out, list):
        out = out[0]
    assert isinstance(out, bytes)
    return dns.message.from_wire(out)


@pytest.mark.parametrize("section", [6, 8])  # ANCOUNT, NSCOUNT
def test_opt_outside_the_additional_section_is_formerr(plain: Responder, section: int) -> None:
    """RFC 6891 §6.1.1: the OPT RR goes in the additional section; a query carrying it in the
    answer or authority section is malformed (Knot: FORMERR; we answered it as a query)."""
    wire = bytearray(_wire("www.example.com.", "A", do=False))
    wire[section + 1], wire[11] = 1, 0
    out = plain.handle(bytes(wire), ("127.0.0.1", 5300), "udp")
    assert isinstance(out, bytes)
    assert out[3] & 0xF == dns.rcode.FORMERR


def test_notify_answer_has_opt_with_do(plain: Responder) -> None:
    """RFC 6891 §7: a response to a request with an OPT has one; RFC 3225 §3: DO copied."""
    plain.hooks[4] = notify_hook(plain.table)  # type: ignore[arg-type]
    resp = _one(plain, _wire("example.com.", "SOA", opcode=4))
    assert resp.rcode() == dns.rcode.NOERROR
    assert resp.edns == 0 and resp.ednsflags & dns.flags.DO


def test_xfr_over_udp_refusal_copies_do() -> None:
    """A refused AXFR (not allowed, here over UDP) or one of a zone we do not serve
    (NOTAUTH): OPT with DO copied (RFC 3225 §3)."""
    responder = _responder("compiled", snapshot_from_text(EXAMPLE, "example.com."))
    for name, transport in (("example.com.", "udp"), ("www.example.com.", "tcp")):
        resp = _one(responder, _wire(name, "AXFR"), transport)
        assert resp.rcode() in (dns.rcode.FORMERR, dns.rcode.REFUSED, dns.rcode.NOTAUTH)
        assert resp.edns == 0 and resp.ednsflags & dns.flags.DO, (name, transport)


@pytest.mark.parametrize(("rdtype", "transport"), [("AXFR", "tcp"), ("IXFR", "udp"),
                                                   ("IXFR", "tcp")])
def test_transfer_answer_has_opt(rdtype: str, transport: str) -> None:
    """RFC 5936 §2.2.5 / RFC 6891 §7: the first message of a transfer asked for with EDNS
    carries an OPT (DO copied); a transfer asked for without has none."""
    responder = _responder("compiled", snapshot_from_text(EXAMPLE, "example.com.",
                                                          allow_transfer=["127.0.0.0/8"]))
    for do in (True, False):
        q = dns.message.make_query("example.com.", rdtype, want_dnssec=do, use_edns=0)
        if rdtype == "IXFR":
            q.authority.append(dns.rrset.from_text("example.com.", 0, "IN", "SOA",
                                                   "ns1.example.com. h.example.com. 1 1 1 1 1"))
        resp = _one(responder, q.to_wire(), transport)
        assert resp.rcode() == dns.rcode.NOERROR and resp.answer
        assert resp.edns == 0 and bool(resp.ednsflags & dns.flags.DO) == do
    bare = dns.message.make_query("example.com.", "AXFR").to_wire()
    assert _one(responder, bare, "tcp").edns < 0


MANY = EXAMPLE + "".join(f"manymx MX {i} host{i}\nhost{i} A 192.0.2.{100 + i}\n"
                         f"host{i} AAAA 2001:db8::{100 + i}\n" for i in range(12)) + "".join(
    f"manyns NS ns{i}.manyns\nns{i}.manyns A 192.0.2.{150 + i}\n" for i in range(12))


@pytest.fixture(params=["compiled", "image"])
def many(request: pytest.FixtureRequest) -> Responder:
    return _responder(request.param, snapshot_from_text(MANY, "example.com."))


@pytest.mark.parametrize("payload", [None, 512])
def test_additional_that_does_not_fit_is_left_out_not_truncated(many: Responder,
                                                                payload: int | None) -> None:
    """RFC 2181 §9: TC is not set merely because additional data could not fit: the answer
    goes out whole without its additional section (Knot: the same, with what fits)."""
    q = dns.message.make_query("manymx.example.com.", "MX", use_edns=payload is not None,
                               payload=payload or 512)
    wire = many.handle(q.to_wire(), ("127.0.0.1", 5300), "udp")
    assert isinstance(wire, bytes) and len(wire) <= 512
    resp = dns.message.from_wire(wire)
    assert not resp.flags & dns.flags.TC
    assert len(resp.answer[0]) == 12 and not resp.additional
    assert resp.edns == (0 if payload else -1)


def test_referral_whose_glue_does_not_fit_is_truncated(many: Responder) -> None:
    """RFC 9471: in-domain glue of a referral that does not fit sets TC (no glue-less
    referral)."""
    q = dns.message.make_query("x.manyns.example.com.", "A", use_edns=False)
    q.flags = 0
    wire = many.handle(q.to_wire(), ("127.0.0.1", 5300), "udp")
    assert isinstance(wire, bytes)
    resp = dns.message.from_wire(wire)
    assert resp.flags & dns.flags.TC and not resp.authority
