"""Fenced transactions on the role record: acquire, hand over, seize, release.

Each compares the role record's mod revision with the token the caller
observed, so of two racing writers exactly one wins; each writes an audit
record (`audit/<zone>/...`: from, to, by, why, when) in the same transaction.
A failed compare raises `FencedOut` naming the current holder.
"""

from __future__ import annotations

import json
import uuid

import dns.name

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import FencedOut
from node.keymaster.record import RoleRecord
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op


class RoleStore:
    def __init__(self, etcd: EtcdClient, layout: KeyLayout, clock: Clock = SYSTEM_CLOCK) -> None:
        self._etcd = etcd
        self._keys = layout
        self._clock = clock

    async def read(self, zone: dns.name.Name) -> tuple[RoleRecord | None, int]:
        kv = await self._etcd.get(self._keys.keymaster_key(zone))
        if kv is None:
            return None, 0
        return RoleRecord.from_json(kv.value), kv.mod_revision

    def _stamp(self) -> str:
        return self._clock.now().replace(microsecond=0).isoformat()

    def audit_op(self, zone: dns.name.Name, **fields: object) -> Op:
        key = self._keys.audit_key(
            zone, f"{self._clock.now().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:6]}")
        return Op.put(key, json.dumps({"kind": "role", "at": self._stamp(), **fields}))

    async def replace(
        self,
        zone: dns.name.Name,
        token: int,
        *,
        previous: str,
        node: str,
        lease: int,
        by: str,
        reason: str,
        extra_ops: tuple[Op, ...] = (),
        extra_compares: tuple[Compare, ...] = (),
    ) -> int:
        """Put a new role record if the record is still at `token`; returns the new token."""
        record = RoleRecord(node=node, lease=lease, since=self._stamp(), by=by, reason=reason)
        key = self._keys.keymaster_key(zone)
        guard = (Compare.mod_revision(key) == token) if token else (Compare.version(key) == 0)
        res = await self._etcd.txn(
            when=[guard, *extra_compares],
            then=[Op.put(key, record.to_json()), *extra_ops,
                  self.audit_op(zone, from_node=previous, to_node=node, by=by, why=reason,
                                token_before=token)],
        )
        if not res.succeeded:
            now, _ = await self.read(zone)
            holder = now.node if now else "nobody"
            raise FencedOut(f"the Key Master role of {zone} changed meanwhile (now held by "
                            f"{holder}); nothing was done")
        return res.revision
