"""The image builder's base without what its full image has: `compile_base`, `BasePieces`.

Owns `compile_base(snapshot)`, the compile an `ImageBuilder` keeps when a
forked child renders the full image (`node.image.forked`): the indexes and
dependencies `CompiledZone.build` makes, without its answers (no answer is
rendered, nor is a key kept per answer: the child renders them into the image,
which `node.image.baseimage.BaseAnswers` reads which exist from; an answer's
dependencies are its RRset's additional-section targets, read from the RRset)
and the denial chain's keys without their pieces, so the caller neither holds
nor spends the CPU of the rendered zone (issue 10, load time: rendering every
answer here too cost ~1.2 s of CPU for the 100k-name zone).
Owns the `DenialIndex.pieces` mapping of `ImageBuilder`'s compiled zone once
its full image is written (issue 10): no piece per key of the chain (an NSEC
or NSEC3 record and its RRSIGs, rendered: ~70% of what a signed base held),
nor a dict entry: a read renders the piece again from the nodes of the version
the builder has (`nodes`, set by the builder after each evolve: an unchanged
piece is a function of its owner's records alone). Pieces that an evolve
replaces are stored as usual, so what was read once per change stays small:
an overlay reads the changed names and their neighbours, not the zone. An
NSEC3 chain's sorted keys are packed in one buffer (`Hashes`).
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import dns.name

from node.server import answer
from node.server.compile import CompiledZone
from node.server.proofs import (
    NSEC,
    NSEC3,
    DenialIndex,
    Piece,
    Types,
    denial_entry,
    is_hashed_owner,
)
from node.server.proofs import _digest as nsec3_digest
from node.zones.model import ZoneSnapshot

_WITH_TARGETS = frozenset({answer.NS, answer.SRV, answer.MX})  # `answer.targets` reads them

_HASH = 20  # octets of an NSEC3 hash (SHA-1)


class BasePieces(MutableMapping[Any, Piece]):
    """`DenialIndex.pieces` (key -> piece) of the builder's base: the pieces the evolves
    since the base stored, and, for every other key of the chain (`DenialIndex.keys`,
    which the evolves keep sorted alongside: one bisect), the piece rendered when read.
    No dict entry per key of the chain (issue 10, memory: ~5 MiB at 100k names).

    It keeps what rendering needs (the chain's kind, the origin, the RRSIG tails cache,
    which every later index of the builder shares, and the chain's keys), never the
    index: the index holds this mapping (and each index an evolve makes takes it over),
    so a reference back was a cycle, which the collector frees only while it is not
    frozen. The builder's base is frozen (`paused_gc(full=True)`, node/gcwatch.py), so
    every base the builder let go of stayed for good (~25 MiB a merge at 100k names)."""

    __slots__ = ("_chain", "_own", "nodes", "nsec3", "origin", "origin_wire", "sigs")

    def __init__(self, index: DenialIndex, snapshot: ZoneSnapshot) -> None:
        self._own: dict[Any, Piece] = {}  # stored by an evolve since the base
        self._chain: Sequence[Any] = index.keys  # sorted; taken over by each evolve
        self.nsec3 = index.nsec3
        self.origin_wire = index.origin
        self.sigs = index.sigs
        self.nodes: Mapping[dns.name.Name, Types] = snapshot.nodes
        self.origin = snapshot.origin

    def _chained(self, key: Any) -> bool:
        chain = self._chain
        i = bisect.bisect_left(chain, key)
        return i < len(chain) and chain[i] == key

    def __contains__(self, key: object) -> bool:
        return key in self._own or self._chained(key)

    def __getitem__(self, key: Any) -> Piece:
        piece = self._own.get(key)
        if piece is not None:
            return piece
        if not self._chained(key):
            raise KeyError(key)
        return self._render(key)

    def get(self, key: Any, default: Any = None) -> Any:
        piece = self._own.get(key)
        if piece is not None:
            return piece
        return self._render(key) if self._chained(key) else default

    def __setitem__(self, key: Any, piece: Piece) -> None:
        self._own[key] = piece

    def __delitem__(self, key: Any) -> None:
        """Forget a stored piece: the key leaves the chain by `DenialIndex.keys`."""
        self._own.pop(key, None)

    def __len__(self) -> int:
        return len(self._chain)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._chain)

    def _render(self, key: Any) -> Piece:
        if self.nsec3:  # key: the raw hash; owner: its base32hex label under the origin
            label = base64.b32hexencode(key).lower()
            name = dns.name.Name((label, *self.origin.labels))
            owner = b"\x20" + label + self.origin_wire
        else:  # key: the canonical labels, right to left
            name = dns.name.Name((*reversed(key), b""))
            owner = b"".join(bytes((len(label),)) + label for label in reversed(key)) + b"\x00"
        found = denial_entry(owner, self.nodes.get(name), self.nsec3, self.sigs)
        if found is None:  # pragma: no cover - a key without its record: the index is wrong
            raise KeyError(key)
        return found[1]


class Hashes(Sequence[bytes]):
    """An NSEC3 chain's sorted hashes (`DenialIndex.keys`) in one buffer, 20 octets each:
    what `bisect`, `insort` and `del keys[i]` need of a list, without a bytes object and
    a list slot per hash (~6 MiB at 100k names). An insert or delete moves the tail of
    the buffer (~1 MiB on average there: tens of microseconds)."""

    __slots__ = ("_buf",)

    def __init__(self, hashes: Iterable[bytes] = ()) -> None:
        self._buf = bytearray(b"".join(hashes))

    def __len__(self) -> int:
        return len(self._buf) // _HASH

    def _at(self, i: int) -> int:
        n = len(self._buf) // _HASH
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return i * _HASH

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
        # inline (what `bisect` calls ~17 times a search): no `_at`
        if i < 0:
            i += len(self._buf) // _HASH
        at = i * _HASH
        key = bytes(self._buf[at : at + _HASH])
        if i < 0 or len(key) != _HASH:
            raise IndexError(i)
        return key

    def __iter__(self) -> Iterator[bytes]:
        buf = self._buf
        return (bytes(buf[at : at + _HASH]) for at in range(0, len(buf), _HASH))

    def insert(self, i: int, key: bytes) -> None:
        if len(key) != _HASH:
            raise ValueError(f"an NSEC3 hash is {_HASH} octets, not {len(key)}")
        at = min(max(i, 0), len(self)) * _HASH
        self._buf[at:at] = key

    def __delitem__(self, i: int) -> None:
        at = self._at(i)
        del self._buf[at : at + _HASH]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


def lean_denial(index: DenialIndex, snapshot: ZoneSnapshot) -> None:
    """The base's chain without its pieces (`BasePieces`) and, NSEC3, its keys packed."""
    if index.nsec3 and not isinstance(index.keys, Hashes):
        index.keys = Hashes(index.keys)  # type: ignore[assignment]
    index.pieces = BasePieces(index, snapshot)  # type: ignore[assignment]


def compile_names(snapshot: ZoneSnapshot) -> CompiledZone:
    """A `CompiledZone` of `snapshot` with its names' indexes only (names, names below,
    cuts, DNAME owners: `CompiledZone._add_name` of each name the build adds), each name's
    wire form made from its parent's (kept per parent: one label's work per name).
    `ImageBuilder` makes them before it forks its image child, which reads them (issue 10,
    load time: the child made its own, ~0.2 s of CPU at 100k names)."""
    zone = CompiledZone(snapshot)
    signed = snapshot.signed
    names, below, cuts, dnames = zone.names, zone.below, zone.cuts, zone.dnames
    origin = zone.origin
    ns, dname = answer.NS, answer.DNAME
    parents: dict[tuple[bytes, ...], bytes] = {}
    for name, types in snapshot.nodes.items():
        if not types or (signed and is_hashed_owner(types)):
            continue
        labels = name.labels
        if len(labels) > 1:
            rest = labels[1:]
            tail = parents.get(rest)
            if tail is None:
                tail = parents[rest] = answer.name_wire(dns.name.Name(rest))
            first = labels[0]  # its length octet (< 64) is never a letter
            wire = (bytes((len(first),)) + first).lower() + tail
        else:
            wire = answer.name_wire(name)
        names[wire] = types  # `CompiledZone._add_name`
        if ns in types and wire != origin:
            cuts.add(wire)
        if dname in types:
            dnames.add(wire)
        n = wire
        while n != origin and len(n) > 1:
            n = n[n[0] + 1 :]
            below[n] = below.get(n, 0) + 1
    return zone


def compile_base(snapshot: ZoneSnapshot, zone: CompiledZone | None = None) -> CompiledZone:
    """What `CompiledZone.build(snapshot)` holds once `ImageBuilder` has dropped what the
    image has (no RRSIG tails, `BasePieces`, and no answers: `baseimage.BaseAnswers`
    reads which exist from the image once it is written), without rendering an answer or
    a denial piece: the names, the cuts, and the dependencies of the answers that have
    an additional section (`CompiledZone._render_owner`'s, not its entries). `zone`: the
    names' indexes made already (`compile_names`), completed here."""
    if zone is None:
        zone = compile_names(snapshot)
    signed = snapshot.signed
    if signed:
        index = zone.denial = DenialIndex(zone.origin, snapshot.nodes.get(snapshot.origin, {}),
                                          zone.sigs)
        keys = []
        for name, types in snapshot.nodes.items():
            key = _denial_key(index, name, types)
            if key is not None:
                keys.append(key)
        index.keys = sorted(keys)
        lean_denial(index, snapshot)
    fdeps, rdeps = zone.fdeps, zone.rdeps
    occluded = zone._occluded
    ns, mx, srv = answer.NS, answer.MX, answer.SRV
    for owner, types in zone.names.items():
        if not (ns in types or mx in types or srv in types) or occluded(owner):
            continue
        for rdtype, rrset in types.items():
            if rdtype in _WITH_TARGETS:  # `answer.positive`'s deps, without rendering it
                key = owner + rdtype.to_bytes(2, "big") + b"\x00\x01"
                deps = tuple(dict.fromkeys(answer.targets(rrset)))
                if deps:
                    fdeps[key] = deps
                    for name in deps:
                        users = rdeps.get(name)
                        if users is None:
                            users = rdeps[name] = set()
                        users.add(key)
    return zone


def _denial_key(index: DenialIndex, name: dns.name.Name, types: Types) -> Any:
    """`DenialIndex._entry`'s key without its piece (None: the owner has no NSEC/NSEC3)."""
    if not types:
        return None
    if index.nsec3:
        return nsec3_digest(answer.name_wire(name)) if NSEC3 in types else None
    return name_key(name) if NSEC in types else None


def name_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """`wire_key(name_wire(name))` of an absolute name, made of the name's own labels
    where they are lowercase already (issue 10, memory: the base keeps a key per owner for
    as long as it lives, and parsing them from the wire form gave each its own copy of
    every label: 12 MiB of the signed 100k-name zone's 51 MiB base)."""
    return tuple(label if (low := label.lower()) == label else low
                 for label in reversed(name.labels[:-1]))
