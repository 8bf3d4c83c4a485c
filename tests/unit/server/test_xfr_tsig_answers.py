"""TSIG on AXFR/IXFR: who may transfer (address OR listed key), NOTAUTH errors, every
message of the answer signed and chained (verified the way dnspython's inbound_xfr does)."""

from __future__ import annotations

import dataclasses

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.versioned
import dns.xfr
import pytest

from node.server.journal import Journals
from node.server.responder import Responder
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from node.zones.transfers import parse_notify_target, transfer_allowed
from tests.unit.server.ixfr_versions import ORIGIN as IXFR_ORIGIN
from tests.unit.server.ixfr_versions import signed_chain

ZONE = dns.name.from_text("example.com.")
KEY = dns.tsig.Key("xfr-key.", b"s" * 32, dns.tsig.HMAC_SHA256)
OTHER = dns.tsig.Key("other-key.", b"o" * 32, dns.tsig.HMAC_SHA256)
RING = {KEY.name: KEY, OTHER.name: OTHER}
OUTSIDE = "192.0.2.9"  # not in allow_transfer


def _with_keys(snap: ZoneSnapshot, keys: tuple[str, ...]) -> ZoneSnapshot:
    return dataclasses.replace(snap, config=dataclasses.replace(snap.config,
                                                                allow_transfer_keys=keys))


def _responder(*snaps: ZoneSnapshot, journals: Journals | None = None) -> Responder:
    t = ZoneTable(journals)
    for s in snaps:
        t.publish(s)
    return Responder(t, keyring=RING.get)


def _big() -> ZoneSnapshot:
    text = "$TTL 60\n@ SOA ns hm 5 1 1 1 1\n@ NS ns\n" + "".join(
        f'h{i} A 10.0.{i // 250}.{i % 250}\nh{i} TXT "{"x" * 60}"\n' for i in range(1500))
    return _with_keys(snapshot_from_text(text, ZONE, allow_transfer=["127.0.0.0/8"]),
                      ("xfr-key.",))


def _send(r: Responder, q: dns.message.Message, client: str = OUTSIDE) -> list[bytes]:
    out = r.handle(q.to_wire(), (client, 4000), "tcp")
    return out if isinstance(out, list) else [out]  # type: ignore[list-item]


def _verified(q: dns.message.Message, wires: list[bytes], key: dns.tsig.Key
              ) -> list[dns.message.Message]:
    """Each message verified as dnspython's inbound_xfr does: chained TSIG contexts."""
    ctx = None
    out = []
    for w in wires:
        m = dns.message.from_wire(w, keyring=key, request_mac=q.mac, xfr=True,
                                  tsig_ctx=ctx, multi=True, one_rr_per_rrset=True)
        assert m.had_tsig
        ctx = m.tsig_ctx
        out.append(m)
    return out


def test_signed_axfr_from_anywhere_every_message_signed_and_chained() -> None:
    r = _responder(_big())
    q = dns.message.make_query(ZONE, "AXFR")
    q.use_tsig(KEY)
    wires = _send(r, q)
    assert len(wires) > 3
    msgs = _verified(q, wires, KEY)
    assert all(m.rcode() == dns.rcode.NOERROR for m in msgs)
    assert sum(len(rr) for m in msgs for rr in m.answer) == 3000 + 1 + 2
    # the chain: a later message taken out of order does not verify
    with pytest.raises(dns.tsig.BadSignature):
        _verified(q, [wires[0], wires[2]], KEY)


def test_unsigned_request_from_outside_the_address_list_is_refused() -> None:
    r = _responder(_big())
    (w,) = _send(r, dns.message.make_query(ZONE, "AXFR"))
    assert dns.message.from_wire(w).rcode() == dns.rcode.REFUSED
    assert len(_send(r, dns.message.make_query(ZONE, "AXFR"), "127.0.0.1")) > 3  # the address


def test_a_valid_key_not_listed_for_the_zone_is_refused_signed() -> None:
    r = _responder(_big())
    q = dns.message.make_query(ZONE, "AXFR")
    q.use_tsig(OTHER)
    (m,) = _verified(q, _send(r, q), OTHER)
    assert m.rcode() == dns.rcode.REFUSED


def test_a_signed_request_from_a_listed_address_is_answered_signed() -> None:
    snap = _with_keys(_big(), ())
    q = dns.message.make_query(ZONE, "AXFR")
    q.use_tsig(OTHER)
    msgs = _verified(q, _send(_responder(snap), q, "127.0.0.1"), OTHER)
    assert msgs[0].rcode() == dns.rcode.NOERROR and len(msgs) > 3


