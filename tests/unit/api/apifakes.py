"""Test doubles for the admin API tests: an in-memory ZoneRepository and a fixed NodeDirectory.

Unit tests only (the lead's integration tests run the real repository on a
real etcd). The double keeps the repository's contract: one serial bump per
change, NotFound/Conflict/ValidationError where the real one raises them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.errors import Conflict, NotFound, ValidationError
from node.nodes.membership import NodeInfo
from node.zones.model import RecordChange, ZoneConfig, snapshot_from_text, with_serial
from node.zones.repository import ZoneInfo

Name = dns.name.Name
Key = tuple[Name, int]


@dataclass
class _Zone:
    config: ZoneConfig
    serial: int
    generation: int
    rrsets: dict[Key, dns.rrset.RRset] = field(default_factory=dict)


def _rrsets_from_text(name: Name, text: str) -> tuple[int, dict[Key, dns.rrset.RRset]]:
    snap = snapshot_from_text(text, name)
    return snap.serial, {(r.name, r.rdtype): r for r in snap.rrsets()}


class InMemoryZoneRepository:
    """Duck-typed `ZoneRepository`. Set `fail_with` to make every call raise it, or
    `hang` to an unset event to make `list_zones` wait for it."""

    def __init__(self) -> None:
        self.zones: dict[Name, _Zone] = {}
        self.revision = 1
        self.fail_with: BaseException | None = None
        self.hang: asyncio.Event | None = None

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def _zone(self, name: Name) -> _Zone:
        self._check()
        zone = self.zones.get(name)
        if zone is None:
            raise NotFound(f"zone {name} does not exist")
        return zone

    def _info(self, zone: _Zone, *, count: bool = True) -> ZoneInfo:
        return ZoneInfo(
            config=zone.config,
            serial=zone.serial,
            generation=zone.generation,
            rrset_count=len(zone.rrsets) if count else -1,
            revision=self.revision,
        )

    def _bump(self, zone: _Zone) -> int:
        zone.serial += 1
        self.revision += 1
        return zone.serial

    async def create_zone(
        self,
        name: Name,
        *,
        primary_ns: Name | None = None,
        admin_email: str | None = None,
        ns: tuple[Name, ...] = (),
        allow_transfer: tuple[str, ...] = (),
        text: str | None = None,
    ) -> ZoneInfo:
        self._check()
        if name in self.zones:
            raise Conflict(f"zone {name} already exists")
        config = ZoneConfig(name=name, allow_transfer=allow_transfer)
        if text:
            serial, rrsets = _rrsets_from_text(name, text)
        else:
            ns = ns or (dns.name.from_text("ns1", name),)
            mname = primary_ns or ns[0]
            rname = (admin_email or f"hostmaster@{name}").replace("@", ".").rstrip(".")
            soa = dns.rrset.from_text(
                name, 3600, "IN", "SOA", f"{mname} {rname}. 1 3600 900 604800 300"
            )
            nsset = dns.rrset.from_text_list(name, 3600, "IN", "NS", [n.to_text() for n in ns])
            serial, rrsets = 1, {(name, dns.rdatatype.SOA): soa, (name, dns.rdatatype.NS): nsset}
        zone = _Zone(config=config, serial=serial, generation=1, rrsets=rrsets)
        self.zones[name] = zone
        self.revision += 1
        return self._info(zone)

    async def delete_zone(self, name: Name) -> None:
        self._zone(name)
        del self.zones[name]
        self.revision += 1

    async def list_zones(self) -> list[ZoneInfo]:
        self._check()
        if self.hang is not None:
            await self.hang.wait()
        return [self._info(z, count=False) for z in self.zones.values()]

    async def get_zone(self, name: Name) -> ZoneInfo:
        return self._info(self._zone(name))

    async def update_config(self, config: ZoneConfig) -> ZoneInfo:
        zone = self._zone(config.name)
        zone.config = config
        self.revision += 1
        return self._info(zone)

    async def import_zone(self, name: Name, text: str, *, create: bool = True,
                          progress: object = None) -> ZoneInfo:
        self._check()
        zone = self.zones.get(name)
        if zone is None and not create:
            raise NotFound(f"zone {name} does not exist")
        serial, rrsets = _rrsets_from_text(name, text)
        if zone is None:
            zone = self.zones[name] = _Zone(ZoneConfig(name=name), serial, 1, rrsets)
        else:
            zone.rrsets, zone.generation = rrsets, zone.generation + 1
            self._bump(zone)
        self.revision += 1
        return self._info(zone)

    async def export_zone(self, name: Name) -> str:
        self._zone(name)
        return "".join(r.to_text() + "\n" for r in await self.list_records(name))

    async def add_records(self, zone_name: Name, rrset: dns.rrset.RRset) -> RecordChange:
        zone = self._zone(zone_name)
        key = (rrset.name, rrset.rdtype)
        others = {t for (o, t) in zone.rrsets if o == rrset.name and t != rrset.rdtype}
        if others and dns.rdatatype.CNAME in (others | {rrset.rdtype}):
            raise ValidationError(f"CNAME at {rrset.name} cannot coexist with other data")
        merged = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
        old = zone.rrsets.get(key)
        for rd in [*(old or ()), *rrset]:
            merged.add(rd, rrset.ttl)
        if old is not None and merged == old and merged.ttl == old.ttl:
            return RecordChange(zone.serial, changed=False)  # as the repository: no bump
        zone.rrsets[key] = merged
        return RecordChange(self._bump(zone))

    async def delete_records(
        self, zone_name: Name, owner: Name, rdtype: int, rrset: dns.rrset.RRset | None = None
    ) -> int:
        zone = self._zone(zone_name)
        current = zone.rrsets.get((owner, rdtype))
        if current is None or (rrset is not None and not any(rd in current for rd in rrset)):
            raise NotFound(f"no {dns.rdatatype.to_text(rdtype)} records at {owner} match")
        if rrset is None:
            del zone.rrsets[(owner, rdtype)]
        else:
            left = dns.rrset.RRset(owner, current.rdclass, rdtype)
            for rd in current:
                if rd not in rrset:
                    left.add(rd, current.ttl)
            if len(left):
                zone.rrsets[(owner, rdtype)] = left
            else:
                del zone.rrsets[(owner, rdtype)]
        return self._bump(zone)

    async def replace_rrset(self, zone_name: Name, rrset: dns.rrset.RRset) -> RecordChange:
        zone = self._zone(zone_name)
        old = zone.rrsets.get((rrset.name, rrset.rdtype))
        if old is not None and old == rrset and old.ttl == rrset.ttl:
            return RecordChange(zone.serial, changed=False)  # as the repository: no bump
        zone.rrsets[(rrset.name, rrset.rdtype)] = rrset
        return RecordChange(self._bump(zone))

    async def list_records(
        self, zone_name: Name, owner: Name | None = None, rdtype: int | None = None
    ) -> list[dns.rrset.RRset]:
        zone = self._zone(zone_name)
        out = []
        for (o, t), rrset in sorted(zone.rrsets.items()):
            if (owner is None or o == owner) and (rdtype is None or t == rdtype):
                out.append(with_serial(rrset, zone.serial) if t == dns.rdatatype.SOA else rrset)
        return out


class FixedNodeDirectory:
    """Duck-typed `NodeDirectory` returning a fixed list."""

    def __init__(self, nodes: list[NodeInfo]) -> None:
        self.nodes = nodes

    async def list_nodes(self) -> list[NodeInfo]:
        return list(self.nodes)


SAMPLE_NODES = [
    NodeInfo(
        id="dns-1",
        role="readonly",
        dns_addresses=("127.0.0.1:5354",),
        api_address="127.0.0.1:5302",
        metrics_address="127.0.0.1:9102",
        alive=False,
        version="0.1.0",
        started_at="2026-01-01T00:00:00Z",
        served_serials=(),
        ready=False,
    ),
    NodeInfo(
        id="dns-0",
        role="writable",
        dns_addresses=("127.0.0.1:5353", "[::1]:5353"),
        api_address="127.0.0.1:5301",
        metrics_address="127.0.0.1:9101",
        alive=True,
        version="0.1.0",
        started_at="2026-01-01T00:00:00Z",
        served_serials=(("example.test.", 7),),
        ready=True,
    ),
]


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()
