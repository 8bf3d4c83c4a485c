"""`LayeredNodes`: a zone version's owner map as a shared base plus a small layer of changes.

Owns the cost of handing on a zone version. The replica and the signer each
keep one mutable owner map per zone and used to copy it whole for every
version they hand on (a 100k-name signed zone: 200k entries, tens of ms under
load, per single-record change). A `LayeredNodes` is immutable, like the
`MappingProxyType` it replaces: a base dict that nobody mutates after it is
made, shared by successive versions, and a `top` dict of the owners changed
since the base (a removed owner maps to None). `updated(changes, source)`
makes the next version in O(changes + top): a copy of the small top, not of
the zone. When the top grows past `max(FLAT_MIN, len(base) // FLAT_SHARE)`
the next version is flattened into a new base (one O(zone) copy per that
many changed owners).

Reads: `get`, `in`, `[]` look in the top first (one more dict probe than a
plain dict while it is not empty); iteration yields the base's owners not
overridden (a merged copy while the top is not empty: C-level, the base's
stored hashes reused), in dict order, not in canonical order (nothing relies
on that: canonical order is always sorted for).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, Mapping
from typing import Any

import dns.name
import dns.rrset

Name = dns.name.Name
Types = Mapping[int, dns.rrset.RRset]

FLAT_MIN = 1024
FLAT_SHARE = 64
_MISS: Any = object()


class LayeredNodes(Mapping[Name, Types]):
    """An immutable owner map: `base` (shared, never mutated) overridden by `top`."""

    __slots__ = ("_base", "_len", "_top")

    def __init__(self, base: dict[Name, Types], top: dict[Name, Types | None] | None = None,
                 length: int | None = None) -> None:
        self._base = base
        self._top: dict[Name, Types | None] = top or {}
        self._len = len(base) if length is None else length

    @classmethod
    def of(cls, nodes: Mapping[Name, Types]) -> LayeredNodes:
        """A flat copy of `nodes` (the caller may go on mutating `nodes`)."""
        return cls(dict(nodes))

    @classmethod
    def following(cls, last: Mapping[Name, Types] | None, changed: Iterable[Name] | None,
                  source: Mapping[Name, Types]) -> LayeredNodes:
        """The version after `last` where the owners in `changed` now read as in `source`
        (the caller's full map); a flat copy of `source` when there is no layered `last`
        or `changed` is None (everything may differ)."""
        if changed is None or not isinstance(last, LayeredNodes):
            return cls.of(source)
        return last.updated({o: source.get(o) for o in changed}, source)

    def updated(self, changes: Mapping[Name, Types | None],
                source: Mapping[Name, Types] | None = None) -> LayeredNodes:
        """The next version: `changes` applied (None removes an owner). `source`, if
        given, is the caller's full map equal to the result, copied when flattening."""
        top = dict(self._top)
        length = self._len
        for owner, types in changes.items():
            before = owner in self
            if types is None:
                length -= before
            else:
                length += not before
            top[owner] = types
        if len(top) > max(FLAT_MIN, len(self._base) // FLAT_SHARE):
            if source is not None:
                return LayeredNodes(dict(source))
            return LayeredNodes(LayeredNodes(self._base, top, length)._flat())
        return LayeredNodes(self._base, top, length)

    @property
    def layer(self) -> int:
        """How many owners the top overrides (0: flat)."""
        return len(self._top)

    # --- Mapping --------------------------------------------------------------------

    def __getitem__(self, owner: Name) -> Types:
        top = self._top
        if top:
            types = top.get(owner, _MISS)
            if types is not _MISS:
                if types is None:
                    raise KeyError(owner)
                return types
        return self._base[owner]

    def get(self, owner: Name, default: Any = None) -> Any:
        top = self._top
        if top:
            types = top.get(owner, _MISS)
            if types is not _MISS:
                return default if types is None else types
        return self._base.get(owner, default)

    def __contains__(self, owner: object) -> bool:
        top = self._top
        if top:
            types = top.get(owner, _MISS)  # type: ignore[call-overload]
            if types is not _MISS:
                return types is not None
        return owner in self._base

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Name]:
        return iter(self._base if not self._top else self._flat())

    def _flat(self) -> dict[Name, Types]:
        """base and top merged into a new dict: a C-level copy that reuses the base's
        stored hashes (a `Name`'s hash is computed in Python on every probe)."""
        flat = dict(self._base)
        for owner, types in self._top.items():
            if types is None:
                flat.pop(owner, None)
            else:
                flat[owner] = types
        return flat

    def items(self) -> ItemsView[Name, Types]:
        return _Items(self)

    def __repr__(self) -> str:
        return f"<LayeredNodes {self._len} owners, {len(self._top)} in the top layer>"


class _Items(ItemsView[Name, Types]):
    """`items()` without a `__getitem__` per owner (full compiles iterate every owner)."""

    _mapping: LayeredNodes

    def __iter__(self) -> Iterator[tuple[Name, Types]]:
        nodes = self._mapping
        return iter((nodes._base if not nodes._top else nodes._flat()).items())
