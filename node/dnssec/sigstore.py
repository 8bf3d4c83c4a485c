"""The zone signer's per-owner state: one immutable `SignedNode` per signed owner, which is
also that owner's entry in the signed map (the signer keeps no other map of them).

Owns what a `ZoneSigner` keeps per owner between passes (when each falls due:
`schedule`).
Issue 10 (session 7): a 100k-name signed zone used to cost, per owner, a
`Signed` tuple and a blob per RRset, a tuple of them, a type dict and a
mapping proxy in the output map, an RRSIG RRset and an NSEC RRset: ~1.5 kB.
Now one object per owner holds everything:

* `_owner`, its Name (`owner`), or for a hashed NSEC3 owner with no input data its
  hash label, the chain's own object (`owner` makes the Name on read; issue 10,
  session 16: a Name per hashed owner cost ~110 octets); `_src`, the owner's input
  types map (the replica's, shared, never copied: its RRsets are the ones signed and
  served);
* `_extra`, the RRsets the signer makes besides the chain (apex DNSKEY,
  NSEC3PARAM), else None; `_next` and `_bits`, the chain record's fields (next
  name, or next owner's hash label; types: both the chain's own objects) and
  `_chain`, the chain that makes the record on read;
* `_sigs`, every RRSIG of the owner as one blob (`rrsigset.blob`), sorted by
  covered type, then key: the expiration, covered type and original TTL of each
  signature are read from the octets, nothing else is stored for them.

It reads as a `Mapping[int, RRset]` in type order; the RRSIG RRset (`RRSIGSet`)
and the chain RRset are made on read. Owners the signer has nothing to add to
(glue, occluded data) are served as their input map (`plain`).

* `digest`, its owner digest once asked for (`node.dnssec.digest`): one int per
  owner, shared by every digest of the signed copy (issue 10, memory).

Issue 10, session 14: no canonical key and no due time per node any more (the
signer finds an owner's node in its last result, by Name; `refresh_due` is read
from the signatures when the node is scheduled): 16 octets of slots per owner,
and for the NSEC3 chain's hashed owners a key tuple (~72 octets) each.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from types import MappingProxyType
from typing import Any

import dns.name
import dns.rdatatype
import dns.rrset

from node.dnssec.denial import Nsec3Chain, NsecChain
from node.dnssec.rrsigset import RRSIGSet
from node.dnssec.tree import GENERATED

RRSIG = dns.rdatatype.RRSIG
NodeTypes = Mapping[int, dns.rrset.RRset]


def segments(sigs: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(covered type, expiration, start, end) of each RRset's signatures in a blob."""
    pos, end = 0, len(sigs)
    while pos < end:
        start = pos
        covered = sigs[pos + 2] << 8 | sigs[pos + 3]
        exp = int.from_bytes(sigs[pos + 10:pos + 14], "big")
        while pos < end and (sigs[pos + 2] << 8 | sigs[pos + 3]) == covered:
            pos += 2 + (sigs[pos] << 8 | sigs[pos + 1])
        yield covered, exp, start, pos


def plain(src: NodeTypes | None) -> NodeTypes | None:
    """The output of an owner the signer adds nothing to: its input types (not the
    generated ones), in type order; the input map itself when it already is that."""
    if not src:
        return None
    types = list(src)
    if types == sorted(types) and not any(t in GENERATED for t in types):
        return src
    kept = {t: src[t] for t in sorted(types) if t not in GENERATED}
    return MappingProxyType(kept) if kept else None


