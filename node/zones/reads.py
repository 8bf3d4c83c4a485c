"""Reads of zones from etcd: list, show, snapshot, export, record listing (no writes).

`ZoneRepository` (the only writer of zone data) inherits these. Every read of a
zone's data proves it saw one version: the head read before and the head at the
data's revision must be the same, else it reads again (never at the head's mod
revision, which a quiet zone may have compacted away).

Building RRsets from a zone-sized read takes seconds: it runs in a thread, and
callers that need only the SOA and the largest TTL (signing checks, rollover
timing) use `soa_and_max_ttl`, which builds one RRset, not the zone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset

from node.errors import Conflict, NotFound, Refused
from node.store.client import EtcdClient, KeyValue
from node.store.keys import KeyLayout
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
        kvs, _ = await self._etcd.range_all(self._keys.zones_prefix())
        configs: dict[Name, ZoneConfig] = {}
        heads: dict[Name, tuple[ZoneHead, int]] = {}
        for kv in kvs:
            parsed = self._keys.parse_zone_key(kv.key)
            if parsed is None:
                continue
            if parsed.kind == "config":
                configs[parsed.zone] = ZoneConfig.from_json(kv.value)
            elif parsed.kind == "head":
                heads[parsed.zone] = (ZoneHead.from_json(kv.value), kv.mod_revision)
        out = []
        for zone, (head, rev) in sorted(heads.items()):
            if zone in configs:
                out.append(ZoneInfo(configs[zone], head.serial, head.generation, -1, rev))
        return out

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

    async def snapshot(self, zone: Name) -> ZoneSnapshot:
        """The zone's content at one etcd revision (the current one: never a compacted one)."""
        config = await self._config(zone)
        if config.secondary or config.file_backed:  # say so, rather than "no SOA"
            where = f"; the file {config.path} on {config.owner}" if config.file_backed else ""
            raise Refused(f"zone {zone} is a {config.kind} zone: its data is not in etcd "
                          f"(transfer it from a node with AXFR{where})")
        for _ in range(MAX_RETRIES):
            head, kv = await self._head(zone)
            kvs, revision = await self._etcd.range_all(
                self._keys.data_prefix(zone, head.generation))
            at = await self._etcd.range(self._keys.head_key(zone), revision=revision)
            if at.kvs and at.kvs[0].mod_revision == kv.mod_revision:  # same version throughout
                rrsets = await asyncio.to_thread(lambda kvs=kvs: [self._rrset(kv) for kv in kvs])
                return snapshot_from_rrsets(config, rrsets, serial=head.serial,
                                            revision=revision, generation=head.generation)
        raise Conflict(f"zone {zone} changed too often to be read; try again")

    async def soa_and_max_ttl(self, zone: Name) -> tuple[dns.rrset.RRset, int]:
        """The apex SOA (at the head's serial) and the largest TTL of the current version,
        reading each stored value's TTL only (no zone-sized build)."""
        head, _ = await self._head(zone)
        kvs, _ = await self._etcd.range_all(self._keys.data_prefix(zone, head.generation))
        soa_key = self._keys.rrset_key(zone, head.generation, zone, dns.rdatatype.SOA)
        soa_kv = next((kv for kv in kvs if kv.key == soa_key.encode()), None)
        if soa_kv is None:
            raise NotFound(f"zone {zone} has no SOA at its apex")
        soa = with_serial(rrset_from_json(zone, dns.rdatatype.SOA, soa_kv.value), head.serial)
        return soa, await asyncio.to_thread(_max_ttl, kvs)

    def _rrset(self, kv: KeyValue) -> dns.rrset.RRset:
        parsed = self._keys.parse_zone_key(kv.key)
        assert parsed is not None and parsed.owner is not None
        return rrset_from_json(parsed.owner, parsed.rdtype, kv.value)

    async def export_zone(self, name: Name) -> str:
        snap = await self.snapshot(name)
        return snap.to_zone().to_text(relativize=False, want_origin=True)

    async def list_records(
        self, zone: Name, owner: Name | None = None, rdtype: int | None = None
    ) -> list[dns.rrset.RRset]:
        snap = await self.snapshot(zone)
        out = []
        for rrset in snap.rrsets():
            if owner is not None and rrset.name != owner:
                continue
            if rdtype is not None and rrset.rdtype != rdtype:
                continue
            out.append(rrset)
        out.sort(key=lambda r: (r.name.canonicalize().labels[::-1], r.rdtype))
        return out


def _max_ttl(kvs: Sequence[KeyValue]) -> int:
    return max((int(json.loads(kv.value)["ttl"]) for kv in kvs), default=0)