@pytest.mark.parametrize(("key", "error"), [
    (dns.tsig.Key("nobody-key.", b"s" * 32, dns.tsig.HMAC_SHA256), dns.rcode.BADKEY),
    (dns.tsig.Key("xfr-key.", b"wrong" * 7, dns.tsig.HMAC_SHA256), dns.rcode.BADSIG),
])
def test_a_bad_tsig_gets_notauth_with_the_tsig_error(key: dns.tsig.Key, error: int) -> None:
    r = _responder(_big())
    q = dns.message.make_query(ZONE, "AXFR")
    q.use_tsig(key)
    for client in (OUTSIDE, "127.0.0.1"):  # even from an allowed address
        (w,) = _send(r, q, client)
        m = dns.message.from_wire(w, keyring=False)  # the error TSIG carries no MAC
        assert m.rcode() == dns.rcode.NOTAUTH
        assert m.tsig is not None and m.tsig[0].error == error


async def test_signed_ixfr_is_incremental_and_applies() -> None:
    chain = [_with_keys(dataclasses.replace(s, config=dataclasses.replace(
        s.config, allow_transfer=())), ("xfr-key.",)) for s in signed_chain("nsec3")]
    t = ZoneTable(Journals())
    for snap in chain:
        await t.publish_async(snap)
    assert t.journals is not None
    await t.journals.caught_up(IXFR_ORIGIN)
    r = Responder(t, keyring=RING.get)
    base = chain[0]
    zone = dns.versioned.Zone(IXFR_ORIGIN, relativize=False)
    q = dns.message.make_query(IXFR_ORIGIN, "AXFR")
    q.use_tsig(KEY)
    # the first version, by AXFR from a table serving it (signed and allowed by key)
    t0 = ZoneTable()
    t0.publish(base)
    with dns.xfr.Inbound(zone, dns.rdatatype.AXFR) as inbound:
        for m in _verified(q, _send(Responder(t0, keyring=RING.get), q), KEY):
            inbound.process_message(m)
    q = dns.message.make_query(IXFR_ORIGIN, "IXFR")
    q.authority.append(dns.rrset.from_text(IXFR_ORIGIN, 0, "IN", "SOA",
                                           f"ns1.example. hm.example. {base.serial} 1 1 1 1"))
    q.use_tsig(KEY)
    msgs = _verified(q, _send(r, q), KEY)
    # incremental: the old serial's SOA follows ours
    answer = [rr for m in msgs for rr in m.answer]
    assert answer[1].rdtype == dns.rdatatype.SOA and answer[1][0].serial == base.serial
    with dns.xfr.Inbound(zone, dns.rdatatype.IXFR, serial=base.serial) as inbound:
        for m in msgs:
            inbound.process_message(m)
    last = chain[-1]
    assert zone.get_soa().serial == last.serial
    assert {(n, rds.rdtype) for n, rds in zone.iterate_rdatasets()} == {
        (rr.name, rr.rdtype) for rr in last.rrsets()}


def test_the_rule_is_address_or_listed_key() -> None:
    key = dns.name.from_text("XFR-Key.")
    assert transfer_allowed(True, None, ())
    assert transfer_allowed(False, key, ("xfr-key.",))
    assert not transfer_allowed(False, key, ("other.",))
    assert not transfer_allowed(False, None, ("xfr-key.",))


def test_notify_targets_name_an_optional_key() -> None:
    t = parse_notify_target("192.0.2.1:5300/Sec-Key")
    assert (t.host, t.port, t.key) == ("192.0.2.1", 5300, dns.name.from_text("sec-key."))
    assert parse_notify_target("[2001:db8::1]:53").text() == "[2001:db8::1]:53"
    assert parse_notify_target("192.0.2.1").text() == "192.0.2.1:53"
    assert t.text() == "192.0.2.1:5300/sec-key."


def test_a_signed_query_is_answered_signed() -> None:
    """BIND signs its SOA refresh queries with the transfer key: the answer must be signed."""
    r = _responder(_big())
    q = dns.message.make_query(ZONE, "SOA", use_edns=0)
    q.use_tsig(KEY)
    for transport in ("udp", "tcp"):
        out = r.handle(q.to_wire(), (OUTSIDE, 1), transport)
        assert isinstance(out, bytes)
        m = dns.message.from_wire(out, keyring=KEY, request_mac=q.mac)
        assert m.had_tsig and m.answer[0].rdtype == dns.rdatatype.SOA
    q.use_tsig(dns.tsig.Key("nobody-key.", b"s" * 32, dns.tsig.HMAC_SHA256))
    out = r.handle(q.to_wire(), (OUTSIDE, 1), "udp")
    m = dns.message.from_wire(out, keyring=False)  # type: ignore[arg-type]
    assert m.rcode() == dns.rcode.NOTAUTH and m.tsig is not None
    assert m.tsig[0].error == dns.rcode.BADKEY
