"""RFC 2136 UPDATE semantics as pure functions: parse, prescan, prerequisites, update section.

No I/O here (STYLE R1, modelled on `node/keymaster/decide.py`). The server
parses a message into an `UpdateRequest` (`parse_update`), the repository
reads the owners it names (`UpdateRequest.owners`) at one etcd revision,
then `evaluate` checks the prerequisites (RFC 2136 §3.2) and `apply` runs
the update section (§3.4.2) against that data, giving the RRsets to write.

Behaviour follows RFC 2136 and BIND where the RFC leaves room:
- prerequisites are checked in order, the value-dependent ones ("RRset
  exists, value dependent") compared as whole RRsets after the others;
- additions: a CNAME is ignored where other data exists and other data is
  ignored where a CNAME exists; a new CNAME (or DNAME) replaces the old one;
  anything below a DNAME owner, a DNAME above other names or at a delegation
  is ignored (RFC 6672 §2.4); a
  duplicate RR replaces the old one (TTL included); the RRset takes the TTL
  of the last RR added;
- SOA: only at the apex, only with a serial greater than the zone's
  (RFC 1982), never deleted; its other fields replace the zone's, the
  serial itself still advances by 1 (the zone head owns the serial);
- the apex NS RRset is never deleted as a whole, nor its last RR;
- types in `DNSSEC_TYPES` of a signed zone, and the signer's own types in
  any zone, make the whole message REFUSED (the key lifecycle owns them).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.update

from node.zones.serial import serial_gt

Name = dns.name.Name
Rdata = dns.rdata.Rdata
# owner -> rdtype -> RRset, the data an UPDATE reads (absolute names, class IN)
OwnerData = Mapping[Name, Mapping[int, dns.rrset.RRset]]

T = dns.rdatatype
DNSSEC_TYPES = frozenset({T.RRSIG, T.NSEC, T.NSEC3, T.NSEC3PARAM, T.DNSKEY, T.CDS, T.CDNSKEY})
SIGNER_TYPES = frozenset({T.RRSIG, T.NSEC, T.NSEC3, T.NSEC3PARAM})  # refused in any zone
_CNAME_COMPATIBLE = frozenset({T.CNAME, T.RRSIG, T.NSEC})

PrereqKind = Literal["name-in-use", "name-absent", "rrset-exists", "rrset-absent", "rrset-value"]
ChangeKind = Literal["add", "delete-rrset", "delete-name", "delete-rr"]


class UpdateError(Exception):
    """The message is answered with `rcode`; `reason` goes into the event."""

    def __init__(self, rcode: int, reason: str) -> None:
        super().__init__(reason)
        self.rcode = rcode
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Prereq:
    """One prerequisite; `rdatas` only for "rrset-value" (all RRs of that name and type)."""

    kind: PrereqKind
    name: Name
    rdtype: int = T.ANY
    rdatas: frozenset[Rdata] = frozenset()


@dataclass(frozen=True, slots=True)
class Change:
    """One RR of the update section, in message order."""

    kind: ChangeKind
    name: Name
    rdtype: int = T.ANY
    ttl: int = 0
    rdata: Rdata | None = None


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    zone: Name
    prereqs: tuple[Prereq, ...]
    changes: tuple[Change, ...]

    @property
    def owners(self) -> frozenset[Name]:
        """Every name the prerequisites and changes read (whole owners: CNAME rules), and the
        names above each addition up to the apex (a DNAME there: RFC 6672 §2.4)."""
        names = {p.name for p in self.prereqs} | {c.name for c in self.changes}
        for c in self.changes:
            n = c.name
            while c.kind == "add" and n != self.zone and len(n) > 1:
                n = n.parent()
                names.add(n)
        return frozenset(names)

    @property
    def dname_owners(self) -> frozenset[Name]:
        """The names a DNAME is added at (the caller reads whether names exist below)."""
        return frozenset(c.name for c in self.changes if c.kind == "add" and c.rdtype == T.DNAME)

    @property
    def types(self) -> frozenset[int]:
        """Every RR type the message names (ANY for the name-wide forms)."""
        return frozenset({p.rdtype for p in self.prereqs} | {c.rdtype for c in self.changes})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to write: (owner, type) -> the new RRset, or None to delete it."""

    writes: Mapping[tuple[Name, int], dns.rrset.RRset | None]
    ignored: tuple[str, ...] = ()  # RRs ignored by the rules, for the log


