"""Operator actions on a zone's DNSSEC: sign, unsign, and the status `zone dnssec` shows.

`sign_zone` validates, then writes the settings (status `keygen`) and the
Key Master role record in one transaction; the Key Master (this node or the
one named) generates the keys through its fenced duty, and this call waits
with a deadline for the outcome. `unsign_zone` first publishes the RFC 8078
delete signal where the zone was published (a DS may exist at the parent),
then removes keys, signatures and denial records everywhere.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import dns.name
import dns.rrset

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.ds import ds_records
from node.dnssec.keys import DnssecKey
from node.errors import Conflict, NotFound, Raced, Refused, ValidationError
from node.keymaster import double_ds, keyops
from node.keymaster import settings_change as settings
from node.keymaster.record import RoleRecord
from node.nodes.membership import NodeDirectory, NodeInfo
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecConfig, Published
from node.zones.dnssec_policy import check_config
from node.zones.model import ZoneConfig
from node.zones.repository import ZoneRepository

Name = dns.name.Name
P = ParamSpec("P")
T = TypeVar("T")
RACE_ATTEMPTS = 5  # fresh reads of a request whose write lost a race, before the operator hears


def _again_when_raced(action: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Run `action` again from a fresh read when it raised Raced (it wrote nothing): the
    Key Master writes the same settings and keys as it works; a request must not fail for it."""
    @functools.wraps(action)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        for _ in range(RACE_ATTEMPTS - 1):
            try:
                return await action(*args, **kwargs)
            except Raced:
                continue
        return await action(*args, **kwargs)
    return run


@dataclass(frozen=True, slots=True)
class SignOutcome:
    state: str  # "done" | "pending"
    keymaster: str
    warnings: tuple[str, ...]
    keys: tuple[DnssecKey, ...]
    message: str = ""


@dataclass(frozen=True, slots=True)
class NodeSigning:
    node: str
    alive: bool
    writable: bool
    has_kek: bool
    serial: int | None
    keyset: str
    current: bool  # signed the zone's current key set
    signed_at: str
    first_signed_at: str
    digest: str = ""  # of the node's signed copy at `serial` (node.dnssec.digest)


@dataclass(frozen=True, slots=True)
class DnssecStatus:
    zone: Name
    serial: int
    config: DnssecConfig | None
    keys: tuple[DnssecKey, ...]
    keymaster: RoleRecord | None
    keymaster_online: bool
    published: Published | None
    nodes: tuple[NodeSigning, ...]
    ds: tuple[str, ...]
    next_step: str = ""  # the next rollover step ("" = none planned)
    next_at: str = ""  # RFC 3339 UTC
    waiting_for: str = ""

    @property
    def eligible(self) -> list[NodeSigning]:
        return [n for n in self.nodes if n.writable and n.alive and n.has_kek]

    @property
    def signed_count(self) -> int:
        return sum(1 for n in self.eligible if n.current)

    @property
    def ds_safe(self) -> bool:
        return self.published is not None and self.config is not None and (
            self.config.status == "signed")


