"""A digest of a node's signed copy of a zone, kept current incrementally.

Two writable nodes at one serial must serve the same zone, byte for byte
(DESIGN.md "one serial is one zone"). Each node records this digest with its
signed serial, and `clusterctl zone dnssec` flags a node whose digest differs
from another's at the same serial.

The digest is order-independent: the sum, modulo 2**256, of a SHA-256 per
owner over that owner's records in canonical form (RFC 4034 §6: owner, type,
class, TTL, canonical rdata; RRSIGs with their original TTL, as served). So a
change updates it by the owners it touched, O(change) rather than O(zone). It
detects divergence; it is not a ZONEMD (RFC 8976) and makes no security claim.

An owner's digest is computed once per signed owner and version: `owner_digest`
keeps it on the signer's `SignedNode` (immutable, so its digest never changes),
and the running digests here and in the journal (`node.server.zonediff.Tracker`)
read it from the node map they last saw instead of keeping their own copy per
owner (issue 10, memory: they held the same 100k digests twice, 11 MiB each, and
the journal digested every owner again after a full sign). Only owners that are
not a `SignedNode` (glue, occluded data, an unsigned zone's) keep theirs in a
dict (`Digests.plain`).

Issue 10, session 16: a digest of a whole map (`ZoneDigest.reset`, a full sign's)
is not kept on its nodes (an int of 256 bits, 64 octets: 13 MiB at 213k owners,
NSEC3), only its sum, on the map (`SignedNodes.digest_sum`, which the journal's
`Tracker` reads instead of digesting the map again). An owner's digest is kept
once a change asks for it (the old node's, and the new one's: both running digests
read it), so a full pass's node is digested again once, when it is first replaced.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping

import dns.name
import dns.rdatatype
import dns.rrset

from node.dnssec.canonical import rdata_digestable
from node.dnssec.rrsigset import LazyRRset, RRSIGSet
from node.dnssec.signednodes import SignedNodes
from node.dnssec.sigstore import SignedNode

__all__ = ["Digests", "ZoneDigest", "owner_digest"]

_MOD = 1 << 256
_RR = struct.Struct("!HHI")


def owner_digest(owner: dns.name.Name, types: Mapping[int, dns.rrset.RRset],
                 keep: bool = True) -> int:
    """SHA-256 (as an integer) of one owner's records in canonical form and order; a
    `SignedNode`'s is computed once and kept on it unless `keep` is false (`types` is
    stored under `owner`, the node's own owner)."""
    if type(types) is SignedNode:
        found = types.digest
        if found is None:
            found = _records_digest(types.owner, types)
            if keep:
                types.digest = found
        return found
    return _records_digest(owner, types)


def known_sum(nodes: Mapping[dns.name.Name, Mapping[int, dns.rrset.RRset]]) -> int | None:
    """The sum of `nodes`' owner digests (mod 2**256) if a `ZoneDigest` computed it."""
    return nodes.digest_sum if type(nodes) is SignedNodes else None


def _records_digest(owner: dns.name.Name, types: Mapping[int, dns.rrset.RRset]) -> int:
    wire = owner.to_digestable()
    records = []
    for rdtype, rrset in types.items():
        if isinstance(rrset, RRSIGSet):  # the signer's: straight from its octets
            head = wire + _RR.pack(rdtype, rrset.rdclass, 0)[:4]
            records.extend(head + w[4:8] + w[:2] + w for w in rrset.wires())
            continue
        if isinstance(rrset, LazyRRset):  # NSEC/NSEC3: no rdata made
            head = wire + _RR.pack(rdtype, rrset.rdclass, rrset.ttl) + rdtype.to_bytes(2, "big")
            records.extend(head + w for w in rrset.wires())
            continue
        for rd in rrset:
            ttl = rd.original_ttl if rdtype == dns.rdatatype.RRSIG else rrset.ttl  # type: ignore[attr-defined]
            rtype = rd.type_covered if rdtype == dns.rdatatype.RRSIG else rdtype  # type: ignore[attr-defined]
            records.append(wire + _RR.pack(rdtype, rrset.rdclass, ttl) + rtype.to_bytes(2, "big")
                           + rdata_digestable(rd, owner))
    h = hashlib.sha256()
    for rec in sorted(records):
        h.update(len(rec).to_bytes(4, "big"))
        h.update(rec)
    return int.from_bytes(h.digest(), "big")


Nodes = Mapping[dns.name.Name, Mapping[int, dns.rrset.RRset]]


class Digests:
    """The owner digests of one node map, as kept by a running digest: a `SignedNode`'s
    on the node itself (the map is at hand), any other owner's in `plain`."""

    __slots__ = ("plain",)

    def __init__(self) -> None:
        self.plain: dict[dns.name.Name, int] = {}

    def add(self, owner: dns.name.Name, types: Mapping[int, dns.rrset.RRset],
            keep: bool = True) -> int:
        """Digest `owner` (now `types`); kept in `plain` unless its node keeps it (or,
        `keep` false, nobody: a whole map's, see the module doc)."""
        d = owner_digest(owner, types, keep)
        if type(types) is not SignedNode:
            self.plain[owner] = d
        return d

    def had(self, nodes: Nodes, owner: dns.name.Name) -> int | None:
        """The digest `owner` was added with, `nodes` being the map it was added from."""
        types = nodes.get(owner)
        if type(types) is SignedNode:
            return owner_digest(owner, types, False)
        return self.plain.get(owner)

    def drop(self, nodes: Nodes, owner: dns.name.Name) -> int:
        """`had` (0: none), forgotten."""
        types = nodes.get(owner)
        if type(types) is SignedNode:
            self.plain.pop(owner, None)
            return owner_digest(owner, types)
        return self.plain.pop(owner, 0)


class ZoneDigest:
    """The running digest of one signed node map (one caller; not thread-safe)."""

    def __init__(self) -> None:
        self._nodes: Nodes = {}  # the map last digested (the signer's last result)
        self._digests = Digests()
        self._sum = 0

    def reset(self, nodes: Nodes) -> str:
        """Digest `nodes` from scratch; returns the hex digest."""
        digests = self._digests = Digests()
        add = digests.add
        self._sum = sum(add(owner, types, False) for owner, types in nodes.items()) % _MOD
        self._nodes = nodes
        _note_sum(nodes, self._sum)
        return self.hexdigest

    def update(self, nodes: Nodes, changed: Iterable[dns.name.Name]) -> str:
        """Account for the owners in `changed` (added, changed or removed in `nodes`, the
        map that follows the one digested last)."""
        old, digests = self._nodes, self._digests
        for owner in changed:
            self._sum -= digests.drop(old, owner)
            types = nodes.get(owner)
            if types:
                self._sum += digests.add(owner, types)
        self._sum %= _MOD
        self._nodes = nodes
        _note_sum(nodes, self._sum)
        return self.hexdigest

    @property
    def hexdigest(self) -> str:
        return self._sum.to_bytes(32, "big").hex()


def _note_sum(nodes: Nodes, total: int) -> None:
    """Keep the sum on the signer's map (`known_sum`): a function of its content."""
    if type(nodes) is SignedNodes:
        nodes.digest_sum = total