class SignedNode(Mapping[int, dns.rrset.RRset]):
    """One owner of the signed map (see module doc); immutable."""

    __slots__ = ("_bits", "_chain", "_extra", "_next", "_owner", "_sigs", "_src", "digest")

    def __init__(self, owner: dns.name.Name | bytes, src: NodeTypes | None,
                 extra: tuple[dns.rrset.RRset, ...] | None, denial: tuple[Any, Any] | None,
                 sigs: bytes, chain: NsecChain | Nsec3Chain) -> None:
        """`denial`: the chain record's (next, types), or None. `owner`: its Name, or for
        a hashed NSEC3 owner with nothing else its hash label (`hashed_label`)."""
        self._owner = owner
        self._src = src
        self._extra = extra
        self._next, self._bits = denial if denial is not None else (None, None)
        self._sigs = sigs
        self._chain = chain
        # `node.dnssec.digest.owner_digest` of this node, set there when first asked: a
        # cache of a function of the node's immutable content (and its own owner, the one
        # it is stored under), read by the signing worker's and the journal's digests
        self.digest: int | None = None

    @property
    def owner(self) -> dns.name.Name:
        """The owner's Name (a hashed owner's made on read: `<label>.<origin>`)."""
        owner = self._owner
        if type(owner) is bytes:
            return hashed_name(owner, self._chain.origin.labels)
        return owner  # type: ignore[return-value]

    @property
    def hashed_label(self) -> bytes | None:
        """A hashed NSEC3 owner's label (the chain's own object) when that is all the node
        is (no input data at that name), else None: the signed map keys such a node by it."""
        owner = self._owner
        return owner if type(owner) is bytes else None

    # -- the signer's side ------------------------------------------------------
    def refresh_due(self, no_refresh: int | None = None) -> int | None:
        """The earliest expiration of its signatures (None: none); `no_refresh`: a type
        whose signatures are refreshed elsewhere (not counted)."""
        return min((exp for t, exp in self.expirations() if t != no_refresh), default=None)

    def segment(self, rdtype: int) -> tuple[bytes, int] | None:
        """The signatures over `rdtype` (blob, expiration), or None."""
        sigs = self._sigs
        for covered, exp, start, end in segments(sigs):
            if covered == rdtype:
                return sigs[start:end], exp
        return None

    def expirations(self) -> Iterator[tuple[int, int]]:
        """(covered type, expiration) of each signed RRset."""
        for covered, exp, _, _ in segments(self._sigs):
            yield covered, exp

    def same(self, rdtype: int, rrset: dns.rrset.RRset) -> bool:
        """Whether the RRset of `rdtype` here is `rrset` (same TTL and rdatas)."""
        chain = self._chain
        if self._bits is not None and rdtype == chain.rdtype:  # fields, not rdatas, compared
            return rrset.ttl == chain.ttl and getattr(rrset, "_data", None) == \
                chain.make(self.owner, self._next, self._bits)._data  # type: ignore[attr-defined]
        have = self.get(rdtype)
        return have is not None and (have is rrset or (have.ttl == rrset.ttl and have == rrset))

    def same_output(self, other: SignedNode) -> bool:
        """Whether `other` reads the same (`_same` RRsets per type), from the fields."""
        if self._sigs != other._sigs or self._next != other._next \
                or self._bits != other._bits or self._chain.ttl != other._chain.ttl:
            return False
        ea, eb = self._extra or (), other._extra or ()
        if len(ea) != len(eb) or not _all_same(ea, eb):
            return False
        a, b = self._src, other._src
        if a is b:
            return True
        keys = [t for t in a or () if t not in GENERATED]
        if sorted(keys) != sorted(t for t in b or () if t not in GENERATED):
            return False
        return _all_same([a[t] for t in keys], [b[t] for t in keys])  # type: ignore[index]

    def same_digest(self, other: SignedNode) -> bool:
        """Whether `other` has the same `node.dnssec.digest.owner_digest`, from the fields:
        `same_output`, and an NSEC's next name in the same case (its wire is digested)."""
        if not self.same_output(other):
            return False
        a, b = self._next, other._next
        return a is b or type(a) is not dns.name.Name or a.labels == b.labels

    # -- Mapping ------------------------------------------------------------------
    def _types(self) -> list[int]:
        src = self._src
        out = [t for t in src if t not in GENERATED] if src else []
        if self._extra:
            out.extend(rs.rdtype for rs in self._extra)
        if self._bits is not None:
            out.append(self._chain.rdtype)
        if self._sigs:
            out.append(RRSIG)
        out.sort()
        return out

    def __getitem__(self, rdtype: int) -> dns.rrset.RRset:
        if rdtype == RRSIG:
            if self._sigs:
                ttl = min(self[t].ttl for t, _ in self.expirations())
                return RRSIGSet(self.owner, ttl, (self._sigs,), self._chain.origin)
        elif self._bits is not None and rdtype == self._chain.rdtype:
            return self._chain.make(self.owner, self._next, self._bits)
        elif rdtype in GENERATED:
            for rs in self._extra or ():
                if rs.rdtype == rdtype:
                    return rs
        elif self._src is not None:
            return self._src[rdtype]
        raise KeyError(rdtype)

    def _pairs(self) -> list[tuple[int, dns.rrset.RRset]]:
        """(type, RRset) of every type, in type order, in one pass (`items`, `values`)."""
        src, chain, owner = self._src, self._chain, self.owner
        out = [(t, rs) for t, rs in src.items() if t not in GENERATED] if src else []
        if self._extra:
            out.extend((rs.rdtype, rs) for rs in self._extra)
        if self._bits is not None:
            out.append((chain.rdtype, chain.make(owner, self._next, self._bits)))
        if self._sigs:
            have = dict(out)
            ttl = min(have[t].ttl for t, _ in self.expirations())
            out.append((RRSIG, RRSIGSet(owner, ttl, (self._sigs,), chain.origin)))
        out.sort(key=_first)
        return out

    def items(self) -> ItemsView[int, dns.rrset.RRset]:
        return _Items(self)

    def values(self) -> ValuesView[dns.rrset.RRset]:
        return _Values(self)

    def __contains__(self, rdtype: object) -> bool:
        if rdtype == RRSIG:
            return bool(self._sigs)
        if self._bits is not None and rdtype == self._chain.rdtype:
            return True
        if rdtype in GENERATED:
            return any(rs.rdtype == rdtype for rs in self._extra or ())
        return self._src is not None and rdtype in self._src

    def __iter__(self) -> Iterator[int]:
        return iter(self._types())

    def __len__(self) -> int:
        return len(self._types())

    def __repr__(self) -> str:
        return f"<SignedNode {self.owner} {self._types()}>"


