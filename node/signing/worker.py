"""Online signing on this node: one `ZoneSigner` per signed zone, fed by the replica.

The replica hands every unsigned zone version to `SigningManager.on_snapshot`
in revision order. Unsigned zones pass straight to the DNS table. A signed
zone is signed here (incrementally after the first time) and the signed
version is published to the table, then the node records in etcd
(`signing/<zone>/<node>`, `status.StatusRecorder`, retried until written)
which serial and key set it has signed.

Stagger (the model's 5-30 minutes): a node that is not the Key Master waits a uniform
random delay before its *first* signing of a zone and serves the zone unsigned meanwhile,
which is safe because an unsigned-here zone was never published. No stagger when the zone
was ever published (a restart, or new keys: the node answers SERVFAIL for it until it has
signed) or when this node signed the zone before. Key changes during rollovers apply at once.

A failed pass (keys unreachable, etcd refusing, a signer error) is reported
(`SIGNING_FAILED`, `dnscluster_signing_failures_total`) and retried with
back-off, 1 s doubling to 60 s, or at once on the zone's next version.
Meanwhile the last good signed copy stays served (the node stays ready while
its signatures are valid: `expiry.ExpiryWatch` says when they are not); with
no signed copy, a zone that was ever published is held (SERVFAIL), any other
is served unsigned.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

import dns.name

from node import stages
from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec import kek
from node.dnssec.digest import ZoneDigest
from node.dnssec.params import SignedResult
from node.dnssec.zonesigner import ZoneSigner
from node.errors import NodeError
from node.events import Event, emit
from node.keymaster.keystore import KeyStore
from node.keymaster.record import RoleRecord
from node.signing.backoff import Backoff
from node.signing.expiry import ExpiryWatch
from node.signing.faults import Faults
from node.signing.material import make_signer, with_cds
from node.signing.refresh import bump_for_refresh, refresh_spacing
from node.signing.secondary import SecondaryLoader
from node.signing.status import StatusRecorder
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.dnssec import DnssecState
from node.zones.model import NodeMap, ZoneSnapshot

log = logging.getLogger(__name__)

Name = dns.name.Name
Publish = Callable[[ZoneSnapshot], Awaitable[None]]


@dataclass(slots=True)
class _Zone:
    origin: Name
    signer: ZoneSigner | None = None
    identity: tuple[object, ...] | None = None
    apex: tuple[object, ...] | None = None  # DnssecState.apex_identity() of the last signing
    stagger_until: float | None = None  # monotonic; None = not staggering
    stagger_done: bool = False  # the first signing was attempted (a retry never re-staggers)
    signed_once: bool = False
    latest: ZoneSnapshot | None = None  # latest unsigned snapshot seen
    signed_serial: int | None = None
    signed_keyset: str = ""
    held: bool = False  # answering SERVFAIL until signed
    serving_signed: bool = False  # the table holds a copy signed here
    retry_at: float | None = None  # monotonic; a failed pass is retried then
    backoff: Backoff = field(default_factory=Backoff)
    failures: dict[str, int] = field(default_factory=dict)  # by stage, for the metric
    digest: ZoneDigest = field(default_factory=ZoneDigest)  # of the signed copy served
    digest_hex: str = ""
    next_refresh: float = 0.0  # unix time
    refresh_task: asyncio.Task[None] | None = field(default=None)
    full_signing: bool = False  # a full pass runs: its signed version will replace it whole


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
        faults: Faults | None = None,
        expiry: ExpiryWatch | None = None,
    ) -> None:
        self._me, self._etcd, self._keys = node_id, etcd, layout
        self._publish, self._hold, self._kek = publish, hold, kek_bytes
        self._can_sign = can_sign and kek_bytes is not None
        self._stagger, self._pool, self._key_store = stagger, pool, key_store
        self._secondary = secondary  # read-only nodes: signed zones come by transfer
        self._clock = clock
        self._rng = rng or random.Random()
        self._faults = faults or Faults()
        self.expiry = expiry or ExpiryWatch(warn_window=2 * 86400, clock=clock)
        self.expiry.on_change = self._notify_readiness
        self._status = StatusRecorder(
            node_id=node_id, etcd=etcd, layout=layout, on_failure=self._report,
            kek=kek.kek_fingerprint(kek_bytes) if kek_bytes else "", faults=self._faults,
            clock=clock)
        self._zones: dict[Name, _Zone] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.on_readiness: Callable[[bool], None] | None = None

    # -- readiness ----------------------------------------------------------
    def ready(self) -> bool:
        """True when every published signed zone is signed here (DESIGN.md readiness) and no
        served copy has expired signatures."""
        waiting = self._secondary is not None and self._secondary.waiting()
        return (not waiting and not any(z.held for z in self._zones.values())
                and not self.expiry.expired())

    def _notify_readiness(self) -> None:
        if self.on_readiness is not None:
            self.on_readiness(self.ready())

    def statuses(self) -> list[tuple[str, dict[str, object]]]:
        return [(zone.to_text(), self.status(zone)) for zone in list(self._zones)]

    def status(self, zone: Name) -> dict[str, object]:
        if self._secondary is not None and (copy := self._secondary.status(zone)):
            return copy  # read-only: the transferred copy (its earliest RRSIG expiry, held)
        z = self._zones.get(zone)
        if z is None:
            return {}
        return {
            "signed_serial": z.signed_serial,
            "keyset": z.signed_keyset,
            "staggering": z.stagger_until is not None,
            "held": z.held,
            "earliest_expiration": self.expiry.earliest(zone),  # of the served copy
            "next_refresh": z.next_refresh,
            "failures": dict(z.failures),
            "retrying": z.retry_at is not None or self._status.pending(zone),
        }

    def full_signing(self, origin: bytes) -> bool:
        """Zone `origin` (wire form) is being signed in full here: what is served now will
        be replaced whole (an image merge of it would be thrown away: `ImagePublisher.busy`)."""
        z = self._zones.get(dns.name.from_wire(origin, 0)[0])
        return z is not None and z.full_signing

    # -- replica callbacks --------------------------------------------------
    async def on_snapshot(self, snap: ZoneSnapshot) -> None:
        async with self._lock:
            await self._handle(snap)

    async def on_remove(self, zone: Name) -> None:
        async with self._lock:
            z = self._zones.pop(zone, None)
            if z is not None and z.refresh_task is not None:
                z.refresh_task.cancel()
            self.expiry.forget(zone)
            self._status.forget(zone)
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
            z.retry_at = None
            await self._serve_unsigned(z, snap)
            return
        if self._secondary is not None:  # read-only: the signed copy comes by transfer
            self._secondary.want(snap)
            self._notify_readiness()
            return
        if not self._can_sign:
            if state.was_published:
                self._hold_zone(z, "this node cannot sign (no KEK or read-only) and the zone "
                                   "is published")
            else:
                await self._serve_unsigned(z, snap)
            return
        if not z.signed_once and not z.stagger_done and z.stagger_until is None:
            if await self._needs_stagger(snap, state):
                delay = self._rng.uniform(*self._stagger)
                z.stagger_until = self._clock.monotonic() + delay
                emit(Event.SIGNING_STAGGERED, zone=snap.origin, delay=round(delay, 3))
                self._wake.set()
            else:
                z.stagger_until = None
        if z.stagger_until is not None:
            if state.was_published:  # never serve a published zone unsigned
                z.stagger_until = None
            elif self._clock.monotonic() < z.stagger_until:
                await self._serve_unsigned(z, snap)
                return
            else:
                z.stagger_until = None
        if not z.signed_once and state.was_published:
            self._hold_zone(z, "signing before serving the published zone")
        z.stagger_done = True
        try:
            await self._sign(z, snap, state)
        finally:
            z.full_signing = False

    async def _needs_stagger(self, snap: ZoneSnapshot, state: DnssecState) -> bool:
        if state.was_published:
            return False
        role = RoleRecord.from_json(state.keymaster)
        if role is not None and role.node == self._me:
            return False
        try:  # signed this zone before (a restart): no stagger
            kv = await self._etcd.get(self._keys.signing_key(snap.origin, self._me))
        except NodeError:  # unknown: the stagger is the safe side
            return True
        return kv is None

    def _hold_zone(self, z: _Zone, why: str) -> None:
        if not z.held:
            z.held = True
            self._hold(z.origin)
            emit(Event.SIGNING_HELD, level=logging.WARNING, zone=z.origin, reason=why)
            self._notify_readiness()

    async def _serve_unsigned(self, z: _Zone, snap: ZoneSnapshot) -> None:
        if z.signer is not None or z.serving_signed:  # the table must rebuild everything
            z.signer = None
            z.identity = None
            snap = _replace(snap, changed=None)
        await self._publish(snap)
        z.serving_signed = False
        self.expiry.served(z.origin, None)

    # -- signing ------------------------------------------------------------
    async def _sign(self, z: _Zone, snap: ZoneSnapshot, state: DnssecState) -> None:
        identity = state.signing_identity()
        apex = state.apex_identity()
        full = z.full_signing = z.signer is None or identity != z.identity
        started = self._clock.monotonic()
        try:
            if full:
                emit(Event.SIGNING_STARTED, zone=snap.origin, serial=snap.serial,
                     rrsets=await asyncio.to_thread(_rrset_count, snap))  # zone-sized
                assert self._kek is not None  # _can_sign
                z.signer = await make_signer(
                    snap, state, etcd=self._etcd, layout=self._keys, kek_bytes=self._kek,
                    key_store=self._key_store, pool=self._pool, node_id=self._me,
                    faults=self._faults)
                z.identity = identity
            self._faults.signing(snap.origin)
            nodes = with_cds(snap, state)
            # Signature times come from the version (DESIGN: one serial is one zone);
            # a head written before versions carried a time falls back to this clock.
            version_time = snap.time or int(self._clock.time())
            changed = None if full else snap.changed
            if changed is not None and apex != z.apex:  # publication: CDS at the apex
                changed = changed | {snap.origin}
            signer = z.signer
            assert signer is not None
            result, z.digest_hex = await asyncio.to_thread(
                _sign_and_digest, signer, z.digest, nodes, changed, version_time)
            stages.mark(snap.origin, snap.revision, "signed")
        except NodeError as exc:
            z.signer = None  # the next attempt starts from scratch
            z.identity = None
            self._failed(z, "sign", exc)
            if z.serving_signed:
                return  # keep the last good signed copy
            if state.was_published:
                self._hold_zone(z, f"signing failed: {exc}")
            else:
                await self._serve_unsigned(z, snap)
            return
        z.apex = apex
        signed = _replace(snap, nodes=result.nodes, changed=None if full else result.changed,
                          signed=True)
        await self._publish(signed)
        z.serving_signed = True
        self.expiry.served(z.origin, result.earliest_expiration)
        if z.backoff.failing:
            emit(Event.SIGNING_RECOVERED, zone=snap.origin, serial=snap.serial)
        z.retry_at = None
        z.backoff.reset()
        first = not z.signed_once
        z.signed_once = True
        z.signed_serial = snap.serial
        z.signed_keyset = state.keyset_id
        z.next_refresh = float(max(result.next_refresh,
                                   version_time + refresh_spacing(signer.params)))
        if z.held:
            z.held = False
            self._notify_readiness()
        if first or full or result.signatures_made > 1000:
            emit(Event.SIGNING_FINISHED, zone=snap.origin, serial=snap.serial,
                 signatures=result.signatures_made, full=full,
                 seconds=round(self._clock.monotonic() - started, 3))
        self._status.record(snap.origin, snap.serial, z.signed_keyset, z.digest_hex)
        self._schedule_refresh(z)

    def _failed(self, z: _Zone, stage: str, exc: NodeError) -> None:
        """Report a failed pass and schedule its retry (back-off, or the next version)."""
        delay = z.backoff.next()
        z.retry_at = self._clock.monotonic() + delay
        self._wake.set()
        self._report(z.origin, stage, exc, delay)

    def _report(self, zone: Name, stage: str, exc: NodeError, delay: float) -> None:
        z = self._zones.get(zone)
        if z is not None:
            z.failures[stage] = z.failures.get(stage, 0) + 1
        emit(Event.SIGNING_FAILED, level=logging.ERROR, zone=zone, stage=stage,
             error=str(exc), retry_in=round(delay, 3))

    # -- timers ---------------------------------------------------------------
    def _schedule_refresh(self, z: _Zone) -> None:
        if z.refresh_task is not None:
            z.refresh_task.cancel()
        delay = max(0.0, z.next_refresh - self._clock.time())
        z.refresh_task = asyncio.get_running_loop().create_task(self._refresh_later(z, delay))

    async def _refresh_later(self, z: _Zone, delay: float) -> None:
        await asyncio.sleep(delay)
        if z.signed_serial is not None:
            await bump_for_refresh(self._etcd, self._keys, self._clock, z.origin,
                                   z.signed_serial)

    async def run(self) -> None:
        """Wake staggered zones when their delay is over and failed ones when their retry is
        due; check the served copies' signature expiry (on every node)."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.expiry.run(), name="signature-expiry")
            await self._wake_zones()

    async def _wake_zones(self) -> None:
        while True:
            now = self._clock.monotonic()
            for z in list(self._zones.values()):
                due = [t for t in (z.stagger_until, z.retry_at) if t is not None and t <= now]
                if not due:
                    continue
                async with self._lock:
                    if z.origin not in self._zones or z.latest is None:
                        continue
                    if z.retry_at is not None and z.retry_at <= now:
                        z.retry_at = None
                    try:
                        await self._handle(z.latest)
                    except Exception as exc:  # a boundary: the other zones go on
                        z.retry_at = now + 10.0  # try again, not in a hot loop
                        emit(Event.SIGNING_FAILED, level=logging.ERROR, zone=z.origin,
                             error=f"{type(exc).__name__}: {exc}")
                        log.exception("signing %s failed", z.origin)
            waits = [t - now for z in self._zones.values()
                     for t in (z.stagger_until, z.retry_at) if t is not None and t > now]
            self._wake.clear()
            try:
                async with asyncio.timeout(min(waits) if waits else None):
                    await self._wake.wait()
            except TimeoutError:
                pass


def _replace(snap: ZoneSnapshot, **changes: object) -> ZoneSnapshot:
    return replace(snap, **changes)  # type: ignore[arg-type]


def _sign_and_digest(signer: ZoneSigner, digest: ZoneDigest, nodes: NodeMap,
                     changed: frozenset[Name] | None, version_time: int,
                     ) -> tuple[SignedResult, str]:
    """Sign a version and bring the digest of the signed copy up to date (one thread hop)."""
    result = signer.sign(nodes, changed, version_time)
    if result.changed is None:
        return result, digest.reset(result.nodes)
    return result, digest.update(result.nodes, result.changed)


def _rrset_count(snap: ZoneSnapshot) -> int:
    return sum(len(types) for types in snap.nodes.values())