def parse_update(msg: dns.message.Message) -> UpdateRequest:
    """The request in an UPDATE message (RFC 2136 §3.1 and the §3.2/§3.4.1 prescans)."""
    if not isinstance(msg, dns.update.UpdateMessage):
        raise UpdateError(dns.rcode.FORMERR, "not an UPDATE message")
    if len(msg.zone) != 1 or msg.zone[0].rdtype != T.SOA:
        raise UpdateError(dns.rcode.FORMERR, "the zone section must hold one SOA question")
    if msg.zone[0].rdclass != dns.rdataclass.IN:
        raise UpdateError(dns.rcode.NOTAUTH, "only class IN zones are served")
    zone = msg.zone[0].name.canonicalize()
    values: dict[tuple[Name, int], set[Rdata]] = {}
    prereqs: list[Prereq] = []
    for rrset in msg.prerequisite:
        name = _in_zone(rrset.name, zone)
        if rrset.rdclass != dns.rdataclass.IN:
            raise UpdateError(dns.rcode.FORMERR, f"prerequisite {name} has another class")
        if rrset.ttl != 0:
            raise UpdateError(dns.rcode.FORMERR, f"prerequisite {name} has a TTL")
        rdtype = rrset.rdtype
        if rrset.deleting == dns.rdataclass.ANY:
            kind: PrereqKind = "name-in-use" if rdtype == T.ANY else "rrset-exists"
            prereqs.append(Prereq(kind, name, rdtype))
        elif rrset.deleting == dns.rdataclass.NONE:
            kind = "name-absent" if rdtype == T.ANY else "rrset-absent"
            prereqs.append(Prereq(kind, name, rdtype))
        else:
            if T.is_metatype(rdtype):
                raise UpdateError(dns.rcode.FORMERR, f"prerequisite {name} has a meta type")
            values.setdefault((name, rdtype), set()).update(rrset)
    prereqs.extend(Prereq("rrset-value", n, t, frozenset(rds)) for (n, t), rds in values.items())
    changes: list[Change] = []
    for rrset in msg.update:
        changes.extend(_changes(rrset, _in_zone(rrset.name, zone)))
    return UpdateRequest(zone, tuple(prereqs), tuple(changes))


def _in_zone(name: Name, zone: Name) -> Name:
    if not name.is_subdomain(zone):
        raise UpdateError(dns.rcode.NOTZONE, f"{name} is not in zone {zone}")
    return name.canonicalize()


def _changes(rrset: dns.rrset.RRset, name: Name) -> list[Change]:
    rdtype = rrset.rdtype
    if rrset.rdclass != dns.rdataclass.IN:
        raise UpdateError(dns.rcode.FORMERR, f"update of {name} in another class")
    if rrset.deleting == dns.rdataclass.ANY:
        if rrset.ttl != 0 or len(rrset):
            raise UpdateError(dns.rcode.FORMERR, f"delete of {name} with a TTL or data")
        if rdtype != T.ANY and T.is_metatype(rdtype):
            raise UpdateError(dns.rcode.FORMERR, f"delete of meta type at {name}")
        return [Change("delete-name" if rdtype == T.ANY else "delete-rrset", name, rdtype)]
    if T.is_metatype(rdtype):
        raise UpdateError(dns.rcode.FORMERR, f"meta type {T.to_text(rdtype)} at {name}")
    if rrset.deleting == dns.rdataclass.NONE:
        if rrset.ttl != 0:
            raise UpdateError(dns.rcode.FORMERR, f"delete of an RR at {name} with a TTL")
        return [Change("delete-rr", name, rdtype, 0, rd) for rd in rrset]
    return [Change("add", name, rdtype, rrset.ttl, rd) for rd in rrset]


def refused_types(req: UpdateRequest, signed: bool) -> frozenset[int]:
    """The types the message may not touch: the signer's always, all DNSSEC types if signed."""
    touched = frozenset(c.rdtype for c in req.changes)
    return touched & (DNSSEC_TYPES if signed else SIGNER_TYPES)


def evaluate(req: UpdateRequest, data: OwnerData) -> int:
    """The prerequisites' verdict (RFC 2136 §3.2.5): NOERROR or the first failing rcode."""
    for p in req.prereqs:
        types = data.get(p.name, {})
        present = {t for t, rrset in types.items() if len(rrset)}
        if p.kind == "name-in-use" and not present:
            return dns.rcode.NXDOMAIN
        if p.kind == "name-absent" and present:
            return dns.rcode.YXDOMAIN
        if p.kind == "rrset-exists" and p.rdtype not in present:
            return dns.rcode.NXRRSET
        if p.kind == "rrset-absent" and p.rdtype in present:
            return dns.rcode.YXRRSET
    for p in req.prereqs:
        if p.kind == "rrset-value":
            rrset = data.get(p.name, {}).get(p.rdtype)
            if rrset is None or set(rrset) != set(p.rdatas):
                return dns.rcode.NXRRSET
    return dns.rcode.NOERROR


