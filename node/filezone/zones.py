"""This node's part in every file-backed zone: its owner, or a secondary of its owner.

The zone's config (`kind: file-backed`, `owner`, `path`) comes from etcd
through the replica (`want`). On the owning node an `OwnedZone` loads,
signs, serves and writes the file; one loop per zone applies what the config
and the zone's DNSSEC settings ask (sign, unsign, `zone reload`, SIGHUP) and
refreshes signatures when due. Its answers go to `transfers/<zone>/<owner>`
(`FileStatus`), which `zone reload` waits for. On every other node the zone is
a secondary of the owner's advertised DNS address (`SecondaryZones`: AXFR,
IXFR, NOTIFY from the owner), so only the owner ever signs it.

Changes reach the owner: UPDATE through `route` (the owner applies it, the
others forward the message as read-only nodes do), `record` verbs through
`change` (others call the owner's admin API). Never writes zone data to etcd.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import dns.name
import dns.rrset

from node.api.errors import ApiUnreachable
from node.clock import SYSTEM_CLOCK, Clock
from node.errors import NodeError, NotFound, Refused, ValidationError
from node.events import Event, emit
from node.filezone.admin import Check
from node.filezone.local import LocalZoneState
from node.filezone.owner import OwnedZone, ReloadResult
from node.filezone.status import FileStatus
from node.nodes.membership import NodeDirectory, NodeInfo
from node.secondary.zones import SecondaryZones
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecConfig
from node.zones.model import RecordChange, ZoneConfig, ZoneSnapshot

log = logging.getLogger(__name__)

Name = dns.name.Name
RETRY = 5.0  # seconds: a failed load, or an owner not yet registered, is tried again
Change = Callable[[dns.rrset.RRset | None], dns.rrset.RRset | None]


@dataclass(slots=True)
class _Zone:
    config: ZoneConfig
    owned: OwnedZone | None = None
    started: bool = False
    reloaded: int = 0  # the config's `reload` counter last answered
    sighup: bool = False
    primary: str = ""  # non-owner: the owner's DNS address followed
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


def _reachable(address: str) -> bool:
    """False for a wildcard listen address (0.0.0.0, ::): nobody else can reach it there."""
    host = address.rpartition(":")[0].strip("[]")
    try:
        return bool(host) and not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return True  # a host name


def _comparable(c: DnssecConfig | None) -> DnssecConfig | None:
    return None if c is None else c.with_(status="signed", requested_by="")


class FileZones:
    """Owner or secondary, per file-backed zone, for this node."""

    def __init__(self, *, node_id: str, etcd: EtcdClient, layout: KeyLayout,
                 directory: NodeDirectory, local: LocalZoneState | None,
                 publish: Callable[[ZoneSnapshot], Awaitable[None]], hold: Callable[[Name], None],
                 secondaries: SecondaryZones,
                 api_call: Callable[[str, Callable[[Any], RecordChange]], Awaitable[RecordChange]],
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._me = node_id
        self._etcd = etcd
        self._keys = layout
        self._directory = directory
        self._local = local
        self._publish = publish
        self._hold = hold
        self._secondaries = secondaries
        self._api_call = api_call  # (owner's API address, client method) -> its outcome
        self._clock = clock
        self._zones: dict[Name, _Zone] = {}
        self._revision = 0

    # -- what the replica hands on ----------------------------------------------------
    def is_file_zone(self, zone: Name) -> bool:
        return zone in self._zones

    def want(self, config: ZoneConfig) -> None:
        z = self._zones.get(config.name)
        if z is None:
            z = self._zones[config.name] = _Zone(config, reloaded=config.reload)
            if config.owner == self._me:
                self._hold(config.name)  # SERVFAIL until the file is loaded
        z.config = config
        z.wake.set()
        if z.task is None or z.task.done():
            z.task = asyncio.get_running_loop().create_task(self._follow(z),
                                                            name=f"file zone {config.name}")

    def forget(self, zone: Name) -> bool:
        z = self._zones.pop(zone, None)
        if z is None:
            return False
        if z.task is not None:
            z.task.cancel()
        return True  # a copy followed as a secondary is forgotten by the caller

    def sighup(self) -> None:
        """SIGHUP: every zone this node owns re-reads its file."""
        for z in self._zones.values():
            if z.owned is not None:
                z.sighup = True
                z.wake.set()

    # -- changes ------------------------------------------------------------------
    def route(self, zone: Name) -> OwnedZone | str | None:
        """For UPDATE: the zone here (owner), the owner's name to forward to, or None."""
        z = self._zones.get(zone)
        if z is None:
            return None
        return z.owned if z.owned is not None and z.started else z.config.owner

    async def owner_addresses(self, owner: str) -> list[str]:
        return [a for n in await self._directory.list_nodes() if n.id == owner and n.alive
                for a in n.dns_addresses if _reachable(a)]

    async def change(self, config: ZoneConfig, owner: Name, rdtype: int, change: Change,
                     forward: Callable[[Any], RecordChange], check: Check) -> RecordChange:
        """A `record` verb on a file-backed zone: applied here by the owner, else sent to the
        owner's admin API."""
        z = self._zones.get(config.name)
        if config.owner == self._me:
            if z is None or z.owned is None or not z.started:
                raise Refused(f"zone {config.name} is not loaded on {self._me} yet "
                              f"({config.path}); try again")
            return await z.owned.edit(owner, rdtype, change, check)
        node = await self._node(config.owner)
        if not _reachable(node.api_address):
            raise Refused(f"the owning node {config.owner} advertises no reachable admin API "
                          f"address ({node.api_address}): change records there")
        emit(Event.FILE_ZONE_FORWARDED, zone=config.name, to=config.owner, how="admin API")
        try:
            return await self._api_call(node.api_address, forward)
        except ApiUnreachable as exc:  # the owner, not the node the operator asked, is down
            raise Refused(f"the owning node {config.owner} did not answer at "
                          f"{node.api_address} ({exc}); a file-backed zone changes only there: "
                          f"if the request reached it the change may still land (dig, "
                          f"clusterctl zone show {config.name})") from exc

    async def _node(self, node_id: str) -> NodeInfo:
        for n in await self._directory.list_nodes():
            if n.id == node_id:
                if not n.alive:
                    raise Refused(f"the owning node {node_id} is offline: a file-backed zone "
                                  "changes only there")
                return n
        raise NotFound(f"the owning node {node_id} is not registered")

    # -- the per-zone loop ----------------------------------------------------------
    async def _follow(self, z: _Zone) -> None:
        zone = z.config.name
        while self._zones.get(zone) is z:
            z.wake.clear()
            try:
                delay = await (self._own(z) if z.config.owner == self._me else self._secondary(z))
            except Exception as exc:  # the task boundary: this zone retries, others go on
                log.exception("file-backed zone %s failed", zone)
                emit(Event.TASK_CRASHED, level=logging.ERROR, task="file-zone", zone=zone,
                     error=repr(exc))
                delay = RETRY
            if delay > 0 and not z.wake.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(None if math.isinf(delay) else delay):
                        await z.wake.wait()

    def _next_revision(self) -> int:
        self._revision += 1
        return self._revision

    async def _secondary(self, z: _Zone) -> float:
        addresses = await self.owner_addresses(z.config.owner)
        if not addresses:
            if z.primary != "-":
                emit(Event.FILE_ZONE_OWNER_UNKNOWN, level=logging.WARNING, zone=z.config.name,
                     owner=z.config.owner)
                z.primary = "-"
            return RETRY
        primary = addresses[0]
        z.primary = primary
        self._secondaries.want(replace(z.config, primaries=(primary,)))
        return RETRY * 6  # look again now and then: the owner may move to another address

    async def _served_config(self, config: ZoneConfig) -> ZoneConfig:
        """The owner serves the zone with the other nodes allowed to transfer it and NOTIFYed."""
        peers = [a for n in await self._directory.list_nodes() if n.id != self._me
                 for a in n.dns_addresses if _reachable(a)]
        hosts = sorted({a.rpartition(":")[0].strip("[]") for a in peers})
        cidrs = tuple(f"{h}/{128 if ':' in h else 32}" for h in hosts)
        return replace(config, allow_transfer=config.allow_transfer + cidrs,
                       notify=config.notify + tuple(sorted(set(peers))))

    async def _dnssec(self, zone: Name) -> tuple[DnssecConfig | None, int]:
        kv = await self._etcd.get(self._keys.dnssec_key(zone))
        return (DnssecConfig.from_json(kv.value), kv.mod_revision) if kv else (None, 0)

    async def _own(self, z: _Zone) -> float:
        config, zone = z.config, z.config.name
        dnssec, rev = await self._dnssec(zone)
        if dnssec is not None and dnssec.status == "unsigning":
            dnssec = None
        if z.owned is None:
            z.owned = OwnedZone(config, local=self._local, publish=self._publish,
                                served_config=self._served_config,
                                revisions=self._next_revision, clock=self._clock)
        owned = z.owned
        settings_changed = replace(owned.config, reload=0) != replace(config, reload=0)
        owned.config = config
        if settings_changed and z.started:  # `zone update`: served now, not at the next serial
            async with owned.lock:
                await owned.reconfigure()
        result: ReloadResult | None = None
        if not z.started:
            try:
                await owned.start(dnssec)
            except (OSError, NodeError) as exc:
                emit(Event.FILE_ZONE_LOAD_FAILED, level=logging.ERROR, zone=zone,
                     path=config.path, error=str(exc))
                await self._write_status(z, error=f"{config.path}: {exc}")
                return RETRY
            z.started = True
            if config.reload != z.reloaded:  # asked before the load: the load answers it
                result = ReloadResult("done", owned.serial, f"loaded serial {owned.serial}")
        elif _comparable(dnssec) != _comparable(owned.dnssec):
            async with owned.lock:
                await owned.set_dnssec(dnssec)
            if dnssec is None and self._local is not None:
                self._local.drop_keys(zone)
        if z.sighup or config.reload != z.reloaded:
            z.sighup = False
            async with owned.lock:
                result = await owned.reload()
        if dnssec is not None and dnssec.status == "keygen" and owned.keyset:
            await self._etcd.txn(when=[Compare.mod_revision(self._keys.dnssec_key(zone)) == rev],
                                 then=[Op.put(self._keys.dnssec_key(zone),
                                              dnssec.with_(status="signed").to_json())])
        if result is not None:
            z.reloaded = config.reload
        await self._write_status(z, result=result)
        if owned.next_refresh is not None:
            due = owned.next_refresh - self._clock.now().timestamp()
            if due <= 0:
                await owned.bump()
                return 0
            return due
        return math.inf

    async def _write_status(self, z: _Zone, *, result: ReloadResult | None = None,
                            error: str = "") -> None:
        owned = z.owned
        status = FileStatus(node=self._me, serial=owned.serial if owned and z.started else None,
                            path=z.config.path, serving=z.started,
                            at=self._clock.now().replace(microsecond=0).isoformat(),
                            error=error, reload=z.reloaded,
                            reload_state=result.state if result else "",
                            message=result.message if result else "")
        try:
            await self._etcd.txn(
                when=[Compare.version(self._keys.config_key(z.config.name)) > 0],
                then=[Op.put(self._keys.transfer_status_key(z.config.name, self._me),
                             status.to_json())])
        except NodeError as exc:
            log.warning("cannot record the status of file-backed zone %s: %s",
                        z.config.name, exc)


def check_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValidationError(f"--file {path!r}: give the absolute path of the master file "
                              "on the owning node")
    return path
