"""Stored RRset values and data keys into dnspython objects, fast for the common types.

Loading a zone turns every stored value (`{"ttl": T, "rdata": [text, ...]}`)
into a `dns.rrset.RRset`, and every data key's owner into a `dns.name.Name`.
dnspython's text readers (a tokenizer per record) cost about 75 µs per RRset
of the 100k-name benchmark zone: 9.6 s of a load. Here A and AAAA records
are built from their address, NS, CNAME, PTR and MX from their target, TXT
from plain quoted strings, each whole (no second check) and hashed without
dnspython's wire writer, and plain names (letters, digits, `-`, `_`, `*`)
from their labels, giving objects equal to, and hashed as, those of
`dns.rdata.from_text` and `dns.name.from_text`; anything else (escapes,
other types) goes through those readers as before.
`build_nodes` reads one generation's data keys (the replica's load and reload);
`NodeDecoder` does the same in parts, as an import's keys arrive by the watch.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from types import MappingProxyType

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
import dns.rrset

from node.events import Event, emit
from node.gcwatch import kept_part
from node.store.keys import PLAIN_NAME as _PLAIN
from node.store.keys import name_from_text, parse_name_component
from node.store.values import KeyValue

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
_SIGS = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.SIG})
_PLAIN_SET = frozenset(dns.rdatatype.RdataType) - {dns.rdatatype.RRSIG, dns.rdatatype.SIG} - {
    t for t in dns.rdatatype.RdataType if dns.rdatatype.is_singleton(t)}


def rdata_from_text(rdtype: int, text: str) -> dns.rdata.Rdata:
    """`dns.rdata.from_text(IN, rdtype, text)` for stored (absolute) rdata text."""
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
                return _built(_HASHED[rdtype], rdtype, "target", name_from_text(text))
            return target(IN, rdtype, name_from_text(text))
        if rdtype == dns.rdatatype.MX:
            match = _MX.fullmatch(text)
            if match and _PLAIN.fullmatch(match[2]) and int(match[1]) <= 65535:
                if _FAST_MX and len(match[2]) < 255:
                    return _built(HashedMX, rdtype, "preference", int(match[1]), "exchange",
                                  name_from_text(match[2]))
                return dns.rdtypes.ANY.MX.MX(IN, rdtype, int(match[1]), name_from_text(match[2]))
        if rdtype == dns.rdatatype.TXT and _FAST_TXT and _TXT.fullmatch(text):
            strings = tuple(part.encode() for part in text[1:-1].split('" "'))
            if all(len(s) <= 255 for s in strings):
                return _built(HashedTXT, rdtype, "strings", strings)
    except (ValueError, dns.exception.DNSException):  # type: ignore[attr-defined]
        # not what the fast path takes: the reader below says what is wrong
        pass
    return dns.rdata.from_text(IN, rdtype, text)


# the usual stored value: one record whose text needs no JSON escape (`rrset_to_json` writes
# `json.dumps` of it: ASCII, `"` and `\` and control characters escaped); read without a
# JSON decoder's per-call overhead (~1/8 of a decode), the same ttl and text as `json.loads`
_ONE = re.compile(rb'\{"ttl": (0|[1-9][0-9]{0,9}), "rdata": \["([^"\\\x00-\x1f\x7f-\xff]*)"\]\}')


# TTLs as shared ints (issue 10, memory): a zone uses a few TTL values, mostly above 256
# (not CPython's cached small ints), and each RRset held its own (28 octets, 3.4 MiB of a
# 100k-name zone); read from the stored digits with one dict probe, no int() parse
# (keyed by the stored digits, or by the int json.loads made: the two never compare equal)
_TTLS: dict[bytes | int, int] = {}
TTLS_MAX = 4096


def _ttl(stored: bytes | int) -> int:
    ttl = _TTLS.get(stored)
    if ttl is None:
        ttl = int(stored)
        if len(_TTLS) < TTLS_MAX:
            _TTLS[stored] = ttl
    return ttl


def _empty_rrset(owner: Name, rdtype: int, ttl: int) -> dns.rrset.RRset:
    """`RRset(owner, IN, rdtype)` after `update_ttl(ttl)`, without its three constructors
    and the TTL's check (a tenth of a zone decode; `_FAST_RRSET` says this dnspython
    builds the same)."""
    rrset = object.__new__(dns.rrset.RRset)
    rrset.items = {}
    rrset.rdclass = IN
    rrset.rdtype = rdtype  # type: ignore[assignment]
    rrset.covers = _NONE
    rrset.ttl = ttl
    rrset.name = owner
    rrset.deleting = None
    return rrset


def _same_rrset(one: dns.rrset.RRset, other: dns.rrset.RRset) -> bool:
    slots = {s for c in type(other).__mro__ for s in c.__dict__.get("__slots__", ())}
    return type(one) is type(other) and not hasattr(other, "__dict__") and _same_slots(
        one, other, slots)


_NONE = dns.rdatatype.NONE
_REFERENCE_RRSET = dns.rrset.RRset(name_from_text("a.test."), IN, dns.rdatatype.A)
_REFERENCE_RRSET.update_ttl(300)
_FAST_RRSET = _same_rrset(_empty_rrset(name_from_text("a.test."), dns.rdatatype.A, 300),
                          _REFERENCE_RRSET)


def rrset_from_json(owner: Name, rdtype: int, data: bytes) -> dns.rrset.RRset:
    """The RRset a stored value holds (the format of `model.rrset_to_json`)."""
    one = _ONE.fullmatch(data)
    if one is not None:
        ttl: int = _ttl(one[1])
        texts: list[str] = [one[2].decode()]
    else:
        obj = json.loads(data)
        ttl, texts = obj["ttl"], obj["rdata"]
        if type(ttl) is int:
            ttl = _ttl(ttl)
    if rdtype in _PLAIN_SET or (len(texts) == 1 and rdtype not in _SIGS):
        # what `add` does for these types, hashing each rdata once, not twice (its
        # `to_wire` is a third of a load)
        if _FAST_RRSET and type(ttl) is int and 0 <= ttl:
            rrset = _empty_rrset(owner, rdtype, ttl)
        else:
            rrset = dns.rrset.RRset(owner, IN, rdtype)
            rrset.update_ttl(ttl)
        items = rrset.items
        for text in texts:
            items.setdefault(rdata_from_text(rdtype, text))
        return rrset
    rrset = dns.rrset.RRset(owner, IN, rdtype)
    for text in texts:
        rrset.add(rdata_from_text(rdtype, text), ttl)
    if not texts:
        rrset.update_ttl(ttl)
    return rrset


def build_nodes(prefix: bytes, kvs: Sequence[KeyValue]
                ) -> dict[Name, MappingProxyType[int, dns.rrset.RRset]]:
    """The owners' RRsets from the data keys under `prefix` (one generation of a zone);
    a key or value that does not read is reported (ZONE_LOAD_FAILED) and left out."""
    decoder = NodeDecoder(prefix)
    decoder.add(kvs)
    return decoder.nodes()


KEPT_PART = 256  # keys: a part at least this large is frozen (`kept_part`)


class NodeDecoder:
    """`build_nodes` in parts: `add` data keys of one generation as they come (in any
    order; a key added again replaces its RRset), then `nodes()` once. Not thread-safe:
    one caller at a time."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self._raw: dict[str, dict[int, dns.rrset.RRset]] = {}  # by owner text: a Name hashes slowly
        self._owners: dict[str, Name] = {}
        self._types: dict[str, int] = {}
        # what `nodes` returns, made as the owners come (at the flip the zone waits for
        # `nodes`: 100k views made then were a tenth of a zone's decode); None once an
        # owner came in two spellings (a hand-written key): then made by `nodes`
        self._out: dict[Name, MappingProxyType[int, dns.rrset.RRset]] | None = {}
        self.count = 0  # keys added
        self.cpu = 0.0  # CPU seconds of the threads that added them

    def add(self, kvs: Sequence[KeyValue]) -> None:
        started = time.thread_time()
        # a zone-sized part's objects frozen as made (`kept_part`: its collections were ~40% of
        # a decode); a few keys' are left to the collector
        with kept_part() if len(kvs) >= KEPT_PART else nullcontext():
            self._add(kvs)
        self.count += len(kvs)
        self.cpu += time.thread_time() - started

    def _add(self, kvs: Sequence[KeyValue]) -> None:
        raw, owners, types = self._raw, self._owners, self._types
        start = len(self.prefix)
        for kv in kvs:
            try:
                owner_text, _, type_text = kv.key[start:].decode().rpartition("/")
                owner = owners.get(owner_text)
                if owner is None:
                    owner = owners[owner_text] = parse_name_component(owner_text)
                rdtype = types.get(type_text)
                if rdtype is None:
                    rdtype = types[type_text] = dns.rdatatype.from_text(type_text)
                rrset = rrset_from_json(owner, rdtype, kv.value)
                by_type = raw.get(owner_text)
                if by_type is not None:
                    by_type[rdtype] = rrset
                    continue
                by_type = raw[owner_text] = {rdtype: rrset}
                if self._out is not None:
                    proxy = MappingProxyType(by_type)
                    if self._out.setdefault(owner, proxy) is not proxy:
                        self._out = None
            except Exception as exc:  # a bad value must not stop the node
                emit(Event.ZONE_LOAD_FAILED, level=logging.ERROR, key=kv.key, error=str(exc))

    def nodes(self) -> dict[Name, MappingProxyType[int, dns.rrset.RRset]]:
        """The owners' RRsets (a view of each owner's types, in the order they came)."""
        if self._out is not None:
            return self._out
        out: dict[Name, MappingProxyType[int, dns.rrset.RRset]] = {}
        owners = self._owners
        for text, by_type in self._raw.items():
            owner = owners[text]
            proxy = MappingProxyType(by_type)
            types = out.setdefault(owner, proxy)
            if types is not proxy:  # two spellings of one name (a hand-written key)
                out[owner] = MappingProxyType({**types, **by_type})
        return out
