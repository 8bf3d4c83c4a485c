"""Operator transfer and seize of the Key Master role: prechecks, the write, a definite answer.

Transfer (graceful) writes an intent that the live holder carries out after
the step it is in; seize (forced) replaces the role record in one
transaction compared on the token the caller observed, so of two racing
seizes exactly one wins. Both then wait, with a deadline, for the new holder
to take the role with its lease, and answer `done`, `refused` (each failed
check named) or `pending` (STYLE R7) — never "unknown".
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import dns.name

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.keys import DnssecKey
from node.errors import FencedOut, NotFound
from node.filezone.admin import FileZoneAdmin
from node.keymaster.record import Intent, RoleRecord
from node.keymaster.role import RoleStore
from node.nodes.membership import NodeDirectory, NodeInfo
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecConfig

Name = dns.name.Name


@dataclass(frozen=True, slots=True)
class HandoverOutcome:
    state: str  # "done" | "refused" | "pending"
    holder: str  # the holder after the call
    reasons: tuple[str, ...] = ()
    missing_keys: tuple[str, ...] = ()
    message: str = ""


@dataclass(frozen=True, slots=True)
class RoleChange:
    at: str
    from_node: str
    to_node: str
    by: str
    why: str


@dataclass(frozen=True, slots=True)
class KeyMasterInfo:
    zone: Name
    role: RoleRecord | None
    token: int
    online: bool
    acquired: bool  # the holder has taken the role with its lease
    failover: str
    changes: tuple[RoleChange, ...]
    missing_keys: tuple[str, ...]


class KeyMasterAdmin:
    def __init__(self, etcd: EtcdClient, layout: KeyLayout, directory: NodeDirectory, *,
                 node_id: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self._etcd = etcd
        self._keys = layout
        self._dir = directory
        self._me = node_id
        self._roles = RoleStore(etcd, layout, clock)
        self._clock = clock

    async def _load(self, zone: Name) -> tuple[RoleRecord, int, DnssecConfig | None, int,
                                               list[DnssecKey], dict[str, NodeInfo]]:
        role, token = await self._roles.read(zone)
        if role is None:
            if await self._etcd.get(self._keys.config_key(zone)) is None:  # a mistyped name
                raise NotFound(f"zone {zone} does not exist (clusterctl zone list shows the "
                               "zones)")
            raise NotFound(f"zone {zone} has no Key Master (it was never signed)")
        kv = await self._etcd.get(self._keys.dnssec_key(zone))
        config = DnssecConfig.from_json(kv.value) if kv else None
        config_rev = kv.mod_revision if kv else 0
        kvs, _ = await self._etcd.range_all(self._keys.keys_prefix(zone))
        keys = [DnssecKey.from_json(k.value) for k in kvs]
        nodes = {n.id: n for n in await self._dir.list_nodes()}
        return role, token, config, config_rev, keys, nodes

    async def get(self, zone: Name, history: int = 5) -> KeyMasterInfo:
        role, token, config, _rev, _keys, nodes = await self._load(zone)
        kvs, _ = await self._etcd.range_all(self._keys.audit_prefix(zone))
        changes = []
        for kv in kvs:
            data = json.loads(kv.value)
            if data.get("kind") == "role":
                changes.append(RoleChange(str(data.get("at", "")), str(data.get("from_node", "")),
                                          str(data.get("to_node", "")), str(data.get("by", "")),
                                          str(data.get("why", ""))))
        holder = nodes.get(role.node)
        return KeyMasterInfo(
            zone=zone, role=role, token=token, online=bool(holder and holder.alive),
            acquired=role.lease != 0, failover=config.keymaster_failover if config else "manual",
            changes=tuple(changes[-history:]),
            missing_keys=config.missing_keys if config else (),
        )

    def _check_target(self, to: str, nodes: dict[str, NodeInfo], holder: NodeInfo | None,
                      zone_kek: str = "") -> list[str]:
        target = nodes.get(to)
        if target is None:
            return [f"{to}: no such node (clusterctl nodes lists them)"]
        reasons = []
        if target.role != "writable":
            reasons.append(f"{to}: a {target.role} node cannot be Key Master")
        if not target.alive:
            reasons.append(f"{to}: the node is offline" + (
                f" (its last record: {target.lease_lost})" if target.lease_lost else ""))
        if not target.kek:
            reasons.append(f"{to}: the node holds no KEK (signing.kek_file), so it cannot "
                           "reach the private keys")
        elif zone_kek and target.kek != zone_kek:
            reasons.append(f"{to}: its KEK differs from the one the zone's keys are wrapped "
                           "under, so it cannot unwrap them")
        elif holder is not None and holder.kek and target.kek != holder.kek:
            reasons.append(f"{to}: its KEK differs from the holder's")
        return reasons

    def _unreachable(self, to: str, config: DnssecConfig | None,
                     keys: list[DnssecKey]) -> list[DnssecKey]:
        local_node = config.key_store_node if config else ""
        return [k for k in keys if not k.replicate and local_node != to]

    async def transfer(self, zone: Name, to: str, *, by: str, timeout: float = 30.0
                       ) -> HandoverOutcome:
        fixed = await FileZoneAdmin(self._etcd, self._keys).fixed_keymaster(zone)
        if fixed:
            return HandoverOutcome("refused", to, (fixed,))
        role, token, config, _rev, keys, nodes = await self._load(zone)
        if role.node == to and role.lease:
            return HandoverOutcome("done", to, message=f"{to} already holds the role")
        holder = nodes.get(role.node)
        reasons = self._check_target(to, nodes, holder, config.kek if config else "")
        if holder is None or not holder.alive:
            reasons.append(f"the holder {role.node} is offline; a graceful transfer needs it "
                           f"(use clusterctl seize-keymaster {zone} --to {to})")
        missing = self._unreachable(to, config, keys)
        if missing:
            reasons.append(f"{to} cannot reach the private keys of "
                           + ", ".join(f"{k.role} {k.tag}" for k in missing)
                           + " (not replicated); transfer to the node that holds them")
        if reasons:
            return HandoverOutcome("refused", role.node, tuple(reasons))
        intent = Intent("transfer", role.node, to, by, self._clock.now().isoformat())
        res = await self._etcd.txn(
            when=[Compare.mod_revision(self._keys.keymaster_key(zone)) == token],
            then=[Op.put(self._keys.intent_key(zone), intent.to_json())])
        if not res.succeeded:
            now, _ = await self._roles.read(zone)
            return HandoverOutcome("refused", now.node if now else "",
                                   ("the role changed meanwhile; look again",))
        return await self._wait(zone, to, timeout, cleanup_intent=True)

    async def seize(self, zone: Name, to: str, *, by: str, force: bool = False,
                    accept_missing_keys: bool = False, timeout: float = 30.0) -> HandoverOutcome:
        fixed = await FileZoneAdmin(self._etcd, self._keys).fixed_keymaster(zone)
        if fixed:  # --force does not override it: the keys live only on the owner
            return HandoverOutcome("refused", to, (fixed,))
        role, token, config, config_rev, keys, nodes = await self._load(zone)
        holder = nodes.get(role.node)
        reasons = self._check_target(to, nodes, holder, config.kek if config else "")
        if holder is not None and holder.alive and role.node != to and not force:
            reasons.append(f"the holder {role.node} is online: use clusterctl transfer-keymaster "
                           f"{zone} --to {to}, or --force to seize anyway")
        missing = self._unreachable(to, config, keys)
        names = tuple(f"{k.role} {k.tag} ({k.key_id})" for k in missing)
        if missing and not accept_missing_keys:
            reasons.append(f"{to} cannot reach these private keys (not replicated): "
                           + ", ".join(names) + "; --accept-missing-keys to seize anyway, then "
                           f"clusterctl zone sign {zone} --new-keys")
        if reasons:
            return HandoverOutcome("refused", role.node, tuple(reasons), names)
        extra: tuple[Op, ...] = (Op.delete(self._keys.intent_key(zone)),)
        if config is not None:
            new_config = config.with_(missing_keys=tuple(k.key_id for k in missing))
            extra += (Op.put(self._keys.dnssec_key(zone), new_config.to_json()),)
        try:
            settings = self._keys.dnssec_key(zone)
            await self._roles.replace(
                zone, token, previous=role.node, node=to, lease=0, by=by,
                reason="seize-force" if force else "seize", extra_ops=extra,
                extra_compares=((Compare.mod_revision(settings) == config_rev,)
                                if config is not None else ()))
        except FencedOut as exc:
            return HandoverOutcome("refused", "", (str(exc),))
        out = await self._wait(zone, to, timeout, cleanup_intent=False)
        if missing:
            msg = (f"the role moved to {to}, but {len(missing)} private key(s) are unreachable: "
                   f"key management waits; re-sign with new keys (clusterctl zone sign {zone} "
                   "--new-keys), then replace trust anchors and the parent's DS. If the old "
                   "holder returns first, transfer the role back instead.")
            out = HandoverOutcome(out.state, out.holder, out.reasons, names, msg)
        return out

    async def _wait(self, zone: Name, to: str, timeout: float, *, cleanup_intent: bool
                    ) -> HandoverOutcome:
        deadline = self._clock.monotonic() + timeout
        role_key, intent_key = self._keys.keymaster_key(zone), self._keys.intent_key(zone)
        while self._clock.monotonic() < deadline:
            # role and intent read at one revision: the holder swaps both in one txn
            res = await self._etcd.txn(when=[], then=[Op.get(role_key), Op.get(intent_key)])
            role_kvs = res.responses[0].kvs  # type: ignore[union-attr]
            role = RoleRecord.from_json(role_kvs[0].value) if role_kvs else None
            intent_gone = not res.responses[1].kvs  # type: ignore[union-attr]
            if role is not None and role.node == to and role.lease:
                return HandoverOutcome("done", to)
            if cleanup_intent and intent_gone and (role is None or role.node != to):
                holder = role.node if role else ""
                return HandoverOutcome("refused", holder, (
                    f"the holder {holder} dropped the request: {to} is no longer a live "
                    "eligible node",))
            await asyncio.sleep(0.05)
        role, _ = await self._roles.read(zone)
        return HandoverOutcome("pending", role.node if role else "",
                               message=f"{to} has not taken the role yet; clusterctl zone "
                                       f"dnssec {zone} shows the Key Master")
