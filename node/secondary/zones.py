"""This node's copies of the secondary zones of outside primaries: one loop per zone.

Every node, writable or read-only, transfers each secondary zone itself
(`transfer.refresh` in a worker thread: AXFR first, IXFR after) from the
zone's primaries in the order listed, with the zone's transfer TSIG key when
it names one. When to refresh, and whether the copy may still be served, is
`node.zones.refresh.decide` on the SOA timers of the copy held. A NOTIFY from
a listed primary wakes the zone at once; NOTIFY from any other address is
refused. A new copy goes to the same answer path as every zone (`publish`, a
`ZoneSnapshot`, RRSIGs as received); at expire the zone is held (SERVFAIL)
with a `ZONE_EXPIRED` event until a refresh succeeds again.

What the node holds (serial, primary, IXFR/AXFR, served or expired, last
error) is written to `transfers/<zone>/<node>` for `clusterctl zone show`
(`TransferStatusWriter`) and kept in `stats()` for metrics. Never writes zone data.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import dns.exception
import dns.name
import dns.rdatatype
import dns.tsig

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import NodeError
from node.events import Event, emit
from node.secondary.transfer import InboundZone, Refreshed, refresh
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.model import TransferStatus, ZoneConfig, ZoneSnapshot, parse_primary
from node.zones.refresh import Observation, Timers, decide

log = logging.getLogger(__name__)

Name = dns.name.Name
_ERRORS = (dns.exception.DNSException, OSError, EOFError, ValueError)
KeyLookup = Callable[[Name], Awaitable[dns.tsig.Key | None]]


@dataclass(slots=True)
class ZoneStats:
    """Per zone, for metrics: what is served and how the transfers went."""

    serial: int | None = None  # the serial held (None: nothing transferred yet)
    primary: str = ""  # where it came from
    serving: bool = False
    transfers: dict[tuple[str, str], int] = field(default_factory=dict)  # (primary, method)
    failures: int = 0  # failed refreshes


@dataclass(slots=True)
class _Zone:
    config: ZoneConfig
    copy: InboundZone
    snapshot: ZoneSnapshot | None = None
    timers: Timers | None = None
    succeeded_at: float | None = None
    attempted_at: float | None = None
    failed: bool = False
    notified: bool = False
    serving: bool = False
    expired: bool = False  # ZONE_EXPIRED emitted, not served since
    error: str = ""
    status: TransferStatus | None = None  # the last transfer (serial, primary, method, at)
    written: TransferStatus | None = None  # as last written to etcd
    stats: ZoneStats = field(default_factory=ZoneStats)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class TransferStatusWriter:
    """Writes this node's `transfers/<zone>/<node>` record (best effort: logged on failure)."""

    def __init__(self, etcd: EtcdClient, layout: KeyLayout, node_id: str) -> None:
        self._etcd = etcd
        self._keys = layout
        self.node_id = node_id

    async def write(self, zone: Name, status: TransferStatus) -> None:
        """Only while the zone exists: a write racing `zone delete` leaves no orphan."""
        try:
            await self._etcd.txn(
                when=[Compare.version(self._keys.config_key(zone)) > 0],
                then=[Op.put(self._keys.transfer_status_key(zone, self.node_id),
                             status.to_json())])
        except NodeError as exc:
            log.warning("cannot record the transfer status of %s: %s", zone, exc)


def _from_primary(client: str, primaries: tuple[str, ...]) -> bool:
    """True if the address `client` is one of the primaries' addresses (any port)."""
    try:
        addr = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(ipaddress.ip_address(parse_primary(p)[0]) == addr for p in primaries)


