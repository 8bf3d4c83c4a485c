"""The image builder's base without what its full image has: `compile_base`, `BasePieces`.

Owns `compile_base(snapshot)`, the compile an `ImageBuilder` keeps when a
forked child renders the full image (`node.image.forked`): the indexes and
dependencies `CompiledZone.build` makes, with the answers' keys only (no answer
is rendered: the child renders them into the image; an answer's dependencies are
its RRset's additional-section targets, read from the RRset) and the denial
chain's keys without their pieces, so the caller neither holds nor spends the
CPU of the rendered zone (issue 10, load time: rendering every answer here too
cost ~1.2 s of CPU for the 100k-name zone, now ~0.4 s).
Owns the `DenialIndex.pieces` mapping of `ImageBuilder`'s compiled zone once
its full image is written (issue 10): the chain's keys map to None instead of
their pieces (an NSEC or NSEC3 record and its RRSIGs, rendered: ~70% of what
a signed base held), and a read renders the piece again from the nodes of
the version the builder has (`nodes`, set by the builder after each evolve:
an unchanged piece is a function of its owner's records alone). Pieces that an
evolve replaces are stored as usual, so what was read once per change stays
small: an overlay reads the changed names and their neighbours, not the zone.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

import dns.name

from node.server import answer
from node.server.compile import LAZY_TYPES, CompiledZone
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

IN_BASE: Any = ()  # an answer key's value once its entry is in the image (`overlay.IN_BASE`)
_WITH_TARGETS = frozenset({answer.NS, answer.SRV, answer.MX})  # `answer.targets` reads them

_MISSING: Any = object()


class BasePieces(dict[Any, Piece | None]):
    """`DenialIndex.pieces` (key -> piece) whose None values are rendered when read.

    It keeps what rendering needs (the chain's kind, the origin, the RRSIG tails cache,
    which every later index of the builder shares), never the index: the index holds
    this mapping (and each index an evolve makes takes it over), so a reference back was
    a cycle, which the collector frees only while it is not frozen. The builder's base
    is frozen (`paused_gc(full=True)`, node/gcwatch.py), so every base the builder let go
    of stayed for good, its chain's keys included (~25 MiB a merge at 100k names)."""

    __slots__ = ("nodes", "nsec3", "origin", "origin_wire", "sigs")

    def __init__(self, index: DenialIndex, snapshot: ZoneSnapshot,
                 keys: Iterable[Any] | None = None) -> None:
        super().__init__(dict.fromkeys(index.pieces if keys is None else keys))
        self.nsec3 = index.nsec3
        self.origin_wire = index.origin
        self.sigs = index.sigs
        self.nodes: Mapping[dns.name.Name, Types] = snapshot.nodes
        self.origin = snapshot.origin

    def __getitem__(self, key: Any) -> Piece:
        piece = dict.__getitem__(self, key)
        return piece if piece is not None else self._render(key)

    def get(self, key: Any, default: Any = None) -> Any:
        piece = dict.get(self, key, _MISSING)
        if piece is _MISSING:
            return default
        return piece if piece is not None else self._render(key)

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


def compile_base(snapshot: ZoneSnapshot) -> CompiledZone:
    """What `CompiledZone.build(snapshot)` holds once `ImageBuilder` has dropped what the
    image has (answers -> `IN_BASE`, no RRSIG tails, `BasePieces`), without rendering an
    answer or a denial piece (`CompiledZone._render_owner`'s keys and deps, not its
    entries)."""
    zone = CompiledZone(snapshot)
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
        index.pieces = BasePieces(index, snapshot, index.keys)  # type: ignore[assignment]
    for name, types in snapshot.nodes.items():
        if types and not (signed and is_hashed_owner(types)):
            zone._add_name(answer.name_wire(name), types)
    answers, fdeps, rdeps = zone.answers, zone.fdeps, zone.rdeps
    occluded = zone._occluded
    for owner, types in zone.names.items():
        if occluded(owner):
            continue
        for rdtype, rrset in types.items():
            if rdtype in LAZY_TYPES:
                continue
            key = owner + rdtype.to_bytes(2, "big") + b"\x00\x01"
            answers[key] = IN_BASE
            if rdtype in _WITH_TARGETS:  # `answer.positive`'s deps, without rendering it
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
