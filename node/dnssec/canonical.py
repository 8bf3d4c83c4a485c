"""Canonical rdata wire (RFC 4034 §6.2) for the common types, without dnspython's writers.

Owns `rdata_digestable(rd, origin)`, which returns `rd.to_digestable(origin)`:
A and AAAA through the C library (`inet_pton` of the canonical text
dnspython holds), NS, CNAME, PTR, DNAME, MX and SOA with their absolute
names' labels lowercased directly, TXT and SPF from their strings; anything
else, and any name that is not absolute, through dnspython as before. The
per-owner digests (`node.dnssec.digest.owner_digest`: the IXFR journal's on
every node, the signer's) read every record of a zone in this form (issue 10,
load time: dnspython's `to_digestable` was ~90% of the 1.2 s of CPU a
100k-name zone's journal digests cost each node).
"""

from __future__ import annotations

import socket
import struct

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

__all__ = ["rdata_digestable"]

_FAMILY = {dns.rdatatype.A: socket.AF_INET, dns.rdatatype.AAAA: socket.AF_INET6}
_TARGET = frozenset({dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR,
                     dns.rdatatype.DNAME})
_TXT = frozenset({dns.rdatatype.TXT, dns.rdatatype.SPF})
_IN = dns.rdataclass.IN
_SOA_TIMES = struct.Struct("!IIIII")


def _name(name: dns.name.Name) -> bytes | None:
    """The canonical wire form of an absolute name (labels lowercased); None if relative."""
    labels = name.labels
    if not labels or labels[-1]:
        return None
    # lowercasing the whole wire form is safe: a label's length (< 64) is never a letter
    return b"".join([bytes((len(label),)) + label for label in labels]).lower()


def rdata_digestable(rd: dns.rdata.Rdata, origin: dns.name.Name | None = None) -> bytes:
    """`rd.to_digestable(origin)`: the rdata's canonical wire form."""
    rdtype = rd.rdtype
    if rd.rdclass == _IN:
        family = _FAMILY.get(rdtype)
        if family is not None:
            try:
                return socket.inet_pton(family, rd.address)  # type: ignore[attr-defined]
            except (OSError, ValueError):
                return rd.to_digestable(origin)
    if rdtype in _TARGET:
        data = _name(rd.target)  # type: ignore[attr-defined]
        if data is not None:
            return data
    elif rdtype == dns.rdatatype.MX:
        data = _name(rd.exchange)  # type: ignore[attr-defined]
        if data is not None:
            return rd.preference.to_bytes(2, "big") + data  # type: ignore[attr-defined]
    elif rdtype in _TXT:
        strings: tuple[bytes, ...] = rd.strings  # type: ignore[attr-defined]
        if all(len(t) < 256 for t in strings):
            return b"".join([bytes((len(t),)) + t for t in strings])
    elif rdtype == dns.rdatatype.SOA:
        mname = _name(rd.mname)  # type: ignore[attr-defined]
        rname = _name(rd.rname)  # type: ignore[attr-defined]
        if mname is not None and rname is not None:
            return mname + rname + _SOA_TIMES.pack(
                rd.serial, rd.refresh, rd.retry, rd.expire, rd.minimum)  # type: ignore[attr-defined]
    return rd.to_digestable(origin)
