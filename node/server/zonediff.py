"""The difference between two versions of a zone, as IXFR (RFC 1995) sends it. Pure: no I/O.

Owns the record form of a zone for incremental transfers: an `RR` is
(owner wire, type, TTL, rdata wire), the owner with the case the zone has,
each RRSIG on its own with the TTL of the RRset it covers (its original TTL),
as AXFR sends it (an owner's RRSIGs are one RRset internally). A `Delta` is
what a client must delete and add to go from one version to the next,
RRSIG, NSEC, NSEC3 and SOA changes included; every deleted RR is in the old
version and every added RR is in the new one, so a client applying it exactly
(dnspython refuses a delete of an absent RR) ends with the new version.

`Tracker` follows the versions a node serves: a per-owner digest
(`node.dnssec.digest.owner_digest`, canonical form) and the RR count of the
last version. With the owners a version names as changed, a step costs
O(change); after a full (re)sign or load (`changed` None) it digests the whole
new version, O(zone), and diffs only the owners whose digest moved. Callers
run it in a worker thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset

from node.dnssec.digest import Digests, known_sum, owner_digest
from node.dnssec.rrsigset import LazyRRset
from node.dnssec.sigstore import SignedNode

__all__ = ["RR", "Delta", "Tracker", "diff", "owner_records", "rrset_records"]

RR = tuple[bytes, int, int, bytes]  # owner wire (zone's case), type, TTL, rdata wire
Types = Mapping[int, dns.rrset.RRset]
Nodes = Mapping[dns.name.Name, Types]

_MOD = 1 << 256
_RRSIG = int(dns.rdatatype.RRSIG)
_EMPTY: dict[int, dns.rrset.RRset] = {}


@dataclass(frozen=True, slots=True)
class Delta:
    """What to delete from the old version and add to reach the new one (SOA included)."""

    deleted: tuple[RR, ...]
    added: tuple[RR, ...]

    def __bool__(self) -> bool:
        return bool(self.deleted or self.added)


def owner_records(owner: dns.name.Name, types: Types) -> list[RR]:
    """One owner's records in IXFR form (each RRSIG with its original TTL)."""
    wire: bytes = owner.to_wire()  # type: ignore[assignment]
    return [(wire, *rr) for rrset in types.values() for rr in rrset_records(rrset)]


def rrset_records(rrset: dns.rrset.RRset) -> Iterator[tuple[int, int, bytes]]:
    """(type, TTL, rdata wire) of each record as a transfer sends it: an RRSIG with its
    original TTL; the signer's sets (`LazyRRset`) from their octets, no rdata made."""
    t = int(rrset.rdtype)
    if isinstance(rrset, LazyRRset):
        for data in rrset.rdata_wires():
            yield t, int.from_bytes(data[4:8], "big") if t == _RRSIG else rrset.ttl, data
        return
    for rd in rrset:
        yield t, rd.original_ttl if t == _RRSIG else rrset.ttl, rd.to_wire()  # type: ignore[attr-defined]


def diff(old: Nodes, new: Nodes, owners: Iterable[dns.name.Name]) -> Delta:
    """The delta over `owners` (every owner that may differ); other owners must be equal."""
    deleted: list[RR] = []
    added: list[RR] = []
    for owner in sorted(set(owners)):
        before = old.get(owner, _EMPTY)
        after = new.get(owner, _EMPTY)
        if before is after:
            continue
        a = owner_records(owner, before)
        b = owner_records(owner, after)
        if a == b:
            continue
        sa, sb = set(a), set(b)
        deleted.extend(rr for rr in a if rr not in sb)
        added.extend(rr for rr in b if rr not in sa)
    return Delta(tuple(deleted), tuple(added))


class Tracker:
    """Per-owner digests and RR count of the last version it saw (one caller at a time).

    The digests are `Digests`: a signed owner's is kept on its `SignedNode` (and shared
    with the signing worker's digest), so each call is given the version it saw last.
    A whole signed map's sum is the signing worker's (`known_sum`) when it has one, and
    two signed nodes of one owner are compared by their fields (`same_output`): a full
    sign's nodes keep no digest (issue 10, session 16; `node.dnssec.digest`)."""

    __slots__ = ("_digests", "_sum", "rrs")

    def __init__(self) -> None:
        self._digests = Digests()
        self._sum = 0
        self.rrs = 0  # RRs in the version, each RRSIG counted once

    @property
    def digest(self) -> bytes:
        """32 octets: the sum modulo 2**256 of the owner digests (order-independent)."""
        return (self._sum % _MOD).to_bytes(32, "big")

    def reset(self, nodes: Nodes) -> None:
        """Start from `nodes` (O(zone))."""
        digests = self._digests = Digests()
        total = known_sum(nodes)
        if total is None:
            self._sum = sum(digests.add(o, t, False) for o, t in nodes.items() if t) % _MOD
        else:  # only the owners kept in `digests` (not signed nodes) digested
            for o, t in nodes.items():
                if t and type(t) is not SignedNode:
                    digests.add(o, t)
            self._sum = total
        self.rrs = sum(len(rrset) for t in nodes.values() for rrset in t.values())

    def advance(self, old: Nodes, new: Nodes, changed: Iterable[dns.name.Name] | None) -> Delta:
        """Move from `old` (the version last seen: `reset` or `advance` was given it) to
        `new`; the delta between them.

        `changed` names every owner that may differ, or None: compare everything.
        """
        if changed is None:
            before = self._digests
            digests = Digests()
            owners: list[dns.name.Name] = []
            present: set[dns.name.Name] = set()
            known = known_sum(new)
            total = 0
            for o, t in new.items():
                if t:
                    present.add(o)
                    if type(t) is SignedNode:
                        prev = old.get(o)
                        if type(prev) is SignedNode:  # fields: neither digested
                            if known is None:
                                total += owner_digest(o, t, False)
                            if not prev.same_digest(t):
                                owners.append(o)
                            continue
                    d = digests.add(o, t, False)
                    total += d
                    if before.had(old, o) != d:
                        owners.append(o)
            # gone (an owner empty in both is no difference: `diff` skips it)
            owners.extend(o for o in old if o not in present)
            delta = diff(old, new, owners)
            self._digests = digests
            self._sum = (total if known is None else known) % _MOD
        else:
            owners = list(changed)
            delta = diff(old, new, owners)
            digests = self._digests
            for o in owners:
                self._sum -= digests.drop(old, o)
                types = new.get(o)
                if types:
                    self._sum += digests.add(o, types)
            self._sum %= _MOD
        self.rrs += len(delta.added) - len(delta.deleted)
        return delta
