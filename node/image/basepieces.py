"""`BasePieces`: an image builder's denial chain without its rendered pieces.

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
from collections.abc import Mapping
from typing import Any

import dns.name

from node.server.proofs import DenialIndex, Piece, Types
from node.zones.model import ZoneSnapshot

_MISSING: Any = object()


class BasePieces(dict[Any, Piece | None]):
    """`DenialIndex.pieces` (key -> piece) whose None values are rendered when read."""

    __slots__ = ("index", "nodes", "origin")

    def __init__(self, index: DenialIndex, snapshot: ZoneSnapshot) -> None:
        super().__init__(dict.fromkeys(index.pieces))
        self.index = index
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
        if self.index.nsec3:  # key: the raw hash; owner: its base32hex label under the origin
            label = base64.b32hexencode(key).lower()
            name = dns.name.Name((label, *self.origin.labels))
            owner = b"\x20" + label + self.index.origin
        else:  # key: the canonical labels, right to left
            name = dns.name.Name((*reversed(key), b""))
            owner = b"".join(bytes((len(label),)) + label for label in reversed(key)) + b"\x00"
        found = self.index._entry(owner, self.nodes.get(name))
        if found is None:  # pragma: no cover - a key without its record: the index is wrong
            raise KeyError(key)
        return found[1]
