"""AXFR and IXFR send the signer's RRSIG, NSEC and NSEC3 octets as they are kept
(node/dnssec/rrsigset.py `rdata_wires`), byte for byte what decoding each rdata and
writing it again (`rd.to_wire()`, as before) gave: for every denial mode, and for a
zone whose origin has uppercase letters (its RRSIGs then name the signer so)."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rdatatype
import pytest

from node.dnssec.rrsigset import LazyRRset, RRSIGSet
from node.server import xfr
from node.server.compile import CompiledZone
from node.server.wire import parse_query
from node.server.zonediff import owner_records
from tests.unit.server.signed_zone import MODES, signed_snapshot

RRSIG = dns.rdatatype.RRSIG


def _decoded(snap_nodes: dict, origin_wire: bytes, soa: object) -> list[tuple]:  # type: ignore[type-arg]
    """The records as `_messages` made them before: every rdata decoded and written."""
    out = [(origin_wire, int(dns.rdatatype.SOA), soa.ttl, soa[0].to_wire())]  # type: ignore[attr-defined]
    for name, types in snap_nodes.items():
        owner = name.to_wire().lower()
        for rdtype, rrset in types.items():
            if rdtype == dns.rdatatype.SOA and owner == origin_wire:
                continue
            for rd in rrset:
                ttl = rd.original_ttl if rdtype == RRSIG else rrset.ttl
                out.append((owner, int(rdtype), ttl, rd.to_wire()))
    return [*out, out[0]]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_axfr_sends_the_same_octets_as_decoded_rdatas(mode: str) -> None:
    snap = signed_snapshot(mode)
    zone = CompiledZone(snap)
    query = parse_query(dns.message.make_query(snap.origin, dns.rdatatype.AXFR).to_wire())
    assert query is not None
    sent = list(xfr._messages(query, zone, xfr._zone_rrsets(zone)))
    lazy = sum(isinstance(r, LazyRRset) for t in snap.nodes.values() for r in t.values())
    assert lazy > 10  # the signer's sets are there to take the new path
    before = list(xfr._render(query, iter(_decoded(snap.nodes, zone.origin, snap.soa())),
                              xfr.MAX_MESSAGE))
    assert sent == before


@pytest.mark.parametrize("mode", sorted(MODES))
def test_ixfr_records_are_the_decoded_rdatas(mode: str) -> None:
    snap = signed_snapshot(mode)
    for name, types in snap.nodes.items():
        expected = [(name.to_wire(), int(t), r.original_ttl if t == RRSIG else rrset.ttl,  # type: ignore[attr-defined]
                     r.to_wire()) for t, rrset in types.items() for r in rrset]
        assert owner_records(name, types) == expected


def test_an_uppercase_signer_is_written_as_before() -> None:
    snap = signed_snapshot("nsec")
    upper = dns.name.from_text("EXAMPLE.")
    found = 0
    for name, types in snap.nodes.items():
        sigs = types.get(RRSIG)
        if not isinstance(sigs, RRSIGSet):
            continue
        moved = RRSIGSet(name, sigs.ttl, sigs._data, upper)
        assert list(moved.rdata_wires()) == [rd.to_wire() for rd in moved]
        assert any(upper.to_wire() in w for w in moved.rdata_wires())
        found += 1
    assert found