def hashed_name(label: bytes, origin_labels: tuple[bytes, ...]) -> dns.name.Name:
    """`<label>.<origin>` as a Name, without dnspython's per-label checks (a hash label and
    a zone's origin are valid already: ~0.3 us, not ~2)."""
    name = _Name.__new__(_Name)
    object.__setattr__(name, "labels", (label, *origin_labels))
    return name


_Name = dns.name.Name


def _all_same(a: Iterable[dns.rrset.RRset], b: Iterable[dns.rrset.RRset]) -> bool:
    return all(x is y or (x.ttl == y.ttl and x == y) for x, y in zip(a, b, strict=True))


def _first(pair: tuple[int, dns.rrset.RRset]) -> int:
    return pair[0]


class _Items(ItemsView[int, dns.rrset.RRset]):
    """`items()` in one pass over the node, not a lookup per type."""

    _mapping: SignedNode

    def __iter__(self) -> Iterator[tuple[int, dns.rrset.RRset]]:
        return iter(self._mapping._pairs())


class _Values(ValuesView[dns.rrset.RRset]):
    _mapping: SignedNode

    def __iter__(self) -> Iterator[dns.rrset.RRset]:
        return (rs for _, rs in self._mapping._pairs())


def signed_node(nodes: Mapping[dns.name.Name, NodeTypes] | None, name: dns.name.Name
                ) -> SignedNode | None:
    """The owner's `SignedNode` in `nodes`, if it has one."""
    found = nodes.get(name) if nodes is not None else None
    return found if type(found) is SignedNode else None


def differs(old: NodeTypes | None, new: NodeTypes | None) -> bool:
    """Whether an owner's output changed (`_all_same` RRsets count as unchanged)."""
    if old is new:
        return False
    if old is None or new is None:
        return True
    if type(old) is SignedNode and type(new) is SignedNode:
        return not old.same_output(new)
    if list(old) != list(new):
        return True
    return not _all_same([old[t] for t in new], [new[t] for t in new])
