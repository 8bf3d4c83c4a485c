"""An owner's types map (`NodeMap`'s inner `Mapping[int, RRset]`) for one or two types.

A decoded zone's owners mostly hold one type, some two; each held a dict (224
octets, its smallest) behind a `MappingProxyType` (40): 23 MiB of a 100k-name
zone's replica (issue 10, memory). `OneType` and `TwoTypes` hold the same
read-only, in slots (48 and 64 octets), each still behind a `MappingProxyType`:
`ZoneSigner._make` keeps such a map as it is (shared with the replica) and
copies any other into a dict. Their reads are Python calls where the dict's
were C; `get`, `in`, `[]`, iteration, `items()` and `values()` are written out
(the `Mapping` mixins' generic ones call back per key), and `items()` and
`values()` are tuples, not views (a view made per call tripled the cost of a
walk over the owners' RRsets): iterable, sized, `in`, but no set operations,
which no reader uses (`keys()` is the mixin's view, set operations and all).
`owner_types` picks one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import dns.rrset

RRset = dns.rrset.RRset


class OneType(Mapping[int, RRset]):
    """`{rdtype: rrset}`, read-only."""

    __slots__ = ("_rdtype", "_rrset")

    def __init__(self, rdtype: int, rrset: RRset) -> None:
        self._rdtype = rdtype
        self._rrset = rrset

    def __getitem__(self, rdtype: int) -> RRset:
        if rdtype == self._rdtype:
            return self._rrset
        raise KeyError(rdtype)

    def get(self, rdtype: int, default: Any = None) -> Any:
        return self._rrset if rdtype == self._rdtype else default

    def __contains__(self, rdtype: object) -> bool:
        return rdtype == self._rdtype

    def __iter__(self) -> Iterator[int]:
        return iter((self._rdtype,))

    def __len__(self) -> int:
        return 1

    def values(self) -> tuple[RRset, ...]:  # type: ignore[override]
        return (self._rrset,)

    def items(self) -> tuple[tuple[int, RRset], ...]:  # type: ignore[override]
        return ((self._rdtype, self._rrset),)


class TwoTypes(Mapping[int, RRset]):
    """`{first: one, second: two}` (in that order), read-only."""

    __slots__ = ("_first", "_one", "_second", "_two")

    def __init__(self, first: int, one: RRset, second: int, two: RRset) -> None:
        self._first, self._one, self._second, self._two = first, one, second, two

    def __getitem__(self, rdtype: int) -> RRset:
        if rdtype == self._first:
            return self._one
        if rdtype == self._second:
            return self._two
        raise KeyError(rdtype)

    def get(self, rdtype: int, default: Any = None) -> Any:
        if rdtype == self._first:
            return self._one
        return self._two if rdtype == self._second else default

    def __contains__(self, rdtype: object) -> bool:
        return rdtype == self._first or rdtype == self._second

    def __iter__(self) -> Iterator[int]:
        return iter((self._first, self._second))

    def __len__(self) -> int:
        return 2

    def values(self) -> tuple[RRset, ...]:  # type: ignore[override]
        return (self._one, self._two)

    def items(self) -> tuple[tuple[int, RRset], ...]:  # type: ignore[override]
        return ((self._first, self._one), (self._second, self._two))


def owner_types(types: Mapping[int, RRset]) -> MappingProxyType[int, RRset]:
    """`types` (in its order) read-only and small: a `OneType`, a `TwoTypes` or (more
    types) a dict of its own, behind a `MappingProxyType`."""
    if len(types) == 1:
        ((rdtype, rrset),) = types.items()
        return MappingProxyType(OneType(rdtype, rrset))
    if len(types) == 2:
        (first, one), (second, two) = types.items()
        return MappingProxyType(TwoTypes(first, one, second, two))
    return MappingProxyType(dict(types))


OwnerTypes = OneType | TwoTypes | dict[int, RRset]


def with_type(types: OwnerTypes | None, rdtype: int, rrset: RRset) -> OwnerTypes:
    """`types` (None: no type yet) with `rrset` as its `rdtype` (replaced if there): a
    dict is changed in place and returned, anything else made anew."""
    if types is None:
        return OneType(rdtype, rrset)
    if type(types) is dict:
        types[rdtype] = rrset
        return types
    out = dict(types.items())
    out[rdtype] = rrset
    if len(out) == 1:
        return OneType(rdtype, rrset)
    if len(out) == 2:
        (first, one), (second, two) = out.items()
        return TwoTypes(first, one, second, two)
    return out
