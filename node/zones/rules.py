"""What one RRset change through `record add|delete` may do (pure: no I/O).

`ZoneRepository` checks every change against these rules before it writes, and
so does the owner of a file-backed zone (`node.filezone`) before it edits the
file: an owner inside the zone; no DNSSEC types by hand (the signer makes them);
the apex keeps its SOA and NS, and the SOA stays single and at the apex; a CNAME
is alone at its owner (RRSIG and NSEC aside) and never at the apex. RFC 2136
UPDATE applies its own (`update.py`): there a change that breaks one is
ignored, not refused. Types the server cannot serve correctly (`UNSUPPORTED_TYPES`:
DNAME, whose RFC 6672 synthesis is not implemented) are refused wherever records
enter: here, zone imports (`node/work/zoneparse.py`), master files of file-backed
zones (`node/filezone/files.py`) and UPDATE (`node/server/update.py`, REFUSED).
"""

from __future__ import annotations

from collections.abc import Iterable

import dns.name
import dns.rdatatype
import dns.rrset

from node.errors import ValidationError

Name = dns.name.Name
# Types only the signer may write (issue 3); users may not add them directly.
RESERVED_TYPES = frozenset(
    {dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.NSEC3PARAM}
)
# Types served wrongly if stored: a DNAME served as a plain record synthesises nothing
# below it (RFC 6672), an answer no resolver expects.
UNSUPPORTED_TYPES = {
    dns.rdatatype.DNAME: "DNAME records are not supported yet "
                         "(RFC 6672 synthesis is not implemented)",
}
CNAME_COMPATIBLE = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.CNAME})


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
        return  # a DNAME stored before it was refused can still be deleted
    check_supported((rdtype,))
    if rdtype == dns.rdatatype.CNAME:
        if len(new) > 1:
            raise ValidationError(f"{owner} can have only one CNAME record")
        if others - CNAME_COMPATIBLE:
            raise ValidationError(f"{owner} has other data; a CNAME cannot be added there")
    elif dns.rdatatype.CNAME in others and rdtype not in CNAME_COMPATIBLE:
        raise ValidationError(f"{owner} has a CNAME; no other data can be added there")
