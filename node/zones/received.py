"""A zone received by transfer, as the answer path reads it (pure: no I/O).

Both transfer clients (`node/secondary/transfer.py`, an outside primary's zone, and
`node/signing/pull.py`, a writable node's signed zone) turn the `dns.zone.Zone` that
dnspython filled into RRsets by owner and type, every RRSIG of an owner kept in one
RRSIG RRset exactly as signed (never re-signed).
"""

from __future__ import annotations

from collections import defaultdict

import dns.name
import dns.rdatatype
import dns.rrset
import dns.zone

from node.dnssec.signer import rrsig_rrset

Name = dns.name.Name
T = dns.rdatatype


def rrsets_by_owner(received: dns.zone.Zone) -> dict[Name, dict[int, dns.rrset.RRset]]:
    """`received` as RRsets by owner and type; one RRSIG RRset per owner, as signed."""
    nodes: dict[Name, dict[int, dns.rrset.RRset]] = defaultdict(dict)
    for owner, node in received.nodes.items():
        sigs = []
        for rds in node.rdatasets:
            if rds.rdtype == T.RRSIG:
                sigs.extend(rds)
                continue
            nodes[owner][rds.rdtype] = dns.rrset.from_rdata_list(owner, rds.ttl, list(rds))
        if sigs:
            nodes[owner][T.RRSIG] = rrsig_rrset(owner, sigs)
    return nodes
