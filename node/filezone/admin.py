"""Operator actions on file-backed zones that any node takes: create, reload, the owner check.

`create` writes the zone's config (kind `file-backed`, owning node, path)
and a head with serial 0 (the serial is the file's); the owning node does
the rest. `reload` bumps the config's `reload` counter (the intent) and
waits, with a deadline, for the owning node to answer it in its
`transfers/<zone>/<owner>` record. `fixed_keymaster` says why the Key Master
of a file-backed zone cannot move.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import dns.name
import dns.rrset

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import Conflict, NotFound, Refused, ValidationError
from node.filezone.status import FileStatus
from node.nodes.membership import NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.model import (
    ZONE_KIND_ETCD,
    ZONE_KIND_FILE,
    RecordChange,
    ZoneConfig,
    ZoneHead,
)
from node.zones.reads import ZoneInfo

log = logging.getLogger(__name__)

Name = dns.name.Name


# (the new RRset or None, the other RRsets at its owner) -> raises ValidationError
Check = Callable[[dns.rrset.RRset | None, dict[int, dns.rrset.RRset]], None]


class FileChanges(Protocol):
    """Record changes of file-backed zones: made by the owner, sent to it by the others
    (`node.filezone.zones.FileZones.change`; the repository calls it)."""

    async def change(self, config: ZoneConfig, owner: Name, rdtype: int,
                     change: Callable[[dns.rrset.RRset | None], dns.rrset.RRset | None],
                     forward: Callable[[Any], RecordChange], check: Check) -> RecordChange: ...


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    state: str  # done | unchanged | failed | pending
    serial: int
    message: str


class FileZoneAdmin:
    def __init__(self, etcd: EtcdClient, layout: KeyLayout, clock: Clock = SYSTEM_CLOCK) -> None:
        self._etcd = etcd
        self._keys = layout
        self._clock = clock

    async def create(self, name: Name, node: str, path: str,
                     allow_transfer: tuple[str, ...] = ()) -> ZoneInfo:
        name = name.canonicalize()
        if not path.startswith("/"):
            raise ValidationError(f"--file {path!r}: give the absolute path of the master file "
                                  f"on node {node}")
        nodes = {n.id: n for n in await NodeDirectory(self._etcd, self._keys).list_nodes()}
        target = nodes.get(node)
        if target is None:
            raise NotFound(f"--node {node}: no such node is registered (clusterctl nodes)")
        if target.role != "writable":
            raise Refused(f"--node {node}: a {target.role} node cannot own a zone")
        config = ZoneConfig(name=name, kind=ZONE_KIND_FILE, owner=node, path=path,
                            allow_transfer=allow_transfer)
        head = ZoneHead(serial=0, generation=0, time=int(self._clock.time()))
        result = await self._etcd.txn(
            when=[Compare.version(self._keys.head_key(name)) == 0],
            then=[Op.put(self._keys.config_key(name), config.to_json()),
                  Op.put(self._keys.head_key(name), head.to_json())])
        if not result.succeeded:
            raise Conflict(f"zone {name} already exists")
        log.info("file-backed zone %s created: %s on %s", name, path, node)
        return ZoneInfo(config, 0, 0, -1, result.revision)

    async def _config(self, zone: Name) -> tuple[ZoneConfig, int]:
        kv = await self._etcd.get(self._keys.config_key(zone))
        if kv is None:
            raise NotFound(f"zone {zone} does not exist (clusterctl zone list shows the zones)")
        return ZoneConfig.from_json(kv.value), kv.mod_revision

    async def reload(self, zone: Name, timeout: float = 30.0) -> ReloadOutcome:
        zone = zone.canonicalize()
        config, rev = await self._config(zone)
        if not config.file_backed:
            article = "an" if config.kind == ZONE_KIND_ETCD else "a"  # "an etcd zone"
            raise Refused(f"zone {zone} is {article} {config.kind} zone: only a file-backed "
                          "zone is reloaded from its file")
        wanted = replace(config, reload=config.reload + 1)
        res = await self._etcd.txn(
            when=[Compare.mod_revision(self._keys.config_key(zone)) == rev],
            then=[Op.put(self._keys.config_key(zone), wanted.to_json())])
        if not res.succeeded:
            raise Conflict(f"zone {zone}'s settings changed meanwhile; try again")
        key = self._keys.transfer_status_key(zone, config.owner)
        deadline = self._clock.monotonic() + timeout
        while True:
            kv = await self._etcd.get(key)
            status = FileStatus.from_json(kv.value) if kv is not None else None
            if status is not None and status.reload >= wanted.reload and status.reload_state:
                return ReloadOutcome(status.reload_state, status.serial or 0, status.message)
            if self._clock.monotonic() >= deadline:
                return ReloadOutcome("pending", status.serial or 0 if status else 0,
                                     f"the owning node {config.owner} has not answered yet "
                                     f"(clusterctl zone show {zone})")
            await asyncio.sleep(0.05)

    async def fixed_keymaster(self, zone: Name) -> str:
        """Why the zone's Key Master role cannot move, or "" when it can."""
        kv = await self._etcd.get(self._keys.config_key(zone))
        if kv is None:
            return ""
        config = ZoneConfig.from_json(kv.value)
        if not config.file_backed:
            return ""
        return (f"zone {zone} is file-backed: its only primary and fixed Key Master is "
                f"{config.owner}, which holds the master file and the keys; the role cannot "
                "be transferred or seized")
