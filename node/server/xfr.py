"""Outgoing zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995), incremental from the journal.

Owns the transfer policy (TCP only for AXFR; allowed when the client's address
is in the zone's `allow_transfer` CIDRs OR the request is signed by a TSIG key
in its `allow_transfer_keys`, default nobody, the same for IXFR; TSIG checks
and answer signing in `node.server.xfrauth`; with the zone's
`require_tls_transfer`, AXFR and IXFR only over DNS over TLS (XoT, RFC 9103),
else REFUSED with `XFR_TLS_REQUIRED`) and the streaming of a zone as several
messages: the SOA first and last, the question in the first message only,
owner names compressed within each message, each message at most
`MAX_MESSAGE` octets.

Signed zones transfer as they are served: every RRSIG, NSEC, NSEC3, DNSKEY,
NSEC3PARAM (an owner's RRSIGs are one RRset internally; each goes out with the
TTL of the RRset it covers, its original TTL).

IXFR (the client's serial is the SOA in its authority section):
* not older than ours (RFC 1982): our SOA alone ("up to date");
* in the journal (`node.server.journal`), which has caught up with the served
  version: the differences, as the chain of versions the journal holds (our
  SOA; then per version the old SOA, the RRs deleted, the new SOA, the RRs
  added; our SOA), RRSIG, NSEC and NSEC3 changes included;
* otherwise, or when the chain has more RRs than the zone: the whole zone in
  AXFR form (RFC 1995 §4), never a refusal.
Every writable node's copy at a serial is the same zone (docs/signing.md), so
a client that last transferred from another node gets a correct answer too.
Over UDP an incremental answer goes out when it fits in 512 octets; else the
SOA alone, which tells the client to retry over TCP. A chain with a step the
journal keeps only on disk (`Journals.read`) is never read on the UDP path
(the SOA alone: it would not fit); over TCP the answer is then an
asynchronous iterator that first has the steps read in a worker thread (the
TCP listener streams it like the others), and falls back to AXFR form when a
record is not there intact. Each IXFR answer is
counted in `answers` by kind (metric `dnscluster_ixfr_answers_total`).
dnspython is allowed here: this is not the hot path.
"""

from __future__ import annotations

import itertools
import logging
import struct
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import dns.exception
import dns.message
import dns.rdatatype
import dns.rrset

from node.events import Event, emit
from node.server import xfrauth
from node.server.answer import SOA, name_wire
from node.server.compile import CompiledZone
from node.server.journal import Entry, Journals
from node.server.render import AA, CD, QR, RD
from node.server.wire import FORMERR, NOTAUTH, TYPE_AXFR, NameCompressor, Query, reply_opt
from node.server.xfrauth import Keyring
from node.server.zonediff import RR, owner_records, rrset_records
from node.zones.transfers import transfer_allowed

log = logging.getLogger(__name__)

MAX_MESSAGE = 16_384
UDP_MAX = 512  # an incremental answer over UDP must fit in this (else the SOA alone)
_RRHEAD = struct.Struct("!HHIH")  # type, class, TTL, rdata length

# IXFR answers by kind since start: incremental, full (AXFR form), uptodate, udp_soa
answers: Counter[str] = Counter()


def serial_gte(a: int, b: int) -> bool:
    """RFC 1982: a >= b in serial number arithmetic (32 bits)."""
    return a == b or ((a - b) & 0xFFFFFFFF) < 0x80000000


def transfer(
    zone: CompiledZone | None, query: Query, wire: bytes, client: str, tcp: bool,
    journals: Journals | None = None,
    tls: bool = False, keyring: Keyring | None = None, held: bool = False,
) -> list[bytes] | Iterator[bytes] | AsyncIterator[bytes]:
    """The response messages for an AXFR or IXFR `query` (already parsed) from `client`.

    A transfer over TCP (full or incremental) is an iterator that renders
    messages as it is consumed (the TCP listener streams it without blocking the
    event loop); refusals, single-SOA answers and UDP answers are lists. A signed
    request is checked with `keyring` (transfer keys) first, and every message
    answering a verified one is signed (`node.server.xfrauth`). `held`: `query` names the
    apex of a zone of ours that is held (`ZoneTable.hold`): refused, not "not ours".
    """
    auth = xfrauth.authenticate(wire, query, keyring, client)
    if isinstance(auth, bytes):
        return [auth]
    if zone is None and held:
        return [auth.refuse()]
    out = _transfer(zone, query, auth, client, tcp, journals, tls)
    if isinstance(out, AsyncIterator):  # signed as it goes
        return out
    if isinstance(out, bytes):  # a refusal, signed already when the request was
        return [out]
    return list(auth.sign(out)) if isinstance(out, list) else auth.sign(out)


