"""Answers the RFCs pin down where Knot DNS and we were compared and we differed (the edge-case
catalogue of session 7): each case through a `ZoneTable` (the control process, `server.workers
= 0`) and an `ImageTable` (the serving workers), via the `Responder` both sit behind."""

from __future__ import annotations

from collections.abc import Callable

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from node.image import ImageTable, ZoneImage, build_image
from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot
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

