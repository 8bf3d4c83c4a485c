"""Stored rdata text into dnspython records, fast for the common types (`decode.py`'s part).

dnspython's text readers (a tokenizer per record) were most of a zone decode.
Here A and AAAA records are built from their address, NS, CNAME, PTR and MX
from their target, TXT from plain quoted strings, each whole (no second check)
and hashed without dnspython's wire writer, giving objects equal to, and hashed
as, those of `dns.rdata.from_text`; anything else (escapes, other types) goes
through that reader. Each fast path is taken only when a check at import says
this dnspython builds the same slots (`_FAST_*`); another keeps its constructors.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA

from node.store.keys import PLAIN_NAME as _PLAIN
from node.store.keys import name_from_text

Name = dns.name.Name
IN = dns.rdataclass.IN
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")  # dnspython's canonical form only
_MX = re.compile(r"(\d{1,5}) (\S+)")
_TARGET = {
    dns.rdatatype.NS: dns.rdtypes.ANY.NS.NS,
    dns.rdatatype.CNAME: dns.rdtypes.ANY.CNAME.CNAME,
    dns.rdatatype.PTR: dns.rdtypes.ANY.PTR.PTR,
}


class HashedA(dns.rdtypes.IN.A.A):
    """An A record whose hash is that of its four octets from the C library: dnspython's
    (`Rdata.__hash__`: `to_digestable`, its own pure-Python address parser) was a quarter
    of a zone's decode (issue 10, load time), paid again by every RRset that holds it.
    Equal to, and hashed as, the `A` of the same address."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(socket.inet_pton(socket.AF_INET, self.address))


class HashedAAAA(dns.rdtypes.IN.AAAA.AAAA):
    """`HashedA` for AAAA: hashed as dnspython's, from `inet_pton`'s sixteen octets."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(socket.inet_pton(socket.AF_INET6, self.address))


def _canonical_wire(name: Name) -> bytes:
    """`name.to_digestable(root)`: lowercased labels, each after its length; a relative
    name (given by `replace`) with the root after it, as dnspython hashes it."""
    labels = name.labels
    wire = b"".join([bytes((len(label),)) + label.lower() for label in labels])
    return wire if labels and not labels[-1] else wire + b"\0"


class HashedNS(dns.rdtypes.ANY.NS.NS):
    """`HashedA` for a record of one target name (NS, CNAME, PTR: the subclasses below):
    hashed as dnspython's, from the name's canonical wire form, without its writer (a
    `BytesIO` and a call per label: a third of a zone decode's non-address records)."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(_canonical_wire(self.target))


class HashedCNAME(dns.rdtypes.ANY.CNAME.CNAME):
    __slots__ = ()
    __hash__ = HashedNS.__hash__


class HashedPTR(dns.rdtypes.ANY.PTR.PTR):
    __slots__ = ()
    __hash__ = HashedNS.__hash__


class HashedMX(dns.rdtypes.ANY.MX.MX):
    """`HashedNS` for MX: its preference's two octets, then its exchange's wire form."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self.preference.to_bytes(2, "big") + _canonical_wire(self.exchange))


class HashedTXT(dns.rdtypes.ANY.TXT.TXT):
    """`HashedNS` for TXT: each string after its length octet."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(b"".join([bytes((len(s),)) + s for s in self.strings]))


_RDTYPES = {t: dns.rdatatype.RdataType(t) for t in dns.rdatatype.RdataType}
_SET = object.__setattr__


def _built(cls: type[dns.rdata.Rdata], rdtype: int, field: str, value: object,
           field2: str = "", value2: object = None) -> dns.rdata.Rdata:
    """A record of `cls` with its fields already checked (the address in dnspython's
    canonical form, a plain absolute name, a preference, TXT strings of at most 255
    octets): what its constructor builds, without the constructor's second check of them
    (half of a zone load's time for A; `_FAST` says this dnspython builds the same)."""
    rd = object.__new__(cls)
    _SET(rd, "rdclass", IN)
    _SET(rd, "rdtype", _RDTYPES[rdtype])
    _SET(rd, "rdcomment", None)
    _SET(rd, field, value)
    if field2:
        _SET(rd, field2, value2)
    return rd


def _address_a(text: str, cls: type[dns.rdata.Rdata] = HashedA,
               rdtype: int = dns.rdatatype.A) -> dns.rdata.Rdata:
    """An A (or AAAA) record of an address in dnspython's canonical form (`_built`)."""
    return _built(cls, rdtype, "address", text)


def _canonical_ipv6(text: str) -> bool:
    """`text` is an IPv6 address as dnspython writes it (RFC 5952, as the C library's
    inet_ntop; an embedded IPv4 form is left to dnspython)."""
    if "." in text:
        return False
    try:
        return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text)) == text
    except (OSError, ValueError):
        return False


