"""Delegation signer records: DS for the parent, CDS/CDNSKEY for RFC 7344/8078 automation.

Only secure-entry-point keys (KSK or CSK) that are active produce DS/CDS/CDNSKEY.
The RFC 8078 delete form (`CDS 0 0 0 00`, `CDNSKEY 0 3 0 AA==`) asks the parent
to remove the DS before the zone goes unsigned.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.dnssec.keys import DnssecKey
from node.errors import ValidationError

DIGESTS = ("SHA256", "SHA384")
IN = dns.rdataclass.IN


def ds_records(key: DnssecKey, digest: str = "SHA256") -> dns.rdata.Rdata:
    """The DS rdata for `key` with digest SHA256 or SHA384 (SHA-1 refused)."""
    name = digest.upper().replace("-", "")
    if name not in DIGESTS:
        raise ValidationError(f"DS digest {digest!r} refused; choose one of {', '.join(DIGESTS)}")
    return dns.dnssec.make_ds(key.zone, key.dnskey(), name)


def sep_keys(keys: Sequence[DnssecKey]) -> list[DnssecKey]:
    """The keys a parent should point at: active KSK/CSK, and a double-DS rollover's new KSK
    (`created`: its DS goes to the parent before its DNSKEY is published), by tag."""
    return sorted((k for k in keys if k.is_sep and k.state in ("active", "created")),
                  key=lambda k: (k.tag, k.key_id))


def cds_cdnskey(
    keys: Sequence[DnssecKey], *, digests: Sequence[str] = ("SHA256",), ttl: int = 3600,
) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
    """The apex CDS and CDNSKEY RRsets for the zone's active KSK/CSK keys."""
    seps = sep_keys(keys)
    if not seps:
        raise ValidationError("no active KSK or CSK: no CDS/CDNSKEY to publish")
    zone = seps[0].zone
    cds = dns.rrset.RRset(zone, IN, dns.rdatatype.CDS)
    cdnskey = dns.rrset.RRset(zone, IN, dns.rdatatype.CDNSKEY)
    for key in seps:
        for digest in digests:
            ds = ds_records(key, digest)
            cds.add(dns.rdata.from_wire(IN, dns.rdatatype.CDS, ds.to_digestable(), 0,
                                        len(ds.to_digestable())), ttl)
        wire = key.public
        cdnskey.add(dns.rdata.from_wire(IN, dns.rdatatype.CDNSKEY, wire, 0, len(wire)), ttl)
    return cds, cdnskey


def cds_delete(zone: dns.name.Name, ttl: int = 3600) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
    """The RFC 8078 §4 delete signal: `CDS 0 0 0 00` and `CDNSKEY 0 3 0 AA==`."""
    cds = dns.rrset.from_text(zone, ttl, "IN", "CDS", "0 0 0 00")
    cdnskey = dns.rrset.from_text(zone, ttl, "IN", "CDNSKEY", "0 3 0 AA==")
    return cds, cdnskey
