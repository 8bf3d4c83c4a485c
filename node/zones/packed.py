"""`PackedTypes`: one owner's RRsets as one immutable wire blob, made into RRsets on read.

Owns the compact form the replica keeps a zone in (issue 10: a 100k-name zone
held ~1.5M dnspython objects, ~1 kB per RRset with their dicts, rdatas and
names). An owner's value in a snapshot's node map (`owner -> rdtype -> RRset`)
is a `PackedTypes`: its owner `Name` and one bytes object holding, per RRset
in type order, a header (type, covers, TTL, rdata count; `_HEAD`) and
each rdata as a 16-bit length and `rdata.to_wire()` (uncompressed, absolute
names, their case kept). It reads as a `Mapping[int, RRset]`: `in`, `len`
and iteration read the headers only; `[t]`, `get`, `items()` and `values()`
make ordinary, new `dns.rrset.RRset`s each time (A and AAAA without
dnspython's parsers, the rest through `dns.rdata.from_wire`), equal to the
ones packed: same owner, class, type, covers, TTL and rdatas in order. Nobody
holds them after use unless a consumer keeps them, so read an RRset once per
use rather than relying on its identity; `segment(t)` compares RRsets without
making them. A zone-sized pass that reads each RRset several times (a full
compile) runs inside a `ReadCache`: each RRset is then made once per pass, and
let go at its end.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset

Name = dns.name.Name
IN = dns.rdataclass.IN
_HEAD = struct.Struct("!HHIH")  # type, covers, TTL, rdata count
_LEN = struct.Struct("!H")
_A = int(dns.rdatatype.A)
_AAAA = int(dns.rdatatype.AAAA)
_TYPES: dict[int, dns.rdatatype.RdataType] = {}
_RRset = dns.rrset.RRset
_new = object.__new__


def _rdtype(value: int) -> dns.rdatatype.RdataType:
    t = _TYPES.get(value)
    if t is None:
        t = _TYPES[value] = dns.rdatatype.RdataType.make(value)
    return t


_MAX16 = 0xFFFF


def pack_rrset(rrset: dns.rrset.RRset) -> bytes:
    """One RRset's record in a blob (header and rdatas). ValueError (a bad value, as the
    replica's readers take it) if an rdata or the count of rdatas does not fit 16 bits:
    no DNS message carries such an RR, and struct's own error stopped the watch."""
    wires = [rd.to_wire() for rd in rrset]
    if len(wires) > _MAX16 or any(len(w) > _MAX16 for w in wires):
        raise ValueError(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}: over "
                         f"{_MAX16} rdatas or an rdata over {_MAX16} octets")
    return _HEAD.pack(rrset.rdtype, rrset.covers, rrset.ttl, len(wires)) + b"".join(
        _LEN.pack(len(w)) + w for w in wires)


def _wired(base: type[dns.rdata.Rdata]) -> type[dns.rdata.Rdata]:
    """`base` (A, AAAA) keeping its wire form, the octets packed, for hashing, comparing
    and writing (dnspython re-encodes the address text each time: half of a read)."""

    class Wired(base):  # type: ignore[valid-type,misc]
        __slots__ = ("_wire",)

        def __init__(self, rdclass: Any, rdtype: Any, address: Any) -> None:
            super().__init__(rdclass, rdtype, address)  # `replace`, copies: from the text
            out = io.BytesIO()
            base._to_wire(self, out)
            object.__setattr__(self, "_wire", out.getvalue())

        def to_digestable(self, origin: Name | None = None) -> bytes:
            return self._wire  # type: ignore[no-any-return]

        def _to_wire(self, file: Any, compress: Any = None, origin: Any = None,
                     canonicalize: bool = False) -> None:
            file.write(self._wire)

        def __hash__(self) -> int:
            return hash(self._wire)

    Wired.__name__ = Wired.__qualname__ = f"Wired{base.__name__}"
    return Wired


WiredA = _wired(dns.rdtypes.IN.A.A)
WiredAAAA = _wired(dns.rdtypes.IN.AAAA.AAAA)
_SLOTS = {"rdclass", "rdtype", "rdcomment", "address", "_wire"}
# another dnspython whose A or AAAA holds more than the address makes them itself
_FAST_A = set(WiredA(IN, _A, "192.0.2.1")._get_all_slots()) == _SLOTS
_FAST_AAAA = set(WiredAAAA(IN, _AAAA, "2001:db8::1")._get_all_slots()) == _SLOTS


