"""Signatures as wire octets (one bytes object per signed RRset) and RRsets made on read.

Owns the compact form the zone signer keeps its signatures in (issue 10:
a 100k-name zone held ~230k dnspython RRSIG objects, ~600 octets each with
their bookkeeping). A *blob* is the RRSIG rdatas of one RRset, one per key,
each as a 16-bit length and the rdata in canonical wire form (RFC 4034 §3.1:
header fields, the signer's name lowercased and uncompressed, signature),
which is also the form served (`proofs.rdata_wire`) and hashed.

`LazyRRset` is an RRset whose rdatas are made when it is read, from
compact data a subclass defines (here `RRSIGSet`; `denial` has the NSEC and
NSEC3 ones). `RRSIGSet` is an owner's RRSIG RRset (all covered types, see `signer` module
doc) over a tuple of blobs. It is a `dns.rrset.RRset` to every reader:
iterating, `len`, `[]`, `==`, `to_wire`, `to_text` work as usual, and the
rdatas they see are made from the octets at that moment and held by nobody
after (`_RRSIG`, which keeps its wire as `_digestable`). Like every RRset of
a published snapshot it is never mutated: an in-place change (`add`) would
act on a throw-away dict; assigning `items` makes it an ordinary set. Copies
are ordinary RRsets. `wires()` and `expirations()` read the octets directly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Any

import dns.dnssectypes
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.set

RRSIG = dns.rdatatype.RRSIG
IN = dns.rdataclass.IN
NONE = dns.rdatatype.NONE
_RRSIG_CLS = dns.rdata.get_rdata_class(IN, RRSIG)
_ITEMS = dns.set.Set.__dict__["items"]  # the slot that holds an ordinary set's rdatas
_FIXED = struct.Struct("!HBBIIIH")  # type covered .. key tag
_LEN = struct.Struct("!H")


class _RRSIG(_RRSIG_CLS):  # type: ignore[valid-type,misc]
    """An RRSIG that keeps its canonical wire (known at signing time) for hashing and
    comparison; otherwise a plain dnspython RRSIG."""

    __slots__ = ("_digestable",)

    def to_digestable(self, origin: dns.name.Name | None = None) -> bytes:
        return self._digestable  # type: ignore[no-any-return]

    def __hash__(self) -> int:
        return hash(self._digestable)


_TYPES: dict[int, dns.rdatatype.RdataType] = {}
_ALGS: dict[int, dns.dnssectypes.Algorithm] = {}


def decode(wire: bytes, signer: dns.name.Name) -> dns.rdata.Rdata:
    """The RRSIG of one rdata in canonical wire form; `signer` is its signer's name (the
    zone's, shared by all its RRSIGs), checked against the octets."""
    covered, alg, labels, ttl, exp, inc, tag = _FIXED.unpack_from(wire)
    end = _FIXED.size
    while wire[end]:
        end += wire[end] + 1
    end += 1
    if wire[_FIXED.size:end] != signer.to_digestable():
        signer = dns.name.from_wire(wire, _FIXED.size)[0]
    rd = _RRSIG.__new__(_RRSIG)
    setattr_ = object.__setattr__
    setattr_(rd, "rdclass", IN)
    setattr_(rd, "rdtype", RRSIG)
    setattr_(rd, "rdcomment", None)
    t = _TYPES.get(covered)
    if t is None:
        t = _TYPES[covered] = dns.rdatatype.RdataType.make(covered)
    setattr_(rd, "type_covered", t)
    a = _ALGS.get(alg)
    if a is None:
        a = _ALGS[alg] = dns.dnssectypes.Algorithm.make(alg)
    setattr_(rd, "algorithm", a)
    setattr_(rd, "labels", labels)
    setattr_(rd, "original_ttl", ttl)
    setattr_(rd, "expiration", exp)
    setattr_(rd, "inception", inc)
    setattr_(rd, "key_tag", tag)
    setattr_(rd, "signer", signer)
    setattr_(rd, "signature", wire[end:])
    setattr_(rd, "_digestable", wire)
    return rd


def blob(wires: Iterable[bytes]) -> bytes:
    """RRSIG rdatas in canonical wire form packed into one blob."""
    return b"".join(_LEN.pack(len(w)) + w for w in wires)


