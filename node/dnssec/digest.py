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

__all__ = ["ZoneDigest", "owner_digest"]

_MOD = 1 << 256
_RR = struct.Struct("!HHI")


def owner_digest(owner: dns.name.Name, types: Mapping[int, dns.rrset.RRset]) -> int:
    """SHA-256 (as an integer) of one owner's records in canonical form and order."""
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


class ZoneDigest:
    """The running digest of one signed node map (one caller; not thread-safe)."""

    def __init__(self) -> None:
        self._owners: dict[dns.name.Name, int] = {}
        self._sum = 0

    def reset(self, nodes: Mapping[dns.name.Name, Mapping[int, dns.rrset.RRset]]) -> str:
        """Digest `nodes` from scratch; returns the hex digest."""
        self._owners = {owner: owner_digest(owner, types) for owner, types in nodes.items()}
        self._sum = sum(self._owners.values()) % _MOD
        return self.hexdigest

    def update(self, nodes: Mapping[dns.name.Name, Mapping[int, dns.rrset.RRset]],
               changed: Iterable[dns.name.Name]) -> str:
        """Account for the owners in `changed` (added, changed or removed in `nodes`)."""
        for owner in changed:
            self._sum -= self._owners.pop(owner, 0)
            types = nodes.get(owner)
            if types:
                d = self._owners[owner] = owner_digest(owner, types)
                self._sum += d
        self._sum %= _MOD
        return self.hexdigest

    @property
    def hexdigest(self) -> str:
        return self._sum.to_bytes(32, "big").hex()
