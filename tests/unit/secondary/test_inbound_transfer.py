"""Transfer-in helpers (node/secondary/transfer.py) and the NOTIFY source check."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.zone

from node.secondary.transfer import InboundZone, held_serial, node_map
from node.secondary.zones import _from_primary

ZONE = dns.name.from_text("sec.test.")
TEXT = """$ORIGIN sec.test.
@ 300 IN SOA ns1 hostmaster 7 300 2 600 60
@ 300 IN NS ns1
@ 300 IN RRSIG SOA 13 2 300 20300101000000 20200101000000 1 sec.test. AAAA
@ 300 IN RRSIG NS 13 2 300 20300101000000 20200101000000 1 sec.test. AAAA
ns1 300 IN A 192.0.2.1
"""


def test_node_map_keeps_every_rrsig_of_an_owner_as_received() -> None:
    nodes = node_map(dns.zone.from_text(TEXT, relativize=False))
    sigs = nodes[ZONE][dns.rdatatype.RRSIG]
    assert sorted(rd.type_covered for rd in sigs) == [dns.rdatatype.NS, dns.rdatatype.SOA]
    assert nodes[ZONE][dns.rdatatype.SOA][0].serial == 7


def test_inbound_zone_records_a_whole_replacement() -> None:
    z = InboundZone(ZONE)
    assert held_serial(z) is None
    with z.writer(True) as txn:
        for name, node in dns.zone.from_text(TEXT, relativize=False).nodes.items():
            for rds in node.rdatasets:
                txn.add(name, rds)
    assert z.replaced and held_serial(z) == 7
    with z.writer(False) as txn:
        txn.delete(dns.name.from_text("ns1.sec.test."), "A")
    assert not z.replaced


def test_notify_only_from_a_listed_primary_address() -> None:
    primaries = ("127.0.0.1:5300", "[2001:db8::1]:53")
    assert _from_primary("127.0.0.1", primaries)
    assert _from_primary("::ffff:127.0.0.1", primaries)
    assert _from_primary("2001:db8:0::1", primaries)
    assert not _from_primary("127.0.0.2", primaries)
    assert not _from_primary("not-an-address", primaries)