class DnssecAdmin:
    """Sign, unsign and report, on behalf of the node that took the request."""

    def __init__(self, etcd: EtcdClient, layout: KeyLayout, repository: ZoneRepository,
                 directory: NodeDirectory, *, node_id: str, stagger_max: float,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._etcd = etcd
        self._keys = layout
        self._repo = repository
        self._nodes = directory
        self._me = node_id
        self._stagger_max = stagger_max
        self._clock = clock

    async def _config(self, zone: Name) -> tuple[DnssecConfig | None, int]:
        kv = await self._etcd.get(self._keys.dnssec_key(zone))
        return (DnssecConfig.from_json(kv.value), kv.mod_revision) if kv else (None, 0)

    async def _node(self, node_id: str, nodes: list[NodeInfo]) -> NodeInfo:
        for n in nodes:
            if n.id == node_id:
                return n
        raise NotFound(f"no node {node_id!r} is registered (clusterctl nodes lists them)")

    @staticmethod
    def _check_zsk_reachable(config: DnssecConfig, keymaster: str,
                             nodes: list[NodeInfo]) -> None:
        """An unreplicated ZSK stays in the Key Master's store: every other live writable
        node holding a KEK must sign the zone too and never can, so it is never published."""
        if config.replicate_zsk or config.csk:
            return
        others = [n.id for n in nodes
                  if n.alive and n.role == "writable" and n.kek and n.id != keymaster]
        if others:
            raise Refused(
                "--no-replicate-zsk-private-key: the zone could never be published: the "
                f"writable node(s) {', '.join(others)} must sign it too and cannot reach a ZSK "
                f"kept only in {keymaster}'s key store; replicate the ZSK (keep the KSK local "
                "with --no-replicate-ksk-private-key if needed) or run one writable node")

    @_again_when_raced
    async def sign_zone(self, zone: Name, config: DnssecConfig, *, keymaster: str = "",
                        like: Name | None = None, new_keys: bool = False, force: bool = False,
                        timeout: float = 30.0) -> SignOutcome:
        owner = await self._file_owner(zone)
        if owner:
            return await self._sign_file_zone(zone, config, owner, keymaster=keymaster,
                                              new_keys=new_keys, timeout=timeout)
        soa, max_ttl = await self._repo.soa_and_max_ttl(zone)  # not the zone: it may be large
        current, current_rev = await self._config(zone)
        if like is not None:
            base, _ = await self._config(like.canonicalize())
            if base is None:
                raise NotFound(f"--like {like}: that zone is not signed")
            config = base
        if current is not None and current.status == "signed":
            done = await self._change_signed(zone, current, current_rev, config, new_keys,
                                             force=force, soa=soa, max_ttl=max_ttl)
            if done is not None:
                return done
        if current is not None and not new_keys:
            if current.status == "keygen":
                raise Conflict(f"zone {zone} is being signed already (keys pending); see "
                               "clusterctl zone dnssec")
            raise Conflict(f"zone {zone} is already signed (clusterctl zone dnssec {zone} "
                           "shows its settings); --new-keys re-keys it")
        if new_keys and current is None:
            raise ValidationError(f"--new-keys: zone {zone} is not signed yet")
        role_kv = await self._etcd.get(self._keys.keymaster_key(zone))
        role = RoleRecord.from_json(role_kv.value) if role_kv else None
        double_ds_notes: list[str] = []
        if new_keys and current is not None:
            config = current
            keymaster = keymaster or (role.node if role else self._me)
            double_ds_notes = await double_ds.precheck(  # refuses where no valid path exists
                etcd=self._etcd, layout=self._keys, repository=self._repo, zone=zone,
                config=current, clock=self._clock)
        keymaster = keymaster or self._me
        nodes = await self._nodes.list_nodes()
        target = await self._node(keymaster, nodes)
        if target.role != "writable":
            raise Refused(f"--keymaster {keymaster}: a {target.role} node cannot be Key Master")
        if not target.alive:  # name the cause when the node recorded one
            cause = (f" (its last record: {target.lease_lost})" if target.lease_lost else
                     " (its lease is gone: stopped, crashed, paused or cut off from etcd)")
            raise Refused(f"--keymaster {keymaster}: the node is offline{cause}")
        if not target.kek:
            raise Refused(f"--keymaster {keymaster}: the node holds no KEK (signing.kek_file)")
        if current is not None and current.kek and target.kek != current.kek:
            raise Refused(f"--keymaster {keymaster}: its KEK differs from the one the zone's "
                          "keys are wrapped under; new keys wrapped under it could not be "
                          "unwrapped by the other nodes")
        self._check_zsk_reachable(config, keymaster, nodes)
        warnings = double_ds_notes + check_config(config, soa_expire=soa[0].expire,
                                                  max_ttl=max_ttl,
                                                  stagger_max=self._stagger_max, force=force)
        stamp = self._clock.now().replace(microsecond=0).isoformat()
        pending = config.with_(status="keygen", keymaster=keymaster, requested_by=self._me,
                               new_keys=new_keys)
        ops = [Op.put(self._keys.dnssec_key(zone), pending.to_json())]
        if role is None or role.node != keymaster:
            record = RoleRecord(node=keymaster, lease=0, since=stamp, by=self._me,
                                reason="new-keys" if new_keys else "sign")
            ops.append(Op.put(self._keys.keymaster_key(zone), record.to_json()))
            ops.append(self._audit(zone, "role", {"from_node": role.node if role else "",
                                                  "to_node": keymaster, "by": self._me,
                                                  "why": record.reason, "at": stamp}))
        role_key = self._keys.keymaster_key(zone)
        role_guard = (Compare.mod_revision(role_key) == role_kv.mod_revision if role_kv
                      else Compare.version(role_key) == 0)
        res = await self._etcd.txn(
            when=[Compare.mod_revision(self._keys.dnssec_key(zone)) == current_rev, role_guard],
            then=ops)
        if not res.succeeded:
            raise Raced(f"zone {zone}'s DNSSEC settings changed meanwhile; try again")
        deadline = self._clock.monotonic() + timeout
        while self._clock.monotonic() < deadline:
            cfg, _ = await self._config(zone)
            if cfg is not None and cfg.status == "signed" and not cfg.new_keys:
                keys = await self._list_keys(zone)
                return SignOutcome("done", keymaster, tuple(warnings), tuple(keys))
            await asyncio.sleep(0.05)
        return SignOutcome("pending", keymaster, tuple(warnings), (),
                           f"the Key Master {keymaster} has not generated the keys yet; "
                           f"clusterctl zone dnssec {zone} shows progress")

    async def _file_owner(self, zone: Name) -> str:
        kv = await self._etcd.get(self._keys.config_key(zone))
        config = ZoneConfig.from_json(kv.value) if kv is not None else None
        return config.owner if config is not None and config.file_backed else ""

    async def _sign_file_zone(self, zone: Name, config: DnssecConfig, owner: str, *,
                              keymaster: str, new_keys: bool, timeout: float) -> SignOutcome:
        """A file-backed zone: its owner is the fixed Key Master and signs it with keys in
        its local store (never in etcd); this records the request and waits for it."""
        if keymaster and keymaster != owner:
            raise Refused(f"--keymaster {keymaster}: zone {zone} is file-backed; its Key "
                          f"Master is its owning node {owner}")
        current, current_rev = await self._config(zone)
        if current is not None:
            raise Conflict(f"zone {zone} is already signed" + (
                " (--new-keys on a file-backed zone: unsign it, then sign it again)"
                if new_keys else ""))
        stamp = self._clock.now().replace(microsecond=0).isoformat()
        pending = config.with_(status="keygen", keymaster=owner, requested_by=self._me,
                               key_store_node=owner, replicate_ksk=False, replicate_zsk=False)
        record = RoleRecord(node=owner, lease=0, since=stamp, by=self._me, reason="file-backed")
        res = await self._etcd.txn(
            when=[Compare.mod_revision(self._keys.dnssec_key(zone)) == current_rev],
            then=[Op.put(self._keys.dnssec_key(zone), pending.to_json()),
                  Op.put(self._keys.keymaster_key(zone), record.to_json()),
                  self._audit(zone, "role", {"from_node": "", "to_node": owner,
                                             "by": self._me, "why": "file-backed",
                                             "at": stamp})])
        if not res.succeeded:
            raise Raced(f"zone {zone}'s DNSSEC settings changed meanwhile; try again")
        deadline = self._clock.monotonic() + timeout
        while self._clock.monotonic() < deadline:
            cfg, _ = await self._config(zone)
            if cfg is not None and cfg.status == "signed":
                return SignOutcome("done", owner, (), ())
            await asyncio.sleep(0.05)
        return SignOutcome("pending", owner, (), (),
                           f"the owning node {owner} has not signed the zone yet")
    async def _change_signed(self, zone: Name, current: DnssecConfig, revision: int,
                             wanted: DnssecConfig, new_keys: bool, *, force: bool,
                             soa: dns.rrset.RRset, max_ttl: int) -> SignOutcome | None:
        """`zone sign` on a signed zone (node.keymaster.settings_change): new settings, the
        same ones again, or `--new-keys` as a rollover; None: re-key as before (keys missing,
        or a CSK)."""
        role_kv = await self._etcd.get(self._keys.keymaster_key(zone))
        km = RoleRecord.from_json(role_kv.value).node if role_kv else ""
        kw = {"etcd": self._etcd, "layout": self._keys, "repository": self._repo, "zone": zone}
        if new_keys:
            if current.missing_keys or current.new_keys:
                return None
            rolled = await settings.new_keys_rollover(**kw, clock=self._clock)  # type: ignore[arg-type]
            if not rolled:
                return None
            names = ", ".join(f"{k.role.upper()} {k.tag}"  # KSKs first, whatever the key ids
                              for k in sorted(rolled, key=lambda k: (k.role != "ksk", k.tag)))
            return SignOutcome("done", km, (), tuple(await self._list_keys(zone)),
                               f"rollover of {names} started (clusterctl zone dnssec {zone} "
                               "shows the next step)")
        warnings = check_config(wanted, soa_expire=soa[0].expire, max_ttl=max_ttl,
                                stagger_max=self._stagger_max, force=force)
        changed = await settings.change_settings(**kw, current=current,  # type: ignore[arg-type]
                                                 revision=revision, wanted=wanted)
        what = (", ".join(f"{k} {v}" for k, v in changed.items()) if changed else
                "nothing: re-signed with the current settings")
        return SignOutcome("done", km, tuple(warnings), tuple(await self._list_keys(zone)),
                           f"changed {what}")

    def _audit(self, zone: Name, kind: str, data: dict[str, object]) -> Op:
        stamp = f"{self._clock.now().strftime('%Y%m%dT%H%M%S%f')}-{kind}"
        return Op.put(self._keys.audit_key(zone, stamp), json.dumps({"kind": kind, **data}))

    async def _list_keys(self, zone: Name) -> list[DnssecKey]:
        kvs, _ = await self._etcd.range_all(self._keys.keys_prefix(zone))
        return sorted((DnssecKey.from_json(kv.value) for kv in kvs), key=lambda k: (k.role, k.tag))

    @_again_when_raced
    async def unsign_zone(self, zone: Name) -> str:
        """Returns "done" or "pending" (delete signal published; run again after the DS is gone)."""
        current, rev = await self._config(zone)
        if current is None:
            raise Conflict(f"zone {zone} is not signed")
        # ever published (even if `--new-keys` cleared `published`): a parent may hold a DS
        published = (await self._etcd.get(self._keys.published_key(zone))
                     or await self._etcd.get(self._keys.ever_published_key(zone)))
        if published is not None and current.status != "unsigning":
            done = await self._repo.bump(
                zone, [Op.put(self._keys.dnssec_key(zone),
                              current.with_(status="unsigning").to_json())],
                [Compare.mod_revision(self._keys.dnssec_key(zone)) == rev])
            if done is None:
                raise Raced(f"zone {zone}'s DNSSEC settings changed meanwhile; try again")
            return "pending"
        ops = [
            Op.delete(self._keys.dnssec_key(zone)),
            Op.delete(self._keys.keys_prefix(zone), prefix=True),
            Op.delete(self._keys.secrets_zone_prefix(zone), prefix=True),
            Op.delete(self._keys.published_key(zone)),
            Op.delete(self._keys.ever_published_key(zone)),
            Op.delete(self._keys.dnskeyset_key(zone)),
            Op.delete(self._keys.signing_prefix(zone), prefix=True),
        ]
        if await self._repo.bump(
                zone, ops, [Compare.mod_revision(self._keys.dnssec_key(zone)) == rev]) is None:
            raise Raced(f"zone {zone}'s DNSSEC settings changed meanwhile; try again")
        return "done"

    async def status(self, zone: Name) -> DnssecStatus:
        info = await self._repo.get_zone(zone)
        config, _ = await self._config(zone)
        keys = await self._list_keys(zone)
        role_kv = await self._etcd.get(self._keys.keymaster_key(zone))
        role = RoleRecord.from_json(role_kv.value) if role_kv else None
        pub_kv = await self._etcd.get(self._keys.published_key(zone))
        published = Published.from_json(pub_kv.value) if pub_kv else None
        nodes = await self._nodes.list_nodes()
        records, _ = await self._etcd.range_all(self._keys.signing_prefix(zone))
        signed: dict[str, dict[str, object]] = {}
        for kv in records:
            parsed = self._keys.parse_signing_key(kv.key)
            if parsed is not None:
                signed[parsed[1]] = json.loads(kv.value)
        keyset = ",".join(sorted(f"{k.key_id}:{k.state}" for k in keys))
        rows = []
        for n in nodes:
            rec = signed.get(n.id, {})
            rows.append(NodeSigning(
                node=n.id, alive=n.alive, writable=n.role == "writable",
                has_kek=bool(n.kek) and (config is None or not config.kek or n.kek == config.kek),
                serial=rec.get("serial"), keyset=str(rec.get("keyset", "")),  # type: ignore[arg-type]
                current=bool(rec) and rec.get("keyset") == keyset,
                signed_at=str(rec.get("signed_at", "")),
                first_signed_at=str(rec.get("first_signed_at", "")),
                digest=str(rec.get("digest", "")),
            ))
        ds = []
        for k in keys:
            if k.role in ("ksk", "csk") and k.state in ("active", "published", "created"):
                ds.extend(f"{zone} IN DS {ds_records(k, d).to_text()}"
                          for d in ("SHA256", "SHA384"))
        online = bool(role and any(n.id == role.node and n.alive for n in nodes))
        step, at, waiting = ("", "", "") if config is None else await keyops.status_plan(
            etcd=self._etcd, layout=self._keys, repository=self._repo, directory=self._nodes,
            zone=zone, config=config, keys=tuple(keys), clock=self._clock)
        return DnssecStatus(zone=zone, serial=info.serial, config=config, keys=tuple(keys),
                            keymaster=role, keymaster_online=online, published=published,
                            nodes=tuple(rows), ds=tuple(ds), next_step=step, next_at=at,
                            waiting_for=waiting)

    # -- single keys (node.keymaster.keyops) ----------------------------------
    async def roll_key(self, zone: Name, *, key_id: str = "", role: str = "") -> DnssecKey:
        return await keyops.roll_key(etcd=self._etcd, layout=self._keys,
                                     repository=self._repo, zone=zone, key_id=key_id,
                                     role=role, clock=self._clock)

    async def set_key_policy(self, zone: Name, key_id: str, *, auto: bool,
                             every: int | None = None, offset: int | None = None) -> DnssecKey:
        return await keyops.set_key_policy(etcd=self._etcd, layout=self._keys,
                                           repository=self._repo, zone=zone, key_id=key_id,
                                           auto=auto, every=every, offset=offset)

    async def confirm_ds_seen(self, zone: Name, key_id: str) -> DnssecKey:
        return await keyops.confirm_ds_seen(etcd=self._etcd, layout=self._keys,
                                            repository=self._repo, zone=zone, key_id=key_id,
                                            clock=self._clock)