def _transfer(
    zone: CompiledZone | None, query: Query, auth: xfrauth.Auth, client: str, tcp: bool,
    journals: Journals | None, tls: bool,
) -> bytes | list[bytes] | Iterator[bytes] | AsyncIterator[bytes]:
    """A refusal, or the answer messages (to be signed when the request was)."""
    kind = "AXFR" if query.qtype == TYPE_AXFR else "IXFR"
    if zone is None or zone.origin != query.qname:  # not a zone of ours: "not authoritative
        return auth.refuse(NOTAUTH)  # for the queried zone" (RFC 5936 §2.2.1), as BIND, Knot
    key = auth.key_name
    if not transfer_allowed(zone.allows_transfer(client), key,
                            zone.snapshot.config.allow_transfer_keys):
        emit(Event.XFR_REFUSED, zone=zone.snapshot.origin, client=client, kind=kind,
             key=key.to_text() if key is not None else "-")
        return auth.refuse()
    if zone.snapshot.config.require_tls_transfer and not tls:
        emit(Event.XFR_TLS_REQUIRED, logging.WARNING, zone=zone.snapshot.origin, client=client,
             kind=kind, transport="tcp" if tcp else "udp")
        return auth.refuse()
    soa = zone.snapshot.soa()
    if query.qtype == TYPE_AXFR:
        if not tcp:
            return auth.refuse(FORMERR)
    else:
        theirs = _client_serial(auth.request)
        if theirs is not None and serial_gte(theirs, zone.serial):
            answers["uptodate"] += 1
            return list(_messages(query, zone, iter([(zone.origin, soa)])))
        steps = None if theirs is None or journals is None \
            else journals.since(zone.snapshot, theirs)
        if steps is not None and sum(e.count for e in steps) <= steps[-1].rrs \
                and not all(e.resident for e in steps):
            if tcp:
                assert journals is not None
                return _from_disk(query, zone, steps, journals, auth, client, theirs)
            steps = None  # only the chain's index is in memory: it would not fit anyway
        if steps is not None and sum(e.count for e in steps) <= steps[-1].rrs:
            udp_max = UDP_MAX - auth.tsig_room()  # the TSIG RR must fit too
            out = _incremental(query, zone, steps, MAX_MESSAGE if tcp else udp_max)
            first = next(out)
            if tcp or (len(first) <= udp_max and next(out, None) is None):
                answers["incremental"] += 1
                log.info("IXFR of %s from serial %d to %d (%d versions) to %s over %s",
                         zone.snapshot.origin, theirs, zone.serial, len(steps), client,
                         "TCP" if tcp else "UDP")
                return itertools.chain([first], out) if tcp else [first]
        if not tcp:
            answers["udp_soa"] += 1
            return list(_messages(query, zone, iter([(zone.origin, soa)])))
        answers["full"] += 1
    log.info("%s of %s serial %d to %s", kind, zone.snapshot.origin, zone.serial, client)
    return _messages(query, zone, _zone_rrsets(zone))


async def _from_disk(query: Query, zone: CompiledZone, steps: list[Entry], journals: Journals,
                     auth: xfrauth.Auth, client: str, theirs: int) -> AsyncIterator[bytes]:
    """The IXFR answer over TCP for a chain with steps on disk: read back in a worker
    thread first; the whole zone in AXFR form when that fails."""
    try:
        loaded = await journals.read(zone.snapshot.origin, steps)
    except (OSError, ValueError) as exc:
        log.warning("IXFR of %s from serial %d: %s; AXFR form", zone.snapshot.origin, theirs, exc)
        answers["full"] += 1
        out = _messages(query, zone, _zone_rrsets(zone))
    else:
        answers["incremental"] += 1
        log.info("IXFR of %s from serial %d to %d (%d versions, read from the journal file) to"
                 " %s over TCP", zone.snapshot.origin, theirs, zone.serial, len(steps), client)
        out = _incremental(query, zone, loaded, MAX_MESSAGE)
    for message in auth.sign(out):
        yield message


def _client_serial(msg: dns.message.Message) -> int | None:
    for rrset in msg.authority:
        if rrset.rdtype == SOA and len(rrset):
            return int(rrset[0].serial)
    return None


def _incremental(query: Query, zone: CompiledZone, steps: list[Entry], limit: int
                 ) -> Iterator[bytes]:
    """The IXFR answer: our SOA, per step old SOA, deletions, new SOA, additions; our SOA."""
    soa = owner_records(zone.snapshot.origin, {SOA: zone.snapshot.soa()})[0]

    def rrs() -> Iterator[RR]:
        yield soa
        for e in steps:
            yield from e.changes()
        yield soa

    return _render(query, rrs(), limit)


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
    rrs = ((owner, *rr) for owner, rrset in rrsets for rr in rrset_records(rrset))
    return _render(query, rrs, MAX_MESSAGE)


def _render(query: Query, rrs: Iterator[RR], limit: int) -> Iterator[bytes]:
    """`rrs` in messages of at most `limit` octets (an RR alone may exceed it); the first
    carries an OPT when the query had one (RFC 5936 §2.2.5, RFC 6891 §7)."""
    flags = (QR | AA | (query.flags & (RD | CD))).to_bytes(2, "big")
    qid = query.id.to_bytes(2, "big")
    opt = reply_opt(query) or b""
    first = True
    out, comp, count = _start(query.question, first)
    limit -= len(opt)
    for owner, rdtype, ttl, data in rrs:
        if count and len(out) + len(owner) + 10 + len(data) > limit:
            yield _finish(qid, flags, out, count, first, opt)
            first, opt = False, b""
            out, comp, count = _start(query.question, first)
        comp.write(out, owner.lower())
        out += _RRHEAD.pack(rdtype, 1, ttl, len(data))
        out += data
        count += 1
    yield _finish(qid, flags, out, count, first, opt)


def _start(question: bytes, first: bool) -> tuple[bytearray, NameCompressor, int]:
    out = bytearray(12)
    comp = NameCompressor()
    if first:
        comp.add(question[:-4].lower(), 12)
        out += question
    return out, comp, 0


def _finish(qid: bytes, flags: bytes, out: bytearray, count: int, first: bool,
            opt: bytes = b"") -> bytes:
    out[0:12] = (
        qid
        + flags
        + (b"\x00\x01" if first else b"\x00\x00")
        + count.to_bytes(2, "big")
        + (b"\x00\x00\x00\x01" if opt else b"\x00\x00\x00\x00")
    )
    return bytes(out + opt)
