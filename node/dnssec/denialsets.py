"""The NSEC and NSEC3 RRsets the signer serves, made on read from the chain's fields.

Owns the compact form of a denial record (`rrsigset.LazyRRset`): an NSEC is
(next name, type set), an NSEC3 (parameters, next owner's hash label, type
set), every field shared with the chain that made it, and the type bitmaps,
cached per type set. An NSEC3 keeps its next hash as the next owner's label
(lowercase base32hex, the chain's own key object: issue 10, session 14, the
raw 20 octets cost a bytes object per owner) and decodes it when read
(`raw_hash`, `int(label, 32)`: base32hex is base 32 with digits 0-9a-v).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.util import Bitmap

from node.dnssec.rrsigset import LazyRRset

if TYPE_CHECKING:
    from node.dnssec.denial import DenialParams

IN = dns.rdataclass.IN
_NSEC = dns.rdata.get_rdata_class(IN, dns.rdatatype.NSEC)
_NSEC3 = dns.rdata.get_rdata_class(IN, dns.rdatatype.NSEC3)
Types = frozenset[int]
_BITMAPS: dict[frozenset[int], tuple[tuple[tuple[int, bytes], ...], bytes]] = {}


def hash_label(digest: bytes) -> bytes:
    """The NSEC3 owner label of a raw hash: lowercase base32hex, unpadded."""
    return base64.b32hexencode(digest).rstrip(b"=").lower()


def raw_hash(label: bytes) -> bytes:
    """The raw hash an NSEC3 owner label (lowercase base32hex, a multiple of 8
    characters, as every SHA-1 label is: 32) stands for."""
    return int(label, 32).to_bytes(len(label) * 5 // 8, "big")


def _bitmap(types: frozenset[int]) -> tuple[tuple[tuple[int, bytes], ...], bytes]:
    """(windows, wire) of a type bitmap; cached, zones reuse few distinct type sets."""
    found = _BITMAPS.get(types)
    if found is None:
        if len(_BITMAPS) > 4096:
            _BITMAPS.clear()
        windows = tuple(Bitmap.from_rdtypes(sorted(types)).windows)  # type: ignore[arg-type]
        wire = b"".join(bytes((w, len(b))) + b for w, b in windows)
        found = _BITMAPS[types] = (windows, wire)
    return found


class _NSECRdata(_NSEC):  # type: ignore[valid-type,misc]
    """An NSEC that keeps its canonical wire for hashing/comparison; otherwise plain."""

    __slots__ = ("_digestable",)

    def to_digestable(self, origin: dns.name.Name | None = None) -> bytes:
        return self._digestable  # type: ignore[no-any-return]

    def __hash__(self) -> int:
        return hash(self._digestable)


class _NSEC3Rdata(_NSEC3):  # type: ignore[valid-type,misc]
    """An NSEC3 that keeps its canonical wire for hashing/comparison; otherwise plain."""

    __slots__ = ("_digestable",)

    def to_digestable(self, origin: dns.name.Name | None = None) -> bytes:
        return self._digestable  # type: ignore[no-any-return]

    def __hash__(self) -> int:
        return hash(self._digestable)


def _fill(rd: dns.rdata.Rdata, fields: tuple[tuple[str, object], ...]) -> None:
    """Set the slots of a new immutable rdata, as dnspython's own unpickling does."""
    for slot, value in fields:
        object.__setattr__(rd, slot, value)


class NsecSet(LazyRRset):
    """An NSEC RRset kept as (next name, type set), both shared with the chain: the
    rdata is made on read (`rrsigset.LazyRRset`)."""

    __slots__ = ()

    def _rdatas(self) -> Iterator[dns.rdata.Rdata]:
        nxt, types = self._data
        windows, wire = _bitmap(types)
        rd = _NSECRdata.__new__(_NSECRdata)
        _fill(rd, (("rdclass", IN), ("rdtype", dns.rdatatype.NSEC), ("rdcomment", None),
                   ("next", nxt), ("windows", windows), ("_digestable", nxt.to_wire() + wire)))
        yield rd

    def _wires(self) -> Iterator[bytes]:
        nxt, types = self._data
        yield nxt.to_wire() + _bitmap(types)[1]

    def _count(self) -> int:
        return 1


class Nsec3Set(LazyRRset):
    """An NSEC3 RRset kept as (parameters, next owner's hash label, type set), all shared."""

    __slots__ = ()

    def _fields(self) -> tuple[DenialParams, bytes, Types, bytes]:
        params, label, types = self._data
        nxt = raw_hash(label)
        salt = params.salt
        head = bytes((1, 1 if params.opt_out else 0)) + params.iterations.to_bytes(2, "big")
        return params, nxt, types, head + bytes((len(salt),)) + salt + bytes((len(nxt),)) + nxt

    def _rdatas(self) -> Iterator[dns.rdata.Rdata]:
        params, nxt, types, head = self._fields()
        windows, wire = _bitmap(types)
        rd = _NSEC3Rdata.__new__(_NSEC3Rdata)
        _fill(rd, (("rdclass", IN), ("rdtype", dns.rdatatype.NSEC3), ("rdcomment", None),
                   ("algorithm", 1), ("flags", 1 if params.opt_out else 0),
                   ("iterations", params.iterations), ("salt", params.salt), ("next", nxt),
                   ("windows", windows), ("_digestable", head + wire)))
        yield rd

    def _wires(self) -> Iterator[bytes]:
        yield self._fields()[3] + _bitmap(self._data[2])[1]

    def _count(self) -> int:
        return 1


def make_nsec(owner: dns.name.Name, ttl: int, nxt: dns.name.Name, types: frozenset[int]
              ) -> dns.rrset.RRset:
    """An NSEC RRset (`NsecSet`: its rdata is made when read)."""
    return NsecSet(owner, dns.rdatatype.NSEC, ttl, (nxt, types))


def make_nsec3(owner: dns.name.Name, ttl: int, params: DenialParams, nxt: bytes,
               types: frozenset[int]) -> dns.rrset.RRset:
    """An NSEC3 RRset with the raw next hash `nxt` (SHA-1, opt-out flag from `params`;
    `Nsec3Set`)."""
    return Nsec3Set(owner, dns.rdatatype.NSEC3, ttl, (params, hash_label(nxt), types))
