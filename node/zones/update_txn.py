"""One RFC 2136 UPDATE as one etcd transaction: read, plan, write compared on all it read.

`ZoneRepository.update_rrsets` delegates here. The read takes the zone head,
config, DNSSEC settings and every RRset at the owners named, in one read txn;
the caller's `plan` (pure) turns that into writes; the write txn compares the
head's mod revision, each RRset read (mod revision) and each RRset created
(version 0), and bumps the head (serial + 1, version time), so concurrent
UPDATEs through any node serialize exactly as on one server. NOERROR means
this txn committed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import dns.name
import dns.rrset

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import Conflict, NotFound, ValidationError
from node.store.client import EtcdClient, KeyValue
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dname_reads import name_below
from node.zones.model import ZoneConfig, ZoneHead, rrset_from_json, rrset_to_json

Name = dns.name.Name
MAX_RETRIES = 200
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops
# (owner, type) -> the new RRset, or None to delete it
Writes = Mapping[tuple[Name, int], dns.rrset.RRset | None]


@dataclass(frozen=True, slots=True)
class UpdateRead:
    """What one RFC 2136 UPDATE reads, at one etcd revision."""

    head: ZoneHead
    config: ZoneConfig
    signed: bool  # the zone has DNSSEC settings (zones/<z>/dnssec exists)
    data: dict[Name, dict[int, dns.rrset.RRset]]  # owner -> type -> RRset, for the owners read
    below: frozenset[Name] = frozenset()  # names below the names a DNAME is added at


class UpdateTransactions:
    """Runs UPDATE transactions for one node (a lock per zone: no retries against itself)."""

    def __init__(self, client: EtcdClient, layout: KeyLayout, clock: Clock = SYSTEM_CLOCK) -> None:
        self._etcd = client
        self._keys = layout
        self._clock = clock
        self._locks: dict[Name, asyncio.Lock] = {}
        self._gens: dict[Name, int] = {}  # last generation seen per zone: saves a read

    def _rrset(self, kv: KeyValue) -> dns.rrset.RRset:
        parsed = self._keys.parse_zone_key(kv.key)
        assert parsed is not None and parsed.owner is not None
        return rrset_from_json(parsed.owner, parsed.rdtype, kv.value)

    async def run(
        self, zone: Name, owners: Collection[Name],
        plan: Callable[[UpdateRead], tuple[Writes, object]], dname_owners: Collection[Name] = (),
    ) -> tuple[int | None, object]:
        """One RFC 2136 UPDATE as one txn: read, `plan`, write compared on everything read.

        Reads the head, config, DNSSEC settings and every RRset at `owners` in one
        read txn; `plan` (pure, may raise to refuse) returns the writes and a result
        for the caller. The write txn compares the head's mod revision, each RRset
        read (mod revision) and each RRset created (version 0) and bumps the serial,
        so concurrent updates through any node serialize; a failed compare retries
        from the read. Returns (new serial or None when nothing changed, result).
        Updates of one zone through this node queue on a lock (no wasted retries).
        For each of `dname_owners` (a DNAME added there), a name below it is looked for
        (`UpdateRead.below`), after the read and so under the same compare on the head.
        """
        zone = zone.canonicalize()
        if len(owners) + 3 > MAX_TXN_OPS:
            raise ValidationError(f"an UPDATE of {len(owners)} names is too large for one "
                                  f"transaction ({MAX_TXN_OPS} operations)")
        lock = self._locks.setdefault(zone, asyncio.Lock())
        async with lock:
            return await self._update_rrsets(zone, sorted(owners), plan, dname_owners)

    async def _update_rrsets(
        self, zone: Name, owners: list[Name],
        plan: Callable[[UpdateRead], tuple[Writes, object]], dname_owners: Collection[Name],
    ) -> tuple[int | None, object]:
        keys = self._keys
        fixed = [keys.head_key(zone), keys.config_key(zone), keys.dnssec_key(zone)]
        gen = self._gens.get(zone, -1)  # last seen generation: saves a read
        for attempt in range(MAX_RETRIES):
            if gen < 0:
                head_kv = await self._etcd.get(fixed[0])
                if head_kv is None:
                    raise NotFound(f"zone {zone} does not exist")
                gen = ZoneHead.from_json(head_kv.value).generation
            read = await self._etcd.txn(when=[], then=[
                *(Op.get(k) for k in fixed),
                *(Op.get(keys.owner_prefix(zone, gen, o), prefix=True) for o in owners)])
            got = [r.kvs for r in read.responses]  # type: ignore[union-attr]
            if not got[0] or not got[1]:
                raise NotFound(f"zone {zone} does not exist")
            head = ZoneHead.from_json(got[0][0].value)
            if head.generation != gen:  # an import flipped the generation: read it again
                gen = self._gens[zone] = head.generation
                continue
            self._gens[zone] = gen
            when = [Compare.mod_revision(fixed[0]) == got[0][0].mod_revision,
                    Compare.mod_revision(fixed[1]) == got[1][0].mod_revision,
                    (Compare.mod_revision(fixed[2]) == got[2][0].mod_revision) if got[2]
                    else (Compare.version(fixed[2]) == 0)]
            data: dict[Name, dict[int, dns.rrset.RRset]] = {o: {} for o in owners}
            revisions: dict[tuple[Name, int], int] = {}
            for kvs in got[3:]:
                for kv in kvs:
                    rr = self._rrset(kv)
                    data[rr.name][rr.rdtype] = rr
                    revisions[(rr.name, rr.rdtype)] = kv.mod_revision
            below = [await name_below(self._etcd, keys, zone, gen, o) for o in dname_owners]
            writes, result = plan(UpdateRead(head, ZoneConfig.from_json(got[1][0].value),
                                             bool(got[2]), data,
                                             frozenset(n for n in below if n is not None)))
            if not writes:
                return None, result
            if len(writes) + 1 > MAX_TXN_OPS:
                raise ValidationError(f"an UPDATE of {len(writes)} RRsets is too large for "
                                      f"one transaction ({MAX_TXN_OPS} operations)")
            ops: list[Op] = []
            guards: list[Compare] = []
            for (owner, rdtype), rrset in sorted(writes.items(), key=lambda w: (w[0][0], w[0][1])):
                key = keys.rrset_key(zone, gen, owner, rdtype)
                ops.append(Op.delete(key) if rrset is None else Op.put(key, rrset_to_json(rrset)))
                if (owner, rdtype) not in revisions:
                    guards.append(Compare.version(key) == 0)
            guards.extend(Compare.mod_revision(keys.rrset_key(zone, gen, o, t)) == rev
                          for (o, t), rev in revisions.items())
            if len(when) + len(guards) <= MAX_TXN_OPS:  # else the head alone proves it
                when.extend(guards)
            new_head = head.bumped(self._clock.time())
            res = await self._etcd.txn(when=when,
                                       then=[*ops, Op.put(fixed[0], new_head.to_json())])
            if res.succeeded:
                return new_head.serial, result
            await asyncio.sleep(random.uniform(0, min(0.02, 0.001 * (attempt + 1))))
        raise Conflict(f"zone {zone} changed too often; the UPDATE was not made, try again")