def split(data: bytes) -> Iterator[bytes]:
    """The rdatas of a blob, in order."""
    pos, end = 0, len(data)
    while pos < end:
        n = data[pos] << 8 | data[pos + 1]
        yield data[pos + 2 : pos + 2 + n]
        pos += 2 + n


class LazyRRset(dns.rrset.RRset):
    """An immutable RRset whose rdatas are made on read from compact data (`_data`):
    subclasses say how (`_rdatas`, `wires`, `__len__`)."""

    __slots__ = ("_data",)
    _clone_class = dns.rrset.RRset  # copies are ordinary, mutable RRsets

    def __init__(self, owner: dns.name.Name, rdtype: int, ttl: int, data: Any) -> None:
        # the slots RRset.__init__ sets, but no `items` dict (the rdatas live in `_data`):
        # made on every read of the signed map, so kept cheap
        self.name = owner
        self.deleting = None
        self.rdclass = IN
        self.rdtype = rdtype  # type: ignore[assignment]
        self.covers = NONE
        self.ttl = ttl
        self._data = data

    def _lazy(self) -> bool:
        return getattr(self, "_data", None) is not None

    def _rdatas(self) -> Iterator[dns.rdata.Rdata]:
        raise NotImplementedError

    def _wires(self) -> Iterator[bytes]:
        raise NotImplementedError

    def _count(self) -> int:
        raise NotImplementedError

    @property  # type: ignore[override]
    def items(self) -> dict[dns.rdata.Rdata, None]:
        if not self._lazy():
            return _ITEMS.__get__(self)  # type: ignore[no-any-return]
        return dict.fromkeys(self._rdatas())

    @items.setter
    def items(self, value: dict[dns.rdata.Rdata, None]) -> None:
        self._data = None  # from now on an ordinary set
        _ITEMS.__set__(self, value)

    def wires(self) -> Iterator[bytes]:
        """Every rdata in canonical wire form, in order, without making rdatas."""
        if not self._lazy():
            return (rd.to_digestable() for rd in _ITEMS.__get__(self))
        return self._wires()

    def rdata_wires(self) -> Iterator[bytes]:
        """Every rdata as `rdata.to_wire()` writes it (what a transfer sends), in order:
        here the canonical octets themselves (an NSEC's next name keeps its case there)."""
        if not self._lazy():
            return (rd.to_wire() for rd in _ITEMS.__get__(self))
        return self._wires()

    def __iter__(self) -> Iterator[dns.rdata.Rdata]:
        return iter(self.items)

    def __len__(self) -> int:
        return self._count() if self._lazy() else len(_ITEMS.__get__(self))

    def __eq__(self, other: Any) -> bool:
        if type(other) is type(self) and self._lazy() and other._lazy() \
                and self.name == other.name and list(self.wires()) == list(other.wires()):
            return True
        return super().__eq__(other)

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


class RRSIGSet(LazyRRset):
    """An owner's RRSIGs over blobs (see module doc); reads like any RRSIG RRset."""

    __slots__ = ("_signer",)

    def __init__(self, owner: dns.name.Name, ttl: int, blobs: tuple[Any, ...],
                 signer: dns.name.Name) -> None:
        """`blobs`: bytes, or objects with a `blob` attribute (the signer's entries)."""
        super().__init__(owner, RRSIG, ttl, blobs)
        self._signer = signer

    def _rdatas(self) -> Iterator[dns.rdata.Rdata]:
        signer = self._signer
        return (decode(w, signer) for w in self._wires())

    def _wires(self) -> Iterator[bytes]:
        for b in self._data:
            yield from split(b if isinstance(b, bytes) else b.blob)

    def _count(self) -> int:
        return sum(1 for _ in self._wires())

    def rdata_wires(self) -> Iterator[bytes]:
        """As `LazyRRset.rdata_wires`: the octets hold the signer's name lowercased, which
        `to_wire` writes as the zone's origin has it, the same once that is lowercase."""
        if self._lazy() and any(label != label.lower() for label in self._signer.labels):
            return (rd.to_wire() for rd in self)
        return super().rdata_wires()

    def expirations(self) -> Iterator[int]:
        """Every RRSIG's expiration, read from the octets."""
        for w in self.wires():
            yield w[8] << 24 | w[9] << 16 | w[10] << 8 | w[11]
