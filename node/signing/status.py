"""This node's signing-status records, `signing/<zone>/<node>`, written until they land.

After each successful signing pass the worker calls `record(zone, serial,
keyset)`; one task per zone writes the newest value and, when etcd refuses or
does not answer, reports the failure and retries with back-off (1 s doubling
to 60 s) until a write lands. The Key Master marks a zone published only when
every writable node's record names the current key set, so a record that is
never written would keep the zone unpublished for good. A newer record
replaces a pending one; the record is never written out of order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.name

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import NodeError
from node.events import Event, emit
from node.signing.backoff import Backoff
from node.signing.faults import Faults
from node.store.client import EtcdClient
from node.store.keys import KeyLayout

Name = dns.name.Name
OnFailure = Callable[[Name, str, NodeError, float], None]  # zone, stage, error, retry in


@dataclass(slots=True)
class _Pending:
    serial: int = 0
    keyset: str = ""
    digest: str = ""  # of the signed copy (node.dnssec.digest)
    first_signed_at: str = ""
    dirty: bool = False
    task: asyncio.Task[None] | None = None
    backoff: Backoff = field(default_factory=Backoff)


class StatusRecorder:
    """Writes `signing/<zone>/<node>`: the serial and key set this node signed, and when."""

    def __init__(self, *, node_id: str, etcd: EtcdClient, layout: KeyLayout, kek: str,
                 on_failure: OnFailure, faults: Faults | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._me = node_id
        self._etcd = etcd
        self._keys = layout
        self._kek = kek  # this node's KEK fingerprint ("" without one)
        self._on_failure = on_failure
        self._faults = faults or Faults()
        self._clock = clock
        self._zones: dict[Name, _Pending] = {}

    def record(self, zone: Name, serial: int, keyset: str, digest: str = "") -> None:
        """Write (soon, and until it lands) that this node signed `serial` with `keyset`,
        its copy having `digest`."""
        p = self._zones.setdefault(zone, _Pending())
        p.serial, p.keyset, p.digest, p.dirty = serial, keyset, digest, True
        if p.task is None or p.task.done():
            p.task = asyncio.get_running_loop().create_task(self._write(zone, p))

    def pending(self, zone: Name) -> bool:
        p = self._zones.get(zone)
        return p is not None and p.dirty

    def forget(self, zone: Name) -> None:
        p = self._zones.pop(zone, None)
        if p is not None and p.task is not None:
            p.task.cancel()

    async def _write(self, zone: Name, p: _Pending) -> None:
        while p.dirty:
            now = self._clock.now().isoformat()
            p.first_signed_at = p.first_signed_at or now
            value = json.dumps({
                "node": self._me, "serial": p.serial, "keyset": p.keyset,
                "signed_at": now, "first_signed_at": p.first_signed_at, "kek": self._kek,
                "digest": p.digest,
            }).encode()
            p.dirty = False
            try:
                self._faults.status_write(zone)
                await self._etcd.put(self._keys.signing_key(zone, self._me), value)
            except NodeError as exc:
                p.dirty = True  # unless a newer value came meanwhile, write this one again
                delay = p.backoff.next()
                self._on_failure(zone, "status-write", exc, delay)
                await asyncio.sleep(delay)
                continue
            p.backoff.reset()
            await self._compare_digests(zone, p.serial, p.keyset, p.digest)

    async def _compare_digests(self, zone: Name, serial: int, keyset: str, digest: str) -> None:
        """One serial is one zone: an event when another node's copy at this serial differs."""
        if not digest:
            return
        try:
            records, _ = await self._etcd.range_all(self._keys.signing_prefix(zone))
        except NodeError:
            return  # the next version compares again
        for kv in records:
            rec = json.loads(kv.value)
            other = rec.get("node")
            if other != self._me and rec.get("serial") == serial and rec.get("keyset") == keyset \
                    and rec.get("digest") and rec["digest"] != digest:
                emit(Event.SIGNED_COPY_MISMATCH, level=logging.ERROR, zone=zone, serial=serial,
                     node=other, digest=rec["digest"], ours=digest)
