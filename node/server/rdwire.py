"""Uncompressed rdata wire for the common types without dnspython's pure-Python writers.

Compiling a zone renders every RRset (`render.rr_tails`); dnspython's
`to_wire` reads an A or AAAA address back with its own parser and writes a
name through a file object, a third of a 100k-name zone's compile. Here A and
AAAA go through the C library (`inet_pton`: the same four or sixteen octets
for the canonical text dnspython holds), and NS, CNAME, PTR, DNAME and MX write
their absolute name's labels directly; anything else, and any name that is
not absolute, is `rd.to_wire()` as before.
"""

from __future__ import annotations

import socket

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

_FAMILY = {dns.rdatatype.A: socket.AF_INET, dns.rdatatype.AAAA: socket.AF_INET6}
_TARGET = frozenset({dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR,
                     dns.rdatatype.DNAME})
_IN = dns.rdataclass.IN


def name_wire(name: dns.name.Name) -> bytes | None:
    """`name.to_wire()` of an absolute name (case kept); None for a relative one."""
    labels = name.labels
    if not labels or labels[-1]:
        return None
    return b"".join([bytes((len(label),)) + label for label in labels])


def rdata_wire(rd: dns.rdata.Rdata) -> bytes:
    """`rd.to_wire()`: the rdata's uncompressed wire form."""
    rdtype = rd.rdtype
    if rd.rdclass == _IN:
        family = _FAMILY.get(rdtype)
        if family is not None:
            try:
                return socket.inet_pton(family, rd.address)  # type: ignore[attr-defined]
            except (OSError, ValueError):
                return rd.to_wire()
    if rdtype in _TARGET:
        data = name_wire(rd.target)  # type: ignore[attr-defined]
        if data is not None:
            return data
    elif rdtype == dns.rdatatype.MX:
        data = name_wire(rd.exchange)  # type: ignore[attr-defined]
        if data is not None:
            return rd.preference.to_bytes(2, "big") + data  # type: ignore[attr-defined]
    return rd.to_wire()
