"""Zone and record changes in etcd: one transaction per change, SOA serial bump included.

Every change reads the zone head (serial, generation) and the data it
touches in one read transaction, then writes the new data and `head` with
serial + 1 (RFC 1982) in one transaction compared on the head's mod revision. Every
change writes the head, so an unchanged head revision proves nothing in the zone changed
in between; a failed compare retries from the read (other nodes' writers lose nothing).

Bulk changes (create with content, import) cannot be one transaction (etcd
caps a txn at 128 operations and 1.5 MiB). They write a new *generation*
of the zone in batches, invisible to replicas, then activate it with one
transaction that flips `head.generation` and bumps the serial; the old
generation is deleted afterwards. Master-file text is parsed in the worker pool
(`node/work/zoneparse.py`), never on the loop's interpreter. Deleting a zone removes
all but its data in one txn, then each generation's data in parts (`BulkWriter.delete`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Sequence
from concurrent.futures import Executor
from typing import Any

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NS
import dns.rrset
import dns.zone

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import Conflict, EtcdUnavailable, NodeError, NotFound, Refused, ValidationError
from node.filezone.admin import FileChanges, FileZoneAdmin
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op, prefix_range_end
from node.work.zoneparse import ParsedZone
from node.zones.bulk import BulkWriter, Progress, lapsed, quiet, records_of
from node.zones.bulkstream import fill, streamed
from node.zones.dname_reads import DnamePlace
from node.zones.model import (
    ZONE_KIND_SECONDARY,
    RecordChange,
    ZoneConfig,
    ZoneHead,
    default_soa,
    parse_primary,
    rrset_to_json,
    same_rrset,
    with_serial,
)
from node.zones.reads import MAX_RETRIES, ZoneInfo, ZoneReads
from node.zones.rules import check_change, check_target
from node.zones.update_txn import UpdateRead, UpdateTransactions, Writes

log = logging.getLogger(__name__)

Name = dns.name.Name
_Build = Callable[[ZoneHead, dict[int, dns.rrset.RRset]], list[Op] | None]  # None: no change
Before = Callable[[ZoneHead], Awaitable[None]]
class ZoneRepository(ZoneReads):
    """All writes of zone data go through here (never through etcd directly)."""

    def __init__(self, client: EtcdClient, layout: KeyLayout, clock: Clock = SYSTEM_CLOCK,
                 pool: Executor | None = None, import_pause: float = 0.0) -> None:
        self._etcd = client
        self._bulk = BulkWriter(client, layout, pool)  # parsing in `pool`, batched writes
        self._import_pause = import_pause  # test-only: an import waits after parsing
        self._keys = layout
        self._clock = clock  # stamps each version's time (ZoneHead.time)
        self._updates = UpdateTransactions(client, layout, clock)
        self.files = FileZoneAdmin(client, layout, clock)  # create and reload file zones
        self.file_zones: FileChanges | None = None  # set by the daemon: their record changes
        self._deleting: set[asyncio.Task[None]] = set()  # data parts of zones deleted
        self._largest_ttl = {}  # soa_and_max_ttl per zone and head revision (ZoneReads)

    @property
    def etcd(self) -> EtcdClient:
        return self._etcd

    @property
    def bulk(self) -> BulkWriter:
        return self._bulk  # the daemon sets its lease and writer id

    # -- zone lifecycle ---------------------------------------------------
    async def create_zone(
        self,
        name: Name,
        *,
        primary_ns: Name | None = None,
        admin_email: str | None = None,
        ns: tuple[Name, ...] = (),
        allow_transfer: tuple[str, ...] = (),
        text: str | None = None,
        parsed: ParsedZone | None = None,
        progress: Progress | None = None,
    ) -> ZoneInfo:
        """Create an empty zone (SOA + NS at the apex) or one from master-file `text`."""
        name = name.canonicalize()
        config = ZoneConfig(name=name, allow_transfer=tuple(allow_transfer))
        if text is not None and parsed is None and not streamed(self._bulk, text):
            parsed = await self._bulk.parse(text, name)
        if text is None and parsed is None:
            default_ns = dns.name.Name(("ns1",)).concatenate(name)
            nameservers = ns or ((primary_ns or default_ns),)
            soa = default_soa(name, primary_ns or nameservers[0], admin_email)
            ns_rrset = dns.rrset.from_text_list(name, 3600, "IN", "NS",
                                                [n.to_text() for n in nameservers])
            parsed = ParsedZone(1, records_of([soa, ns_rrset]))
        generation = await self._bulk.allocate(name)
        serial, count = await fill(self._bulk, name, generation, text, parsed, progress or quiet)
        head = ZoneHead(serial=serial, generation=generation, time=int(self._clock.time()))
        registered, done = self._bulk.written(name, generation)
        absent = Compare.version(self._keys.head_key(name)) == 0
        try:
            result = await self._etcd.txn(when=[absent, registered], then=[
                Op.put(self._keys.config_key(name), config.to_json()),
                Op.put(self._keys.head_key(name), head.to_json()), done])
        except EtcdUnavailable:
            self._bulk.flip_unanswered(name, generation, absent, None)
            raise
        if not result.succeeded:
            await self._bulk.discard(name, generation)
            if await self._etcd.get(self._keys.head_key(name)) is None:
                raise lapsed(name)
            raise Conflict(f"zone {name} already exists")
        log.info("zone %s created at serial %d", name, serial)
        return ZoneInfo(config, serial, generation, count, result.revision)

    async def create_secondary_zone(self, name: Name, primaries: Sequence[str],
                                    tsig_key: str = "") -> ZoneInfo:
        """A zone whose data is transferred by every node from outside `primaries`
        ("ip:port"), signed with the transfer TSIG key `tsig_key` when named. etcd holds
        only its config and a head (serial 0: the serial is the primary's)."""
        name = name.canonicalize()
        if not primaries:
            raise ValidationError(f"secondary zone {name}: give at least one --primary")
        for p in primaries:
            parse_primary(p)
        key = ""
        if tsig_key:
            try:
                key = dns.name.from_text(tsig_key).canonicalize().to_text()
            except dns.exception.DNSException as exc:  # type: ignore[attr-defined]
                raise ValidationError(f"invalid TSIG key name {tsig_key!r}: {exc}") from exc
            if await self._etcd.get(self._keys.tsig_key("transfer", dns.name.from_text(key))) \
                    is None:
                raise ValidationError(f"no transfer TSIG key {key} (clusterctl tsig add "
                                      f"{key} --use transfer)")
        config = ZoneConfig(name=name, kind=ZONE_KIND_SECONDARY,
                            primaries=tuple(p.strip() for p in primaries), tsig_key=key)
        head = ZoneHead(serial=0, generation=0, time=int(self._clock.time()))
        result = await self._etcd.txn(
            when=[Compare.version(self._keys.head_key(name)) == 0],
            then=[Op.put(self._keys.config_key(name), config.to_json()),
                  Op.put(self._keys.head_key(name), head.to_json())])
        if not result.succeeded:
            raise Conflict(f"zone {name} already exists")
        log.info("secondary zone %s created, primaries %s", name, ", ".join(config.primaries))
        return ZoneInfo(config, 0, 0, -1, result.revision)

    async def _not_secondary(self, zone: Name) -> None:
        config = await self._config(zone)
        if config.secondary:
            raise Refused(f"zone {zone} is a secondary zone: change it on its primary "
                          "(its data comes by zone transfer)")
        if config.file_backed:
            raise Refused(f"zone {zone} is file-backed: edit {config.path} on {config.owner} "
                          f"and run clusterctl zone reload {zone}, or change records")

    async def delete_zone(self, name: Name) -> None:
        """`unlink_zone`, then `delete_data` (going on if the caller is cancelled)."""
        revision = await self.unlink_zone(name)
        task = asyncio.get_running_loop().create_task(self.delete_data(name, revision))
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)
        await asyncio.shield(task)

    async def unlink_zone(self, name: Name) -> int:
        """Delete every key of the zone but its data (config, head, gen, DNSSEC, secrets,
        signing and transfer status) in one transaction (replicas drop it), which marks the
        zone for the sweep (its data is left if `delete_data` never ends); its revision."""
        await self._head(name)
        zone = self._keys.zone_prefix(name).encode()
        data = self._keys.data_root(name).encode()
        res = await self._etcd.txn(when=[], then=[
            Op("delete", zone, range_end=data),  # config, dnssec, gen, head, keymaster…
            Op("delete", prefix_range_end(data), range_end=prefix_range_end(zone)),  # keys/…
            Op.delete(self._keys.secrets_zone_prefix(name), prefix=True),
            Op.delete(self._keys.signing_prefix(name), prefix=True),
            Op.delete(self._keys.transfers_prefix(name), prefix=True),
            Op.put(self._keys.unswept_key(name), b""),  # its data: the sweep's, at the latest
        ])
        if not res.responses or not (res.responses[0] or res.responses[1]):
            raise NotFound(f"zone {name} does not exist")
        return res.revision

    async def delete_data(self, name: Name, revision: int) -> None:
        """Delete in parts each generation the zone had at `revision` (`unlink_zone`'s; a
        zone created again has a later one); a failure is logged (the zone is gone)."""
        try:
            for generation in await self._bulk.generations(name, revision):
                await self._bulk.delete(name, generation)
        except NodeError as exc:  # never served; a later deletion of the name removes them
            log.warning("zone %s deleted; deleting its data failed: %s", name, exc)

    async def update_config(self, config: ZoneConfig) -> ZoneInfo:
        key = self._keys.config_key(config.name)
        await self._mutate(config.name, lambda _h, _d: [Op.put(key, config.to_json())])
        return await self.get_zone(config.name)

    async def import_zone(self, name: Name, text: str, *, create: bool = True,
                          progress: Progress | None = None) -> ZoneInfo:
        """Replace the zone's whole content with master-file `text` (new generation, one flip).

        `progress(stage, done, total)` is told each stage ("parsing", "writing" per batch,
        "activating")."""
        name = name.canonicalize()
        report = progress or quiet
        report("parsing", 0, len(text))
        parsed = None if streamed(self._bulk, text) else await self._bulk.parse(text, name)
        if self._import_pause:
            await asyncio.sleep(self._import_pause)
        if await self._etcd.get(self._keys.head_key(name)) is None:
            if not create:
                raise NotFound(f"zone {name} does not exist")
            return await self.create_zone(name, text=text, parsed=parsed, progress=progress)
        await self._not_secondary(name)
        generation = await self._bulk.allocate(name)
        count = (await fill(self._bulk, name, generation, text, parsed, report))[1]
        report("activating", count, count)
        registered, done = self._bulk.written(name, generation)
        for _ in range(MAX_RETRIES):
            kv = await self._etcd.get(self._keys.head_key(name))
            if kv is None or kv.create_revision > generation:  # deleted (and created again)
                await self._bulk.discard(name, generation)  # meanwhile: so is our generation
                raise (Conflict if kv else NotFound)(f"zone {name} was deleted during the import")
            head = ZoneHead.from_json(kv.value)
            new_head = head.bumped(self._clock.time(), generation)
            before = Compare.mod_revision(self._keys.head_key(name)) == kv.mod_revision
            try:
                result = await self._etcd.txn(when=[before, registered], then=[
                    Op.put(self._keys.head_key(name), new_head.to_json()), done])
            except EtcdUnavailable:
                self._bulk.flip_unanswered(name, generation, before, head.generation)
                raise
            if result.succeeded:
                await self._bulk.replaced(name, head.generation, result.revision)
                return await self.get_zone(name)
            if not await self._bulk.registered(name, generation):
                await self._bulk.discard(name, generation)
                raise lapsed(name)
        await self._bulk.discard(name, generation)  # no flip was applied: every compare failed
        raise Conflict(f"zone {name} changed too often to import; try again")

    # -- record changes ---------------------------------------------------
    async def add_records(self, zone: Name, rrset: dns.rrset.RRset) -> RecordChange:
        def change(existing: dns.rrset.RRset | None) -> dns.rrset.RRset:
            out = dns.rrset.RRset(rrset.name, dns.rdataclass.IN, rrset.rdtype)
            for rd in (*(existing or ()), *rrset):
                out.add(rd, rrset.ttl)
            out.update_ttl(rrset.ttl)
            return out

        return await self._change_rrset(zone, rrset.name, rrset.rdtype, change,
                                        lambda api: api.add_records(zone, rrset))

    async def replace_rrset(self, zone: Name, rrset: dns.rrset.RRset) -> RecordChange:
        return await self._change_rrset(zone, rrset.name, rrset.rdtype, lambda _old: rrset,
                                        lambda api: api.replace_rrset(zone, rrset))

    async def delete_records(
        self, zone: Name, owner: Name, rdtype: int, rrset: dns.rrset.RRset | None = None
    ) -> int:
        def change(existing: dns.rrset.RRset | None) -> dns.rrset.RRset | None:
            if existing is None:
                raise NotFound(f"no {dns.rdatatype.to_text(rdtype)} records at {owner}")
            if rrset is None:
                return None
            missing = [rd for rd in rrset if rd not in existing]
            if missing:
                raise NotFound(f"{owner} {dns.rdatatype.to_text(rdtype)} has no record "
                               f"{missing[0].to_text()}")
            out = existing.copy()
            for rd in rrset:
                out.discard(rd)
            return out if len(out) else None

        return (await self._change_rrset(zone, owner, rdtype, change, lambda api: RecordChange(
            api.delete_records(zone, owner, rdtype, rrset)))).serial

    async def _change_rrset(
        self,
        zone: Name,
        owner: Name,
        rdtype: int,
        change: Callable[[dns.rrset.RRset | None], dns.rrset.RRset | None],
        forward: Callable[[Any], RecordChange] | None = None,
    ) -> RecordChange:
        zone = zone.canonicalize()
        check_target(zone, owner, rdtype)
        if self.file_zones is not None and forward is not None:
            config = await self._config(zone)
            if config.file_backed:  # its owner changes the file (node.filezone)
                return await self.file_zones.change(
                    config, owner, rdtype, change, forward,
                    lambda new, at: check_change(zone, owner, rdtype, new, at))
        await self._not_secondary(zone)
        place = DnamePlace(self._etcd, self._keys, zone, owner, rdtype)  # RFC 6672 §2.4
        def build(head: ZoneHead, at_owner: dict[int, dns.rrset.RRset]) -> list[Op] | None:
            old = at_owner.get(rdtype)
            new = change(old)
            if new is not None and len(new) == 0:
                new = None
            check_change(zone, owner, rdtype, new, at_owner)
            place.check(new)
            if same_rrset(old, new):
                return None  # nothing to write: an added record already there with its TTL
            key = self._keys.rrset_key(zone, head.generation, owner, rdtype)
            if new is None:
                return [Op.delete(key)]
            return [Op.put(key, rrset_to_json(new))]

        return await self._mutate(zone, build, owner=owner, before=place.read)

    async def bump(self, zone: Name, ops: Sequence[Op], guards: Sequence[Compare] = ()
                   ) -> int | None:
        """Apply `ops` and serial + 1 in one txn, only while `guards` hold. Retries while
        only the head raced; returns the new serial, or None when a guard failed (the caller
        decides what that means, e.g. FencedOut)."""
        head_key = self._keys.head_key(zone)
        for attempt in range(MAX_RETRIES):
            kv = await self._etcd.get(head_key)
            if kv is None:
                raise NotFound(f"zone {zone} does not exist (clusterctl zone list shows the zones)")
            head = ZoneHead.from_json(kv.value)
            new = head.bumped(self._clock.time())
            res = await self._etcd.txn(
                when=[*guards, Compare.mod_revision(head_key) == kv.mod_revision],
                then=[*ops, Op.put(head_key, new.to_json())])
            if res.succeeded:
                return new.serial
            if guards and not (await self._etcd.txn(when=list(guards), then=[])).succeeded:
                return None
            await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
        raise Conflict(f"zone {zone} changed too often; the change was not made, try again")

    async def update_rrsets(
        self, zone: Name, owners: Collection[Name],
        plan: Callable[[UpdateRead], tuple[Writes, object]], dname_owners: Collection[Name] = (),
    ) -> tuple[int | None, object]:
        """One RFC 2136 UPDATE as one txn (see `update_txn.UpdateTransactions.run`)."""
        return await self._updates.run(zone, owners, plan, dname_owners)

    async def _mutate(self, zone: Name, build: _Build, owner: Name | None = None,
                      before: Before | None = None) -> RecordChange:
        """Read head (+ owner's RRsets, + `before`'s), build ops (None: no change, no serial
        bump), write them, head+1, fenced."""
        head_key = self._keys.head_key(zone)
        for attempt in range(MAX_RETRIES):
            head_kv = await self._etcd.get(head_key)
            if head_kv is None:
                raise NotFound(f"zone {zone} does not exist (clusterctl zone list shows the zones)")
            head = ZoneHead.from_json(head_kv.value)
            at_owner: dict[int, dns.rrset.RRset] = {}
            if owner is not None:
                # the head and the owner's RRsets at one (current) revision; the txn below
                # proves nothing changed since (not at the head's mod revision: compacted?)
                read = await self._etcd.txn(when=[], then=[
                    Op.get(head_key),
                    Op.get(self._keys.owner_prefix(zone, head.generation, owner), prefix=True),
                ])
                head_range, owner_range = read.responses[0], read.responses[1]
                if not head_range.kvs or head_range.kvs[0].mod_revision != head_kv.mod_revision:  # type: ignore[union-attr]
                    continue  # the zone moved between the two reads: start again
                for kv in owner_range.kvs:  # type: ignore[union-attr]
                    rr = self._rrset(kv)
                    at_owner[rr.rdtype] = rr
            if before is not None:
                await before(head)
            ops = build(head, at_owner)
            if ops is None:  # read at the head's revision: the serial is that state's
                return RecordChange(head.serial, changed=False)
            new_head = head.bumped(self._clock.time())
            result = await self._etcd.txn(
                when=[Compare.mod_revision(head_key) == head_kv.mod_revision],
                then=[*ops, Op.put(head_key, new_head.to_json())],
            )
            if result.succeeded:
                return RecordChange(new_head.serial)
            await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
        raise Conflict(f"zone {zone} changed too often; the change was not made, try again")


__all__ = ["RecordChange", "UpdateRead", "ZoneInfo", "ZoneRepository", "default_soa", "with_serial"]

