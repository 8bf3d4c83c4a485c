"""Reads of zones from etcd: list, show, snapshot, export, record listing (no writes).

`ZoneRepository` (the only writer of zone data) inherits these. Every read of a
zone's data proves it saw one version: the head read before and the head at the
data's revision must be the same, else it reads again (never at the head's mod
revision, which a quiet zone may have compacted away).

Building RRsets from a zone-sized read takes seconds: it runs in a thread, and
callers that need only the SOA and the largest TTL (signing checks, rollover
timing) use `soa_and_max_ttl`, which builds one RRset, not the zone, and reduces
the zone part by part as etcd returns it (`EtcdClient.range_scan`). That is
still a scan of every value (20-48 s for a 1M-name zone on a loaded 2-core
machine, issue 10 session 11): its result is kept per zone for the head's
mod revision (every change bumps the head), so `zone dnssec` polled during a
long sign scans each version once.

Reads that answer a user never read more of a zone than they return: the zone
list skips every zone's `data/` subtree (its settings keys sit beside the data
under `zones/<zone>/`, so it pages the prefix and jumps past `data/` wherever a
page ends inside it), and the records of one owner are read by that owner's
prefix. Only `snapshot` (export, a whole-zone record listing) reads every RRset.
etcd still walks its in-memory index from each page's start to the end of
`zones/` to count (`node/store/ranges.py`): no values, but a walk per page, so
pages are large enough (`LIST_PAGE`) to keep them few when there are many zones.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset

from node.errors import Conflict, NotFound, Refused
from node.store.client import Compacted, EtcdClient, KeyValue, RangeResult
from node.store.keys import KeyLayout
from node.store.txn import Op, prefix_range_end
from node.zones.model import (
    TransferStatus,
    ZoneConfig,
    ZoneHead,
    ZoneSnapshot,
    rrset_from_json,
    snapshot_from_rrsets,
    with_serial,
)

Name = dns.name.Name
MAX_RETRIES = 200
LIST_PAGE = 1000  # keys per read of the zone list; a page entering a zone's data jumps past it


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    """What `zone list` / `zone show` report about a zone."""

    config: ZoneConfig
    serial: int
    generation: int
    rrset_count: int  # -1 when not counted (list)
    revision: int  # etcd mod revision of the zone head
    transfers: tuple[TransferStatus, ...] = ()  # secondary zones (show): each node's copy
    progress: str = ""  # work under way on the node asked (an import), "" when none


class ZoneReads:
    """The read side of the zone repository."""

    _etcd: EtcdClient
    _keys: KeyLayout
    # zone -> (head mod revision, apex SOA, largest TTL): `soa_and_max_ttl` of that version
    _largest_ttl: dict[Name, tuple[int, dns.rrset.RRset, int]]

    # -- reads ------------------------------------------------------------
    async def _head(self, zone: Name) -> tuple[ZoneHead, KeyValue]:
        kv = await self._etcd.get(self._keys.head_key(zone))
        if kv is None:
            raise NotFound(f"zone {zone} does not exist (clusterctl zone list shows the zones)")
        return ZoneHead.from_json(kv.value), kv

    async def _config(self, zone: Name) -> ZoneConfig:
        kv = await self._etcd.get(self._keys.config_key(zone))
        if kv is None:
            raise NotFound(f"zone {zone} does not exist (clusterctl zone list shows the zones)")
        return ZoneConfig.from_json(kv.value)

    async def list_zones(self) -> list[ZoneInfo]:
        """Every zone's config and head, all at one revision, reading none of the zones'
        data beyond the page that reaches it (see the module docstring)."""
        for _ in range(3):
            try:
                configs, heads = await self._scan_settings()
            except Compacted:  # the pinned revision was compacted meanwhile: read again
                continue
            return [ZoneInfo(configs[zone], head.serial, head.generation, -1, rev)
                    for zone, (head, rev) in sorted(heads.items()) if zone in configs]
        raise Conflict("the zone list changed too often to be read; try again")

    async def _scan_settings(self) -> tuple[dict[Name, ZoneConfig],
                                            dict[Name, tuple[ZoneHead, int]]]:
        cursor = base = self._keys.zones_prefix().encode()
        end = prefix_range_end(cursor)
        revision = 0
        configs: dict[Name, ZoneConfig] = {}
        heads: dict[Name, tuple[ZoneHead, int]] = {}
        while True:
            page = await self._etcd.range(cursor, end, limit=LIST_PAGE, revision=revision)
            revision = revision or page.revision
            parsed = None
            for kv in page.kvs:
                parsed = self._keys.parse_zone_key(kv.key)
                if parsed is None:
                    continue
                if parsed.kind == "config":
                    configs[parsed.zone] = ZoneConfig.from_json(kv.value)
                elif parsed.kind == "head":
                    heads[parsed.zone] = (ZoneHead.from_json(kv.value), kv.mod_revision)
            if not page.more or not page.kvs:
                return configs, heads
            if parsed is not None and parsed.kind == "data":  # inside a zone's data: skip it
                # as the key spells its zone (a hand-written one need not be canonical)
                key = page.kvs[-1].key
                cursor = prefix_range_end(key[:key.index(b"/data/", len(base)) + 6])
            else:
                cursor = page.kvs[-1].key + b"\x00"

    async def get_zone(self, name: Name) -> ZoneInfo:
        config = await self._config(name)
        if config.secondary or config.file_backed:  # each node's copy instead
            head, kv = await self._head(name)
            kvs, _ = await self._etcd.range_all(self._keys.transfers_prefix(name))
            transfers = tuple(sorted((TransferStatus.from_json(k.value) for k in kvs),
                                     key=lambda t: t.node))
            return ZoneInfo(config, head.serial, head.generation, -1, kv.mod_revision,
                            transfers)
        for _ in range(MAX_RETRIES):
            head, kv = await self._head(name)
            count = await self._etcd.range(self._keys.data_prefix(name, head.generation),
                                           prefix=True, count_only=True)
            at = await self._etcd.range(self._keys.head_key(name), revision=count.revision)
            if at.kvs and at.kvs[0].mod_revision == kv.mod_revision:  # same version throughout
                return ZoneInfo(config, head.serial, head.generation, count.count,
                                kv.mod_revision)
        raise Conflict(f"zone {name} changed too often to be read; try again")

    async def _data_config(self, zone: Name) -> ZoneConfig:
        """The config of a zone whose data is in etcd; Refused for secondary and file zones."""
        config = await self._config(zone)
        if config.secondary or config.file_backed:  # say so, rather than "no SOA"
            where = f"; the file {config.path} on {config.owner}" if config.file_backed else ""
            raise Refused(f"zone {zone} is a {config.kind} zone: its data is not in etcd "
                          f"(transfer it from a node with AXFR{where})")
        return config

    async def snapshot(self, zone: Name) -> ZoneSnapshot:
        """The zone's content at one etcd revision (the current one: never a compacted one)."""
        config = await self._data_config(zone)
        for _ in range(MAX_RETRIES):
            head, kv = await self._head(zone)
            kvs, revision = await self._etcd.range_all(
                self._keys.data_prefix(zone, head.generation))
            at = await self._etcd.range(self._keys.head_key(zone), revision=revision)
            if at.kvs and at.kvs[0].mod_revision == kv.mod_revision:  # same version throughout
                return await asyncio.to_thread(self._build, config, kvs, head, revision)
        raise Conflict(f"zone {zone} changed too often to be read; try again")

    async def soa_and_max_ttl(self, zone: Name) -> tuple[dns.rrset.RRset, int]:
        """The apex SOA (at the head's serial) and the largest TTL of the current version,
        reading each stored value's TTL only (no zone-sized build), part by part: the
        zone is reduced as it arrives, never held whole."""
        head, head_kv = await self._head(zone)
        known = self._largest_ttl.get(zone)
        if known is not None and known[0] == head_kv.mod_revision:
            return known[1], known[2]  # the same version: its data has not changed
        soa_key = self._keys.rrset_key(zone, head.generation, zone, dns.rdatatype.SOA).encode()
        loop = asyncio.get_running_loop()
        parts: list[asyncio.Future[tuple[int, list[bytes]]]] = []

        def reduce(_index: int, kvs: Sequence[KeyValue]) -> None:
            # ~5 us a value (a JSON decode): in a thread, not on the control event loop
            parts.append(loop.run_in_executor(None, _ttl_and_soa, kvs, soa_key))

        try:
            await self._etcd.range_scan(self._keys.data_prefix(zone, head.generation), reduce)
        finally:  # no part's reduction is left behind, whatever the scan did
            done = await asyncio.gather(*parts, return_exceptions=True)
        for part in done:
            if isinstance(part, BaseException):
                raise part
        largest = max((ttl for ttl, _ in done), default=0)  # type: ignore[misc]
        soa_value = [v for _, values in done for v in values]  # type: ignore[misc]
        if not soa_value:
            raise NotFound(f"zone {zone} has no SOA at its apex")
        soa = with_serial(rrset_from_json(zone, dns.rdatatype.SOA, soa_value[0]), head.serial)
        # kept under the head read before the scan: a change meanwhile moves the head, so
        # whatever the scan saw is never returned for a later version
        self._largest_ttl[zone] = (head_kv.mod_revision, soa, largest)
        return soa, largest

    def _build(self, config: ZoneConfig, kvs: list[KeyValue], head: ZoneHead,
               revision: int) -> ZoneSnapshot:
        """The snapshot of `kvs` (zone-sized: the decode and the build run in a thread)."""
        return snapshot_from_rrsets(config, [self._rrset(kv) for kv in kvs], serial=head.serial,
                                    revision=revision, generation=head.generation)

    def _rrset(self, kv: KeyValue) -> dns.rrset.RRset:
        parsed = self._keys.parse_zone_key(kv.key)
        assert parsed is not None and parsed.owner is not None
        return rrset_from_json(parsed.owner, parsed.rdtype, kv.value)

    async def export_zone(self, name: Name) -> str:
        snap = await self.snapshot(name)
        return await asyncio.to_thread(_zone_text, snap)  # zone-sized: not on the loop

    async def list_records(
        self, zone: Name, owner: Name | None = None, rdtype: int | None = None
    ) -> list[dns.rrset.RRset]:
        """The zone's RRsets (of `owner` and `rdtype` when given), in canonical order; with
        an owner, only that owner's keys are read."""
        if owner is not None:
            return _in_order(await self._owner_rrsets(zone, owner), rdtype)
        snap = await self.snapshot(zone)  # the whole zone: filtered and sorted in a thread
        return await asyncio.to_thread(lambda: _in_order(snap.rrsets(), rdtype))

    async def _owner_rrsets(self, zone: Name, owner: Name) -> list[dns.rrset.RRset]:
        """The RRsets at `owner` in one version of the zone (the apex SOA at its serial)."""
        await self._data_config(zone)
        if not owner.is_subdomain(zone):
            return []
        for _ in range(MAX_RETRIES):
            head, kv = await self._head(zone)
            read = await self._etcd.txn(when=[], then=[
                Op.get(self._keys.head_key(zone)),
                Op.get(self._keys.owner_prefix(zone, head.generation, owner), prefix=True),
            ])
            at, found = read.responses[0], read.responses[1]
            assert isinstance(at, RangeResult) and isinstance(found, RangeResult)
            if at.kvs and at.kvs[0].mod_revision == kv.mod_revision:  # same version throughout
                rrsets = [self._rrset(k) for k in found.kvs]
                return [with_serial(r, head.serial) if r.rdtype == dns.rdatatype.SOA else r
                        for r in rrsets]
        raise Conflict(f"zone {zone} changed too often to be read; try again")


def _ttl_and_soa(kvs: Sequence[KeyValue], soa_key: bytes) -> tuple[int, list[bytes]]:
    """One part of a zone's data keys: its largest TTL and the SOA's value if it holds it."""
    return _max_ttl(kvs), [kv.value for kv in kvs if kv.key == soa_key]


def _max_ttl(kvs: Sequence[KeyValue]) -> int:
    return max((int(json.loads(kv.value)["ttl"]) for kv in kvs), default=0)


def _zone_text(snap: ZoneSnapshot) -> str:
    return snap.to_zone().to_text(relativize=False, want_origin=True)


def _in_order(rrsets: Iterable[dns.rrset.RRset], rdtype: int | None) -> list[dns.rrset.RRset]:
    """`rrsets` (of `rdtype` when given) in canonical order."""
    out = [r for r in rrsets if rdtype is None or r.rdtype == rdtype]
    out.sort(key=lambda r: (r.name.canonicalize().labels[::-1], r.rdtype))
    return out
