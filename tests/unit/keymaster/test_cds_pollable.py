"""Which children a parent's Key Master polls for CDS: not the unsigned ones outside.

bench/qps.py found the parent polling every delegation of a 100k-name zone (970
CDS_POLL_FAILED warnings in minutes, TCP connections to every glue address) though
RFC 7344 can accept a CDS only under a DS the parent already holds.
"""

from __future__ import annotations

import dns.name
import dns.rrset
import dns.zone

from node.keymaster.cds_poll import delegations, pollable
from node.zones.model import ZoneConfig, ZoneSnapshot

ZONE = """\
$ORIGIN p.test.
@ 300 IN SOA ns hostmaster 1 3600 600 86400 300
@ 300 IN NS ns
ns 300 IN A 192.0.2.1
signed 300 IN NS ns.signed
signed 300 IN DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.signed 300 IN A 192.0.2.2
plain 300 IN NS ns.plain
ns.plain 300 IN A 192.0.2.3
"""


def snapshot() -> ZoneSnapshot:
    origin = dns.name.from_text("p.test.")
    z = dns.zone.from_text(ZONE, origin=origin, relativize=False)
    nodes = {name: {rds.rdtype: dns.rrset.from_rdata_list(name, rds.ttl, list(rds))
                    for rds in node.rdatasets} for name, node in z.nodes.items()}
    return ZoneSnapshot(config=ZoneConfig(name=origin), serial=1, revision=1, nodes=nodes)


def test_only_children_with_a_ds_or_in_the_cluster_are_polled() -> None:
    snap = snapshot()
    signed, plain = (dns.name.from_text(n) for n in ("signed.p.test.", "plain.p.test."))
    assert delegations(snap) == [plain, signed]
    assert pollable(snap, signed, in_cluster=False)
    assert not pollable(snap, plain, in_cluster=False)
    assert pollable(snap, plain, in_cluster=True)
