"""What one RRset change through `record add|delete` may do (pure: no I/O).

`ZoneRepository` checks every change against these rules before it writes, and
so does the owner of a file-backed zone (`node.filezone`) before it edits the
file: an owner inside the zone; no DNSSEC types by hand (the signer makes them);
the apex keeps its SOA and NS, and the SOA stays single and at the apex; a CNAME
is alone at its owner (RRSIG and NSEC aside) and never at the apex. A DNAME (RFC
6672 §2.4, §5.2) is single at its owner, never beside a CNAME, nor at a delegation
(an NS below the apex); nothing may exist below its owner (`check_dname_place` for
one change, `check_dnames` for a whole zone); at the apex it sits beside SOA and NS.
RFC 2136 UPDATE applies its own (`update.py`): there a change that breaks one is
ignored, not refused. Types the server cannot serve correctly (`UNSUPPORTED_TYPES`,
none today) are refused wherever records enter: here, zone imports
(`node/work/zoneparse.py`), master files of file-backed zones
(`node/filezone/files.py`) and UPDATE (`node/server/update.py`, REFUSED).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sized

import dns.name
import dns.rdatatype
import dns.rrset

from node.errors import ValidationError

Name = dns.name.Name
# Types only the signer may write (issue 3); users may not add them directly.
RESERVED_TYPES = frozenset(
    {dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.NSEC3PARAM}
)
# Types served wrongly if stored (type -> why), refused wherever records enter. DNAME
# left it once its synthesis (RFC 6672) was served; the mechanism stays for the next one.
UNSUPPORTED_TYPES: dict[int, str] = {}
CNAME_COMPATIBLE = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.CNAME})
DNAME = dns.rdatatype.DNAME


def check_supported(rdtypes: Iterable[int]) -> None:
    """ValidationError if any of `rdtypes` is a type this server cannot serve yet."""
    for rdtype in rdtypes:
        reason = UNSUPPORTED_TYPES.get(rdtype)
        if reason is not None:
            raise ValidationError(reason)


def check_target(zone: Name, owner: Name, rdtype: int) -> None:
    """The RRset `owner`/`rdtype` may be changed by hand in `zone` at all."""
    if not owner.is_subdomain(zone):
        raise ValidationError(f"owner {owner} is not inside zone {zone}")
    if rdtype in RESERVED_TYPES:
        raise ValidationError(
            f"{dns.rdatatype.to_text(rdtype)} records are made by the signer, not added by hand"
        )


MAX_WIRE = 65535  # octets of one rdata (RDLENGTH is 16 bits), and records of one RRset


def check_size(rrset: dns.rrset.RRset, origin: Name = dns.name.root) -> None:
    """ValidationError if `rrset` cannot be carried in DNS: an rdata over 65,535 octets
    (RDLENGTH is 16 bits), or more than 65,535 records (no message could hold them)."""
    if len(rrset) > MAX_WIRE:
        raise ValidationError(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}: "
                              f"{len(rrset)} records; one RRset holds at most {MAX_WIRE}")
    for rd in rrset:
        size = len(rd.to_wire(origin=origin))  # relative names inside: against `origin`
        if size > MAX_WIRE:
            raise ValidationError(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}: a "
                                  f"record of {size} octets; DNS carries at most {MAX_WIRE}")


def check_change(
    zone: Name,
    owner: Name,
    rdtype: int,
    new: dns.rrset.RRset | None,
    at_owner: dict[int, dns.rrset.RRset],
) -> None:
    """`new` (None: deleted) may replace the `rdtype` RRset among `at_owner`'s RRsets."""
    others = {t for t in at_owner if t != rdtype}
    if owner == zone:
        if rdtype == dns.rdatatype.CNAME and new is not None:
            raise ValidationError(f"a CNAME cannot be at the zone apex {zone}")
        if rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS) and new is None:
            raise ValidationError(
                f"the apex {dns.rdatatype.to_text(rdtype)} of {zone} cannot be deleted"
            )
        if rdtype == dns.rdatatype.SOA and new is not None and len(new) != 1:
            raise ValidationError("a zone has exactly one SOA record")
    elif rdtype == dns.rdatatype.SOA and new is not None:
        raise ValidationError(f"an SOA record belongs at the zone apex {zone}, not at {owner}")
    if new is None:
        return  # deleting never breaks a rule below
    check_supported((rdtype,))
    check_size(new, zone)
    if rdtype == dns.rdatatype.CNAME:
        if len(new) > 1:
            raise ValidationError(f"{owner} can have only one CNAME record")
        if others - CNAME_COMPATIBLE:
            raise ValidationError(f"{owner} has other data; a CNAME cannot be added there")
    elif dns.rdatatype.CNAME in others and rdtype not in CNAME_COMPATIBLE:
        raise ValidationError(f"{owner} has a CNAME; no other data can be added there")
    if rdtype == DNAME:
        if len(new) > 1:
            raise ValidationError(f"{owner} can have only one DNAME record")
        if owner != zone and dns.rdatatype.NS in others:
            raise ValidationError(f"{owner} is a delegation; a DNAME cannot be added there")
    elif rdtype == dns.rdatatype.NS and owner != zone and DNAME in others:
        raise ValidationError(f"{owner} has a DNAME; it cannot become a delegation")


def dname_above(zone: Name, owner: Name, has_dname: Iterable[Name]) -> Name | None:
    """The owner of a DNAME strictly above `owner` (up to the apex), among `has_dname`."""
    owners = set(has_dname)
    n = owner
    while n != zone and len(n) > 1:
        n = n.parent()
        if n in owners:
            return n
    return None


def check_dname_place(owner: Name, rdtype: int, above: Name | None,
                      below: Name | None) -> None:
    """An RRset added at `owner` is not below a DNAME (`above`: the DNAME owner above it,
    if any); an added DNAME has nothing below it (`below`: some name below `owner`)."""
    if above is not None:
        raise ValidationError(f"{above} has a DNAME; nothing may exist below it "
                              f"({owner} {dns.rdatatype.to_text(rdtype)})")
    if rdtype == DNAME and below is not None:
        raise ValidationError(f"{owner} has names below it ({below}); "
                              "a DNAME cannot be added there")


def check_dnames(zone: Name, nodes: Mapping[Name, Mapping[int, Sized]]) -> None:
    """A whole zone (owner -> type -> its records) keeps the DNAME rules of RFC 6672 §2.4:
    one DNAME record per owner, none at a delegation, nothing below a DNAME owner (the
    first name found there is named in the ValidationError)."""
    owners = {o for o, ts in nodes.items() if DNAME in ts}
    if not owners:
        return
    for owner in sorted(owners):
        types = nodes[owner]
        if len(types[DNAME]) > 1:
            raise ValidationError(f"{owner} can have only one DNAME record")
        if owner != zone and dns.rdatatype.NS in types:
            raise ValidationError(f"{owner} is a delegation; a DNAME cannot be there")
        if dns.rdatatype.CNAME in types:
            raise ValidationError(f"{owner} has a CNAME; a DNAME cannot be there")
    for owner in sorted(nodes):
        above = dname_above(zone, owner, owners)
        if above is not None:
            raise ValidationError(f"{above} has a DNAME; nothing may exist below it ({owner})")
