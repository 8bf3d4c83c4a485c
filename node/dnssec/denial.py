"""Authenticated denial of existence: NSEC and NSEC3 chains, kept incrementally.

Owns `DenialParams` (RFC 9276 defaults: NSEC3, no extra iterations, no salt),
salt parsing, NSEC3 hashing and two chain structures. A chain maps each name
that belongs in it to the type set its bitmap must show (the caller, the zone
signer, decides membership: no glue, no empty non-terminals for NSEC, no
insecure delegations under opt-out). Chains are sorted lists keyed by canonical
name order (NSEC) or by hash (NSEC3); adding or removing one name touches only
it and its predecessor, so online changes never rehash the zone.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.util import Bitmap

from node.dnssec.rrsigset import LazyRRset
from node.errors import ValidationError

MAX_ITERATIONS = 50
IN = dns.rdataclass.IN
_NSEC = dns.rdata.get_rdata_class(IN, dns.rdatatype.NSEC)
_NSEC3 = dns.rdata.get_rdata_class(IN, dns.rdatatype.NSEC3)
_NSEC3PARAM = dns.rdata.get_rdata_class(IN, dns.rdatatype.NSEC3PARAM)
Types = frozenset[int]


@dataclass(frozen=True, slots=True)
class DenialParams:
    """How a zone denies existence. Defaults follow RFC 9276."""

    nsec3: bool = True
    iterations: int = 0
    salt: bytes = b""
    opt_out: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.iterations <= MAX_ITERATIONS:
            raise ValidationError(
                f"NSEC3 iterations {self.iterations} refused: at most {MAX_ITERATIONS} "
                "(validators treat more as insecure; RFC 9276 recommends 0)"
            )
        if len(self.salt) > 255:
            raise ValidationError("NSEC3 salt is longer than 255 octets")
        if not self.nsec3 and (self.iterations or self.salt or self.opt_out):
            raise ValidationError("iterations, salt and opt-out apply to NSEC3 only")


def parse_salt(text: str, rng: random.Random | None = None) -> bytes:
    """A salt from "-" (none), "random:LEN" (LEN octets, 1-255) or hex."""
    text = text.strip()
    if text in ("-", ""):
        return b""
    if text.lower().startswith("random:"):
        try:
            length = int(text[7:])
        except ValueError:
            length = -1
        if not 1 <= length <= 255:
            raise ValidationError(f"salt {text!r}: random length must be 1 to 255 octets")
        return rng.randbytes(length) if rng is not None else os.urandom(length)
    try:
        salt = bytes.fromhex(text)
    except ValueError:
        raise ValidationError(
            f"salt {text!r} is not valid: use '-' (none), 'random:LEN' or an even number of "
            "hex digits"
        ) from None
    if len(salt) > 255:
        raise ValidationError("NSEC3 salt is longer than 255 octets")
    return salt


def nsec3_digest(name: dns.name.Name, params: DenialParams) -> bytes:
    """The raw RFC 5155 hash of `name` (SHA-1, the only NSEC3 hash defined)."""
    wire = name.canonicalize().to_wire()
    assert wire is not None
    salt = params.salt
    digest = hashlib.sha1(wire + salt).digest()
    for _ in range(params.iterations):
        digest = hashlib.sha1(digest + salt).digest()
    return digest


def nsec3_hash(name: dns.name.Name, params: DenialParams) -> str:
    """The NSEC3 owner label for `name`: base32hex of its hash, lowercase."""
    return base64.b32hexencode(nsec3_digest(name, params)).decode().lower()


def nsec3param_rdata(params: DenialParams) -> dns.rdata.Rdata:
    """The apex NSEC3PARAM: SHA-1, flags 0 (opt-out is an NSEC3 flag, not a param flag)."""
    return _NSEC3PARAM(IN, dns.rdatatype.NSEC3PARAM, 1, 0, params.iterations, params.salt)


def denial_ttl(soa: dns.rrset.RRset) -> int:
    """NSEC/NSEC3 TTL: min(SOA minimum, SOA TTL) (RFC 9077)."""
    return min(soa.ttl, soa[0].minimum)  # type: ignore[attr-defined]


CKey = tuple[bytes, ...]


def canonical_key(name: dns.name.Name) -> CKey:
    """A sort key giving RFC 4034 §6.1 canonical order (labels right to left, lowercased).

    Also a cheap dict key: hashing a tuple of bytes is C code, while
    `dns.name.Name.__hash__` loops over every character in Python.
    """
    # an already lowercase label is shared with the Name, not copied (one key per owner
    # lives as long as the zone is signed)
    return tuple(label if (low := label.lower()) == label else low
                 for label in reversed(name.labels))


def ckey_wire(key: CKey) -> bytes:
    """The uncompressed wire form of the (already lowercased) name `key` stands for."""
    return b"".join(bytes((len(label),)) + label for label in reversed(key))


_BITMAPS: dict[frozenset[int], tuple[tuple[tuple[int, bytes], ...], bytes]] = {}


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
    """An NSEC3 RRset kept as (parameters, next hash, type set), all shared."""

    __slots__ = ()

    def _fields(self) -> tuple[DenialParams, bytes, Types, bytes]:
        params, nxt, types = self._data
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
    """An NSEC3 RRset (SHA-1, opt-out flag from `params`; `Nsec3Set`)."""
    return Nsec3Set(owner, dns.rdatatype.NSEC3, ttl, (params, nxt, types))


Entry = tuple[dns.name.Name, Types]


class _SortedChain:
    """Shared machinery: sorted keys, key -> (name, types); reports owners to rewrite.

    Callers identify names by `canonical_key` (CKey) and pass the Name alongside.
    """

    def __init__(self) -> None:
        self._keys: list[object] = []
        self._entries: dict[object, Entry] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def _key(self, ckey: CKey) -> object:
        raise NotImplementedError

    def _owner(self, key: object, name: dns.name.Name) -> tuple[CKey, dns.name.Name]:
        raise NotImplementedError

    def rebuild(self, entries: Mapping[CKey, Entry]) -> None:
        self._entries = {self._key(k): e for k, e in entries.items()}
        self._keys = sorted(self._entries)  # type: ignore[type-var]

    def update(self, changes: Mapping[CKey, Entry | None]) -> list[tuple[CKey, dns.name.Name]]:
        """Apply (name -> (Name, types), or None to remove); the chain owners (ckey, Name)
        whose record changed or disappeared."""
        touched: set[object] = set()
        removed: list[tuple[CKey, dns.name.Name]] = []
        for ckey, entry in changes.items():
            key = self._key(ckey)
            old = self._entries.get(key)
            if entry is None:
                if old is None:
                    continue
                i = bisect.bisect_left(self._keys, key)  # type: ignore[call-overload]
                del self._keys[i]
                del self._entries[key]
                removed.append(self._owner(key, old[0]))
                touched.discard(key)
                if self._keys:
                    touched.add(self._keys[i - 1])
                continue
            if old is not None and old[1] == entry[1]:
                continue
            self._entries[key] = entry
            touched.add(key)
            if old is None:
                i = bisect.bisect_left(self._keys, key)  # type: ignore[call-overload]
                self._keys.insert(i, key)
                touched.add(self._keys[i - 1])
        return [self._owner(k, self._entries[k][0]) for k in touched if k in self._entries] \
            + removed

    def types(self, ckey: CKey) -> Types | None:
        """The bitmap types of the name `ckey` stands for, or None if not in the chain."""
        return self._entries.get(self._key(ckey), (None, None))[1]

    def owners(self) -> Iterator[tuple[CKey, dns.name.Name]]:
        for key in self._keys:
            yield self._owner(key, self._entries[key][0])

    def _next_key(self, key: object) -> object:
        i = bisect.bisect_right(self._keys, key)  # type: ignore[call-overload]
        return self._keys[i % len(self._keys)]


class NsecChain(_SortedChain):
    """The NSEC chain: owners are the names themselves, in canonical order."""

    rdtype = dns.rdatatype.NSEC

    def __init__(self, origin: dns.name.Name, ttl: int) -> None:
        super().__init__()
        self.origin = origin
        self.ttl = ttl

    def make(self, owner: dns.name.Name, nxt: dns.name.Name, types: Types) -> dns.rrset.RRset:
        """The NSEC RRset of `owner` from its fields (the last two of an `NsecSet`'s data)."""
        return NsecSet(owner, dns.rdatatype.NSEC, self.ttl, (nxt, types))

    def _key(self, ckey: CKey) -> object:
        return ckey

    def _owner(self, key: object, name: dns.name.Name) -> tuple[CKey, dns.name.Name]:
        return key, name  # type: ignore[return-value]

    def rrset(self, owner: CKey) -> dns.rrset.RRset | None:
        entry = self._entries.get(owner)
        if entry is None:
            return None
        nxt = self._entries[self._next_key(owner)][0]
        return make_nsec(entry[0], self.ttl, nxt, entry[1])

    def records(self) -> Iterator[tuple[CKey, dns.name.Name, dns.rrset.RRset]]:
        """Every (owner key, owner, NSEC RRset) in one pass (full builds)."""
        keys, entries = self._keys, self._entries
        for i, key in enumerate(keys):
            name, types = entries[key]
            nxt = entries[keys[(i + 1) % len(keys)]][0]
            yield key, name, make_nsec(name, self.ttl, nxt, types)  # type: ignore[misc]


class Nsec3Chain(_SortedChain):
    """The NSEC3 chain: owners are <base32hex hash>.<origin>, in hash order."""

    rdtype = dns.rdatatype.NSEC3

    def make(self, owner: dns.name.Name, nxt: bytes, types: Types) -> dns.rrset.RRset:
        """The NSEC3 RRset of `owner` from its fields (the last two of an `Nsec3Set`'s)."""
        return Nsec3Set(owner, dns.rdatatype.NSEC3, self.ttl, (self.params, nxt, types))

    def __init__(self, origin: dns.name.Name, ttl: int, params: DenialParams) -> None:
        super().__init__()
        self.origin = origin
        self._okey = canonical_key(origin)
        self.ttl = ttl
        self.params = params

    def hash_of(self, ckey: CKey) -> bytes:
        """The lowercase base32hex hash label of the name `ckey` stands for."""
        p = self.params  # not cached: a cache per name cost ~150 octets per name
        digest = hashlib.sha1(ckey_wire(ckey) + p.salt).digest()
        for _ in range(p.iterations):
            digest = hashlib.sha1(digest + p.salt).digest()
        return base64.b32hexencode(digest).lower()

    def _key(self, ckey: CKey) -> object:
        return self.hash_of(ckey)

    def _owner(self, key: object, name: dns.name.Name) -> tuple[CKey, dns.name.Name]:
        label: bytes = key  # type: ignore[assignment]
        return (*self._okey, label), dns.name.Name((label, *self.origin.labels))

    def owner_of(self, name: dns.name.Name) -> dns.name.Name:
        return self._owner(self.hash_of(canonical_key(name)), name)[1]

    def rrset(self, owner: CKey) -> dns.rrset.RRset | None:
        key = owner[-1]
        entry = self._entries.get(key)
        if entry is None:
            return None
        nxt = _raw(self._next_key(key))  # type: ignore[arg-type]
        name = dns.name.Name((key, *self.origin.labels))
        return make_nsec3(name, self.ttl, self.params, nxt, entry[1])

    def records(self) -> Iterator[tuple[CKey, dns.name.Name, dns.rrset.RRset]]:
        """Every (owner key, owner, NSEC3 RRset) in one pass (full builds)."""
        keys = self._keys
        for i, key in enumerate(keys):
            label: bytes = key  # type: ignore[assignment]
            owner = dns.name.Name((label, *self.origin.labels))
            nxt = _raw(keys[(i + 1) % len(keys)])  # type: ignore[arg-type]
            yield ((*self._okey, label), owner,
                   make_nsec3(owner, self.ttl, self.params, nxt, self._entries[key][1]))


def _raw(label: bytes) -> bytes:
    """The hash an NSEC3 owner label (lowercase base32hex) stands for."""
    return base64.b32hexdecode(label.upper())
