"""Authoritative answers from one compiled zone: RFC 1034 §4.3.2 inside a zone.

Owns the answer semantics; `compile.py` owns the indexes and caches, this
module only reads them. Names are lowercased wire names (`bytes`).

* delegations: the highest zone cut above or at the name gives a referral
  (NS in authority, AA=0, in-zone A/AAAA of the NS targets in additional),
  except DS at the cut itself, which the parent side answers (NODATA if none);
* exact match: the RRset, or the CNAME chain followed inside the zone (at most
  `MAX_CHAIN` links, loops stop; not for RRSIG and NSEC, which an alias owns
  itself), or NODATA with the SOA;
* empty non-terminals: NODATA, never NXDOMAIN;
* DNAME (RFC 6672): a name strictly below the owner of a DNAME (the highest
  cut or DNAME above the name decides, as a delegation would) is answered with
  the DNAME RRset, a CNAME synthesized from it (TTL of the DNAME, owner the
  name, target the name with the owner's labels replaced by the DNAME target)
  and that target chased inside the zone as a CNAME's; a synthesized name over
  255 octets is YXDOMAIN (§2.2). The DNAME owner itself answers as any name;
* wildcards (RFC 4592): the source of synthesis is `*.` + the closest
  encloser; a matching wildcard with no such type is NODATA, a wildcard that is
  itself an empty non-terminal is NODATA too; otherwise NXDOMAIN;
* negative answers carry the SOA with TTL min(SOA TTL, SOA MINIMUM) (RFC 2308);
* additional section: A/AAAA of in-zone targets of MX, NS and SRV answers;
* QTYPE ANY: every RRset at the name (our choice over RFC 8482's HINFO; over
  UDP large sets truncate and the client retries over TCP).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import dns.rdatatype
import dns.rrset

from node.server.rdwire import name_wire as labels_wire
from node.server.render import AA, QR, AnswerBuilder, Entry
from node.server.wire import NXDOMAIN, TYPE_ANY

if TYPE_CHECKING:
    from node.server.compile import CompiledZone

MAX_CHAIN = 4  # links after the first: at most 5 CNAMEs, written or synthesized, as Knot

A = int(dns.rdatatype.A)
AAAA = int(dns.rdatatype.AAAA)
NS = int(dns.rdatatype.NS)
CNAME = int(dns.rdatatype.CNAME)
SOA = int(dns.rdatatype.SOA)
MX = int(dns.rdatatype.MX)
SRV = int(dns.rdatatype.SRV)
DS = int(dns.rdatatype.DS)
DNAME = int(dns.rdatatype.DNAME)
YXDOMAIN = 6
_CNAME_HEAD = CNAME.to_bytes(2, "big") + b"\x00\x01"  # type CNAME, class IN
# types an alias may own besides its CNAME (RFC 2181 §10.1, SIG/NXT renamed by RFC 3755):
# asked for at an alias, its own node answers them (NODATA when it has none), the CNAME is
# not followed, as Knot and BIND answer
AT_ALIAS = (int(dns.rdatatype.RRSIG), int(dns.rdatatype.NSEC))

Types = Mapping[int, dns.rrset.RRset]

# lookup outcomes
EXACT, WILD, REFERRAL, NODATA, NXDOMAIN_KIND, DNAME_KIND = range(6)


def name_wire(name: dns.name.Name) -> bytes:
    """Lowercased uncompressed wire form of an absolute name."""
    wire = labels_wire(name)  # dnspython's writer only for what that does not take
    return (wire if wire is not None else name.to_wire()).lower()  # type: ignore[union-attr]


def targets(rrset: dns.rrset.RRset) -> list[bytes]:
    """Names whose addresses belong in the additional section of this RRset's answer."""
    if rrset.rdtype in (NS, SRV):
        return [name_wire(rd.target) for rd in rrset]
    if rrset.rdtype == MX:
        return [name_wire(rd.exchange) for rd in rrset]
    return []


def lookup(zone: CompiledZone, name: bytes, qtype: int) -> tuple[int, object]:
    """Classify `name` (inside the zone): (kind, types | cut name | None)."""
    chain = [name]
    n = name
    origin = zone.origin
    while n != origin:
        n = n[n[0] + 1 :]
        chain.append(n)
    cut = occluding(zone, chain, qtype)
    if cut is not None:
        return cut
    names = zone.names
    types = names.get(name)
    if types is not None:
        return EXACT, types
    below = zone.below
    if below.get(name):
        return NODATA, None
    for anc in chain[1:]:
        if anc in names or below.get(anc):
            wild = b"\x01*" + anc
            wtypes = names.get(wild)
            if wtypes is not None:
                return WILD, wtypes
            if below.get(wild):
                return NODATA, None
            return NXDOMAIN_KIND, None
    return NXDOMAIN_KIND, None  # unreachable: the origin always exists


def occluding(zone: CompiledZone, chain: list[bytes], qtype: int) -> tuple[int, bytes] | None:
    """(REFERRAL, cut) or (DNAME_KIND, DNAME owner) for the highest such point on `chain`
    (the name, then its ancestors up to the origin), or None: a cut at the name itself
    decides unless QTYPE is DS, a DNAME only above the name."""
    cuts, dnames = zone.cuts, zone.dnames
    if cuts or dnames:
        name = chain[0]
        for anc in reversed(chain):
            if anc in cuts and not (anc == name and qtype == DS):
                return REFERRAL, anc
            if anc in dnames and anc != name:
                return DNAME_KIND, anc
    return None


