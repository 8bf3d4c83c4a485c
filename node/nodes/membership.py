"""Node membership: each node's durable record and its lease-held liveness/status in etcd.

`nodes/<id>` (durable) says who the node is: role and addresses (DNS, DNS over
TLS for transfers, API, metrics). `alive/<id>`
lives on the node's session lease and carries what it serves right now
(readiness, served serial per zone); it vanishes when the node dies, which is
how everyone tells a live node from an offline one. `own_record` builds this
node's record from its config (the addresses others reach it at: `advertise.py`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from node import __version__
from node.errors import EtcdUnavailable, NodeError
from node.events import Event, emit
from node.nodes.advertise import advertised, reachable
from node.store.client import EtcdClient
from node.store.keys import KeyLayout

if TYPE_CHECKING:
    from node.config import Config

log = logging.getLogger(__name__)
# what this release does that an earlier one sharing its version string may not, in the
# durable record: the sweep (node/zones/sweep.py) waits while a writable node lacks one
REGISTERS_GENERATIONS = "registers-generations"  # bulk writes register under writing/
MARKS_GENERATIONS = "marks-generations"  # bulk writes and deletions mark under unswept/
FEATURES = (REGISTERS_GENERATIONS, MARKS_GENERATIONS)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as registered in etcd (alive while its lease lives)."""

    id: str
    role: str  # "writable" | "readonly"
    dns_addresses: tuple[str, ...]  # "host:port"
    api_address: str
    metrics_address: str
    alive: bool
    version: str = ""
    started_at: str = ""  # RFC 3339 UTC
    served_serials: tuple[tuple[str, int], ...] = ()  # (zone, serial) as served by this node
    ready: bool = True
    kek: str = ""  # fingerprint of the KEK this node holds ("" = none: it never signs)
    problems: tuple[tuple[str, str], ...] = ()  # (zone, reason) it cannot serve
    lease_lost: str = ""  # its last lease loss and why (durable; "" = none since start)
    tls_addresses: tuple[str, ...] = ()  # "host:port" of DNS over TLS (XoT), if it listens
    features: tuple[str, ...] = ()  # FEATURES of its release (none: an earlier release)

    def record_json(self) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "role": self.role,
                "dns_addresses": list(self.dns_addresses),
                "api_address": self.api_address,
                "metrics_address": self.metrics_address,
                "version": self.version,
                "started_at": self.started_at,
                "kek": self.kek,
                "lease_lost": self.lease_lost,
                "tls_addresses": list(self.tls_addresses),
                "features": list(self.features),
            }
        ).encode()


def own_record(config: Config, started: datetime) -> NodeInfo:
    """This node's record from its config (the KEK fingerprint is the caller's to add)."""
    dns_addresses = advertised(config.dns.listen, config.dns.advertise)
    dns_host = dns_addresses[0].rpartition(":")[0].strip("[]")
    return NodeInfo(
        id=config.node_id,
        role=config.role,
        # how others reach this node, never a wildcard (node/nodes/advertise.py)
        dns_addresses=dns_addresses,
        tls_addresses=advertised(config.dns.tls_listen, config.dns.advertise,
                                 "dns.tls_listen"),
        api_address=reachable(config.api.listen, dns_host),
        metrics_address=reachable(config.metrics.listen, dns_host),
        alive=True,
        version=__version__,
        started_at=started.replace(microsecond=0).isoformat(),
        features=FEATURES,
    )


@dataclass(slots=True)
class _Status:
    ready: bool = False
    served: dict[str, int] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps({"ready": self.ready, "served": self.served,
                           "problems": self.problems}).encode()


