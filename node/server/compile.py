"""`CompiledZone`: one zone version turned into pre-rendered answers for the fast path.

Owns the per-version indexes (names by lowercased wire name, empty
non-terminal counts, zone cuts, DNAME owners), the eager answers and the lazy
answer cache. Names below a DNAME owner are occluded as those below a cut are.

* Eager: for every (owner, type) that exists and is not at or below a zone
  cut, the positive answer is rendered at compile time (`answers`, keyed by
  wire name + QTYPE + class IN, the same key the hot path builds), except
  RRSIG and NSEC (signed zones), which are left to the lazy path.
* Lazy: everything else (negative answers, wildcard synthesis, CNAME chains,
  referrals, DS at a cut, ANY) is rendered on first use by `answer.resolve`
  and kept in a bounded per-version cache (cleared when full).
* Incremental: `evolve(prev, snapshot)` reuses prev's eager answers except
  for changed owners, answers whose additional section looked at a changed
  name (reverse-dependency map), names below an added or removed cut, and the
  apex (the SOA serial changes every version). The lazy cache starts empty,
  since negative answers carry the SOA. The result is byte-identical to a full
  build (tested). `evolve(..., reuse=True)` takes prev's indexes over and
  updates them in place (no O(zone) copy; prev must not be used again: for an
  owner of a private chain of versions, such as `ImageBuilder`), and
  `touched` records, per answer key it re-rendered or dropped, the entry the
  previous version had (None: none), so an overlay needs no walk of the zone.

DO bit: for an unsigned zone DO=1 answers equal DO=0 answers. For a signed
zone (`snapshot.signed`) DO=0 answers are the plain ones above (NSEC3 owners
`<hash>.<zone>` are not names of the zone: they are left out of `names`), and
DO=1 answers come from `secure.resolve`, lazily, in their own per-version
cache (`lazy_do`), assembled from the pre-rendered DNSSEC pieces of
`proofs.DenialIndex` / `proofs.SigCache`, which `evolve` updates per changed
owner.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping

import dns.rrset

from node.server import answer, proofs, secure
from node.server.proofs import DenialIndex, SigCache, is_hashed_owner
from node.server.render import Entry, rr_tails
from node.server.wire import within
from node.zones.model import ZoneSnapshot

log = logging.getLogger(__name__)

LAZY_CACHE_MAX = 100_000
LAZY_TYPES = frozenset({proofs.RRSIG, proofs.NSEC})
IN_CLASS = b"\x00\x01"
MEMO_MAX = 1 << 14  # memo entries; then it starts again (bounded, whatever reads it)

Types = answer.Types
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _key(owner: bytes, rdtype: int) -> bytes:
    return owner + rdtype.to_bytes(2, "big") + IN_CLASS


class CompiledZone:
    """Pre-rendered answers of one `ZoneSnapshot`; build with `build` or `evolve`."""

    __slots__ = (
        "answers",
        "below",
        "cuts",
        "denial",
        "dnames",
        "fdeps",
        "lazy",
        "lazy_do",
        "lazy_max",
        "memo",
        "names",
        "neg_soa",
        "neg_soa_do",
        "origin",
        "owned",
        "rdeps",
        "sigs",
        "snapshot",
        "touched",
        "transfer_networks",
    )

    def __init__(self, snapshot: ZoneSnapshot) -> None:
        self.snapshot = snapshot
        self.origin = answer.name_wire(snapshot.origin)
        self.names: dict[bytes, Types] = {}
        self.below: dict[bytes, int] = {}  # name -> count of existing names strictly below
        self.cuts: set[bytes] = set()
        self.dnames: set[bytes] = set()  # owners of a DNAME (names below them: occluded)
        self.answers: dict[bytes, Entry] = {}
        self.fdeps: dict[bytes, tuple[bytes, ...]] = {}  # answer key -> names it looked at
        self.rdeps: dict[bytes, set[bytes]] = {}  # name -> answer keys that looked at it
        # answers built on first use; sized to hold a whole zone's working set (several
        # types per name), since clearing a full cache makes every query a miss again
        self.lazy_max = max(LAZY_CACHE_MAX, 4 * len(snapshot.nodes))
        self.lazy: dict[bytes, Entry] = {}
        self.memo: dict[int, tuple[dns.rrset.RRset, tuple[bytes, ...]]] = {}
        self.neg_soa: tuple[bytes, ...] | None = None
        self.neg_soa_do: tuple[bytes, ...] | None = None
        self.lazy_do: dict[bytes, Entry] = {}
        self.denial: DenialIndex | None = None  # signed zones only
        self.sigs = SigCache()
        self.owned: set[bytes] = set()  # rdeps entries whose set this version may mutate
        self.transfer_networks: tuple[Network, ...] = _networks(snapshot.config.allow_transfer)
        # evolve only: answer key -> prev's entry (None: none) for every key it re-rendered
        # or dropped; with `cut_changes`, what an overlay on an older version must rewrite
        self.touched: dict[bytes, Entry | None] = {}

    # --- queries -------------------------------------------------------------

    @property
    def serial(self) -> int:
        return self.snapshot.serial

    def contains(self, name: bytes) -> bool:
        """True if the wire name is at or below the origin (label-aligned)."""
        return within(name, self.origin)

    def answer(self, key: bytes, do: int = 0, keep: bool = True) -> Entry:
        """The entry for `key` = lowercased qname wire + QTYPE + class IN (qname in zone).

        A lazily rendered entry is kept for the next query only with `keep` (the table
        keeps its cold answers itself, `node.server.answercache`).
        """
        if do and self.denial is not None:
            entry = self.lazy_do.get(key)
            if entry is None:
                entry = secure.resolve(self, key[:-4], key[-4] << 8 | key[-3])
                if keep:
                    if len(self.lazy_do) >= self.lazy_max:
                        self.lazy_do = {}
                    self.lazy_do[key] = entry
            return entry
        entry = self.answers.get(key)
        if entry is not None:
            return entry
        entry = self.lazy.get(key)
        if entry is not None:
            return entry
        entry = answer.resolve(self, key[:-4], key[-4] << 8 | key[-3])
        if keep:
            if len(self.lazy) >= self.lazy_max:
                self.lazy = {}
            self.lazy[key] = entry
        return entry

    def negative_soa(self) -> tuple[bytes, ...]:
        """The rendered SOA of negative answers (TTL min(SOA TTL, MINIMUM))."""
        if self.neg_soa is None:
            soa = self.snapshot.soa()
            self.neg_soa = rr_tails(soa, min(soa.ttl, soa[0].minimum))
        return self.neg_soa

    def negative_soa_signed(self) -> tuple[bytes, ...]:
        """The negative-answer SOA followed by its RRSIGs, both with the negative TTL."""
        if self.neg_soa_do is None:
            soa = self.snapshot.soa()
            ttl = min(soa.ttl, soa[0].minimum)
            types = self.snapshot.nodes[self.snapshot.origin]
            rrsig = types.get(proofs.RRSIG)
            sigs = proofs.sig_tails(rrsig, ttl).get(answer.SOA, ()) if rrsig is not None else ()
            self.neg_soa_do = self.negative_soa() + sigs
        return self.neg_soa_do

    def tails(self, rrset: dns.rrset.RRset) -> tuple[bytes, ...]:
        """`rr_tails(rrset)`, memoised per version (additional-section addresses)."""
        hit = self.memo.get(id(rrset))
        if hit is not None and hit[0] is rrset:
            return hit[1]
        tails = rr_tails(rrset)
        if len(self.memo) >= MEMO_MAX:
            self.memo.clear()
        self.memo[id(rrset)] = (rrset, tails)
        return tails

    def allows_transfer(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.transfer_networks if net.version == ip.version)

    # --- building --------------------------------------------------------------

    @classmethod
    def build(cls, snapshot: ZoneSnapshot) -> CompiledZone:
        """A full compile of `snapshot`."""
        zone = cls(snapshot)
        signed = snapshot.signed
        if signed:
            zone.denial = DenialIndex.build(snapshot.origin, snapshot.nodes, zone.sigs)
        for name, types in snapshot.nodes.items():
            if types and not (signed and is_hashed_owner(types)):
                zone._add_name(answer.name_wire(name), types)
        for owner in zone.names:
            zone._render_owner(owner)
        zone.owned = set()
        return zone

    @classmethod
    def evolve(cls, prev: CompiledZone, snapshot: ZoneSnapshot,
               reuse: bool = False) -> CompiledZone:
        """`snapshot` compiled reusing `prev` where `snapshot.changed` allows it; with
        `reuse`, prev's indexes are updated in place (prev must not be used again)."""
        if (
            snapshot.changed is None
            or prev.snapshot.origin != snapshot.origin
            or prev.snapshot.signed != snapshot.signed
        ):
            return cls.build(snapshot)
        signed = snapshot.signed
        if signed:
            assert prev.denial is not None
            if not prev.denial.same_params(snapshot.nodes.get(snapshot.origin, {})):
                return cls.build(snapshot)
        zone = cls(snapshot)
        if signed:
            assert prev.denial is not None
            zone.sigs = prev.sigs
            zone.denial = DenialIndex.evolve(
                prev.denial, snapshot.nodes, {*snapshot.changed, snapshot.origin}, reuse
            )
        if reuse:
            zone.names, zone.below, zone.cuts = prev.names, prev.below, prev.cuts
            zone.dnames = prev.dnames
            zone.answers, zone.fdeps, zone.rdeps = prev.answers, prev.fdeps, prev.rdeps
            zone.owned = _ALL  # every rdeps set is this version's own
        else:
            zone.names = dict(prev.names)
            zone.below = dict(prev.below)
            zone.cuts = set(prev.cuts)
            zone.dnames = set(prev.dnames)
            zone.answers = dict(prev.answers)
            zone.fdeps = dict(prev.fdeps)
            zone.rdeps = dict(prev.rdeps)  # sets are copied on write in _set_deps
        changed = {answer.name_wire(n) for n in snapshot.changed}
        changed.add(zone.origin)
        wire_to_name = {answer.name_wire(n): n for n in snapshot.changed}
        wire_to_name[zone.origin] = snapshot.origin
        cut_changes: set[bytes] = set()
        olds: dict[bytes, Types | None] = {}  # the changed owners' types in prev
        for owner in changed:
            old = olds[owner] = zone.names.get(owner)
            new = snapshot.nodes.get(wire_to_name[owner])
            was_cut = (owner in zone.cuts, owner in zone.dnames)
            if old is not None:
                zone._drop_name(owner, old)
            if new and not (signed and is_hashed_owner(new)):
                zone._add_name(owner, new)
            elif signed:
                zone.sigs.forget((owner,))
            if was_cut != (owner in zone.cuts, owner in zone.dnames):
                cut_changes.add(owner)
        redo = set(changed)
        for name in changed:
            redo.update(k[:-4] for k in prev.rdeps.get(name, ()))
        if cut_changes:
            # the image builder's names (`node.image.baseimage.BaseNames`) have no key per
            # name to walk: they find the names below by label
            under = getattr(zone.names, "under", None)
            if under is not None:
                redo.update(under(cut_changes))
            else:
                for owner in zone.names:
                    if any(_under(owner, c) for c in cut_changes):
                        redo.add(owner)
        touched, answers = zone.touched, zone.answers
        for owner in redo:
            old_types = olds[owner] if owner in olds else zone.names.get(owner)
            if old_types is not None:
                for rdtype in old_types:
                    key = _key(owner, rdtype)
                    touched[key] = answers.pop(key, None)
                    zone._set_deps(key, ())
            new_types = zone.names.get(owner)
            if new_types is not None:
                zone._render_owner(owner)
                for rdtype in new_types:
                    touched.setdefault(_key(owner, rdtype), None)
        zone.owned = set()
        return zone

    def _add_name(self, owner: bytes, types: Types) -> None:
        self.names[owner] = types
        if answer.NS in types and owner != self.origin:
            self.cuts.add(owner)
        if answer.DNAME in types:
            self.dnames.add(owner)
        n = owner
        while n != self.origin and len(n) > 1:
            n = n[n[0] + 1 :]
            self.below[n] = self.below.get(n, 0) + 1

    def _drop_name(self, owner: bytes, types: Types) -> None:
        del self.names[owner]
        self.cuts.discard(owner)
        self.dnames.discard(owner)
        n = owner
        while n != self.origin and len(n) > 1:
            n = n[n[0] + 1 :]
            left = self.below[n] - 1
            if left:
                self.below[n] = left
            else:
                del self.below[n]

    def _occluded(self, owner: bytes) -> bool:
        """True if `owner` is a cut or below one, or below a DNAME owner (its data is not
        answered as such here)."""
        cuts, dnames = self.cuts, self.dnames
        if not cuts and not dnames:
            return False
        n = owner
        while len(n) > 1:
            if n in cuts or (n in dnames and n != owner):
                return True
            if n == self.origin:
                return False
            n = n[n[0] + 1 :]
        return False

    def _render_owner(self, owner: bytes) -> None:
        if self._occluded(owner):
            return
        for rdtype in self.names[owner]:
            if rdtype in LAZY_TYPES:  # RRSIG, NSEC: rarely asked for alone, left to `lazy`
                continue
            key = _key(owner, rdtype)
            entry, deps = answer.positive(self, owner, rdtype)
            self.answers[key] = entry
            self._set_deps(key, tuple(dict.fromkeys(deps)))

    def _set_deps(self, key: bytes, deps: tuple[bytes, ...]) -> None:
        for name in self.fdeps.pop(key, ()):
            keys = self._own(name)
            keys.discard(key)
            if not keys:
                del self.rdeps[name]
                self.owned.discard(name)
        if deps:
            self.fdeps[key] = deps
            for name in deps:
                self._own(name).add(key)

    def _own(self, name: bytes) -> set[bytes]:
        """rdeps[name], copied first if it is still shared with the previous version."""
        keys = self.rdeps.get(name)
        if keys is None:
            keys = self.rdeps[name] = set()
            self.owned.add(name)
        elif name not in self.owned:
            keys = self.rdeps[name] = set(keys)
            self.owned.add(name)
        return keys


class _All(set[bytes]):
    """`owned` of an evolve that took prev's indexes over: every rdeps set is its own."""

    def __contains__(self, name: object) -> bool:
        return True

    def add(self, name: bytes) -> None:
        pass

    def discard(self, name: bytes) -> None:
        pass


_ALL = _All()


def _under(name: bytes, ancestor: bytes) -> bool:
    while len(name) > len(ancestor):
        name = name[name[0] + 1 :]
    return name == ancestor


def _networks(cidrs: tuple[str, ...] | list[str] | Mapping[str, object]) -> tuple[Network, ...]:
    out: list[Network] = []
    for text in cidrs:
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            log.warning("ignoring invalid allow_transfer entry %r", text)
    return tuple(out)
