"""The shape of a zone's name tree as the signer needs it: zone cuts, glue, empty non-terminals.

`ZoneTree` keeps the names that hold data in canonical order (so a name's
descendants are one contiguous slice) and the set of delegation points, and
updates both incrementally when owners change. It answers: is this name a
delegation, is it below a cut (glue/occluded, never signed), does it exist as an
empty non-terminal (RFC 5155 §7.1). Names are handled as canonical keys
(`denial.canonical_key`): cheap to hash and slice, and a key's ancestors are its
prefixes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping

import dns.name
import dns.rdatatype
import dns.rrset

from node.dnssec.denial import CKey, canonical_key

# Types the signer makes itself: dropped from input before signing.
GENERATED = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3,
                       dns.rdatatype.NSEC3PARAM, dns.rdatatype.DNSKEY})
NS = dns.rdatatype.NS
NodeTypes = Mapping[int, dns.rrset.RRset]


def has_data(types: NodeTypes | None) -> bool:
    return bool(types) and any(t not in GENERATED for t in types)  # type: ignore[union-attr]


class ZoneTree:
    """Names with data (canonical order) and delegation points of one zone."""

    def __init__(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.okey = canonical_key(origin)
        self._depth = len(self.okey)
        self._keys: list[CKey] = []
        self._names: dict[CKey, dns.name.Name] = {}
        self.cuts: set[CKey] = set()

    def in_zone(self, key: CKey) -> bool:
        return key[:self._depth] == self.okey

    def rebuild(self, items: Iterable[tuple[CKey, dns.name.Name, NodeTypes]]) -> None:
        """Start over from (key, name, types) of every owner."""
        self._names = {}
        self.cuts = set()
        for key, name, types in items:
            if has_data(types) and self.in_zone(key):
                self._names[key] = name
                if NS in types and key != self.okey:
                    self.cuts.add(key)
        self._keys = sorted(self._names)

    def update(self, names: Iterable[dns.name.Name],
               nodes: Mapping[dns.name.Name, NodeTypes]) -> dict[CKey, dns.name.Name]:
        """Apply changed owners; returns them plus every descendant of a cut that came or went."""
        out: dict[CKey, dns.name.Name] = {}
        for name in names:
            key = canonical_key(name)
            if not self.in_zone(key):
                continue
            out[key] = name
            types = nodes.get(name)
            present = key in self._names
            if has_data(types) and not present:
                bisect.insort(self._keys, key)
                self._names[key] = name
            elif not has_data(types) and present:
                del self._keys[bisect.bisect_left(self._keys, key)]
                del self._names[key]
            is_cut = key != self.okey and has_data(types) and NS in types  # type: ignore[operator]
            if is_cut != (key in self.cuts):
                (self.cuts.add if is_cut else self.cuts.discard)(key)
                out.update((k, self._names[k]) for k in self.descendants(key))
        return out

    def keys(self) -> list[CKey]:
        return self._keys

    def name(self, key: CKey) -> dns.name.Name | None:
        return self._names.get(key)

    def descendants(self, key: CKey) -> list[CKey]:
        i = bisect.bisect_right(self._keys, key)
        out = []
        n = len(key)
        while i < len(self._keys) and self._keys[i][:n] == key:
            out.append(self._keys[i])
            i += 1
        return out

    def has_data(self, key: CKey) -> bool:
        return key in self._names

    def has_descendants(self, key: CKey) -> bool:
        i = bisect.bisect_right(self._keys, key)
        return i < len(self._keys) and self._keys[i][:len(key)] == key

    def ancestors(self, key: CKey) -> Iterator[CKey]:
        """Strict ancestors of `key` inside the zone, nearest first, origin last."""
        for n in range(len(key) - 1, self._depth - 1, -1):
            yield key[:n]

    def below_cut(self, key: CKey) -> bool:
        """Whether `key` lies strictly below a delegation (glue or occluded data)."""
        cuts = self.cuts
        if not cuts:
            return False
        return any(key[:n] in cuts for n in range(self._depth + 1, len(key)))

    def is_ent(self, key: CKey) -> bool:
        """An empty non-terminal: no data, in the zone, not below a cut, with descendants."""
        return (self.in_zone(key) and key != self.okey and key not in self._names
                and not self.below_cut(key) and self.has_descendants(key))

    def ents(self) -> dict[CKey, dns.name.Name]:
        """All empty non-terminals (full computation), with names built from their keys."""
        out: dict[CKey, dns.name.Name] = {}
        for key in self._keys:
            if self.below_cut(key):
                continue
            for a in self.ancestors(key):
                if a == self.okey or a in out or a in self._names:
                    break
                out[a] = dns.name.Name(tuple(reversed(a)))
        return out

    def ent_name(self, key: CKey) -> dns.name.Name:
        return dns.name.Name(tuple(reversed(key)))