class SecondaryZones:
    """Keeps this node's copy of every secondary zone, transferred from outside primaries."""

    def __init__(self, *, publish: Callable[[ZoneSnapshot], Awaitable[None]],
                 hold: Callable[[Name], None], forget: Callable[[Name], object],
                 tsig_key: KeyLookup, status: TransferStatusWriter | None = None,
                 on_served: Callable[[str, int | None], None] | None = None,
                 timeout: float = 5.0, first_retry: float = 2.0,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._publish = publish
        self._hold = hold
        self._forget = forget
        self._tsig_key = tsig_key
        self._status = status
        self._on_served = on_served
        self._timeout = timeout
        self._first_retry = first_retry
        self._clock = clock
        self._zones: dict[Name, _Zone] = {}
        self._revision = 0  # of the snapshots published: the table keeps them in order

    def is_secondary(self, zone: Name) -> bool:
        return zone in self._zones

    def stats(self) -> dict[Name, ZoneStats]:
        return {zone: z.stats for zone, z in self._zones.items()}

    def want(self, config: ZoneConfig) -> None:
        """The zone's config, as etcd has it now: start following it, or follow the change."""
        z = self._zones.get(config.name)
        if z is None:
            z = self._zones[config.name] = _Zone(config, InboundZone(config.name))
            self._hold(config.name)  # SERVFAIL until the first transfer
        elif z.config != config:
            z.config, z.notified = config, True  # new primaries or key: refresh now
        z.wake.set()
        if z.task is None or z.task.done():
            z.task = asyncio.get_running_loop().create_task(self._follow(z),
                                                            name=f"secondary {config.name}")

    def forget(self, zone: Name) -> bool:
        """The zone is gone (or no longer secondary); False if it was not one."""
        z = self._zones.pop(zone, None)
        if z is None:
            return False
        if z.task is not None:
            z.task.cancel()
        return True

    def notify(self, zone: Name, client: str) -> bool | None:
        """NOTIFY for `zone` from `client`: True (accepted, refresh now), False (not a listed
        primary: refuse it), None (not a secondary zone here)."""
        z = self._zones.get(zone)
        if z is None:
            return None
        if not _from_primary(client, z.config.primaries):
            emit(Event.NOTIFY_REFUSED, level=logging.WARNING, zone=zone, client=client,
                 primaries=list(z.config.primaries))
            return False
        emit(Event.NOTIFY_ACCEPTED, zone=zone, client=client)
        z.notified = True
        z.wake.set()
        return True

    # -- the per-zone loop ----------------------------------------------------------
    async def _follow(self, z: _Zone) -> None:
        zone = z.config.name
        while self._zones.get(zone) is z:
            z.wake.clear()
            try:
                next_at = await self._step(z)
            except Exception as exc:  # the task boundary: this zone retries, others go on
                log.exception("secondary zone %s failed", zone)
                emit(Event.TASK_CRASHED, level=logging.ERROR, task="secondary-zone", zone=zone,
                     error=repr(exc))
                next_at = self._clock.monotonic() + self._first_retry
            delay = next_at - self._clock.monotonic()
            if delay > 0 and not z.wake.is_set():
                try:
                    async with asyncio.timeout(None if math.isinf(delay) else delay):
                        await z.wake.wait()
                except TimeoutError:
                    pass

    def _observe(self, z: _Zone) -> Observation:
        return Observation(timers=z.timers, succeeded_at=z.succeeded_at,
                           attempted_at=z.attempted_at, failed=z.failed, notified=z.notified,
                           first_retry=self._first_retry)

    async def _step(self, z: _Zone) -> float:
        """Decide, refresh if due, serve or hold; returns when to decide again."""
        d = decide(self._observe(z), self._clock.monotonic())
        if d.refresh:
            z.notified = False
            await self._refresh(z)
            d = decide(self._observe(z), self._clock.monotonic())
        await self._serve_or_hold(z, d.serve)
        return d.next_at

    async def _refresh(self, z: _Zone) -> None:
        zone, errors = z.config.name, []
        # failed until it succeeds: a crash in here is retried after `retry`, not `refresh`
        z.attempted_at, z.failed = self._clock.monotonic(), True
        key: dns.tsig.Key | None = None
        if z.config.tsig_key:
            try:
                key = await self._tsig_key(dns.name.from_text(z.config.tsig_key))
            except NodeError as exc:
                errors.append(f"cannot read the transfer TSIG key {z.config.tsig_key}: {exc}")
            else:
                if key is None:
                    errors.append(f"no transfer TSIG key {z.config.tsig_key}")
        for primary in z.config.primaries if not errors else ():
            host, port = parse_primary(primary)
            try:
                got = await asyncio.to_thread(refresh, z.copy, host, port, key, self._timeout)
            except _ERRORS as exc:
                errors.append(f"{primary}: {type(exc).__name__}: {exc}".rstrip(": "))
                continue
            await self._succeeded(z, primary, got)
            return
        z.stats.failures += 1
        error = "; ".join(errors)
        if error != z.error:  # once per kind of failure, not once per retry
            emit(Event.ZONE_REFRESH_FAILED, level=logging.WARNING, zone=zone, error=error,
                 serial=z.stats.serial)
        z.error = error
        await self._write_status(z)

    async def _succeeded(self, z: _Zone, primary: str, got: Refreshed) -> None:
        zone = z.config.name
        z.succeeded_at, z.failed, z.error = self._clock.monotonic(), False, ""
        if got.nodes is not None:
            soa = got.nodes[zone][dns.rdatatype.SOA][0]
            z.timers = Timers(refresh=soa.refresh, retry=soa.retry,  # type: ignore[attr-defined]
                              expire=soa.expire)  # type: ignore[attr-defined]
            self._revision += 1
            z.snapshot = ZoneSnapshot(config=z.config, serial=got.primary_serial,
                                      revision=self._revision, nodes=got.nodes, changed=None,
                                      signed=got.signed)
            key = (primary, got.method)
            z.stats.transfers[key] = z.stats.transfers.get(key, 0) + 1
            z.stats.serial, z.stats.primary = got.primary_serial, primary
            emit(Event.ZONE_TRANSFERRED_IN, zone=zone, serial=got.primary_serial,
                 primary=primary, method=got.method, signed=got.signed)
            await self._publish(z.snapshot)
            z.serving = True
            if self._on_served is not None:
                self._on_served(zone.to_text(), got.primary_serial)
            z.status = replace(z.status or TransferStatus(node=self._node_id()),
                               serial=got.primary_serial, primary=primary, method=got.method,
                               at=self._clock.now().replace(microsecond=0).isoformat())
        await self._write_status(z)

    async def _serve_or_hold(self, z: _Zone, serve: bool) -> None:
        zone = z.config.name
        if serve and not z.serving and z.snapshot is not None:
            self._revision += 1
            z.snapshot = replace(z.snapshot, revision=self._revision)
            await self._publish(z.snapshot)
            z.serving = True
            if self._on_served is not None:
                self._on_served(zone.to_text(), z.snapshot.serial)
        elif not serve and z.serving:
            self._hold(zone)
            self._forget(zone)  # no expiry warnings for a copy that is not served
            z.serving = False
            if self._on_served is not None:
                self._on_served(zone.to_text(), None)
        if z.serving and z.expired:
            emit(Event.ZONE_REFRESHED, zone=zone, serial=z.stats.serial)
            z.expired = False
        elif not z.serving and not z.expired and z.snapshot is not None:
            emit(Event.ZONE_EXPIRED, level=logging.ERROR, zone=zone, serial=z.stats.serial,
                 expire=z.timers.expire if z.timers else None, error=z.error)
            z.expired = True
        z.stats.serving = z.serving
        await self._write_status(z)

    def _node_id(self) -> str:
        return self._status.node_id if self._status is not None else ""

    async def _write_status(self, z: _Zone) -> None:
        status = replace(z.status or TransferStatus(node=self._node_id()),
                         serving=z.serving, error=z.error)
        if status == z.written:
            return
        z.written = status
        if self._status is not None:
            await self._status.write(z.config.name, status)
