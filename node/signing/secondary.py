"""Read-only nodes: signed zones are pulled by zone transfer from the nearest writable node.

A read-only node never holds the KEK (the RODC of the model), so it cannot
sign. For a signed zone it acts as a secondary: when the replica shows a new
serial, it transfers the zone (AXFR, signatures included) from a live
writable node that allows it — same host first, then by node id — and
serves exactly what it received. If no writable node allows the transfer it
logs an error event and serves nothing for that zone (SERVFAIL); the reason
is kept for `status()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType

import dns.exception
import dns.name
import dns.query
import dns.rdatatype
import dns.rrset
import dns.xfr
import dns.zone

from node.dnssec.signer import rrsig_rrset
from node.errors import NodeError
from node.events import Event, emit
from node.nodes.membership import NodeDirectory, NodeInfo
from node.zones.model import ZoneSnapshot

log = logging.getLogger(__name__)

Name = dns.name.Name


def _host_port(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def transfer(host: str, port: int, zone: Name, timeout: float
             ) -> dict[Name, dict[int, dns.rrset.RRset]]:
    """AXFR `zone` from host:port into a node map (one RRSIG RRset per owner, as signed)."""
    received = dns.zone.from_xfr(
        dns.query.xfr(host, zone, port=port, timeout=timeout, lifetime=timeout * 3,
                      relativize=False), relativize=False)
    nodes: dict[Name, dict[int, dns.rrset.RRset]] = defaultdict(dict)
    for owner, node in received.nodes.items():
        sigs = []
        for rds in node.rdatasets:
            if rds.rdtype == dns.rdatatype.RRSIG:
                sigs.extend(rds)
                continue
            nodes[owner][rds.rdtype] = dns.rrset.from_rdata_list(owner, rds.ttl, list(rds))
        if sigs:
            nodes[owner][dns.rdatatype.RRSIG] = rrsig_rrset(owner, sigs)
    return nodes


class SecondaryLoader:
    """Keeps a read-only node's copy of each signed zone, transferred from writable nodes."""

    def __init__(self, *, me: NodeInfo, directory: NodeDirectory,
                 publish: Callable[[ZoneSnapshot], object], hold: Callable[[Name], None],
                 on_readiness: Callable[[], None],
                 on_problem: Callable[[str, str | None], None] | None = None,
                 timeout: float = 10.0,
                 retry: float = 0.5, give_up: float = 10.0) -> None:
        self._me = me
        self._dir = directory
        self._publish = publish
        self._hold = hold
        self._on_readiness = on_readiness
        self._on_problem = on_problem
        self._timeout = timeout
        self._retry = retry
        self._give_up = give_up
        self._want: dict[Name, ZoneSnapshot] = {}
        self._served: dict[Name, int] = {}
        self._tasks: dict[Name, asyncio.Task[None]] = {}
        self.problems: dict[Name, str] = {}

    def waiting(self) -> bool:
        """True while a signed zone has not been transferred yet (the node is not ready)."""
        return any(zone not in self._served for zone in self._want)

    def want(self, snap: ZoneSnapshot) -> None:
        """The replica saw this version of a signed zone: transfer it (once signed)."""
        self._want[snap.origin] = snap
        if snap.origin not in self._served:
            self._hold(snap.origin)
        task = self._tasks.get(snap.origin)
        if task is None or task.done():
            self._tasks[snap.origin] = asyncio.get_running_loop().create_task(
                self._follow(snap.origin))

    def forget(self, zone: Name) -> None:
        self._want.pop(zone, None)
        self._served.pop(zone, None)
        self.problems.pop(zone, None)
        task = self._tasks.pop(zone, None)
        if task is not None:
            task.cancel()

    async def _sources(self) -> list[NodeInfo]:
        nodes = [n for n in await self._dir.list_nodes()
                 if n.role == "writable" and n.alive and n.dns_addresses]
        my_hosts = {_host_port(a)[0] for a in self._me.dns_addresses}
        return sorted(nodes, key=lambda n: (_host_port(n.dns_addresses[0])[0] not in my_hosts,
                                            n.id))

    async def _follow(self, zone: Name) -> None:
        """Transfer until the served serial is the replica's latest one; after `give_up`
        seconds report the failure (event, `problems`) and keep trying, more slowly."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._give_up
        reported = False
        while zone in self._want:
            want = self._want[zone]
            if self._served.get(zone) == want.serial:
                return
            got, why = await self._try_once(zone, want)
            if got is not None and got.serial == want.serial:
                await self._install(zone, got)
                continue
            if got is not None and zone not in self._served:
                await self._install(zone, got)  # older but signed: better than nothing
            if loop.time() > deadline:
                self.problems[zone] = why or "the writable nodes have not served this serial yet"
                if not reported:
                    emit(Event.XFR_FAILED, level=logging.ERROR, zone=zone, serial=want.serial,
                         reason=self.problems[zone])
                    if self._on_problem is not None:
                        self._on_problem(zone.to_text(), self.problems[zone])
                    reported = True
                await asyncio.sleep(self._retry * 10)
                continue
            await asyncio.sleep(self._retry)

    async def _try_once(self, zone: Name, want: ZoneSnapshot) -> tuple[ZoneSnapshot | None, str]:
        try:
            sources = await self._sources()
        except NodeError as exc:  # unavailable, or any other etcd error: try again later
            return None, f"cannot list the writable nodes: {exc}"
        if not sources:
            return None, "no live writable node to transfer from"
        reasons = []
        for node in sources:
            host, port = _host_port(node.dns_addresses[0])
            try:
                nodes = await asyncio.to_thread(transfer, host, port, zone, self._timeout)
            except (dns.exception.DNSException, OSError, EOFError) as exc:
                reasons.append(f"{node.id}: {type(exc).__name__}: {exc}".rstrip(": "))
                continue
            soa = nodes.get(zone, {}).get(dns.rdatatype.SOA)
            if soa is None or dns.rdatatype.RRSIG not in nodes.get(zone, {}):
                reasons.append(f"{node.id}: the transferred zone is not signed yet")
                continue
            snap = replace(want, serial=soa[0].serial, changed=None, signed=True,
                           nodes=MappingProxyType({k: MappingProxyType(v)
                                                   for k, v in nodes.items()}))
            return snap, ""
        why = ("no writable node allows zone transfers to this read-only node (allow "
               "transfers from it on the zone): " + "; ".join(reasons))
        return None, why

    async def _install(self, zone: Name, snap: ZoneSnapshot) -> None:
        result = self._publish(snap)
        if asyncio.iscoroutine(result):
            await result
        first = zone not in self._served
        self._served[zone] = snap.serial
        if self.problems.pop(zone, None) is not None and self._on_problem is not None:
            self._on_problem(zone.to_text(), None)
        emit(Event.XFR_RECEIVED, zone=zone, serial=snap.serial)
        if first:
            self._on_readiness()
