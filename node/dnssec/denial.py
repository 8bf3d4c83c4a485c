"""Authenticated denial of existence: NSEC and NSEC3 chains, kept incrementally.

Owns `DenialParams` (RFC 9276 defaults: NSEC3, no extra iterations, no salt),
salt parsing, NSEC3 hashing and two chain structures. A chain maps each name
that belongs in it to the type set its bitmap must show (the caller, the zone
signer, decides membership: no glue, no empty non-terminals for NSEC, no
insecure delegations under opt-out). Chains are sorted lists keyed by canonical
name order (NSEC) or by hash (NSEC3); adding or removing one name touches only
it and its predecessor, so online changes never rehash the zone. The records
themselves, made on read from the chain's fields, are `denialsets`'.
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

from node.dnssec.denialsets import Nsec3Set, NsecSet, make_nsec, make_nsec3  # noqa: F401 (re-exported)
from node.errors import ValidationError

MAX_ITERATIONS = 50
IN = dns.rdataclass.IN
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


class Nsec3Chain:
    """The NSEC3 chain: owners are <base32hex hash>.<origin>, in hash order.

    Its keys are the hash labels (shared with the owners' Names and the records' next
    fields), each member's type set in a parallel list (issue 10, session 14: a dict of
    (Name, types) tuples cost ~100 octets per name; a lookup is a bisection of bytes, C).
    """

    rdtype = dns.rdatatype.NSEC3

    def __init__(self, origin: dns.name.Name, ttl: int, params: DenialParams) -> None:
        self.origin = origin
        self._okey = canonical_key(origin)
        self.ttl = ttl
        self.params = params
        self._keys: list[bytes] = []
        self._types: list[Types] = []

    def __len__(self) -> int:
        return len(self._keys)

    def make(self, owner: dns.name.Name, nxt: bytes, types: Types) -> dns.rrset.RRset:
        """The NSEC3 RRset of `owner` from its fields (the last two of an `Nsec3Set`'s:
        the next owner's hash label, the types)."""
        return Nsec3Set(owner, dns.rdatatype.NSEC3, self.ttl, (self.params, nxt, types))

    def hash_of(self, ckey: CKey) -> bytes:
        """The lowercase base32hex hash label of the name `ckey` stands for."""
        p = self.params  # not cached: a cache per name cost ~150 octets per name
        digest = hashlib.sha1(ckey_wire(ckey) + p.salt).digest()
        for _ in range(p.iterations):
            digest = hashlib.sha1(digest + p.salt).digest()
        return base64.b32hexencode(digest).lower()

    def _find(self, label: bytes) -> int:
        """The index of `label`, or -1."""
        keys = self._keys
        i = bisect.bisect_left(keys, label)
        return i if i < len(keys) and keys[i] == label else -1

    def _owner(self, label: bytes) -> tuple[CKey, dns.name.Name]:
        return (*self._okey, label), dns.name.Name((label, *self.origin.labels))

    def owner_of(self, name: dns.name.Name) -> dns.name.Name:
        return self._owner(self.hash_of(canonical_key(name)))[1]

    def rebuild(self, entries: Mapping[CKey, Entry]) -> None:
        keyed = {self.hash_of(k): e[1] for k, e in entries.items()}
        self._keys = sorted(keyed)
        self._types = [keyed[k] for k in self._keys]

    def update(self, changes: Mapping[CKey, Entry | None]) -> list[tuple[CKey, dns.name.Name]]:
        """Apply (name -> (Name, types), or None to remove); the chain owners (ckey, Name)
        whose record changed or disappeared."""
        touched: set[bytes] = set()
        removed: list[tuple[CKey, dns.name.Name]] = []
        keys, types = self._keys, self._types
        for ckey, entry in changes.items():
            key = self.hash_of(ckey)
            i = bisect.bisect_left(keys, key)
            present = i < len(keys) and keys[i] == key
            if entry is None:
                if present:
                    removed.append(self._owner(key))
                    del keys[i], types[i]
                    touched.discard(key)
                    if keys:
                        touched.add(keys[i - 1])
            elif not present:
                keys.insert(i, key)
                types.insert(i, entry[1])
                touched.update((key, keys[i - 1]))
            elif types[i] != entry[1]:
                types[i] = entry[1]
                touched.add(key)
        return [self._owner(k) for k in touched if self._find(k) >= 0] + removed

    def types(self, ckey: CKey) -> Types | None:
        """The bitmap types of the name `ckey` stands for, or None if not in the chain."""
        i = self._find(self.hash_of(ckey))
        return None if i < 0 else self._types[i]

    def owners(self) -> Iterator[tuple[CKey, dns.name.Name]]:
        for key in self._keys:
            yield self._owner(key)

    def labels(self) -> Iterator[bytes]:
        """The owners' hash labels in chain order (the chain's own objects)."""
        return iter(self._keys)

    def rrset(self, owner: CKey) -> dns.rrset.RRset | None:
        key = owner[-1]
        i = self._find(key)
        if i < 0:
            return None
        keys = self._keys
        name = dns.name.Name((key, *self.origin.labels))
        return Nsec3Set(name, dns.rdatatype.NSEC3, self.ttl,
                        (self.params, keys[(i + 1) % len(keys)], self._types[i]))
