"""Per-zone signing state on one node: full and incremental signing of a zone's node map.

`ZoneSigner.sign(nodes, changed, now)` takes the zone's unsigned RRsets and
returns the signed node map: the input RRsets (same objects), the apex DNSKEY
(and NSEC3PARAM), one RRSIG RRset per owner (see `signer` module doc), and the
NSEC or NSEC3 chain. It keeps every RRset's signatures, so an incremental call
signs only changed RRsets, the chain records around them and signatures whose
signing epoch has moved (`epoch` module: boundaries every validity - refresh,
offset per RRset, so refreshes spread over the whole period). What it keeps per
owner is one `sigstore.SignedNode`, which is also the owner's value in the signed
map it returns (an immutable `signednodes.SignedNodes`, no second copy; a hashed
NSEC3 owner held by its hash label, no Name): the last result is the one map of
the signer's owners, looked up by Name (issue 10, session 14: a second dict by
canonical key cost ~10 MiB at 100k names); `schedule.RefreshSchedule` says when
each falls due.

`now` is the zone version's recorded time (`ZoneHead.time`), never a node's
clock: the output is a pure function of the zone version, the keys and the
parameters, so every node that signs a version gets the same bytes, whether it
signed incrementally, from scratch after a restart, or after a stagger.

Conventions for consumers: an owner's RRSIGs are one RRset of rdtype RRSIG; serve
each RRSIG with TTL = its `original_ttl` (`signer.split_rrsigs` gives per-type
RRsets); the RRSIG and chain RRsets are made when read, so read them once per
use rather than relying on their identity. `SignedResult.changed` names the
owners (hashed NSEC3 owners included) whose output differs, or None after a full
sign. When the KSK's private key is not on this node, the Key Master's DNSKEY
RRSIGs are passed in (`dnskey_rrsigs`) and served as they are.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence, Set
from concurrent.futures import Executor
from contextlib import nullcontext
from types import MappingProxyType

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.dnssec.denial import (
    CKey,
    Nsec3Chain,
    NsecChain,
    Types,
    canonical_key,
    ckey_wire,
    denial_ttl,
    nsec3param_rdata,
)
from node.dnssec.epoch import signing_epoch
from node.dnssec.keys import SIGNING_STATES, DnssecKey, dnskey_rrset
from node.dnssec.params import SignedResult, SigningParams
from node.dnssec.rrsigset import blob
from node.dnssec.schedule import RefreshSchedule
from node.dnssec.signednodes import SignedNodes, key_of
from node.dnssec.signer import BlobStream, SigningKey, check_rrsigs_cover, iter_sign_blobs, taken
from node.dnssec.sigstore import SignedNode, differs, plain, signed_node
from node.dnssec.tree import GENERATED, NodeTypes, ZoneTree
from node.errors import ValidationError
from node.gcwatch import paused
from node.zones.model import Name, NodeMap

T = dns.rdatatype
KSK_TYPES = frozenset({T.DNSKEY, T.CDS, T.CDNSKEY})
_EMPTY: frozenset[int] = frozenset()
_CHAIN_TYPES = frozenset({T.NSEC, T.NSEC3})
# an owner's node in the making: name (a hashed owner's label), input types, extra RRsets,
# chain record fields, per signed type its kept signatures or its job's index
_Plan = tuple[Name | bytes, NodeTypes | None, tuple[dns.rrset.RRset, ...] | None, object,
              list[bytes | int]]
_GC_PAUSE_ABOVE = 5000  # owners: the GC frees ~nothing, rescans the growing heap (~15%)
__all__ = ["SignedResult", "SigningParams", "ZoneSigner"]


class ZoneSigner:
    """Holds one zone's signing state on this node (not thread-safe; one caller)."""

    def __init__(self, origin: Name, params: SigningParams, keys: Sequence[SigningKey],
                 published_keys: Sequence[DnssecKey] = (), *, pool: Executor | None = None,
                 dnskey_rrsigs: Sequence[dns.rdata.Rdata] = ()) -> None:
        self.origin = origin.canonicalize()
        self.params = params
        self.pool = pool
        self._tree = ZoneTree(self.origin)  # keyed by canonical keys (`canonical_key`)
        # when the signed owners (`SignedNode`s of `_last`) fall due
        self._schedule: RefreshSchedule[SignedNode] = RefreshSchedule()
        self._last: SignedNodes | None = None  # the nodes of the last result
        self._typesets: dict[Types, Types] = {}
        self._chain: NsecChain | Nsec3Chain | None = None
        self.set_keys(keys, published_keys, dnskey_rrsigs)

    # -- keys ---------------------------------------------------------------
    def set_keys(self, keys: Sequence[SigningKey], published_keys: Sequence[DnssecKey] = (),
                 dnskey_rrsigs: Sequence[dns.rdata.Rdata] = ()) -> None:
        """New key set: the DNSKEY RRset changes and everything is re-signed on the next call.

        `dnskey_rrsigs`: RRSIGs over the DNSKEY RRset made elsewhere (the Key Master, when
        the KSK's private key is not replicated); they are served as given, never re-signed
        here, and must cover exactly `dnskey_rrset(origin, all keys, dnskey_ttl)`.
        """
        active = [k for k in keys if k.key.state in SIGNING_STATES]
        ksks = [k for k in active if k.key.is_sep]
        zsks = [k for k in active if k.key.role in ("zsk", "csk")] or ksks
        ksks = (ksks or zsks) + [k for k in keys if k.key.state == "revoked"]
        if not zsks:
            raise ValidationError(f"zone {self.origin} has no active key to sign with")
        dnskey = dnskey_rrset(self.origin, [k.key for k in keys] + list(published_keys),
                              self.params.dnskey_ttl)
        check_rrsigs_cover(dnskey, dnskey_rrsigs)
        self._ksks, self._zsks, self._dnskey = ksks, zsks, dnskey
        self._set_external(dnskey_rrsigs)
        self._apex_pending = False
        self._schedule = RefreshSchedule()
        self._last = None  # nothing signed with the old keys is reused
        self._full_needed = True

    def _set_external(self, rrsigs: Sequence[dns.rdata.Rdata]) -> None:
        self._external = blob(rd.to_digestable(self.origin) for rd in rrsigs)
        self._external_exp = min((rd.expiration for rd in rrsigs), default=0)  # type: ignore[attr-defined]

    def set_dnskey_rrsigs(self, rrsigs: Sequence[dns.rdata.Rdata]) -> None:
        """Replace the externally made DNSKEY RRSIGs (see `set_keys`); the apex is
        rebuilt on the next call, nothing else is re-signed."""
        check_rrsigs_cover(self._dnskey, rrsigs)
        self._set_external(rrsigs)  # `_plan` takes them as they are
        self._apex_pending = True

    # -- helpers -------------------------------------------------------------
    def _expiration(self, key: CKey, rdtype: int, now: int) -> int:
        """The expiration of the RRset's signatures at version time `now`: its epoch
        (`signing_epoch`) + validity. A pure function of the RRset and the version."""
        p = self.params
        return signing_epoch(now, p.validity - p.refresh, key, rdtype) + p.validity

    def _signable(self, key: CKey, types: NodeTypes | None) -> dict[int, dns.rrset.RRset]:
        tree = self._tree
        if types is None or not tree.has_data(key) or tree.below_cut(key):
            return {}
        if key in tree.cuts:
            return {T.DS: types[T.DS]} if T.DS in types else {}
        out = {t: rs for t, rs in types.items() if t not in GENERATED}
        if key == tree.okey:
            out[T.DNSKEY] = self._dnskey
            if self.params.denial.nsec3:
                out[T.NSEC3PARAM] = self._nsec3param
        return out

    def _member_types(self, key: CKey, types: NodeTypes | None) -> Types | None:
        """The bitmap types of a name in the denial chain, or None if not in it."""
        tree, nsec3 = self._tree, self.params.denial.nsec3
        if types is None or not tree.has_data(key):
            return _EMPTY if nsec3 and tree.is_ent(key) else None
        if tree.below_cut(key):
            return None
        if key in tree.cuts:
            if T.DS in types:
                bits = {T.NS, T.DS, T.RRSIG}
            elif nsec3 and self.params.denial.opt_out:
                return None
            else:
                bits = {T.NS} if nsec3 else {T.NS, T.RRSIG}
        else:
            bits = {t for t in types if t not in GENERATED}
            bits.add(T.RRSIG)
            if key == tree.okey:
                bits |= {T.DNSKEY, T.NSEC3PARAM} if nsec3 else {T.DNSKEY}
        if not nsec3:
            bits.add(T.NSEC)
        found = frozenset(bits)  # a zone has few distinct type sets: one object each
        return self._typesets.setdefault(found, found)

    def _keys_for(self, rdtype: int) -> list[SigningKey]:
        return self._ksks if rdtype in KSK_TYPES else self._zsks

    # -- signing --------------------------------------------------------------
    def sign(self, nodes: NodeMap, changed: frozenset[Name] | None, now: int) -> SignedResult:
        """Sign `nodes` (all of it if `changed` is None, else those owners) at time `now`."""
        soa = nodes.get(self.origin, {}).get(T.SOA)
        if soa is None:
            raise ValidationError(f"zone {self.origin} has no SOA at its apex")
        ttl = denial_ttl(soa)
        full = changed is None or self._full_needed or self._chain is None \
            or self._chain.ttl != ttl or self._last is None
        if full:
            self._apex_pending = False
            return self._sign_full(nodes, ttl, now)
        assert changed is not None
        if self._apex_pending:
            changed = changed | {self.origin}
        try:
            return self._sign_incremental(nodes, changed, now)
        except BaseException:
            self._full_needed = True  # the state may be half updated: start over next time
            raise

    def _new_chain(self, ttl: int) -> NsecChain | Nsec3Chain:
        d = self.params.denial
        self._nsec3param = dns.rrset.from_rdata(self.origin, ttl, nsec3param_rdata(d))
        return Nsec3Chain(self.origin, ttl, d) if d.nsec3 else NsecChain(self.origin, ttl)

    def _sign_full(self, nodes: NodeMap, ttl: int, now: int) -> SignedResult:
        with paused() if len(nodes) > _GC_PAUSE_ABOVE else nullcontext(False) as mine:
            try:
                return self._sign_full_inner(nodes, ttl, now)
            except BaseException:
                self._full_needed = True  # store, tree and chain half rebuilt: start over
                raise
            finally:
                if mine:  # node/gcwatch.py: else the next collections visit every new object
                    gc.freeze()

    def _sign_full_inner(self, nodes: NodeMap, ttl: int, now: int) -> SignedResult:
        self._full_needed, self._typesets = False, {}
        tree = self._tree
        items = [(canonical_key(n), n, types) for n, types in nodes.items()]
        tree.rebuild(items)
        self._chain = chain = self._new_chain(ttl)
        entries: dict[CKey, tuple[Name, Types]] = {}
        for key, name, types in items:
            bits = self._member_types(key, types)
            if bits is not None:
                entries[key] = (name, bits)
        if self.params.denial.nsec3:
            for key, name in tree.ents().items():
                entries[key] = (name, _EMPTY)
        chain.rebuild(entries)
        del entries
        self._schedule = RefreshSchedule()
        # reused: the last result's (a new signer has none: no look-up by Name, ~3 us each)
        old = self._last if self._last is not None and len(self._last) else None
        jobs: list[tuple[CKey, dns.rrset.RRset]] = []
        plans: dict[CKey, _Plan] = {}
        for key, name, types in items:
            plans[key] = self._plan(key, name, types, signed_node(old, name), now, jobs, None)
        if isinstance(chain, Nsec3Chain):  # planned by label: no Name made (`_make`)
            for label in chain.labels():  # an input owner with that name: planned above
                if (okey := (*tree.okey, label)) not in plans:
                    prev = old.hashed(label) if old is not None else None
                    plans[okey] = self._plan(okey, label, None, prev, now, jobs, None)
        del old, items
        # each owner made as soon as its blobs are: the RRsets to sign (the chain's made
        # new) and the per-RRset blobs are let go of as the pass goes, not at its end
        made, blobs = self._run_jobs(jobs, now)
        del jobs
        out: dict[Name | bytes, NodeTypes] = {}  # `SignedNodes`' keys
        for key in list(plans):
            plan = plans.pop(key)  # each plan let go of once made, as its blobs are
            node = self._make(key, plan, blobs)
            if node is not None:
                out[key_of(plan[0], node)] = node
                if type(node) is SignedNode and (due := self._due(key, node)) is not None:
                    self._schedule.add_bulk(node, due)
        blobs.finish()
        self._schedule.seal()
        self._last = SignedNodes.of(self.origin, out)  # nobody mutates `out` from now on
        return self._result(None, made, now)

    def _chain_rrset(self, key: CKey) -> dns.rrset.RRset | None:
        chain = self._chain
        assert chain is not None
        if isinstance(chain, Nsec3Chain) and (len(key) != len(self._tree.okey) + 1
                                               or not self._tree.in_zone(key)):
            return None
        return chain.rrset(key)

    def _plan(self, key: CKey, name: Name | bytes, src: NodeTypes | None, old: SignedNode | None,
              now: int, jobs: list[tuple[CKey, dns.rrset.RRset]], force: Set[int] | None,
              ) -> _Plan:
        """What the owner's node is made of: per signed type (in type order) its kept
        signatures, or the index of its job in `jobs`. A full pass (`force` None)
        also renews signatures whose epoch moved; an incremental one renews `force`."""
        want = self._signable(key, src)
        denial = self._chain_rrset(key)
        if denial is not None:
            want[denial.rdtype] = denial
        full = force is None
        parts: list[bytes | int] = []
        for t in sorted(want):
            rs = want[t]
            if self._is_external(key, t):
                parts.append(self._external)
                continue
            seg = old.segment(t) if old is not None and (full or t not in force) else None  # type: ignore[operator]
            if seg is not None and ((full and seg[1] != self._expiration(key, t, now))
                                    or not old.same(t, rs)):  # type: ignore[union-attr]
                seg = None
            if seg is None:
                parts.append(len(jobs))
                jobs.append((key, rs))
            else:
                parts.append(seg[0])
        extra = tuple(want[t] for t in sorted(want) if t in GENERATED and t not in _CHAIN_TYPES)
        fields = None if denial is None else denial._data[-2:]  # type: ignore[attr-defined]
        return name, src, extra or None, fields, parts  # (next, types): `Nsec(3)Chain.make`

    def _make(self, key: CKey, plan: _Plan, blobs: BlobStream) -> NodeTypes | None:
        """The owner's output from its plan (a `SignedNode` if signed)."""
        name, src, extra, denial, parts = plan
        if src is not None and type(src) is not MappingProxyType:
            src = MappingProxyType(dict(src))  # held: a caller's own dict may change later
        if not parts:
            return plain(src)
        sigs = b"".join(p if isinstance(p, bytes) else blobs[p] for p in parts)
        chain = self._chain
        assert chain is not None
        # a hashed owner with nothing else is held by its label (the chain's), not a Name
        owner = key[-1] if src is None and denial is not None and extra is None \
            and type(chain) is Nsec3Chain else name
        return SignedNode(owner, src, extra, denial, sigs, chain)  # type: ignore[arg-type]

    def _due(self, key: CKey, node: SignedNode) -> int | None:  # None: never here
        return node.refresh_due(T.DNSKEY if self._is_external(key, T.DNSKEY) else None)

    def _sign_incremental(self, nodes: NodeMap, changed: frozenset[Name], now: int
                          ) -> SignedResult:
        self._apex_pending = False
        tree, chain, last = self._tree, self._chain, self._last
        assert chain is not None and last is not None
        work = tree.update(changed, nodes)
        affected: set[CKey] = set(work)
        for key in work:
            affected.update(tree.ancestors(key))
        chain_changes: dict[CKey, tuple[Name, Types] | None] = {}
        for key in affected:
            name = work.get(key) or tree.name(key) or tree.ent_name(key)
            bits = self._member_types(key, nodes.get(name))
            if chain.types(key) != bits:
                chain_changes[key] = None if bits is None else (name, bits)
        pending: dict[CKey, Name] = dict(work)
        for okey, oname in chain.update(chain_changes):
            pending.setdefault(okey, oname)
        until = now + self.params.refresh
        force: dict[CKey, set[int]] = {}
        for node in self._schedule.pop_due(until):
            key = canonical_key(node.owner)
            force[key] = {t for t, exp in node.expirations()
                          if exp <= until and not self._is_external(key, t)}
            pending.setdefault(key, node.owner)
        jobs: list[tuple[CKey, dns.rrset.RRset]] = []
        plans = []
        for key, name in pending.items():
            prev = last.get(name)
            old = prev if type(prev) is SignedNode else None
            plans.append((key, prev, self._plan(key, name, nodes.get(name), old, now, jobs,
                                                force.get(key, _EMPTY))))
        made, blobs = self._run_jobs(jobs, now)
        diff: dict[Name, NodeTypes | None] = {}
        for key, prev, plan in plans:
            node = self._make(key, plan, blobs)
            if differs(prev, node):
                diff[plan[0]] = node
                if type(node) is SignedNode and (due := self._due(key, node)) is not None:
                    self._schedule.add(node, due)
                if type(prev) is SignedNode and key not in force:  # every one is scheduled
                    self._schedule.retire(prev)  # (the apex has its SOA's signatures)
            elif key in force and type(prev) is SignedNode and (due := self._due(key, prev)):
                self._schedule.add(prev, due)  # taken off the schedule this pass: back
        blobs.finish()
        self._last = last.updated(diff)
        return self._result(frozenset(diff), made, now)

    def _is_external(self, key: CKey, rdtype: int) -> bool:
        """The Key Master's DNSKEY RRSIGs: refreshed by it, never here (never scheduled)."""
        return bool(self._external) and rdtype == T.DNSKEY and key == self._tree.okey

    def _run_jobs(self, jobs: list[tuple[CKey, dns.rrset.RRset]], now: int
                  ) -> tuple[int, BlobStream]:
        """Sign every job: (signatures made, each job's blob, made as it is read, in
        order); `jobs` lets go of each job once it is signed."""
        exps = [self._expiration(k, rs.rdtype, now) for k, rs in jobs]
        keysets = [self._keys_for(rs.rdtype) for _, rs in jobs]
        wires: list[bytes] = []
        last: CKey | None = None
        wire = b""
        for k, _ in jobs:
            if k is not last:
                wire, last = ckey_wire(k), k
            wires.append(wire)
        back = self.params.validity + self.params.inception_offset
        count = len(jobs)
        blobs = iter_sign_blobs(taken(jobs), keysets, self.origin,
                                [exp - back for exp in exps], exps, pool=self.pool,
                                owner_wires=wires)
        return sum(len(ks) for ks in keysets), BlobStream(blobs, count)

    def _result(self, changed: frozenset[Name] | None, made: int, now: int) -> SignedResult:
        first = self._schedule.earliest()
        own = first if first is not None else now + self.params.validity
        earliest = own
        if self._external:  # served, so it counts for expiry, but it is not refreshed here
            earliest = min(own, self._external_exp)
        assert self._last is not None
        return SignedResult(
            nodes=self._last, changed=changed, signatures_made=made,
            earliest_expiration=earliest, next_refresh=own - self.params.refresh,
        )