def _same_slots(one: object, other: object, slots: Iterable[str]) -> bool:
    """Every slot of `other` is set in `one`, to an equal value of the same type (a slot
    a newer dnspython's constructor sets and `_built` does not: False, not AttributeError
    at import)."""
    for s in slots:
        mine, theirs = getattr(one, s, _UNSET), getattr(other, s, _UNSET)
        if mine is _UNSET or mine != theirs or type(mine) is not type(theirs):
            return False
    return True


_UNSET = object()


def _same(one: dns.rdata.Rdata, other: dns.rdata.Rdata) -> bool:
    slots = set(other._get_all_slots())
    return set(one._get_all_slots()) == slots and _same_slots(one, other, slots) \
        and one == other and hash(one) == hash(other)


# another dnspython that builds these differently keeps their constructors
_FAST_A = _same(_address_a("192.0.2.1"), dns.rdtypes.IN.A.A(IN, dns.rdatatype.A, "192.0.2.1"))
_FAST_AAAA = _same(_address_a("2001:db8::1", HashedAAAA, dns.rdatatype.AAAA),
                   dns.rdtypes.IN.AAAA.AAAA(IN, dns.rdatatype.AAAA, "2001:db8::1"))
_EXAMPLE = name_from_text("Mail.Example.")
_HASHED = {dns.rdatatype.NS: HashedNS, dns.rdatatype.CNAME: HashedCNAME,
           dns.rdatatype.PTR: HashedPTR}
_FAST_TARGET = all(_same(_built(_HASHED[t], t, "target", _EXAMPLE), _TARGET[t](IN, t, _EXAMPLE))
                   for t in _TARGET)
_FAST_MX = _same(_built(HashedMX, dns.rdatatype.MX, "preference", 10, "exchange", _EXAMPLE),
                 dns.rdtypes.ANY.MX.MX(IN, dns.rdatatype.MX, 10, _EXAMPLE))
_FAST_TXT = _same(_built(HashedTXT, dns.rdatatype.TXT, "strings", (b"a b", b"")),
                  dns.rdata.from_text(IN, dns.rdatatype.TXT, '"a b" ""'))
# TXT as dnspython writes it: quoted strings of printable ASCII without `"` or `\` (which it
# escapes, as any other octet), one space apart
_TXT = re.compile(r'"[ !#-\[\]-~]*"(?: "[ !#-\[\]-~]*")*')


def _target(text: str, names: dict[str, dns.name.Name] | None) -> dns.name.Name:
    """The name of `text`: the one in `names` when there is one (a decoder's owners and
    targets by text, issue 10 memory: a zone's MX, NS and CNAME targets are mostly its own
    owners or a few shared hosts). Keys with `%` are escaped owner texts: not looked up."""
    if names is None or "%" in text:
        return name_from_text(text)
    name = names.get(text)
    if name is None:
        name = names[text] = name_from_text(text)
    return name


def rdata_from_text(rdtype: int, text: str,
                    names: dict[str, dns.name.Name] | None = None) -> dns.rdata.Rdata:
    """`dns.rdata.from_text(IN, rdtype, text)` for stored (absolute) rdata text; a plain
    target name is the one `names` holds (`_target`)."""
    try:
        if rdtype == dns.rdatatype.A:
            if _FAST_A and _IPV4.fullmatch(text):
                return _address_a(text)
            return dns.rdtypes.IN.A.A(IN, rdtype, text)
        if rdtype == dns.rdatatype.AAAA:
            if _FAST_AAAA and _canonical_ipv6(text):
                return _address_a(text, HashedAAAA, rdtype)
            return dns.rdtypes.IN.AAAA.AAAA(IN, rdtype, text)
        target = _TARGET.get(rdtype)
        if target is not None and _PLAIN.fullmatch(text):
            if _FAST_TARGET and len(text) < 255:  # name_from_text checked the rest
                return _built(_HASHED[rdtype], rdtype, "target", _target(text, names))
            return target(IN, rdtype, _target(text, names))
        if rdtype == dns.rdatatype.MX:
            match = _MX.fullmatch(text)
            if match and _PLAIN.fullmatch(match[2]) and int(match[1]) <= 65535:
                if _FAST_MX and len(match[2]) < 255:
                    return _built(HashedMX, rdtype, "preference", int(match[1]), "exchange",
                                  _target(match[2], names))
                return dns.rdtypes.ANY.MX.MX(IN, rdtype, int(match[1]), _target(match[2], names))
        if rdtype == dns.rdatatype.TXT and _FAST_TXT and _TXT.fullmatch(text):
            strings = tuple(part.encode() for part in text[1:-1].split('" "'))
            if all(len(s) <= 255 for s in strings):
                return _built(HashedTXT, rdtype, "strings", strings)
    except (ValueError, dns.exception.DNSException):  # type: ignore[attr-defined]
        # not what the fast path takes: the reader below says what is wrong
        pass
    return dns.rdata.from_text(IN, rdtype, text)