def _address(cls: type[dns.rdata.Rdata], rdtype: int, text: str, wire: bytes
             ) -> dns.rdata.Rdata:
    """What `cls(IN, rdtype, text)` makes (`text` canonical, from `wire`), unchecked."""
    rd = _new(cls)
    for slot, value in (("rdclass", IN), ("rdtype", _TYPES.get(rdtype) or _rdtype(rdtype)),
                        ("rdcomment", None), ("address", text), ("_wire", wire)):
        object.__setattr__(rd, slot, value)
    return rd


def _rdata(rdtype: int, blob: bytes, pos: int, size: int) -> dns.rdata.Rdata:
    if rdtype == _A and _FAST_A and size == 4:
        wire = blob[pos:pos + 4]
        return _address(WiredA, rdtype, socket.inet_ntoa(wire), wire)
    if rdtype == _AAAA and _FAST_AAAA and size == 16:
        wire = blob[pos:pos + 16]
        text = socket.inet_ntop(socket.AF_INET6, wire)
        if "." not in text:  # an embedded IPv4 form: dnspython writes its own
            return _address(WiredAAAA, rdtype, text, wire)
    return dns.rdata.from_wire(IN, rdtype, blob, pos, size)


_local = threading.local()


class ReadCache:
    """While in use, in the thread that entered it: each RRset read from a `PackedTypes`
    is made once and kept, for passes that read each RRset several times (a full
    compile reads an RRset about ten times: answers, additional addresses, signatures'
    TTLs, image entries). `clear()` lets go of what was read so far (a pass over the
    zone in parts keeps a part's RRsets only); all is let go at the end."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[int, Any] | None = None

    def __enter__(self) -> ReadCache:
        if getattr(_local, "cache", None) is None:  # else an outer pass's cache serves
            self._cache = _local.cache = {}
        return self

    def clear(self) -> None:
        if self._cache is not None:
            self._cache.clear()

    def __exit__(self, *exc: object) -> None:
        if self._cache is not None:
            _local.cache = self._cache = None


class PackedTypes(Mapping[int, dns.rrset.RRset]):
    """An owner's RRsets as one blob (see module doc); immutable."""

    __slots__ = ("_blob", "_len", "owner")

    def __init__(self, owner: Name, blob: bytes) -> None:
        self.owner = owner
        self._blob = blob
        self._len = sum(1 for _ in self._segments())  # `len` is asked of every owner

    @classmethod
    def pack(cls, owner: Name, rrsets: Iterable[dns.rrset.RRset]) -> PackedTypes:
        """The owner's RRsets packed in type order (one per type)."""
        records = sorted((rs.rdtype, pack_rrset(rs)) for rs in rrsets)
        return cls(owner, b"".join(r for _, r in records))

    @classmethod
    def of(cls, owner: Name, types: Mapping[int, dns.rrset.RRset]) -> PackedTypes:
        """`types` packed (itself when it already is a `PackedTypes`)."""
        if type(types) is cls:
            return types  # type: ignore[return-value]
        return cls.pack(owner, types.values())

    @property
    def blob(self) -> bytes:
        return self._blob

    def replaced(self, rdtype: int, rrset: dns.rrset.RRset | None) -> PackedTypes:
        """A copy with the RRset of `rdtype` replaced by `rrset` (None: removed), in type
        order. Only `rrset` is encoded: the others' octets are copied."""
        blob = self._blob
        new = b"" if rrset is None else pack_rrset(rrset)
        parts: list[bytes] = []
        for t, start, end in self._segments():
            if new and t > rdtype:
                parts.append(new)
                new = b""
            if t != rdtype:
                parts.append(blob[start:end])
        parts.append(new)
        return PackedTypes(self.owner, b"".join(parts))

    # -- reading without making RRsets --------------------------------------------
    def _segments(self) -> Iterator[tuple[int, int, int]]:
        """(type, start, end) of each RRset's record in the blob."""
        blob, pos, end = self._blob, 0, len(self._blob)
        head = _HEAD.size
        while pos < end:
            start = pos
            rdtype, _, _, count = _HEAD.unpack_from(blob, pos)
            pos += head
            for _ in range(count):
                pos += 2 + (blob[pos] << 8 | blob[pos + 1])
            yield rdtype, start, pos

    def segment(self, rdtype: int) -> bytes | None:
        """The packed record of the RRset of `rdtype` (equal records: equal RRsets)."""
        for t, start, end in self._segments():
            if t == rdtype:
                return self._blob[start:end]
        return None

    def ttl(self, rdtype: int) -> int:
        """The TTL of the RRset of `rdtype` (KeyError if none)."""
        for t, start, _ in self._segments():
            if t == rdtype:
                return _HEAD.unpack_from(self._blob, start)[2]  # type: ignore[no-any-return]
        raise KeyError(rdtype)

    def rdata_wires(self, rdtype: int) -> list[bytes]:
        """Each rdata of the RRset of `rdtype` as `to_wire` writes it, in order."""
        blob = self._blob
        for t, start, end in self._segments():
            if t == rdtype:
                out, pos = [], start + _HEAD.size
                while pos < end:
                    n = blob[pos] << 8 | blob[pos + 1]
                    out.append(blob[pos + 2:pos + 2 + n])
                    pos += 2 + n
                return out
        raise KeyError(rdtype)

    # -- making RRsets -------------------------------------------------------------
    def _make(self, start: int) -> dns.rrset.RRset:
        blob = self._blob
        rdtype, covers, ttl, count = _HEAD.unpack_from(blob, start)
        # the slots `RRset.__init__` sets, without its chain of constructors
        rrset = _new(_RRset)
        rrset.name = self.owner
        rrset.deleting = None
        rrset.rdclass = IN
        rrset.rdtype = _TYPES.get(rdtype) or _rdtype(rdtype)
        rrset.covers = _TYPES.get(covers) or _rdtype(covers)
        rrset.ttl = ttl
        rrset.items = items = {}
        pos = start + _HEAD.size
        for _ in range(count):
            n = blob[pos] << 8 | blob[pos + 1]
            items[_rdata(rdtype, blob, pos + 2, n)] = None
            pos += 2 + n
        return rrset

    def _cached(self, make: bool = True) -> dict[int, dns.rrset.RRset] | None:
        """Within a `ReadCache`: every RRset of the owner, made on the first read (`make`;
        else None until then); outside: None. Asking which types there are makes none."""
        cache: dict[int, tuple[PackedTypes, dict[int, dns.rrset.RRset]]] | None = \
            getattr(_local, "cache", None)
        if cache is None:
            return None
        hit = cache.get(id(self))
        if hit is None:
            if not make:
                return None
            hit = cache[id(self)] = (self, dict(self._made()))  # `self` held: its id stays
        return hit[1]

    def _made(self) -> list[tuple[int, dns.rrset.RRset]]:
        return [(_rdtype(t), self._make(start)) for t, start, _ in self._segments()]

    def __getitem__(self, rdtype: int) -> dns.rrset.RRset:
        made = self._cached()
        if made is not None:
            return made[rdtype]
        for t, start, _ in self._segments():
            if t == rdtype:
                return self._make(start)
        raise KeyError(rdtype)

    def get(self, rdtype: int, default: Any = None) -> Any:
        made = self._cached()
        if made is not None:
            return made.get(rdtype, default)
        for t, start, _ in self._segments():
            if t == rdtype:
                return self._make(start)
        return default

    def __contains__(self, rdtype: object) -> bool:
        made = self._cached(make=False)
        if made is not None:
            return rdtype in made
        return any(t == rdtype for t, _, _ in self._segments())

    def __iter__(self) -> Iterator[int]:
        made = self._cached(make=False)
        if made is not None:
            return iter(made)
        return (_rdtype(t) for t, _, _ in self._segments())

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return bool(self._blob)

    def __eq__(self, other: object) -> bool:
        if type(other) is PackedTypes:
            return self._blob == other._blob and self.owner == other.owner
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def pairs(self) -> list[tuple[int, dns.rrset.RRset]]:
        """(type, RRset) of every RRset, in order, made in one pass."""
        made = self._cached()
        return list(made.items()) if made is not None else self._made()

    def items(self) -> ItemsView[int, dns.rrset.RRset]:
        return _Items(self)

    def values(self) -> ValuesView[dns.rrset.RRset]:
        return _Values(self)

    def __repr__(self) -> str:
        return f"<PackedTypes {self.owner} {[dns.rdatatype.to_text(t) for t in self]}>"


class _Items(ItemsView[int, dns.rrset.RRset]):
    """`items()` in one pass over the blob, not a scan per type."""

    _mapping: PackedTypes

    def __iter__(self) -> Iterator[tuple[int, dns.rrset.RRset]]:
        return iter(self._mapping.pairs())


class _Values(ValuesView[dns.rrset.RRset]):
    _mapping: PackedTypes

    def __iter__(self) -> Iterator[dns.rrset.RRset]:
        return (rs for _, rs in self._mapping.pairs())
