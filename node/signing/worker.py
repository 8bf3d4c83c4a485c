"""Online signing on this node: one `ZoneSigner` per signed zone, fed by the replica.

The replica hands every unsigned zone version to `SigningManager.on_snapshot`
in revision order. Unsigned zones pass straight to the DNS table. A signed
zone is signed here (incrementally after the first time) and the signed
version is published to the table, then the node records in etcd
(`signing/<zone>/<node>`) which serial and key set it has signed.

Stagger (the model's 5-30 minutes): a node that is not the Key Master waits
a uniform random delay before its *first* signing of a zone and serves the
zone unsigned meanwhile, which is safe because an unsigned-here zone is not
yet published. No stagger when the zone is published (a restart: the node
answers SERVFAIL for it until it has signed) or when this node signed the
zone before. Key changes during rollovers apply at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec import ds, kek
from node.dnssec.denial import DenialParams
from node.dnssec.keys import load_private_key
from node.dnssec.signer import SigningKey
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.errors import EtcdUnavailable, NodeError
from node.events import Event, emit
from node.keymaster.duties import dnskey_rrsigs_from
from node.keymaster.keystore import KeyStore
from node.keymaster.record import RoleRecord
from node.signing.faults import Faults
from node.signing.secondary import SecondaryLoader
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecState
from node.zones.model import NodeMap, ZoneSnapshot
from node.zones.serial import serial_add

log = logging.getLogger(__name__)

Name = dns.name.Name
Publish = Callable[[ZoneSnapshot], Awaitable[None]]


@dataclass(slots=True)
class _Zone:
    origin: Name
    signer: ZoneSigner | None = None
    identity: tuple[object, ...] | None = None
    stagger_until: float | None = None  # monotonic; None = not staggering
    signed_once: bool = False
    latest: ZoneSnapshot | None = None  # latest unsigned snapshot seen
    signed_serial: int | None = None
    signed_keyset: str = ""
    held: bool = False  # answering SERVFAIL until signed
    next_refresh: float = 0.0  # unix time
    earliest_expiration: int = 0
    first_signed_at: str = ""
    refresh_task: asyncio.Task[None] | None = field(default=None)


class SigningManager:
    """Signs this node's copy of every signed zone; passes unsigned zones through."""

    def __init__(
        self,
        *,
        node_id: str,
        etcd: EtcdClient,
        layout: KeyLayout,
        publish: Publish,
        hold: Callable[[Name], None],
        kek_bytes: bytes | None,
        can_sign: bool,
        stagger: tuple[float, float],
        pool: Executor | None = None,
        key_store: KeyStore | None = None,
        secondary: SecondaryLoader | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        warn_window: float = 2 * 86400,
        faults: Faults | None = None,
    ) -> None:
        self._me = node_id
        self._etcd = etcd
        self._keys = layout
        self._publish = publish
        self._hold = hold
        self._kek = kek_bytes
        self._can_sign = can_sign and kek_bytes is not None
        self._stagger = stagger
        self._pool = pool
        self._key_store = key_store
        self._secondary = secondary  # read-only nodes: signed zones come by transfer
        self._clock = clock
        self._rng = rng or random.Random()
        self._warn_window = warn_window
        self._faults = faults or Faults()
        self._zones: dict[Name, _Zone] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.on_readiness: Callable[[bool], None] | None = None

    # -- readiness ----------------------------------------------------------
    def ready(self) -> bool:
        """True when every published signed zone is signed here (DESIGN.md readiness)."""
        waiting = self._secondary is not None and self._secondary.waiting()
        return not waiting and not any(z.held for z in self._zones.values())

    def _notify_readiness(self) -> None:
        if self.on_readiness is not None:
            self.on_readiness(self.ready())

    def statuses(self) -> list[tuple[str, dict[str, object]]]:
        return [(zone.to_text(), self.status(zone)) for zone in list(self._zones)]

    def status(self, zone: Name) -> dict[str, object]:
        z = self._zones.get(zone)
        if z is None:
            return {}
        return {
            "signed_serial": z.signed_serial,
            "keyset": z.signed_keyset,
            "staggering": z.stagger_until is not None,
            "held": z.held,
            "earliest_expiration": z.earliest_expiration,
            "next_refresh": z.next_refresh,
        }

    # -- replica callbacks --------------------------------------------------
    async def on_snapshot(self, snap: ZoneSnapshot) -> None:
        async with self._lock:
            await self._handle(snap)

    async def on_remove(self, zone: Name) -> None:
        async with self._lock:
            z = self._zones.pop(zone, None)
            if z is not None and z.refresh_task is not None:
                z.refresh_task.cancel()
            if self._secondary is not None:
                self._secondary.forget(zone)
            self._notify_readiness()

    async def _handle(self, snap: ZoneSnapshot) -> None:
        z = self._zones.setdefault(snap.origin, _Zone(snap.origin))
        z.latest = snap
        state = snap.dnssec
        if state is None or not state.keys:  # not signed, or its first keys are pending
            if self._secondary is not None:
                self._secondary.forget(snap.origin)
            await self._serve_unsigned(z, snap)
            return
        if self._secondary is not None:  # read-only: the signed copy comes by transfer
            self._secondary.want(snap)
            self._notify_readiness()
            return
        if not self._can_sign:
            if state.published is not None:
                self._hold_zone(z, "this node cannot sign (no KEK or read-only) and the zone "
                                   "is published")
            else:
                await self._serve_unsigned(z, snap)
            return
        if not z.signed_once and z.stagger_until is None:
            if await self._needs_stagger(snap, state):
                delay = self._rng.uniform(*self._stagger)
                z.stagger_until = self._clock.monotonic() + delay
                emit(Event.SIGNING_STAGGERED, zone=snap.origin, delay=round(delay, 3))
                self._wake.set()
            else:
                z.stagger_until = None
        if z.stagger_until is not None:
            if state.published is not None:  # never serve a published zone unsigned
                z.stagger_until = None
            elif self._clock.monotonic() < z.stagger_until:
                await self._serve_unsigned(z, snap)
                return
            else:
                z.stagger_until = None
        if not z.signed_once and state.published is not None:
            self._hold_zone(z, "signing before serving the published zone")
        await self._sign(z, snap, state)

    async def _needs_stagger(self, snap: ZoneSnapshot, state: DnssecState) -> bool:
        if state.published is not None:
            return False
        role = RoleRecord.from_json(state.keymaster)
        if role is not None and role.node == self._me:
            return False
        try:  # signed this zone before (a restart): no stagger
            kv = await self._etcd.get(self._keys.signing_key(snap.origin, self._me))
        except EtcdUnavailable:
            return True
        return kv is None

    def _hold_zone(self, z: _Zone, why: str) -> None:
        if not z.held:
            z.held = True
            self._hold(z.origin)
            emit(Event.SIGNING_HELD, level=logging.WARNING, zone=z.origin, reason=why)
            self._notify_readiness()

    async def _serve_unsigned(self, z: _Zone, snap: ZoneSnapshot) -> None:
        if z.signer is not None:  # was signed: the table must rebuild everything
            z.signer = None
            z.identity = None
            snap = _replace(snap, changed=None)
        await self._publish(snap)

    # -- signing ------------------------------------------------------------
    async def _sign(self, z: _Zone, snap: ZoneSnapshot, state: DnssecState) -> None:
        identity = state.signing_identity()
        full = z.signer is None or identity != z.identity
        started = self._clock.monotonic()
        try:
            if full:
                emit(Event.SIGNING_STARTED, zone=snap.origin, serial=snap.serial,
                     rrsets=sum(len(t) for t in snap.nodes.values()))
                z.signer = await self._make_signer(snap, state)
                z.identity = identity
            self._faults.signing(snap.origin)
            nodes = _with_cds(snap, state)
            now = int(self._clock.time())
            changed = None if full else snap.changed
            signer = z.signer
            assert signer is not None
            result = await asyncio.to_thread(signer.sign, nodes, changed, now)
        except NodeError as exc:
            emit(Event.SIGNING_FAILED, level=logging.ERROR, zone=snap.origin, error=str(exc))
            z.signer = None
            z.identity = None
            if state.published is not None:
                self._hold_zone(z, f"signing failed: {exc}")
            else:
                await self._publish(snap)
            return
        signed = _replace(snap, nodes=result.nodes, changed=None if full else result.changed,
                          signed=True)
        await self._publish(signed)
        first = not z.signed_once
        z.signed_once = True
        z.signed_serial = snap.serial
        z.signed_keyset = state.keyset_id
        z.next_refresh = float(result.next_refresh)
        z.earliest_expiration = result.earliest_expiration
        if z.held:
            z.held = False
            self._notify_readiness()
        if first or full or result.signatures_made > 1000:
            emit(Event.SIGNING_FINISHED, zone=snap.origin, serial=snap.serial,
                 signatures=result.signatures_made, full=full,
                 seconds=round(self._clock.monotonic() - started, 3))
        self._check_expiry(z, now)
        await self._record(z, snap)
        self._schedule_refresh(z)

    async def _make_signer(self, snap: ZoneSnapshot, state: DnssecState) -> ZoneSigner:
        c = state.config
        params = SigningParams(
            denial=DenialParams(nsec3=c.nsec3, iterations=c.iterations,
                                salt=bytes.fromhex(c.salt), opt_out=c.opt_out),
            validity=c.validity, refresh=c.refresh, jitter=c.jitter,
            inception_offset=c.inception_offset, dnskey_ttl=c.dnskey_ttl,
        )
        signing_keys = []
        published = []
        self._faults.secrets_read(snap.origin)
        secrets, _ = await self._etcd.range_all(self._keys.secrets_zone_prefix(snap.origin))
        wrapped = {}
        for kv in secrets:
            key_id = kv.key.decode().rsplit("/", 1)[-1]
            wrapped[key_id] = kv.value
        for key in state.keys:
            if key.state not in ("active", "revoked"):
                published.append(key)
                continue
            pem = None
            blob = wrapped.get(key.key_id)
            if blob is not None:
                assert self._kek is not None
                pem = kek.unwrap(self._kek, snap.origin.to_text(), key.key_id, blob)
            elif self._key_store is not None:  # an unreplicated key this node generated
                pem = self._key_store.get(snap.origin, key.key_id)
            if pem is None:
                published.append(key)
                continue
            signing_keys.append(SigningKey(key, load_private_key(pem)))
        if not any(k.key.role in ("zsk", "csk") for k in signing_keys):
            raise NodeError(f"no zone-signing private key of {snap.origin} is reachable from "
                            "this node")
        dnskey_rrsigs: list[dns.rdata.Rdata] = []
        if not any(k.key.role in ("ksk", "csk") for k in signing_keys):
            # the KSK stays in the Key Master's store: serve its signatures over DNSKEY
            dnskey_rrsigs = dnskey_rrsigs_from(state.dnskeyset, state.keyset_id)
            if not dnskey_rrsigs:
                raise NodeError(f"the KSK of {snap.origin} is not replicated and the Key Master "
                                "has not published a signed DNSKEY set for this key set yet")
        return ZoneSigner(snap.origin, params, signing_keys, published, pool=self._pool,
                          rng=random.Random(hash((self._me, snap.origin))),
                          dnskey_rrsigs=dnskey_rrsigs)

    def _check_expiry(self, z: _Zone, now: int) -> None:
        if not z.earliest_expiration:
            return
        if z.earliest_expiration <= now:
            emit(Event.SIGNATURE_EXPIRED, level=logging.ERROR, zone=z.origin,
                 expiration=z.earliest_expiration)
        elif z.earliest_expiration - now <= self._warn_window:
            emit(Event.SIGNATURE_EXPIRING, level=logging.WARNING, zone=z.origin,
                 expiration=z.earliest_expiration)

    async def _record(self, z: _Zone, snap: ZoneSnapshot) -> None:
        """`signing/<zone>/<node>`: the serial and key set this node has signed, and when."""
        now = self._clock.now().isoformat()
        z.first_signed_at = z.first_signed_at or now
        value = json.dumps({
            "node": self._me, "serial": snap.serial, "keyset": z.signed_keyset,
            "signed_at": now, "first_signed_at": z.first_signed_at,
            "kek": kek.kek_fingerprint(self._kek) if self._kek else "",
        }).encode()
        try:
            self._faults.status_write(snap.origin)
            await self._etcd.put(self._keys.signing_key(snap.origin, self._me), value)
        except EtcdUnavailable as exc:
            log.warning("could not record signing status of %s: %s", snap.origin, exc)

    # -- timers ---------------------------------------------------------------
    def _schedule_refresh(self, z: _Zone) -> None:
        if z.refresh_task is not None:
            z.refresh_task.cancel()
        delay = max(0.0, z.next_refresh - self._clock.time())
        z.refresh_task = asyncio.get_running_loop().create_task(self._refresh_later(z, delay))

    async def _refresh_later(self, z: _Zone, delay: float) -> None:
        await asyncio.sleep(delay)
        serial = z.signed_serial
        if serial is None:
            return
        # Bump the serial once per refresh window (compare-and-swap on the head), so
        # every node re-signs what is due at the same new serial. Retried until done.
        backoff = 1.0
        while True:
            try:
                head = await self._etcd.get(self._keys.head_key(z.origin))
                if head is None:
                    return
                data = json.loads(head.value)
                if int(data["serial"]) != serial:
                    return  # someone already moved the zone on
                data["serial"] = serial_add(serial, 1)
                res = await self._etcd.txn(
                    when=[Compare.mod_revision(self._keys.head_key(z.origin)) == head.mod_revision],
                    then=[Op.put(self._keys.head_key(z.origin), json.dumps(data).encode())],
                )
                if res.succeeded:
                    emit(Event.SIGNATURE_REFRESH, zone=z.origin, serial=data["serial"])
                    return
            except (NodeError, ValueError, KeyError) as exc:
                log.warning("signature refresh of %s: %s; retrying", z.origin, exc)
            await asyncio.sleep(backoff)
            backoff = min(60.0, backoff * 2)

    async def run(self) -> None:
        """Wake staggered zones when their delay is over."""
        while True:
            now = self._clock.monotonic()
            due = [z for z in self._zones.values()
                   if z.stagger_until is not None and z.stagger_until <= now]
            for z in due:
                async with self._lock:
                    if z.latest is not None and z.stagger_until is not None:
                        await self._handle(z.latest)
            waits = [z.stagger_until - now for z in self._zones.values()
                     if z.stagger_until is not None and z.stagger_until > now]
            self._wake.clear()
            try:
                async with asyncio.timeout(min(waits) if waits else None):
                    await self._wake.wait()
            except TimeoutError:
                pass


def _replace(snap: ZoneSnapshot, **changes: object) -> ZoneSnapshot:
    return replace(snap, **changes)  # type: ignore[arg-type]


def _with_cds(snap: ZoneSnapshot, state: DnssecState) -> NodeMap:
    """The unsigned nodes plus CDS/CDNSKEY at the apex once published (or the delete form)."""
    if state.published is None:
        return snap.nodes
    if state.config.status == "unsigning":
        cds, cdnskey = ds.cds_delete(snap.origin)
    else:
        ksks = [k for k in state.keys if k.role in ("ksk", "csk") and k.state == "active"]
        cds, cdnskey = ds.cds_cdnskey(ksks)
    apex = dict(snap.nodes.get(snap.origin, {}))
    apex[dns.rdatatype.CDS] = cds
    apex[dns.rdatatype.CDNSKEY] = cdnskey
    nodes = dict(snap.nodes)
    nodes[snap.origin] = MappingProxyType(apex)
    return MappingProxyType(nodes)