class NodeDirectory:
    """Reads the registered nodes (alive or not)."""

    def __init__(self, client: EtcdClient, layout: KeyLayout) -> None:
        self._etcd = client
        self._keys = layout

    async def list_nodes(self) -> list[NodeInfo]:
        records, rev = await self._etcd.range_all(self._keys.nodes_prefix())
        alive, _ = await self._etcd.range_all(self._keys.alive_prefix(), revision=rev)
        status: dict[str, dict] = {}  # type: ignore[type-arg]
        for kv in alive:
            node_id = self._keys.parse_node_id(kv.key)
            if node_id is not None:
                try:
                    status[node_id] = json.loads(kv.value)
                except ValueError:
                    status[node_id] = {}
        out = []
        for kv in records:
            node_id = self._keys.parse_node_id(kv.key)
            if node_id is None:
                continue
            rec = json.loads(kv.value)
            st = status.get(node_id)
            out.append(
                NodeInfo(
                    id=node_id,
                    role=rec.get("role", "writable"),
                    dns_addresses=tuple(rec.get("dns_addresses", ())),
                    api_address=rec.get("api_address", ""),
                    metrics_address=rec.get("metrics_address", ""),
                    alive=st is not None,
                    version=rec.get("version", ""),
                    started_at=rec.get("started_at", ""),
                    served_serials=tuple(sorted((st or {}).get("served", {}).items())),
                    ready=bool((st or {}).get("ready", False)),
                    kek=rec.get("kek", ""),
                    problems=tuple(sorted((st or {}).get("problems", {}).items())),
                    lease_lost=rec.get("lease_lost", ""),
                    tls_addresses=tuple(rec.get("tls_addresses", ())),
                    features=tuple(rec.get("features", ())),
                )
            )
        return sorted(out, key=lambda n: n.id)


class Membership:
    """This node's registration: the durable record, and the status key on its lease."""

    def __init__(self, client: EtcdClient, layout: KeyLayout, me: NodeInfo,
                 debounce: float = 0.2) -> None:
        self._etcd = client
        self._keys = layout
        self._me = me
        self._status = _Status()
        self._lease = 0
        self._dirty = asyncio.Event()
        self._debounce = debounce

    async def register(self) -> None:
        await self._etcd.put(self._keys.node_key(self._me.id), self._me.record_json())

    async def on_lease_lost(self, reason: str) -> None:
        """The lease is gone (`reason` says when and why): record it in the durable node
        record at once, so `clusterctl nodes` and refusals name it even while this node
        is offline."""
        self._me = replace(self._me, lease_lost=reason)
        self._lease = 0
        try:
            await self.register()
        except NodeError as exc:  # written again with the next lease
            log.warning("could not record the lease loss: %s", exc)

    async def on_new_lease(self, lease_id: int) -> None:
        """Session callback: (re)write the status key under the new lease."""
        self._lease = lease_id
        try:
            await self.register()
            await self._write()
        except NodeError as exc:  # the run loop writes the status again
            if not isinstance(exc, EtcdUnavailable):
                emit(Event.ETCD_ERROR, level=logging.WARNING, during="membership",
                     code=exc.code, error=str(exc))
            self._dirty.set()

    def set_served(self, zone: str, serial: int | None) -> None:
        if serial is None:
            self._status.served.pop(zone, None)
        else:
            self._status.served[zone] = serial
        self._dirty.set()

    def set_problem(self, zone: str, reason: str | None) -> None:
        """Record (or clear) why this node cannot serve `zone`; `clusterctl nodes` shows it."""
        if reason is None:
            if self._status.problems.pop(zone, None) is not None:
                self._dirty.set()
        elif self._status.problems.get(zone) != reason:
            self._status.problems[zone] = reason
            self._dirty.set()

    def set_ready(self, ready: bool) -> None:
        if self._status.ready != ready:
            self._status.ready = ready
            self._dirty.set()

    async def _write(self) -> None:
        if self._lease:
            await self._etcd.put(
                self._keys.alive_key(self._me.id), self._status.to_json(), lease=self._lease
            )

    async def run(self) -> None:
        """Write the status when it changes, at most once per debounce interval."""
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self._debounce)
            self._dirty.clear()
            try:
                await self._write()
            except EtcdUnavailable:
                self._dirty.set()
                await asyncio.sleep(1.0)
            except NodeError as exc:
                emit(Event.ETCD_ERROR, level=logging.WARNING, during="membership",
                     code=exc.code, error=str(exc))
                self._dirty.set()
                await asyncio.sleep(1.0)
            except Exception as exc:  # the task boundary: keep writing the status
                emit(Event.TASK_CRASHED, level=logging.ERROR, task="membership",
                     error=f"{type(exc).__name__}: {exc}")
                log.exception("status write failed")
                self._dirty.set()
                await asyncio.sleep(1.0)