def apply(req: UpdateRequest, data: OwnerData, serial: int,
          below: Collection[Name] = ()) -> Outcome:
    """Run the update section in order over `data`; `serial` is the zone's current serial;
    `below`: names of the zone below a name of `req.dname_owners` (for the DNAME rules)."""
    state: dict[Name, dict[int, dns.rrset.RRset]] = {
        name: {t: r.copy() for t, r in types.items()} for name, types in data.items()
    }
    ignored: list[str] = []
    zone = req.zone
    for c in req.changes:
        types = state.setdefault(c.name, {})
        apex = c.name == zone
        label = f"{c.kind} {c.name} {T.to_text(c.rdtype)}"
        if c.kind == "add":
            why = _dname_rule(state, below, c, zone) or _add(types, c, apex, serial)
            if why:
                ignored.append(f"{label}: {why}")
        elif c.kind == "delete-rrset":
            if apex and c.rdtype in (T.SOA, T.NS):
                ignored.append(f"{label}: the apex SOA and NS are never deleted")
            else:
                types.pop(c.rdtype, None)
        elif c.kind == "delete-name":
            for t in list(types):
                if not (apex and t in (T.SOA, T.NS)):
                    del types[t]
        else:
            _delete_rr(types, c, apex, ignored, label)
    writes: dict[tuple[Name, int], dns.rrset.RRset | None] = {}
    for name, types in state.items():
        old = data.get(name, {})
        for t in set(types) | set(old):
            new = types.get(t)
            if new is not None and not len(new):
                new = None
            before = old.get(t)
            if new is None and before is None:
                continue
            if new is None or before is None or new != before or new.ttl != before.ttl:
                writes[(name, t)] = new
    return Outcome(writes, tuple(ignored))


def _add(types: dict[int, dns.rrset.RRset], c: Change, apex: bool, serial: int) -> str:
    """Add one RR; returns why it was ignored, or "" when applied."""
    assert c.rdata is not None
    t = c.rdtype
    if t == T.CNAME and set(types) - _CNAME_COMPATIBLE:
        return "a CNAME cannot join other data"
    if t not in _CNAME_COMPATIBLE and T.CNAME in types:
        return "the name has a CNAME"
    if t == T.SOA:
        if not apex:
            return "an SOA belongs at the zone apex"
        if not serial_gt(c.rdata.serial, serial):  # type: ignore[attr-defined]
            return "the SOA serial is not greater than the zone's"
    if t == T.CNAME and apex:
        return "a CNAME cannot be at the zone apex"
    if t in (T.SOA, T.CNAME, T.DNAME):  # singletons: replaced (DNAME as BIND)
        types[t] = dns.rrset.from_rdata(c.name, c.ttl, c.rdata)
        return ""
    rrset = types.get(t)
    if rrset is None:
        rrset = types[t] = dns.rrset.RRset(c.name, dns.rdataclass.IN, t)
    rrset.discard(c.rdata)
    rrset.add(c.rdata)
    rrset.ttl = c.ttl  # the RRset takes the TTL of the RR added last (as BIND)
    return ""


def _dname_rule(state: Mapping[Name, Mapping[int, dns.rrset.RRset]], below: Collection[Name],
                c: Change, zone: Name) -> str:
    """Why adding `c` breaks a DNAME rule (RFC 6672 §2.4), or "": nothing below a DNAME
    owner, no DNAME at a delegation (the apex keeps its NS beside one)."""
    n = c.name
    while n != zone and len(n) > 1:
        n = n.parent()
        if state.get(n, {}).get(T.DNAME):
            return f"the name is below the DNAME at {n}"
    types = state.get(c.name, {})
    if c.name != zone and ((c.rdtype == T.DNAME and types.get(T.NS))
                           or (c.rdtype == T.NS and types.get(T.DNAME))):
        return "a DNAME cannot be at a delegation"
    if c.rdtype == T.DNAME:
        for name in (*below, *(o for o, ts in state.items() if any(ts.values()))):
            if name != c.name and name.is_subdomain(c.name):
                return f"names exist below it ({name})"
    return ""


def _delete_rr(types: dict[int, dns.rrset.RRset], c: Change, apex: bool,
               ignored: list[str], label: str) -> None:
    assert c.rdata is not None
    rrset = types.get(c.rdtype)
    if c.rdtype == T.SOA:
        ignored.append(f"{label}: the SOA is never deleted")
        return
    if rrset is None or c.rdata not in rrset:
        return
    if apex and c.rdtype == T.NS and len(rrset) == 1:
        ignored.append(f"{label}: the last apex NS is never deleted")
        return
    rrset.discard(c.rdata)
    if not len(rrset):
        del types[c.rdtype]
