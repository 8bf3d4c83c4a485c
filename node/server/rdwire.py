"""Uncompressed rdata wire for rendering answers, without dnspython's pure-Python writers.

Compiling a zone renders every RRset (`render.rr_tails`); dnspython's
`to_wire` reads an A or AAAA address back with its own parser and writes a
name through a file object, a third of a 100k-name zone's compile. The common
types (A, AAAA, NS, CNAME, PTR, DNAME, MX) go through the core the canonical
form shares (`node.dnssec.canonical.common_wire`, names with their case
kept), TXT and SPF from their strings; anything else, and any name that is
not absolute, is `rd.to_wire()` as before.
"""

from __future__ import annotations

import dns.rdata
import dns.rdatatype

from node.dnssec.canonical import common_wire, name_wire

__all__ = ["name_wire", "rdata_wire"]


_TXT = frozenset({dns.rdatatype.TXT, dns.rdatatype.SPF})


def rdata_wire(rd: dns.rdata.Rdata) -> bytes:
    """`rd.to_wire()`: the rdata's uncompressed wire form."""
    data = common_wire(rd, False)
    if data is not None:
        return data
    if rd.rdtype in _TXT:  # its strings, each after its length (dnspython's writer in Python)
        strings: tuple[bytes, ...] = rd.strings  # type: ignore[attr-defined]
        if all(len(t) < 256 for t in strings):
            return b"".join([bytes((len(t),)) + t for t in strings])
    return rd.to_wire()
