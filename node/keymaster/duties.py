"""Key Master duties, each one fenced etcd transaction: key generation (and, later, rollovers).

Every write compares the role record's mod revision (the fencing token) and
that this node's liveness key still holds its session lease, so a Key Master
that lost the role, or its lease, cannot write (STYLE R3).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec import kek as kekmod
from node.dnssec.keys import (
    SIGNING_STATES,
    DnssecKey,
    dnskey_rrset,
    load_private_key,
    new_key,
)
from node.dnssec.signer import SigningKey, sign_rrset
from node.errors import ConfigError, FencedOut
from node.events import Event, emit
from node.keymaster.keystore import KeyStore
from node.nodes.membership import NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecConfig, DnssecState, Published
from node.zones.model import ZoneHead
from node.zones.repository import ZoneRepository
from node.zones.serial import serial_add

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fence:
    """The compares that prove this node still holds the role when a write lands."""

    zone: dns.name.Name
    token: int  # the role record's mod revision when this node took the role
    node_id: str
    compares: tuple[Compare, ...]

    @classmethod
    def for_role(cls, layout: KeyLayout, zone: dns.name.Name, token: int, node_id: str,
                 lease: int) -> Fence:
        """The role record is still at `token` and the holder's liveness key still holds
        `lease`; without a lease this node holds no role, so there is no fence (FencedOut)."""
        if not lease:
            raise FencedOut(f"Key Master write for {zone} refused: this node has no etcd lease "
                            "now, so it cannot prove it holds the role")
        return cls(zone, token, node_id, (
            Compare.mod_revision(layout.keymaster_key(zone)) == token,
            Compare.lease(layout.alive_key(node_id)) == lease))

    def audit_op(self, layout: KeyLayout, what: str) -> Op:
        stamp = f"{self.token:012d}-{uuid.uuid4().hex[:8]}"
        return Op.put(
            layout.audit_key(self.zone, stamp),
            json.dumps({"kind": "duty", "holder": self.node_id, "token": self.token,
                        "what": what}).encode(),
        )

    def fenced_out(self, what: str) -> FencedOut:
        emit(Event.KEYMASTER_FENCED, level=logging.WARNING, zone=self.zone, what=what,
             token=self.token)
        return FencedOut(f"Key Master write '{what}' for {self.zone} refused: this node no "
                         f"longer holds the role (token {self.token})")

    async def bump(self, repository: ZoneRepository, layout: KeyLayout, ops: list[Op],
                   what: str, extra: tuple[Compare, ...] = ()) -> int:
        """A fenced content change (serial + 1); FencedOut if the role or lease is gone.
        A failed `extra` guard is treated as done by someone else (returns 0)."""
        serial = await repository.bump(self.zone, [*ops, self.audit_op(layout, what)],
                                       [*self.compares, *extra])
        if serial is not None:
            return serial
        if extra and (await repository.etcd.txn(when=list(self.compares), then=[])).succeeded:
            return 0
        raise self.fenced_out(what)

    async def write(self, etcd: EtcdClient, layout: KeyLayout, ops: list[Op], what: str,
                    extra: tuple[Compare, ...] = ()) -> int | None:
        """One fenced txn with an audit record; None if only `extra` failed; FencedOut if the
        role or the lease is gone."""
        res = await etcd.txn(when=[*self.compares, *extra],
                             then=[*ops, self.audit_op(layout, what)])
        if res.succeeded:
            return res.revision
        if extra and (await etcd.txn(when=list(self.compares), then=[])).succeeded:
            return None
        raise self.fenced_out(what)


async def generate_keys(
    *,
    etcd: EtcdClient,
    layout: KeyLayout,
    repository: ZoneRepository,
    zone: dns.name.Name,
    config: DnssecConfig,
    fence: Fence,
    node_id: str,
    kek: bytes,
    key_store: KeyStore | None,
    retire: tuple[DnssecKey, ...] = (),
    config_revision: int = 0,
    ever_published: Published | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> list[DnssecKey]:
    """Make the zone's keys, store them (public in zones/, private wrapped in secrets/ or local),
    mark the zone signed and bump the serial, in one fenced transaction."""
    now = clock.now()
    roles = (("csk", config.ksk_bits),) if config.csk else (
        ("ksk", config.ksk_bits), ("zsk", config.zsk_bits))
    made: list[tuple[DnssecKey, bytes]] = []
    for role, bits in roles:
        replicate = config.replicate_ksk if role in ("ksk", "csk") else config.replicate_zsk
        key, pem = await asyncio.to_thread(
            new_key, zone, config.algorithm, role,  # type: ignore[arg-type]
            bits=bits or None, now=now, replicate=replicate,
        )
        made.append((key, pem))
    ops: list[Op] = []
    for key, pem in made:
        ops.append(Op.put(layout.key_key(zone, key.key_id), key.to_json()))
        if key.replicate:
            blob = kekmod.wrap(kek, zone.to_text(), key.key_id, pem)
            ops.append(Op.put(layout.secret_key(zone, key.key_id), blob))
        else:
            if key_store is None:
                raise ConfigError("signing.key_store: required on a Key Master that keeps a "
                                  "private key unreplicated")
            key_store.put(zone, key.key_id, pem)
    for old in retire:
        ops.append(Op.delete(layout.key_key(zone, old.key_id)))
        ops.append(Op.delete(layout.secret_key(zone, old.key_id)))
    local = any(not key.replicate for key, _ in made)
    wrapped = any(key.replicate for key, _ in made)  # only those nodes may hold the role
    ops.append(Op.put(layout.dnssec_key(zone), config.with_(
        status="signed", new_keys=False, missing_keys=(),
        key_store_node=node_id if local else "",
        kek=kekmod.kek_fingerprint(kek) if wrapped else "").to_json()))
    ops.append(Op.delete(layout.published_key(zone)))  # the new key set is not published yet
    if ever_published is not None:  # but the zone was (and may be from before that flag)
        ops.append(Op.put(layout.ever_published_key(zone), ever_published.to_json()))
    # guarded on the settings' revision: a keygen runs once per request, and an unsign
    # or a newer request that landed meanwhile is never undone
    serial = await fence.bump(repository, layout, ops, "keygen",
                              extra=(Compare.mod_revision(layout.dnssec_key(zone))
                                     == config_revision,))
    if not serial:
        return []
    keys = [k for k, _ in made]
    emit(Event.KEYS_GENERATED, zone=zone, serial=serial,
         keys=[f"{k.role}:{k.tag}" for k in keys], algorithm=config.algorithm)
    return keys


async def publish_if_ready(
    *,
    etcd: EtcdClient,
    layout: KeyLayout,
    repository: ZoneRepository,
    directory: NodeDirectory,
    zone: dns.name.Name,
    fence: Fence,
    keyset: str,
    kek_fingerprint: str,
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    """Mark the zone published once every live writable node holding the KEK has signed
    `keyset` (CDS/CDNSKEY then appear: a content change, so the serial moves)."""
    nodes = [n for n in await directory.list_nodes()
             if n.role == "writable" and n.alive and n.kek == kek_fingerprint]
    records, _ = await etcd.range_all(layout.signing_prefix(zone))
    done = set()
    for kv in records:
        parsed = layout.parse_signing_key(kv.key)
        if parsed is not None and json.loads(kv.value).get("keyset") == keyset:
            done.add(parsed[1])
    if not nodes or any(n.id not in done for n in nodes):
        return False
    head = await etcd.get(layout.head_key(zone))
    if head is None:
        return False
    stamp = clock.now().replace(microsecond=0).isoformat()
    published = Published(serial_add(ZoneHead.from_json(head.value).serial, 1), stamp)
    # ever-published outlives `--new-keys` (which clears `published`): never unsigned again
    await fence.bump(repository, layout, [Op.put(layout.published_key(zone), published.to_json()),
                                          Op.put(layout.ever_published_key(zone),
                                                 published.to_json())],
                     "publish", extra=(Compare.version(layout.published_key(zone)) == 0,))
    emit(Event.ZONE_PUBLISHED, zone=zone, signed_by=sorted(done))
    return True


async def record_kek(*, etcd: EtcdClient, layout: KeyLayout, zone: dns.name.Name,
                     state: DnssecState, fence: Fence, kek: bytes) -> bool:
    """A zone signed before the KEK fingerprint was recorded: record this holder's, once
    one wrapped key proves that this KEK is the one the keys are wrapped under.
    True if written; ValidationError if this KEK cannot unwrap them."""
    key = next(k for k in state.keys if k.replicate)
    blob = await etcd.get(layout.secret_key(zone, key.key_id))
    if blob is None:
        return False
    kekmod.unwrap(kek, zone.to_text(), key.key_id, blob.value)  # wrong KEK: ValidationError
    config = state.config.with_(kek=kekmod.kek_fingerprint(kek))
    return await fence.write(
        etcd, layout, [Op.put(layout.dnssec_key(zone), config.to_json())], "record-kek",
        extra=(Compare.mod_revision(layout.dnssec_key(zone)) == state.config_revision,),
    ) is not None


def _dnskeyset_current(raw: bytes, keyset: str, now: int, refresh: int) -> bool:
    if not raw:
        return False
    data = json.loads(raw)
    return bool(data.get("keyset") == keyset and int(data.get("expiration", 0)) - now > refresh)


async def publish_dnskey_signatures(
    *,
    repository: ZoneRepository,
    layout: KeyLayout,
    zone: dns.name.Name,
    state: DnssecState,
    fence: Fence,
    key_store: KeyStore | None,
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    """For KSKs whose private key stays in this Key Master's store: publish the DNSKEY RRset's
    RRSIGs (`zones/<z>/dnskeyset`) so every other node serves a DNSKEY set signed by the KSK.
    Refreshed when the key set changes or the signatures near expiry. True if written."""
    cfg = state.config
    local = [k for k in state.keys
             if k.role in ("ksk", "csk") and not k.replicate
             and k.state in (*SIGNING_STATES, "revoked")]
    if not local or key_store is None:
        return False
    now = int(clock.time())
    if _dnskeyset_current(state.dnskeyset, state.keyset_id, now, cfg.refresh):
        return False
    signers = []
    for key in local:
        pem = key_store.get(zone, key.key_id)
        if pem is None:
            return False  # not this node's key (after a seize): key management waits
        signers.append(SigningKey(key, load_private_key(pem)))
    rrset = dnskey_rrset(zone, state.keys, cfg.dnskey_ttl)
    expiration = now + cfg.validity
    rrsigs = sign_rrset(rrset, signers, zone, now - cfg.inception_offset, expiration)
    value = json.dumps({"keyset": state.keyset_id, "expiration": expiration,
                        "rrsigs": [rd.to_text() for rd in rrsigs]}).encode()
    guard = (Compare.mod_revision(layout.dnskeyset_key(zone)) == state.dnskeyset_revision
             if state.dnskeyset_revision else Compare.version(layout.dnskeyset_key(zone)) == 0)
    return bool(await fence.bump(repository, layout,
                                 [Op.put(layout.dnskeyset_key(zone), value)],
                                 "dnskey-signatures", extra=(guard,)))


def dnskey_rrsigs_from(raw: bytes, keyset: str) -> list[dns.rdata.Rdata]:
    """The Key Master's published DNSKEY RRSIGs, if they are for `keyset`."""
    if not raw:
        return []
    data = json.loads(raw)
    if data.get("keyset") != keyset:
        return []
    return [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RRSIG, text)
            for text in data.get("rrsigs", [])]
