"""Transfer in from an outside primary (blocking: called in a worker thread, plain data out).

`refresh(copy, host, port, key, timeout)` asks the primary's SOA and, when
the primary has a newer serial (RFC 1982) or no copy is held yet, transfers
the zone into `copy`, a `dns.zone.Zone` that only one zone's loop touches:
IXFR from the held serial (RFC 1995), AXFR when nothing is held or when the
primary answers the IXFR with a whole zone. dnspython applies the transfer
in one transaction, committed only when it is complete (and, with a TSIG
key, verified), so a failed transfer leaves the held copy as it was.
The result says which kind of transfer the primary sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.xfr
import dns.zone

from node.server.outbound import transfer_source
from node.zones.model import NodeMap, freeze_nodes
from node.zones.received import rrsets_by_owner
from node.zones.serial import serial_gt

Name = dns.name.Name
T = dns.rdatatype


class InboundZone(dns.zone.Zone):
    """A held copy that remembers whether the last write replaced it whole (AXFR) or
    changed it (IXFR): dnspython opens a replacement writer for an AXFR-style answer."""

    def __init__(self, origin: Name) -> None:
        super().__init__(origin, relativize=False)
        self.replaced = False

    def writer(self, replacement: bool = False) -> Any:
        self.replaced = replacement
        return super().writer(replacement)


@dataclass(frozen=True, slots=True)
class Refreshed:
    """One successful refresh: the primary's serial, and the transfer if one was made."""

    primary_serial: int
    method: str  # "IXFR" | "AXFR" | "" (the held copy was current: nothing transferred)
    nodes: NodeMap | None = None  # the copy after the transfer
    signed: bool = False  # the copy has RRSIGs at its apex


def held_serial(copy: InboundZone) -> int | None:
    soa = copy.get_rdataset(copy.origin, T.SOA)  # type: ignore[arg-type]
    return None if soa is None else int(soa[0].serial)  # type: ignore[attr-defined]


def primary_serial(host: str, port: int, zone: Name, key: dns.tsig.Key | None,
                   timeout: float) -> int:
    """The SOA serial the primary serves (UDP, TCP when truncated); ValueError saying why not."""
    query = dns.message.make_query(zone, T.SOA)
    if key is not None:
        query.use_tsig(key)
    resp, _ = dns.query.udp_with_fallback(query, host, port=port, timeout=timeout,
                                          source=transfer_source(host))
    if resp.rcode() != dns.rcode.NOERROR:
        raise ValueError(f"SOA query answered {dns.rcode.to_text(resp.rcode())}")
    soa = next((r for r in resp.answer if r.rdtype == T.SOA and r.name == zone), None)
    if soa is None:
        raise ValueError("SOA query answered without the zone's SOA")
    return int(soa[0].serial)  # type: ignore[attr-defined]


def refresh(copy: InboundZone, host: str, port: int, key: dns.tsig.Key | None,
            timeout: float) -> Refreshed:
    """Check the primary's SOA, transfer if it is newer; raises on any failure
    (dns.exception.DNSException, OSError, EOFError, ValueError)."""
    zone = copy.origin
    assert zone is not None
    have = held_serial(copy)
    serial = primary_serial(host, port, zone, key, timeout)
    if have is not None and not serial_gt(serial, have):
        return Refreshed(serial, "")
    query, _ = dns.xfr.make_query(copy, serial=0 if have is not None else None, keyring=key,
                                  keyname=key.name if key is not None else None)
    dns.query.inbound_xfr(host, copy, query=query, port=port, timeout=timeout,
                          lifetime=timeout * 6, source=transfer_source(host))
    got = held_serial(copy)
    if got is None:
        raise ValueError("the transfer gave no SOA")
    nodes = node_map(copy)
    apex = nodes.get(zone, {})
    return Refreshed(got, "AXFR" if copy.replaced or have is None else "IXFR", nodes,
                     signed=T.RRSIG in apex)


def node_map(copy: dns.zone.Zone) -> NodeMap:
    """The zone as the answer path reads it: RRsets by owner and type, every RRSIG of an
    owner in one RRSIG RRset (as signed, never re-signed)."""
    return freeze_nodes(rrsets_by_owner(copy))
