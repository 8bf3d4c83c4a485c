"""Pre-rendered DNSSEC pieces of one signed zone version: RRSIG tails and the denial chain.

Owns, for a signed `ZoneSnapshot`:

* the NSEC3 chain as a sorted list of raw owner hashes (the owner label is
  base32hex, which `int(label, 32)` decodes in C and whose order is the hash
  order) and, per hash, the NSEC3 record and its
  RRSIG rendered once (`Piece` = owner wire name + RR tails); the query name
  is hashed with the zone's NSEC3PARAM and `bisect` finds the matching or
  covering record;
* the NSEC chain as a sorted list of canonical keys (labels right to left) of
  the names that own an NSEC, with the same per-owner pieces;
* per owner, its RRSIGs rendered per covered type (`SigCache`, shared by the
  versions of a zone and checked by identity of the RRSIG RRset, so a change
  re-renders only the owners it touched).

`DenialIndex.evolve(prev, snapshot, changed)` copies prev's sorted list and
dict (reference copies; with `reuse`, takes them over: no copy) and
re-renders only the changed owners, so one change to a 100k-name zone costs
a few list operations, not a rebuild; `before` records what it replaced. No
dnspython per query: lookups are hashlib, bisect and dict reads.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset

from node.dnssec.rrsigset import LazyRRset

NSEC = int(dns.rdatatype.NSEC)
NSEC3 = int(dns.rdatatype.NSEC3)
NSEC3PARAM = int(dns.rdatatype.NSEC3PARAM)
RRSIG = int(dns.rdatatype.RRSIG)
_RRSIG_HEAD = RRSIG.to_bytes(2, "big") + b"\x00\x01"

Types = Mapping[int, dns.rrset.RRset]
Piece = tuple[bytes, tuple[bytes, ...]]  # (owner wire, rendered RRs after the owner)
CKey = tuple[bytes, ...]


def is_hashed_owner(types: Types) -> bool:
    """True for an NSEC3 owner (`<hash>.<zone>`): not a name of the zone."""
    return NSEC3 in types and all(t in (NSEC3, RRSIG) for t in types)


def wire_key(wire: bytes) -> CKey:
    """Canonical sort key (RFC 4034 §6.1) of a lowercased wire name: labels right to left."""
    labels = []
    i = 0
    ln = wire[0]
    while ln:
        labels.append(wire[i + 1 : i + 1 + ln])
        i += ln + 1
        ln = wire[i]
    labels.reverse()
    return tuple(labels)


def rdata_wire(rd: dns.rdata.Rdata) -> bytes:
    """Uncompressed rdata wire; the signer's RRSIG/NSEC/NSEC3 rdatas carry it already
    (`_digestable`: for these types the same octets, owner-independent)."""
    data = getattr(rd, "_digestable", None)
    return data if data is not None else rd.to_wire()


def fast_tails(rrset: dns.rrset.RRset) -> tuple[bytes, ...]:
    """`render.rr_tails` using `rdata_wire` (RRSIGs with their original TTL, as there)."""
    head = int(rrset.rdtype).to_bytes(2, "big") + b"\x00\x01" + rrset.ttl.to_bytes(4, "big")
    # the signer's RRSIG/NSEC/NSEC3 sets give their wire without making rdatas
    wires = rrset.wires() if isinstance(rrset, LazyRRset) else map(rdata_wire, rrset)
    if rrset.rdtype == RRSIG:
        return tuple(head[:4] + d[4:8] + len(d).to_bytes(2, "big") + d for d in wires)
    return tuple(head + len(d).to_bytes(2, "big") + d for d in wires)


def sig_tails(rrsig: dns.rrset.RRset, ttl: int | None = None) -> dict[int, tuple[bytes, ...]]:
    """An owner's RRSIGs rendered by covered type; TTL = each one's original TTL unless given."""
    out: dict[int, list[bytes]] = {}
    if isinstance(rrsig, LazyRRset):  # the signer's: fields read from the rdata wire
        fixed = None if ttl is None else ttl.to_bytes(4, "big")
        for data in rrsig.wires():
            tail = (_RRSIG_HEAD + (data[4:8] if fixed is None else fixed)
                    + len(data).to_bytes(2, "big") + data)
            out.setdefault(data[0] << 8 | data[1], []).append(tail)
        return {t: tuple(v) for t, v in out.items()}
    for rd in rrsig:
        data = rdata_wire(rd)
        t = rd.original_ttl if ttl is None else ttl  # type: ignore[attr-defined]
        tail = _RRSIG_HEAD + t.to_bytes(4, "big") + len(data).to_bytes(2, "big") + data
        out.setdefault(int(rd.type_covered), []).append(tail)  # type: ignore[attr-defined]
    return {t: tuple(v) for t, v in out.items()}


class SigCache:
    """RRSIG tails per owner wire name, valid while the owner's RRSIG RRset is the same object."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[bytes, tuple[dns.rrset.RRset, dict[int, tuple[bytes, ...]]]] = {}

    def get(self, owner: bytes, types: Types, rdtype: int) -> tuple[bytes, ...]:
        rrsig = types.get(RRSIG)
        if rrsig is None:
            return ()
        hit = self._cache.get(owner)
        if hit is None or hit[0] is not rrsig:
            if len(self._cache) > 1_000_000:
                self._cache.clear()
            hit = self._cache[owner] = (rrsig, sig_tails(rrsig))
        return hit[1].get(rdtype, ())

    def forget(self, owners: Iterable[bytes]) -> None:
        for owner in owners:
            self._cache.pop(owner, None)


def _piece(owner: bytes, rrset: dns.rrset.RRset, types: Types, sigs: SigCache) -> Piece:
    return owner, fast_tails(rrset) + sigs.get(owner, types, rrset.rdtype)


