"""Outgoing zone transfers: AXFR (RFC 5936) and IXFR answered as a full transfer (RFC 1995 §4).

Owns the transfer policy (TCP only for AXFR, the zone's `allow_transfer`
CIDR list, default nobody; with the zone's `require_tls_transfer`, AXFR and IXFR
only over DNS over TLS (XoT, RFC 9103), else REFUSED with `XFR_TLS_REQUIRED`)
and the streaming of a zone as several messages: the SOA first and last, the
question in the first message only, owner names compressed within each message,
each message at most `MAX_MESSAGE` octets.

Signed zones transfer as they are served: every RRSIG, NSEC, NSEC3, DNSKEY,
NSEC3PARAM (an owner's RRSIGs are one RRset internally; each goes out with the
TTL of the RRset it covers, its original TTL).

IXFR: no journal yet, so a client behind us gets the whole zone in AXFR form
(never a refusal); a client whose serial is not older than ours (RFC 1982)
gets our SOA alone ("up to date"). Over UDP an IXFR gets the SOA alone, which
tells the client to retry over TCP. dnspython is allowed here: this is not the
hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import dns.exception
import dns.message
import dns.rdatatype
import dns.rrset

from node.events import Event, emit
from node.server.answer import SOA, name_wire
from node.server.compile import CompiledZone
from node.server.render import AA, CD, QR, RD, error_response
from node.server.wire import FORMERR, REFUSED, TYPE_AXFR, NameCompressor, Query

log = logging.getLogger(__name__)

MAX_MESSAGE = 16_384
RRSIG = int(dns.rdatatype.RRSIG)


def serial_gte(a: int, b: int) -> bool:
    """RFC 1982: a >= b in serial number arithmetic (32 bits)."""
    return a == b or ((a - b) & 0xFFFFFFFF) < 0x80000000


def transfer(
    zone: CompiledZone | None, query: Query, wire: bytes, client: str, tcp: bool,
    tls: bool = False,
) -> list[bytes] | Iterator[bytes]:
    """The response messages for an AXFR or IXFR `query` (already parsed) from `client`.

    A full transfer is an iterator that renders messages as it is consumed (the
    TCP listener streams it without blocking the event loop); refusals and
    single-SOA answers are lists.
    """
    kind = "AXFR" if query.qtype == TYPE_AXFR else "IXFR"
    if zone is None or zone.origin != query.qname:
        return [error_response(query.id, query.flags, REFUSED, query.question, None)]
    if not zone.allows_transfer(client):
        emit(Event.XFR_REFUSED, zone=zone.snapshot.origin, client=client, kind=kind)
        return [error_response(query.id, query.flags, REFUSED, query.question, None)]
    if zone.snapshot.config.require_tls_transfer and not tls:
        emit(Event.XFR_TLS_REQUIRED, logging.WARNING, zone=zone.snapshot.origin, client=client,
             kind=kind, transport="tcp" if tcp else "udp")
        return [error_response(query.id, query.flags, REFUSED, query.question, None)]
    soa = zone.snapshot.soa()
    if query.qtype == TYPE_AXFR:
        if not tcp:
            return [error_response(query.id, query.flags, FORMERR, query.question, None)]
    elif not tcp or _client_serial_current(wire, zone.serial):
        return list(_messages(query, zone, iter([(zone.origin, soa)])))
    log.info("%s of %s serial %d to %s", kind, zone.snapshot.origin, zone.serial, client)
    return _messages(query, zone, _zone_rrsets(zone))


def _client_serial_current(wire: bytes, serial: int) -> bool:
    try:
        msg = dns.message.from_wire(wire, ignore_trailing=True)
    except dns.exception.DNSException:
        return False
    for rrset in msg.authority:
        if rrset.rdtype == SOA and len(rrset):
            return serial_gte(rrset[0].serial, serial)
    return False


def _zone_rrsets(zone: CompiledZone) -> Iterator[tuple[bytes, dns.rrset.RRset]]:
    soa = zone.snapshot.soa()
    yield zone.origin, soa
    for name, types in zone.snapshot.nodes.items():
        owner = name_wire(name)
        for rdtype, rrset in types.items():
            if rdtype == SOA and owner == zone.origin:
                continue
            yield owner, rrset
    yield zone.origin, soa


def _messages(
    query: Query, zone: CompiledZone, rrsets: Iterator[tuple[bytes, dns.rrset.RRset]]
) -> Iterator[bytes]:
    flags = (QR | AA | (query.flags & (RD | CD))).to_bytes(2, "big")
    qid = query.id.to_bytes(2, "big")
    first = True
    out, comp, count = _start(query.question, first)
    for owner, rrset in rrsets:
        head = int(rrset.rdtype).to_bytes(2, "big") + b"\x00\x01" + rrset.ttl.to_bytes(4, "big")
        sigs = rrset.rdtype == RRSIG
        for rd in rrset:
            data = rd.to_wire()
            if sigs:  # each RRSIG with the TTL of the RRset it covers
                head = head[:4] + rd.original_ttl.to_bytes(4, "big")
            if count and len(out) + len(owner) + 10 + len(data) > MAX_MESSAGE:
                yield _finish(qid, flags, out, count, first)
                first = False
                out, comp, count = _start(query.question, first)
            comp.write(out, owner)
            out += head
            out += len(data).to_bytes(2, "big")
            out += data
            count += 1
    yield _finish(qid, flags, out, count, first)


def _start(question: bytes, first: bool) -> tuple[bytearray, NameCompressor, int]:
    out = bytearray(12)
    comp = NameCompressor()
    if first:
        comp.add(question[:-4].lower(), 12)
        out += question
    return out, comp, 0


def _finish(qid: bytes, flags: bytes, out: bytearray, count: int, first: bool) -> bytes:
    out[0:12] = (
        qid
        + flags
        + (b"\x00\x01" if first else b"\x00\x00")
        + count.to_bytes(2, "big")
        + b"\x00\x00\x00\x00"
    )
    return bytes(out)
