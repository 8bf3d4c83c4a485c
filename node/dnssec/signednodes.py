"""`SignedNodes`: the zone signer's result, its owner map, with hashed NSEC3 owners keyed
by their hash label instead of a Name.

Owns how the signed map holds its owners. It reads as a `Mapping[Name, types]`
like the `LayeredNodes` it wraps (immutable; `updated` makes the next version in
O(changes)), but an owner that is only an NSEC3 chain record (a `SignedNode`
whose `hashed_label` is set: `<hash>.<origin>`, no input data) is stored under
that label, the chain's own bytes object, and its Name is made when read
(`get` by Name finds it; iteration yields a new Name each time). Issue 10,
session 16: a Name per hashed owner (object and labels tuple, ~110 octets) was
~11 MiB of the signer's ~93 at 100k names, NSEC3.

Invariant: a label key holds exactly such a node; any other owner, an input
owner whose name happens to look like a hash included, is under its Name; one
owner is never under both (`updated` drops the other form). The labels of the
Name keys that look like a hash are kept aside (`_named`, nearly always empty),
so that a change of a hashed owner looks up no Name (a `Name`'s hash is computed
in Python, a few us for a 32-octet label).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import Any

import dns.name

from node.dnssec.sigstore import NodeTypes, SignedNode, hashed_name
from node.zones.layered import LayeredNodes

Name = dns.name.Name
HASH_LABEL = 32  # octets of a SHA-1 hash in base32hex, the only NSEC3 hash (RFC 5155)
_MISS: Any = object()


def key_of(name: Name | bytes, types: NodeTypes | None) -> Name | bytes:
    """The key `types` is stored under (see module doc)."""
    if type(types) is SignedNode:
        label = types.hashed_label
        if label is not None:
            return label
    return name


class SignedNodes(Mapping[Name, NodeTypes]):
    """An immutable signed owner map (see module doc)."""

    __slots__ = ("_named", "_nodes", "_origin", "digest_sum")

    def __init__(self, origin: tuple[bytes, ...], nodes: LayeredNodes,
                 named: frozenset[bytes]) -> None:
        """`nodes`: owners by `key_of`; `origin`: the zone's labels, lowercase; `named`:
        the hash-like labels of the Name keys (see module doc)."""
        self._origin = origin
        self._nodes = nodes
        self._named = named
        # the sum of its owners' digests, set by `node.dnssec.digest.ZoneDigest` once
        # computed (a function of the immutable content), read by the journal's
        self.digest_sum: int | None = None

    @classmethod
    def of(cls, origin: Name, nodes: dict[Any, NodeTypes]) -> SignedNodes:
        """The map of `nodes` (keyed by `key_of`), which nobody mutates from now on;
        `origin` canonical (lowercase)."""
        new = cls(origin.labels, LayeredNodes(nodes), frozenset())
        label = new._label
        new._named = frozenset(found for key in nodes if type(key) is not bytes
                               and (found := label(key)) is not None)
        return new

    def _label(self, name: Name) -> bytes | None:
        """The hash label `name` would be stored under, if it has that shape."""
        labels = name.labels
        origin = self._origin
        if len(labels) != len(origin) + 1 or len(labels[0]) != HASH_LABEL:
            return None
        if labels[1:] != origin and tuple(x.lower() for x in labels[1:]) != origin:
            return None
        return labels[0].lower()

    def updated(self, changes: Mapping[Name, NodeTypes | None]) -> SignedNodes:
        """The next version: each owner (by Name) now reads as given (None: gone)."""
        nodes, named = self._nodes, self._named
        out: dict[Any, NodeTypes | None] = {}
        for name, types in changes.items():
            label = self._label(name)
            if label is None:
                out[name] = types
                continue
            if label in named:  # under its Name now (rare)
                out[name] = None
                named = named - {label}
            elif label in nodes:
                out[label] = None
            if types is not None:
                key = key_of(name, types)
                out[key] = types
                if key is name:
                    named = named | {label}
        return SignedNodes(self._origin, nodes.updated(out), named)  # type: ignore[arg-type]

    def hashed(self, label: bytes) -> SignedNode | None:
        """The node stored under a hash label (the signer's full pass: no Name made)."""
        return self._nodes.get(label)  # type: ignore[no-any-return,call-overload]

    # --- Mapping --------------------------------------------------------------------

    def get(self, owner: Name, default: Any = None) -> Any:
        nodes = self._nodes
        label = self._label(owner)
        if label is not None:
            found = nodes.get(label, _MISS)  # type: ignore[call-overload]
            if found is not _MISS:
                return found
        return nodes.get(owner, default)

    def __getitem__(self, owner: Name) -> NodeTypes:
        found = self.get(owner, _MISS)
        if found is _MISS:
            raise KeyError(owner)
        return found  # type: ignore[no-any-return]

    def __contains__(self, owner: object) -> bool:
        return isinstance(owner, Name) and self.get(owner, _MISS) is not _MISS

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Name]:
        origin = self._origin
        for key in self._nodes:
            yield hashed_name(key, origin) if type(key) is bytes else key

    def items(self) -> ItemsView[Name, NodeTypes]:
        return _Items(self)

    def values(self) -> ValuesView[NodeTypes]:
        return _Values(self)

    def __repr__(self) -> str:
        return f"<SignedNodes {len(self)} owners, {self._nodes.layer} in the top layer>"


class _Items(ItemsView[Name, NodeTypes]):
    """`items()` in one pass, not a look-up per owner (full compiles read every owner)."""

    _mapping: SignedNodes

    def __iter__(self) -> Iterator[tuple[Name, NodeTypes]]:
        m = self._mapping
        origin = m._origin
        for key, types in m._nodes.items():
            yield (hashed_name(key, origin) if type(key) is bytes else key), types


class _Values(ValuesView[NodeTypes]):
    """`values()` without a Name made and looked up per owner (the journal's RR count)."""

    _mapping: SignedNodes

    def __iter__(self) -> Iterator[NodeTypes]:
        return (types for _, types in self._mapping._nodes.items())