def denial_entry(owner: bytes, types: Types | None, nsec3: bool, sigs: SigCache
                 ) -> tuple[Any, Piece] | None:
    """(key, piece) of `owner` in an NSEC (`nsec3` False) or NSEC3 chain, or None if the
    owner has no such record (`DenialIndex._entry`)."""
    if not types:
        return None
    if nsec3:
        rrset = types.get(NSEC3)
        if rrset is None:
            return None
        key = _digest(owner)
        if key is None:
            return None
        return key, _piece(owner, rrset, types, sigs)
    rrset = types.get(NSEC)
    if rrset is None:
        return None
    return wire_key(owner), _piece(owner, rrset, types, sigs)


class DenialIndex:
    """The NSEC or NSEC3 chain of one signed zone version, ready for bisect lookups."""

    __slots__ = ("before", "iterations", "keys", "nsec3", "origin", "pieces", "salt", "sigs")

    def __init__(self, origin: bytes, apex: Types, sigs: SigCache) -> None:
        self.origin = origin
        self.sigs = sigs
        param = apex.get(NSEC3PARAM)
        self.nsec3 = param is not None
        self.salt: bytes = param[0].salt if param is not None else b""  # type: ignore[attr-defined]
        self.iterations: int = param[0].iterations if param is not None else 0  # type: ignore[attr-defined]
        self.keys: list[Any] = []  # sorted: hash labels (NSEC3) or canonical keys (NSEC)
        self.pieces: dict[Any, Piece] = {}  # key -> its record and RRSIGs, pre-rendered
        # evolve only: key -> its piece in the previous version (None: had none), for every
        # key whose piece this version replaced or deleted (what an overlay must rewrite)
        self.before: dict[Any, Piece | None] = {}

    # --- building -----------------------------------------------------------

    def _entry(self, owner: bytes, types: Types | None) -> tuple[Any, Piece] | None:
        return denial_entry(owner, types, self.nsec3, self.sigs)

    @classmethod
    def build(
        cls, origin: dns.name.Name, nodes: Mapping[dns.name.Name, Types], sigs: SigCache
    ) -> DenialIndex:
        index = cls(_wire(origin), nodes.get(origin, {}), sigs)
        for name, types in nodes.items():
            found = index._entry(_wire(name), types)
            if found is not None:
                index.pieces[found[0]] = found[1]
        index.keys = sorted(index.pieces)
        return index

    @classmethod
    def evolve(
        cls,
        prev: DenialIndex,
        nodes: Mapping[dns.name.Name, Types],
        changed: Iterable[dns.name.Name],
        reuse: bool = False,
    ) -> DenialIndex:
        """prev updated for the `changed` owners only (same chain kind and parameters).

        With `reuse`, prev's list and dict are taken over and updated in place (O(changed)
        instead of two O(zone) copies): prev must not be read afterwards."""
        index = cls.__new__(cls)
        index.origin = prev.origin
        index.sigs = prev.sigs
        index.nsec3 = prev.nsec3
        index.salt = prev.salt
        index.iterations = prev.iterations
        index.keys = prev.keys if reuse else list(prev.keys)
        index.pieces = prev.pieces if reuse else dict(prev.pieces)
        index.before = before = {}
        keys, pieces = index.keys, index.pieces
        for name in changed:
            owner = _wire(name)
            key: Any = _digest(owner) if index.nsec3 else wire_key(owner)
            if key is None:
                continue
            found = index._entry(owner, nodes.get(name))
            old = pieces.get(key)
            had = old is not None and old[0] == owner
            if found is None:
                if had:
                    before.setdefault(key, old)
                    del pieces[key]
                    del keys[bisect.bisect_left(keys, key)]
                continue
            before.setdefault(key, old)
            pieces[key] = found[1]
            if old is None:
                bisect.insort(keys, key)
        return index

    def same_params(self, apex: Types) -> bool:
        param = apex.get(NSEC3PARAM)
        if (param is not None) != self.nsec3:
            return False
        return param is None or (
            param[0].salt == self.salt and param[0].iterations == self.iterations  # type: ignore[attr-defined]
        )

    # --- lookups (names are lowercased wire names inside the zone) ------------------

    def digest(self, name: bytes) -> bytes:
        """The raw NSEC3 hash of a lowercased wire name (RFC 5155 §5)."""
        salt = self.salt
        digest = hashlib.sha1(name + salt).digest()
        for _ in range(self.iterations):
            digest = hashlib.sha1(digest + salt).digest()
        return digest

    def _key(self, name: bytes) -> Any:
        return self.digest(name) if self.nsec3 else wire_key(name)

    def match(self, name: bytes) -> Piece | None:
        """The NSEC at `name`, or the NSEC3 whose hash equals hash(`name`)."""
        return self.pieces.get(self._key(name))

    def cover(self, name: bytes) -> Piece | None:
        """The NSEC/NSEC3 whose owner is the last one at or before `name` (or its hash),
        wrapping to the last record: it covers `name` unless it matches it."""
        keys = self.keys
        if not keys:
            return None
        i = bisect.bisect_right(keys, self._key(name)) - 1
        return self.pieces[keys[i]]  # i == -1 wraps to the last one


def _digest(owner: bytes) -> bytes | None:
    """The raw hash an NSEC3 owner's first label spells in base32hex; None if it is not one."""
    if owner[0] != 32:
        return None
    try:
        return int(owner[1:33], 32).to_bytes(20, "big")
    except ValueError:
        return None


def _wire(name: dns.name.Name) -> bytes:
    return name.to_wire().lower()  # type: ignore[union-attr]
