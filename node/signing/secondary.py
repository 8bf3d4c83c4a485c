"""Read-only nodes: signed zones pulled by zone transfer from the writable nodes, never stale.

A read-only node never holds the KEK (the RODC of the model), so it cannot
sign. For a signed zone it acts as a secondary (RFC 1034 §4.3.5, RFC 1996):

- The *current* serial is the one etcd says (the replica's latest version);
  a new one wakes the zone at once, like a NOTIFY.
- A refresh asks every live writable node for its signed SOA serial, then
  transfers (AXFR, signatures included) from one that has the current serial
  — same host first, then by node id — never from the first that answers.
  `[readonly] primaries` pins the sources: only those nodes, in that order
  (the model's RODC pointed at another primary). Nodes are reached at the
  addresses they advertise (`node/nodes/advertise.py`), never a wildcard.
  With `tls` (`readonly.transfer_tls`) the probe and the transfer go over TLS
  (XoT, RFC 9103) to the nodes' advertised DNS-over-TLS addresses, their
  certificates verified; nodes that advertise none are not asked.
  While none has it, a newer signed serial than the one held is taken (an
  older copy is better than none), and the failure is retried.
- The copy is held (SERVFAIL, the node not ready, a `SECONDARY_EXPIRED`
  event, the reason in `status()` and `clusterctl nodes`) when the SOA
  expire has passed since the last successful refresh, or when its earliest
  RRSIG is deep inside the refresh margin (`freshness.judge`). A successful
  refresh brings it back (`SECONDARY_RESUMED`).
- If the writable nodes do not allow transfers, the zone is never served
  (SERVFAIL, an `XFR_FAILED` error event, the reason kept for `status()`).
- With `[readonly] transfer_key`, every AXFR is TSIG-signed with that
  transfer key (read from etcd's `tsig/transfer/`, which read-only nodes may
  read) and every answer message must verify with it, so writable nodes can
  allow this node by key (`allow_transfer_keys`) instead of by address.

`status(zone)` gives the served serial and the served copy's earliest RRSIG
expiry, for metrics and expiry warnings.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.xfr
import dns.zone

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import NodeError
from node.events import Event, emit
from node.nodes.membership import NodeDirectory, NodeInfo
from node.signing.freshness import Copy, SoaTimers, earliest_rrsig_expiration, judge
from node.signing.pull import signed_serial, transfer
from node.zones.model import NodeMap, ZoneSnapshot
from node.zones.serial import serial_gt, serial_lt

log = logging.getLogger(__name__)

Name = dns.name.Name
T = dns.rdatatype
_ERRORS = (dns.exception.DNSException, OSError, EOFError, ValueError)


def _host_port(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class _Probe:
    node: NodeInfo
    serial: int | None  # the signed serial it serves; None with `error`
    error: str = ""


@dataclass(slots=True)
class _Zone:
    want: ZoneSnapshot  # the replica's latest version: its serial is the current one
    copy: ZoneSnapshot | None = None  # the transferred copy held here
    earliest: int | None = None  # the copy's earliest RRSIG expiry (unix time)
    refreshed_at: float | None = None  # monotonic: last successful refresh
    serving: bool = False  # the DNS table serves `copy`
    held: str = ""  # why the copy is held (stale), "" if not
    failure: str = ""  # why the last refresh failed
    failing_since: float | None = None  # monotonic
    problem: str | None = None  # as reported (event, `clusterctl nodes`)
    reported: bool = False  # XFR_FAILED emitted for the current run of failures
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def timers(self) -> SoaTimers:
        soa = self.want.nodes[self.want.origin][T.SOA][0]
        return SoaTimers(refresh=soa.refresh, retry=soa.retry,  # type: ignore[attr-defined]
                         expire=soa.expire)  # type: ignore[attr-defined]

    def margin(self) -> int:
        return self.want.dnssec.config.refresh if self.want.dnssec is not None else 0


class SecondaryLoader:
    """Keeps a read-only node's copy of each signed zone, transferred from writable nodes."""

    def __init__(self, *, me: NodeInfo, directory: NodeDirectory,
                 publish: Callable[[ZoneSnapshot], object], hold: Callable[[Name], None],
                 on_readiness: Callable[[], None],
                 on_problem: Callable[[str, str | None], None] | None = None,
                 on_served: Callable[[str, int | None], None] | None = None,
                 timeout: float = 10.0, soa_timeout: float = 2.0,
                 retry: float = 0.5, give_up: float = 10.0, clock: Clock = SYSTEM_CLOCK,
                 tls: ssl.SSLContext | None = None, tls_name: str = "",
                 transfer_key: Name | None = None,
                 keyring: Callable[[Name], dns.tsig.Key | None] | None = None,
                 primaries: tuple[str, ...] = ()) -> None:
        self._me = me
        self._primaries = primaries  # [readonly] primaries: pinned sources, in this order
        self._tls = tls  # XoT: transfers and SOA probes to the nodes' DNS-over-TLS address
        self._tls_name = tls_name
        self._transfer_key = transfer_key  # [readonly] transfer_key: signs our AXFRs
        self._keyring = keyring
        self._dir = directory
        self._publish = publish
        self._hold = hold
        self._on_readiness = on_readiness
        self._on_problem = on_problem
        self._on_served = on_served  # the serial served (None: held), for `clusterctl nodes`
        self._timeout = timeout
        self._soa_timeout = soa_timeout
        self._retry = retry
        self._give_up = give_up
        self._clock = clock
        self._zones: dict[Name, _Zone] = {}

    @property
    def problems(self) -> dict[Name, str]:
        return {zone: z.problem for zone, z in self._zones.items() if z.problem}

    def waiting(self) -> bool:
        """True while a signed zone is not served here: not transferred yet, or held stale."""
        return any(not z.serving for z in self._zones.values())

    def status(self, zone: Name) -> dict[str, object]:
        """The served copy: serial, earliest RRSIG expiry (unix), held; {} if not signed."""
        z = self._zones.get(zone)
        if z is None:
            return {}
        serving = z.serving and z.copy is not None
        return {
            "signed_serial": None,  # never signed here
            "served_serial": z.copy.serial if serving and z.copy is not None else None,
            "earliest_expiration": (z.earliest or 0) if serving else 0,
            "held": not serving,
            "reason": z.held,
        }

    def earliest_expiration(self, zone: Name) -> int | None:
        """The earliest RRSIG expiry (unix time) of the copy served for `zone`, if served."""
        z = self._zones.get(zone)
        return z.earliest if z is not None and z.serving else None

    def want(self, snap: ZoneSnapshot) -> None:
        """The replica saw this version of a signed zone: refresh now (like a NOTIFY)."""
        z = self._zones.get(snap.origin)
        if z is None:
            z = self._zones[snap.origin] = _Zone(snap)
            self._hold(snap.origin)  # SERVFAIL until a signed copy is here
        z.want = snap
        z.wake.set()
        if z.task is None or z.task.done():
            z.task = asyncio.get_running_loop().create_task(self._follow(z))

    def forget(self, zone: Name) -> None:
        z = self._zones.pop(zone, None)
        if z is None:
            return
        if z.task is not None:
            z.task.cancel()
        if z.problem is not None and self._on_problem is not None:
            self._on_problem(zone.to_text(), None)

    # -- the per-zone loop: refresh, judge, wait -----------------------------------
    async def _follow(self, z: _Zone) -> None:
        zone = z.want.origin
        while self._zones.get(zone) is z:
            z.wake.clear()
            try:
                delay = await self._step(z)
            except Exception as exc:  # the task boundary: this zone retries, others go on
                log.exception("refresh of %s failed", zone)
                emit(Event.TASK_CRASHED, level=logging.ERROR, task="secondary", zone=zone,
                     error=repr(exc))
                delay = self._retry * 10
            try:
                async with asyncio.timeout(None if math.isinf(delay) else delay):
                    await z.wake.wait()
            except TimeoutError:
                pass

    async def _step(self, z: _Zone) -> float:
        """Refresh once, serve or hold; returns the seconds until the next refresh."""
        try:
            failure = await self._refresh(z)
        except NodeError as exc:
            failure = f"{type(exc).__name__}: {exc}"
        now = self._clock.monotonic()
        if failure:
            z.failure = failure
            z.failing_since = z.failing_since if z.failing_since is not None else now
        else:
            z.failure, z.failing_since, z.reported = "", None, False
        next_at = await self._judge(z)
        if z.failing_since is not None:
            late = now - z.failing_since > self._give_up
            retry = min(self._retry * 10, max(self._retry, z.timers().retry))
            next_at = min(next_at, now + (retry if late else self._retry))
        return max(self._retry, next_at - self._clock.monotonic())

    async def _sources(self) -> list[NodeInfo]:
        nodes = [n for n in await self._dir.list_nodes()
                 if n.role == "writable" and n.alive and n.dns_addresses
                 and (self._tls is None or n.tls_addresses)]
        if self._primaries:  # pinned by the administrator: those nodes only, in that order
            rank = {node_id: i for i, node_id in enumerate(self._primaries)}
            return sorted((n for n in nodes if n.id in rank), key=lambda n: rank[n.id])
        my_hosts = {_host_port(a)[0] for a in self._me.dns_addresses}
        return sorted(nodes, key=lambda n: (_host_port(n.dns_addresses[0])[0] not in my_hosts,
                                            n.id))

    def _address(self, node: NodeInfo) -> tuple[str, int]:
        """Where to ask `node`: its DNS-over-TLS address with XoT, else its DNS address."""
        return _host_port(node.tls_addresses[0] if self._tls is not None
                          else node.dns_addresses[0])

    async def _probe(self, node: NodeInfo, zone: Name) -> _Probe:
        host, port = self._address(node)
        try:
            serial = await asyncio.to_thread(signed_serial, host, port, zone, self._soa_timeout,
                                             self._tls, self._tls_name)
        except _ERRORS as exc:
            return _Probe(node, None, str(exc) or type(exc).__name__)
        return _Probe(node, serial)

    async def _refresh(self, z: _Zone) -> str:
        """One refresh against every source; '' if this node now holds the current serial,
        confirmed by a writable node, else why not."""
        zone, wanted = z.want.origin, z.want.serial
        try:
            sources = await self._sources()
        except NodeError as exc:
            return f"cannot list the writable nodes: {exc}"
        if not sources and self._primaries:
            return ("no pinned primary ([readonly] primaries: " + ", ".join(self._primaries)
                    + ") is a live writable node" + (" advertising dns.tls_listen"
                                                      if self._tls is not None else ""))
        if not sources:
            return "no live writable node to transfer from" + (
                " over TLS (none advertises dns.tls_listen)" if self._tls is not None else "")
        probes = await asyncio.gather(*(self._probe(n, zone) for n in sources))
        current = [p for p in probes if p.serial is not None and not serial_lt(p.serial, wanted)]
        behind = [p for p in probes if p.serial is not None and serial_lt(p.serial, wanted)]
        reasons = [f"{p.node.id}: {p.error}" for p in probes if p.error]
        reasons += [f"{p.node.id}: serves serial {p.serial}" for p in behind]
        have = z.copy.serial if z.copy is not None else None
        if have is not None and any(p.serial == have for p in current):
            z.refreshed_at = self._clock.monotonic()  # confirmed: the copy is current
            return ""
        got, why, refused = await self._transfer_any(z, [p.node for p in current], wanted)
        if got:
            return ""
        reasons += why
        # no source has the current serial: a newer signed copy than ours beats an older one
        newest = max(behind, key=lambda p: -((wanted - (p.serial or 0)) % 2**32), default=None)
        if newest is not None and newest.serial is not None and (
                have is None or serial_gt(newest.serial, have)):
            await self._transfer_any(z, [newest.node], newest.serial)
        if current and refused == len(current):
            return ("no writable node allows zone transfers to this read-only node (allow "
                    "its address, or its [readonly] transfer_key, on the zone): "
                    + "; ".join(reasons))
        return f"no writable node serves the current serial {wanted} signed: " + "; ".join(
            reasons)

    async def _transfer_any(self, z: _Zone, nodes: list[NodeInfo], at_least: int
                            ) -> tuple[bool, list[str], int]:
        """AXFR from the first of `nodes` that gives a signed copy at `at_least` or later:
        (done, why the others did not, how many refused the transfer)."""
        zone = z.want.origin
        reasons = []
        refused = 0
        key = None
        if self._transfer_key is not None and nodes:
            key = self._keyring(self._transfer_key) if self._keyring is not None else None
            if key is None:
                return False, [f"the transfer key {self._transfer_key} ([readonly] "
                               "transfer_key) is not in etcd (clusterctl tsig add "
                               f"{self._transfer_key} --use transfer)"], 0
        for node in nodes:
            host, port = self._address(node)
            try:
                nodes_map, earliest = await asyncio.to_thread(self._pull, host, port, zone, key)
            except _ERRORS as exc:
                refused += isinstance(exc, dns.xfr.TransferError)
                reasons.append(f"{node.id}: {type(exc).__name__}: {exc}".rstrip(": "))
                continue
            apex = nodes_map.get(zone, {})
            soa = apex.get(T.SOA)
            if soa is None or T.RRSIG not in apex:
                reasons.append(f"{node.id}: the transferred zone is not signed yet")
                continue
            serial = int(soa[0].serial)  # type: ignore[attr-defined]
            if serial_lt(serial, at_least):
                reasons.append(f"{node.id}: transferred serial {serial}, older than {at_least}")
                continue
            snap = replace(z.want, serial=serial, changed=None, signed=True,
                           nodes=MappingProxyType({k: MappingProxyType(v)
                                                   for k, v in nodes_map.items()}))
            self._install(z, snap, earliest, current=not serial_lt(serial, z.want.serial),
                          source=f"{node.id} {host}:{port}")
            return True, [], refused
        return False, reasons, refused

    def _pull(self, host: str, port: int, zone: Name, key: dns.tsig.Key | None
              ) -> tuple[NodeMap, int | None]:
        """In a worker thread: the transfer (signed with `key`) and its earliest RRSIG expiry."""
        nodes = transfer(host, port, zone, self._timeout, self._tls, self._tls_name, key)
        return nodes, earliest_rrsig_expiration(nodes)

    def _install(self, z: _Zone, snap: ZoneSnapshot, earliest: int | None, current: bool,
                 source: str = "") -> None:
        z.copy, z.earliest, z.serving = snap, earliest, False
        if current or z.refreshed_at is None:  # an older copy does not renew the expire timer
            z.refreshed_at = self._clock.monotonic()
        emit(Event.XFR_RECEIVED, zone=snap.origin, serial=snap.serial, current=current,
             source=source)

    # -- serve or hold ------------------------------------------------------------
    async def _judge(self, z: _Zone) -> float:
        """Serve the copy or hold it, report what changed; returns when to judge again."""
        zone = z.want.origin
        was_waiting = not z.serving
        next_at = math.inf
        if z.copy is not None and z.refreshed_at is not None:
            verdict = judge(Copy(serial=z.copy.serial, refreshed_at=z.refreshed_at,
                                 earliest_expiration=z.earliest, timers=z.timers(),
                                 refresh_margin=z.margin()),
                            self._clock.monotonic(), self._clock.time())
            next_at = verdict.next_at
            if verdict.serve and not z.serving:
                result = self._publish(z.copy)
                if asyncio.iscoroutine(result):
                    await result
                z.serving = True
                if self._on_served is not None:
                    self._on_served(zone.to_text(), z.copy.serial)
                if z.held:
                    emit(Event.SECONDARY_RESUMED, zone=zone, serial=z.copy.serial)
                    z.held = ""
            elif not verdict.serve:
                if not z.held:
                    emit(Event.SECONDARY_EXPIRED, level=logging.ERROR, zone=zone,
                         serial=z.copy.serial, reason=verdict.reason)
                if z.serving or not z.held:
                    self._hold(zone)
                    if self._on_served is not None:
                        self._on_served(zone.to_text(), None)
                z.serving, z.held = False, verdict.reason
        self._report(z)
        if was_waiting != (not z.serving):
            self._on_readiness()
        return next_at

    def _report(self, z: _Zone) -> None:
        zone = z.want.origin
        problem: str | None = z.held or None
        if problem is None and z.failing_since is not None and (
                self._clock.monotonic() - z.failing_since > self._give_up):
            problem = z.failure
            if not z.reported:  # once per run of failures
                emit(Event.XFR_FAILED, level=logging.ERROR, zone=zone, serial=z.want.serial,
                     reason=problem)
                z.reported = True
        if problem != z.problem:
            z.problem = problem
            if self._on_problem is not None:
                self._on_problem(zone.to_text(), problem)
