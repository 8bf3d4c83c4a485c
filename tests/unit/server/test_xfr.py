"""Outgoing AXFR/IXFR: policy, SOA framing, several messages, IXFR as full transfer."""

from __future__ import annotations

import json
import logging

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from node.server.responder import Responder
from node.server.table import ZoneTable
from node.server.xfr import serial_gte
from node.zones.model import ZoneSnapshot, snapshot_from_text


def _xfr(r: Responder, client: str, transport: str, **kw: object) -> list[dns.message.Message]:
    rdtype = kw.pop("rdtype", "AXFR")
    q = dns.message.make_query("example.com.", rdtype)  # type: ignore[arg-type]
    if "serial" in kw:
        soa = dns.rrset.from_text(
            "example.com.",
            0,
            "IN",
            "SOA",
            f"ns1.example.com. hm.example.com. {kw['serial']} 1 1 1 1",
        )
        q.authority.append(soa)
    out = r.handle(q.to_wire(), (client, 4000), transport)
    msgs = out if isinstance(out, list) else [out]
    return [dns.message.from_wire(m, one_rr_per_rrset=True) for m in msgs]  # type: ignore[arg-type]


def _records(msgs: list[dns.message.Message]) -> list[dns.rrset.RRset]:
    return [rrset for m in msgs for rrset in m.answer]


def test_axfr_allowed_streams_soa_first_and_last(
    responder: Responder, snapshot: ZoneSnapshot
) -> None:
    msgs = _xfr(responder, "127.0.0.1", "tcp")
    rrsets = _records(msgs)
    assert rrsets[0].rdtype == dns.rdatatype.SOA and rrsets[-1].rdtype == dns.rdatatype.SOA
    assert all(m.rcode() == dns.rcode.NOERROR for m in msgs)
    got = {(r.name, r.rdtype, rd) for r in rrsets[1:-1] for rd in r}
    want = {(r.name, r.rdtype, rd) for r in snapshot.rrsets() for rd in r if r.rdtype != 6}
    assert got == want
    assert msgs[0].question and msgs[0].question[0].rdtype == dns.rdatatype.AXFR


def test_axfr_of_a_big_zone_uses_several_messages() -> None:
    text = "$TTL 60\n@ SOA ns hm 5 1 1 1 1\n@ NS ns\n" + "".join(
        f'h{i} A 10.0.{i // 250}.{i % 250}\nh{i} TXT "{"x" * 60}"\n' for i in range(1500)
    )
    t = ZoneTable()
    t.publish(snapshot_from_text(text, "example.com.", allow_transfer=["0.0.0.0/0"]))
    msgs = _xfr(Responder(t), "192.0.2.7", "tcp")
    assert len(msgs) > 3
    assert sum(len(r) for r in _records(msgs)) == 3000 + 1 + 2
    assert not msgs[1].question


def test_axfr_refused_for_others_and_emits_event(
    responder: Responder, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="node.events"):
        msgs = _xfr(responder, "192.0.2.55", "tcp")
    assert [m.rcode() for m in msgs] == [dns.rcode.REFUSED]
    events = [json.loads(r.message) for r in caplog.records if r.name == "node.events"]
    assert any(e["name"] == "XFR_REFUSED" and e["client"] == "192.0.2.55" for e in events)


def test_axfr_default_is_nobody() -> None:
    t = ZoneTable()
    t.publish(snapshot_from_text("@ 60 SOA ns hm 1 1 1 1 1\n@ 60 NS ns\n", "example.com."))
    assert [m.rcode() for m in _xfr(Responder(t), "127.0.0.1", "tcp")] == [dns.rcode.REFUSED]


def test_axfr_over_udp_is_formerr(responder: Responder) -> None:
    assert [m.rcode() for m in _xfr(responder, "127.0.0.1", "udp")] == [dns.rcode.FORMERR]


@pytest.mark.parametrize("rdtype", ["AXFR", "IXFR"])
@pytest.mark.parametrize("name", ["web.example.com.", "example.org."])
def test_transfer_of_a_zone_we_do_not_serve_is_notauth(responder: Responder, name: str,
                                                      rdtype: str) -> None:
    """Not a zone of ours (a name inside one, or outside all): NOTAUTH (RFC 5936 §2.2.1,
    "not authoritative for the queried zone"), as BIND and Knot answer; REFUSED stays the
    answer of a zone we serve to a client it does not allow."""
    q = dns.message.make_query(name, rdtype)
    out = responder.handle(q.to_wire(), ("127.0.0.1", 1), "tcp")
    msgs = out if isinstance(out, list) else [out]
    assert dns.message.from_wire(msgs[0]).rcode() == dns.rcode.NOTAUTH  # type: ignore[arg-type]


def test_ixfr_is_answered_with_the_full_zone(responder: Responder) -> None:
    msgs = _xfr(responder, "127.0.0.1", "tcp", rdtype="IXFR", serial=1)
    rrsets = _records(msgs)
    assert rrsets[0].rdtype == dns.rdatatype.SOA and rrsets[-1].rdtype == dns.rdatatype.SOA
    assert len(rrsets) > 10


def test_ixfr_up_to_date_gets_soa_only(responder: Responder) -> None:
    msgs = _xfr(responder, "127.0.0.1", "tcp", rdtype="IXFR", serial=2024010101)
    rrsets = _records(msgs)
    assert len(rrsets) == 1 and rrsets[0].rdtype == dns.rdatatype.SOA
    udp = _records(_xfr(responder, "127.0.0.1", "udp", rdtype="IXFR", serial=1))
    assert len(udp) == 1  # SOA only over UDP: the client retries over TCP


def test_serial_arithmetic() -> None:
    assert serial_gte(5, 5) and serial_gte(6, 5) and not serial_gte(5, 6)
    assert serial_gte(1, 0xFFFFFFFF)  # wrapped
