"""Uncompressed rdata wire for the common types without dnspython's pure-Python writers.

Owns `rdata_digestable(rd, origin)`, which returns `rd.to_digestable(origin)`
(the canonical form, RFC 4034 §6.2), and the core it shares with the
renderer's `node.server.rdwire.rdata_wire` (`rd.to_wire()`): `common_wire`
writes A and AAAA through the C library (`inet_pton` of the canonical text
dnspython holds), and NS, CNAME, PTR, DNAME and MX with their absolute names'
labels directly (lowercased for the canonical form); `rdata_digestable` adds
TXT and SPF from their strings and SOA; anything else, and any name that is
not absolute, goes through dnspython as before. The per-owner digests
(`node.dnssec.digest.owner_digest`: the IXFR journal's on every node, the
signer's) read every record of a zone in this form (issue 10, load time:
dnspython's `to_digestable` was ~90% of the 1.2 s of CPU a 100k-name zone's
journal digests cost each node); compiling a zone renders every RRset.
"""

from __future__ import annotations

import socket
import struct

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

__all__ = ["common_wire", "name_wire", "rdata_digestable"]

_FAMILY = {dns.rdatatype.A: socket.AF_INET, dns.rdatatype.AAAA: socket.AF_INET6}
_TARGET = frozenset({dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR,
                     dns.rdatatype.DNAME})
_MX = dns.rdatatype.MX
_TXT = frozenset({dns.rdatatype.TXT, dns.rdatatype.SPF})
_IN = dns.rdataclass.IN
_SOA_TIMES = struct.Struct("!IIIII")


def name_wire(name: dns.name.Name) -> bytes | None:
    """`name.to_wire()` of an absolute name (case kept); None for a relative one."""
    labels = name.labels
    if not labels or labels[-1]:
        return None
    return b"".join([bytes((len(label),)) + label for label in labels])


def _name(name: dns.name.Name) -> bytes | None:
    """The canonical wire form of an absolute name (labels lowercased); None if relative."""
    data = name_wire(name)
    return data.lower() if data is not None else None  # safe: see `common_wire`


def common_wire(rd: dns.rdata.Rdata, lower: bool) -> bytes | None:
    """The uncompressed wire form of an A, AAAA, NS, CNAME, PTR, DNAME or MX rdata, its
    names lowercased when `lower` (the canonical form); None for any other type, an
    address `inet_pton` refuses, or a relative name: the caller asks dnspython."""
    rdtype = rd.rdtype
    if rd.rdclass == _IN:
        family = _FAMILY.get(rdtype)
        if family is not None:
            try:
                return socket.inet_pton(family, rd.address)  # type: ignore[attr-defined]
            except (OSError, ValueError):
                return None
    if rdtype in _TARGET:
        name = rd.target  # type: ignore[attr-defined]
    elif rdtype == _MX:
        name = rd.exchange  # type: ignore[attr-defined]
    else:
        return None
    data = name_wire(name)
    if data is None:
        return None
    if lower:  # the whole name at once: a label's length (< 64) is never a letter
        data = data.lower()
    if rdtype == _MX:  # the preference after lowercasing: 65 is b"\x00A"
        return rd.preference.to_bytes(2, "big") + data  # type: ignore[attr-defined]
    return data


def rdata_digestable(rd: dns.rdata.Rdata, origin: dns.name.Name | None = None) -> bytes:
    """`rd.to_digestable(origin)`: the rdata's canonical wire form."""
    data = common_wire(rd, True)
    if data is not None:
        return data
    rdtype = rd.rdtype
    if rdtype in _TXT:
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