def dname_step(zone: CompiledZone, b: AnswerBuilder, qname: bytes, owner: bytes, qtype: int,
               hop: int, seen: set[bytes], written: set[bytes], signed: bool = False
               ) -> tuple[bytes | None, int]:
    """The DNAME step of the plain chase (`resolve`) and the signed one (`secure.resolve`):
    the DNAME RRset at `owner` once per answer (a loop through it is written once), with
    its RRSIGs when `signed`, then the CNAME RFC 6672 synthesizes for `qname`, unsigned,
    TTL the DNAME's. (next name to chase or None to stop, rcode): YXDOMAIN, nothing
    synthesized, when the target exceeds 255 octets (§2.2)."""
    types = zone.names[owner]
    dname = types[DNAME]
    if owner not in written:
        written.add(owner)
        b.answer += b.add_tails(owner, zone.tails(dname))
        if signed:
            b.answer += b.add_tails(owner, zone.sigs.get(owner, types, DNAME))
    target = qname[: len(qname) - len(owner)] + name_wire(dname[0].target)
    if len(target) > 255:
        return None, YXDOMAIN
    b.answer += b.add_tails(qname, (cname_tail(dname.ttl, target),))
    if qtype == CNAME:
        return None, 0
    return chased(zone, target, hop, seen), 0


class _Zone(Protocol):
    def contains(self, name: bytes) -> bool: ...


def chased(zone: _Zone, target: bytes, hop: int, seen: set[bytes]) -> bytes | None:
    """`target` if the chase goes on to it (in the zone, not met before, links left): the
    CNAME and DNAME chases here, in `secure` and in the image's (`node.image.resolve`)."""
    if target in seen or hop == MAX_CHAIN or not zone.contains(target):
        return None
    seen.add(target)
    return target


def cname_tail(ttl: int, target: bytes) -> bytes:
    """A CNAME RR after its owner name: type, class IN, TTL, rdlength, `target` (wire)."""
    return _CNAME_HEAD + ttl.to_bytes(4, "big") + len(target).to_bytes(2, "big") + target


def add_rrsets(
    zone: CompiledZone, b: AnswerBuilder, owner: bytes, types: Types, qtype: int
) -> list[bytes]:
    """Answer RRset(s) of `qtype` at `owner` plus additional addresses; returns the targets."""
    if qtype == TYPE_ANY:
        chosen = [types[t] for t in sorted(types)]
    else:
        chosen = [types[qtype]]
    deps: list[bytes] = []
    for rrset in chosen:
        b.add_answer(owner, rrset)
        deps.extend(targets(rrset))
    add_addresses(zone, b, deps)
    return deps


def add_addresses(zone: CompiledZone, b: AnswerBuilder, names: list[bytes],
                  signed: bool = False) -> None:
    """The in-zone A and AAAA RRsets of `names` (each once) in the additional section, with
    their RRSIGs when `signed`."""
    seen: set[bytes] = set()
    for t in names:
        if t in seen:
            continue
        seen.add(t)
        ttypes = zone.names.get(t)
        if ttypes is None:
            continue
        for rdtype in (A, AAAA):
            rrset = ttypes.get(rdtype)
            if rrset is not None:
                b.additional += b.add_tails(t, zone.tails(rrset))
                if signed:
                    b.additional += b.add_tails(t, zone.sigs.get(t, ttypes, rdtype))


def add_soa(zone: CompiledZone, b: AnswerBuilder) -> None:
    """The SOA for a negative answer, TTL min(SOA TTL, MINIMUM) (RFC 2308 §3)."""
    b.authority += b.add_tails(zone.origin, zone.negative_soa())


def positive(zone: CompiledZone, owner: bytes, rdtype: int) -> tuple[Entry, list[bytes]]:
    """The eager answer for an existing (owner, rdtype) not under a cut: entry and its deps."""
    b = AnswerBuilder(owner, rdtype)
    deps = add_rrsets(zone, b, owner, zone.names[owner], rdtype)
    return b.entry(QR | AA), deps


def resolve(zone: CompiledZone, qname: bytes, qtype: int) -> Entry:
    """The full answer for (qname, qtype) in this zone (slow path; cached by the caller)."""
    b = AnswerBuilder(qname, qtype)
    owner = qname
    seen = {qname}
    written: set[bytes] = set()  # DNAME owners in the answer
    aa = AA
    rcode = 0
    for hop in range(MAX_CHAIN + 1):
        kind, data = lookup(zone, owner, qtype)
        if kind == REFERRAL:
            cut: bytes = data  # type: ignore[assignment]
            if hop == 0:
                aa = 0
            ns = zone.names[cut][NS]
            b.add_authority(cut, ns)
            add_addresses(zone, b, targets(ns))
            break
        if kind == DNAME_KIND:
            next_owner, rcode = dname_step(zone, b, owner, data, qtype, hop,  # type: ignore[arg-type]
                                           seen, written)
            if next_owner is None:
                break
            owner = next_owner
            continue
        if kind == NODATA:
            add_soa(zone, b)
            break
        if kind == NXDOMAIN_KIND:
            add_soa(zone, b)
            rcode = NXDOMAIN
            break
        types: Types = data  # type: ignore[assignment]
        if qtype in types or (qtype == TYPE_ANY and types):
            add_rrsets(zone, b, owner, types, qtype)
            break
        cname = types.get(CNAME)
        if cname is None or qtype in AT_ALIAS:
            add_soa(zone, b)
            break
        b.add_answer(owner, cname)
        next_owner = chased(zone, name_wire(cname[0].target), hop, seen)
        if next_owner is None:
            break
        owner = next_owner
    return b.entry(QR | aa | rcode)
