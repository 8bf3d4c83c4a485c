"""DNSSEC answers (DO=1) from one compiled signed zone: RFC 4035 §3.1, RFC 5155 §7.2, RFC 4592.

Owns what a DO=1 answer adds to the plain one of `answer.py` (same lookup
semantics, same rendering, same cache keys):

* positive: each answer RRset (CNAME chain links included) followed by the
  RRSIGs covering its type; in-zone addresses in the additional section with
  their RRSIGs; glue has none;
* wildcard answers: the synthesized RRset with the wildcard's RRSIGs (their
  labels field tells validators), and the proof that no closer name exists
  (the NSEC covering QNAME, or the NSEC3 covering the next closer name);
* NXDOMAIN: SOA + RRSIG, then NSEC covering QNAME + NSEC covering the wildcard
  at the closest encloser, or the NSEC3 closest-encloser proof (matching the
  closest encloser, covering the next closer name) + the NSEC3 covering the
  wildcard; duplicates once;
* NODATA: SOA + RRSIG + the NSEC at QNAME (the covering one for an empty
  non-terminal) or the NSEC3 matching it (under opt-out, a DS query at an
  insecure delegation gets the closest provable encloser proof instead);
  wildcard NODATA adds the wildcard's NSEC/NSEC3 to the no-closer proof;
* referrals: NS (no RRSIG, AA=0), then DS + RRSIG, or the proof that there is
  no DS (as for NODATA at the cut), then glue;
* DNAME (RFC 6672 §5.3.1): the DNAME RRset with its RRSIGs, then the synthesized
  CNAME, unsigned (validators check it against the DNAME), then the chase.

Every denial record comes pre-rendered with its RRSIGs from `proofs.DenialIndex`;
no dnspython per query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.server.answer import (
    AT_ALIAS,
    CNAME,
    DS,
    MAX_CHAIN,
    NS,
    Types,
    add_addresses,
    chased,
    dname_step,
    name_wire,
    occluding,
    targets,
)
from node.server.answer import REFERRAL as answer_REFERRAL
from node.server.proofs import RRSIG, Piece
from node.server.render import AA, QR, AnswerBuilder, Entry
from node.server.wire import NXDOMAIN, TYPE_ANY

if TYPE_CHECKING:
    from node.server.compile import CompiledZone

# outcomes of `classify`
EXACT, WILD, REFERRAL, ENT, WILD_ENT, NXDOMAIN_KIND, DNAME_KIND = range(7)


def _parent(name: bytes) -> bytes:
    return name[name[0] + 1 :]


def classify(zone: CompiledZone, name: bytes, qtype: int) -> tuple[int, object, bytes]:
    """(kind, types | cut, closest encloser) for `name` inside the zone (as `answer.lookup`)."""
    chain = [name]
    n = name
    origin = zone.origin
    while n != origin:
        n = _parent(n)
        chain.append(n)
    point = occluding(zone, chain, qtype)
    if point is not None:
        return (REFERRAL if point[0] == answer_REFERRAL else DNAME_KIND), point[1], point[1]
    names = zone.names
    types = names.get(name)
    if types is not None:
        return EXACT, types, name
    below = zone.below
    if below.get(name):
        return ENT, None, name
    for anc in chain[1:]:
        if anc in names or below.get(anc):
            wild = b"\x01*" + anc
            wtypes = names.get(wild)
            if wtypes is not None:
                return WILD, wtypes, anc
            if below.get(wild):
                return WILD_ENT, None, anc
            return NXDOMAIN_KIND, None, anc
    return NXDOMAIN_KIND, None, origin  # unreachable: the origin always exists


def next_closer(name: bytes, ce: bytes) -> bytes:
    """The ancestor of `name` (or `name`) one label longer than its encloser `ce`."""
    n = name
    while len(n) > len(ce):
        p = _parent(n)
        if p == ce:
            return n
        n = p
    return name


class _Proofs:
    """Denial records to put in authority, each once, in the order first asked for."""

    __slots__ = ("index", "pieces", "zone")

    def __init__(self, zone: CompiledZone) -> None:
        self.zone = zone
        self.index = zone.denial
        self.pieces: dict[bytes, Piece] = {}

    def add(self, piece: Piece | None) -> None:
        if piece is not None:
            self.pieces.setdefault(piece[0], piece)

    def closest_encloser(self, name: bytes, ce: bytes) -> None:
        """NSEC3: matching the closest (provable) encloser, covering the next closer name."""
        index = self.index
        origin = self.zone.origin
        match = index.match(ce)
        while match is None and ce != origin:  # opt-out: walk up to a provable encloser
            ce = _parent(ce)
            match = index.match(ce)
        self.add(match)
        self.add(index.cover(next_closer(name, ce)))

    def nxdomain(self, name: bytes, ce: bytes) -> None:
        index = self.index
        if index.nsec3:
            self.closest_encloser(name, ce)
        else:
            self.add(index.cover(name))
        self.add(index.cover(b"\x01*" + ce))

    def nodata(self, name: bytes) -> None:
        """No such type at an existing name (or empty non-terminal)."""
        index = self.index
        match = index.match(name)
        if match is not None:
            self.add(match)
        elif index.nsec3:
            self.closest_encloser(name, _parent(name))
        else:
            self.add(index.cover(name))

    def wildcard_answer(self, name: bytes, ce: bytes) -> None:
        """A wildcard answer: no closer match exists."""
        index = self.index
        if index.nsec3:
            self.add(index.cover(next_closer(name, ce)))
        else:
            self.add(index.cover(name))

    def wildcard_nodata(self, name: bytes, ce: bytes) -> None:
        index = self.index
        wild = b"\x01*" + ce
        if index.nsec3:
            self.add(index.match(ce))
            self.add(index.cover(next_closer(name, ce)))
            self.add(index.match(wild))
        else:
            self.add(index.cover(name))
            self.add(index.match(wild) or index.cover(wild))


def _add_signed(
    zone: CompiledZone, b: AnswerBuilder, owner: bytes, sig_owner: bytes, types: Types, rdtype: int
) -> None:
    b.answer += b.add_tails(owner, zone.tails(types[rdtype]))
    if rdtype != RRSIG:
        b.answer += b.add_tails(owner, zone.sigs.get(sig_owner, types, rdtype))


def resolve(zone: CompiledZone, qname: bytes, qtype: int) -> Entry:
    """The DO=1 answer for (qname, qtype) in a signed zone (slow path; cached by the caller)."""
    b = AnswerBuilder(qname, qtype)
    proofs = _Proofs(zone)
    owner = qname
    seen = {qname}
    written: set[bytes] = set()  # DNAME owners in the answer
    aa = AA
    rcode = 0
    negative = False
    referral: list[tuple[bytes, tuple[bytes, ...]]] = []
    addresses: list[bytes] = []
    for hop in range(MAX_CHAIN + 1):
        kind, data, ce = classify(zone, owner, qtype)
        if kind == REFERRAL:
            cut: bytes = data  # type: ignore[assignment]
            if hop == 0:
                aa = 0
            types = zone.names[cut]
            ns = types[NS]
            referral.append((cut, zone.tails(ns)))
            ds = types.get(DS)
            if ds is not None:
                referral.append((cut, zone.tails(ds) + zone.sigs.get(cut, types, DS)))
            else:
                proofs.nodata(cut)
            addresses = targets(ns)
            break
        if kind == DNAME_KIND:
            next_owner, rcode = dname_step(zone, b, owner, data, qtype, hop,  # type: ignore[arg-type]
                                           seen, written, signed=True)
            if next_owner is None:
                break
            owner = next_owner
            continue
        if kind == ENT:
            negative = True
            proofs.nodata(owner)
            break
        if kind == WILD_ENT:
            negative = True
            proofs.wildcard_nodata(owner, ce)
            break
        if kind == NXDOMAIN_KIND:
            negative = True
            rcode = NXDOMAIN
            proofs.nxdomain(owner, ce)
            break
        types: Types = data  # type: ignore[no-redef]
        sig_owner = owner if kind == EXACT else b"\x01*" + ce
        if qtype in types or (qtype == TYPE_ANY and types):
            chosen = sorted(t for t in types if t != RRSIG) if qtype == TYPE_ANY else [qtype]
            for rdtype in chosen:
                _add_signed(zone, b, owner, sig_owner, types, rdtype)
                addresses.extend(targets(types[rdtype]))
            if kind == WILD:
                proofs.wildcard_answer(owner, ce)
            break
        cname = types.get(CNAME)
        if cname is None or qtype in AT_ALIAS:
            negative = True
            if kind == WILD:
                proofs.wildcard_nodata(owner, ce)
            else:
                proofs.nodata(owner)
            break
        _add_signed(zone, b, owner, sig_owner, types, CNAME)
        if kind == WILD:
            proofs.wildcard_answer(owner, ce)
        next_owner = chased(zone, name_wire(cname[0].target), hop, seen)
        if next_owner is None:
            break
        owner = next_owner
    if negative:
        b.authority += b.add_tails(zone.origin, zone.negative_soa_signed())
    for cut, tails in referral:
        b.authority += b.add_tails(cut, tails)
    for piece_owner, tails in proofs.pieces.values():
        b.authority += b.add_tails(piece_owner, tails)
    add_addresses(zone, b, addresses, signed=True)
    return b.entry(QR | aa | rcode)
