"""Per-zone Key Master loop on this node: observe -> decide -> act; runs the duties it holds.

Observations come from the replica (role record and its token, settings,
keys, intent) and from etcd membership (who is alive); `decide` is pure.
While this node holds the role *with its current lease* and its local lease
deadline has not passed, it runs the zone's duties (`holder.Holder`), each a
fenced write (`duties.Fence`). Losing the role (a seize, a compare that fails) stops the
duties at once with an event; an unreachable etcd only pauses them until the
local deadline, after which the node stops acting.
"""

from __future__ import annotations

import asyncio
import logging

import dns.name

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import EtcdUnavailable, FencedOut, NodeError
from node.events import Event, emit
from node.keymaster.decide import (
    Acquire,
    Handover,
    Hold,
    Observation,
    Seize,
    StepDown,
    Wait,
    decide,
)
from node.keymaster.holder import Acting, Holder, ZoneRole
from node.keymaster.keystore import KeyStore
from node.keymaster.record import Intent, RoleRecord
from node.keymaster.role import RoleStore
from node.nodes.membership import NodeDirectory, NodeInfo
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecState
from node.zones.model import ZoneSnapshot
from node.zones.repository import ZoneRepository

log = logging.getLogger(__name__)
Name = dns.name.Name


class KeyMasterController(Acting):
    """Runs the Key Master role of every signed zone this node may hold."""

    def __init__(self, *, node_id: str, writable: bool, etcd: EtcdClient, layout: KeyLayout,
                 repository: ZoneRepository, directory: NodeDirectory, session: Session,
                 kek: bytes | None, key_store: KeyStore | None, tick: float = 0.5,
                 clock: Clock = SYSTEM_CLOCK, cds_poll: tuple = (0.0, 53)) -> None:  # type: ignore[type-arg]
        super().__init__(node_id=node_id, etcd=etcd, layout=layout, directory=directory,
                         session=session, kek=kek, clock=clock)
        self._writable = writable
        self._roles = RoleStore(etcd, layout, clock)
        self._tick = tick
        self._zones: dict[Name, ZoneRole] = {}
        self._holder = Holder(node_id=node_id, etcd=etcd, layout=layout, repository=repository,
                              directory=directory, session=session, kek=kek,
                              key_store=key_store, clock=clock, cds_poll=cds_poll)
        self._wake = asyncio.Event()
        self._stopping = False

    # -- inputs ---------------------------------------------------------------
    def on_state(self, zone: Name, state: DnssecState | None,
                 snap: ZoneSnapshot | None = None) -> None:
        if state is None:
            self._zones.pop(zone, None)
        else:
            z = self._zones.get(zone)
            if z is None:
                z = self._zones[zone] = ZoneRole(state)
            elif z.state is state:  # a data change only: the next tick steps with it
                if snap is not None:
                    z.snap = snap
                return
            else:
                z.state = state
            if snap is not None:
                z.snap = snap
        self._wake.set()

    def holds(self, zone: Name) -> bool:
        z = self._zones.get(zone)
        return bool(z and z.acting_token)

    def missing_keys(self) -> dict[str, int]:
        """Per zone this node holds: how many private keys it needs and cannot reach."""
        return {zone.to_text(): len(z.missing) + (
                    sum(k.replicate for k in z.state.keys) if z.kek_refused else 0)
                for zone, z in list(self._zones.items()) if z.acting_token}

    # -- loop -----------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._run()
        finally:  # a poll of children or parents never outlives the duty loop
            self._holder.links.cancel()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            if self._zones and not self._stopping:
                try:
                    nodes = await self._dir.list_nodes()
                except NodeError as exc:  # who is alive is unknown this tick (the safe side)
                    if not isinstance(exc, EtcdUnavailable):
                        emit(Event.ETCD_ERROR, level=logging.WARNING, during="keymaster",
                             code=exc.code, error=str(exc))
                    nodes = None
                for zone in list(self._zones):
                    try:
                        await self._step(zone, nodes)
                    except EtcdUnavailable as exc:
                        log.info("Key Master step for %s paused: %s", zone, exc)
                    except NodeError as exc:
                        log.warning("Key Master step for %s: %s", zone, exc)
                    except Exception:
                        emit(Event.TASK_CRASHED, level=logging.ERROR, task="keymaster",
                             zone=zone)
                        log.exception("Key Master step for %s failed", zone)
            try:
                async with asyncio.timeout(self._tick):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _observe(self, zone: Name, z: ZoneRole, nodes: list[NodeInfo] | None) -> Observation:
        state = z.state
        role = RoleRecord.from_json(state.keymaster)
        now = self._clock.monotonic()
        lease = self._session.lease_id or 0
        valid = self._session.is_valid()
        alive = {n.id for n in nodes if n.alive} if nodes is not None else set()
        holder_alive = nodes is None or (role is not None and role.node in alive)
        if holder_alive or not valid:
            z.offline_since = None  # after an outage of our own, the previous holder is preferred
        elif z.offline_since is None:
            z.offline_since = now
        replicated = all(k.replicate for k in state.keys)
        zone_kek = state.config.kek  # fingerprint of the KEK its keys are wrapped under
        # with wrapped keys the zone records their KEK; only nodes holding it may take the
        # role (a zone signed before it was recorded waits for its holder to record it)
        kek_ok = bool(self._kek) and (zone_kek == self._kek_fp if zone_kek else
                                      not any(k.replicate for k in state.keys))
        candidates = tuple(sorted(
            n.id for n in (nodes or ()) if n.alive and n.role == "writable"
            and n.kek and n.kek == (zone_kek or self._kek_fp)))
        intent = Intent.from_json(state.intent) if state.intent else None
        return Observation(
            zone=zone.to_text(), role=role, token=state.keymaster_revision,
            holder_alive=holder_alive, my_lease=lease, lease_valid=valid,
            eligible=self._writable and kek_ok and replicated,
            failover_auto=state.config.keymaster_failover == "auto" and replicated,
            failover_after=state.config.failover_after,
            holder_offline_since=z.offline_since, candidates=candidates, intent=intent,
            acting=bool(z.acting_token),
            may_hold=self._writable and bool(self._kek) and (
                not state.config.kek or state.config.kek == self._kek_fp),
        )

    async def _step(self, zone: Name, nodes: list[NodeInfo] | None) -> None:
        z = self._zones[zone]
        obs = self._observe(zone, z, nodes)
        decision = decide(obs, self._me, self._clock.monotonic())
        if isinstance(decision, StepDown):
            self._stop_acting(zone, z, decision.reason)
            return
        if isinstance(decision, Acquire):
            token = await self._roles.replace(
                zone, obs.token, previous=self._me, node=self._me, lease=obs.my_lease,
                by=self._me, reason=decision.reason)
            self._start_acting(zone, z, token, decision.reason)
            return
        if isinstance(decision, Seize):
            previous = obs.role.node if obs.role else ""
            # fenced on the token, on the holder's liveness key being gone (our view of who
            # is alive may be stale) and on the intent we saw; an old holder's intent goes
            token = await self._roles.replace(
                zone, obs.token, previous=previous, node=self._me, lease=obs.my_lease,
                by=self._me, reason="election",
                extra_ops=(Op.delete(self._keys.intent_key(zone)),),
                extra_compares=(Compare.version(self._keys.alive_key(previous)) == 0,
                                self._intent_guard(zone, z)))
            emit(Event.KEYMASTER_ELECTED, zone=zone, previous=previous)
            self._start_acting(zone, z, token, "election")
            return
        if isinstance(decision, Handover):
            if nodes is not None:  # who is alive is unknown: decide next tick
                await self._handover(zone, z, obs, decision.to)
            return
        if isinstance(decision, Wait):
            z.next_at = decision.until
            return
        assert isinstance(decision, Hold)
        if (obs.lease_valid and obs.role is not None and obs.role.node == self._me
                and obs.role.lease == obs.my_lease):
            if obs.token > z.acting_token:  # the replica may lag behind our own acquire
                self._start_acting(zone, z, obs.token, "holding")
            try:
                await self._holder.step(zone, z)
            except FencedOut as exc:
                self._stop_acting(zone, z, str(exc))

    def _start_acting(self, zone: Name, z: ZoneRole, token: int, why: str) -> None:
        if not z.acting_token:
            emit(Event.KEYMASTER_ACQUIRED, zone=zone, token=token, reason=why)
        z.acting_token = token

    def _stop_acting(self, zone: Name, z: ZoneRole, why: str) -> None:
        if z.acting_token:
            emit(Event.KEYMASTER_LOST, level=logging.WARNING, zone=zone, reason=why,
                 token=z.acting_token)
        z.acting_token = 0
        z.missing = ()
        z.kek_refused = False

    async def _handover(self, zone: Name, z: ZoneRole, obs: Observation, to: str) -> None:
        """Carry out a transfer intent: the current step is finished (steps are sequential)."""
        if to not in obs.candidates:  # went offline (or lost its KEK) since the request
            # only the intent we judged: a newer request that landed meanwhile stays
            res = await self._etcd.txn(when=[self._intent_guard(zone, z)],
                                       then=[Op.delete(self._keys.intent_key(zone))])
            if res.succeeded:
                emit(Event.KEYMASTER_REFUSED, level=logging.WARNING, zone=zone, to=to,
                     reason="the target is not a live eligible node")
            return
        extra: tuple[Op, ...] = (Op.delete(self._keys.intent_key(zone)),)
        cfg = z.state.config
        if cfg.missing_keys and to == cfg.key_store_node:  # back to the node with the keys
            extra += (Op.put(self._keys.dnssec_key(zone),
                             cfg.with_(missing_keys=()).to_json()),)
        await self._roles.replace(
            zone, obs.token, previous=self._me, node=to, lease=0,
            by=obs.intent.by if obs.intent else self._me, reason="transfer", extra_ops=extra,
            extra_compares=(Compare.mod_revision(self._keys.dnssec_key(zone))
                            == z.state.config_revision, self._intent_guard(zone, z)))
        emit(Event.KEYMASTER_TRANSFERRED, zone=zone, to=to)
        self._stop_acting(zone, z, f"transferred to {to}")

    def _intent_guard(self, zone: Name, z: ZoneRole) -> Compare:
        """The intent is still the one observed (absent if none was)."""
        key = self._keys.intent_key(zone)
        rev = z.state.intent_revision if z.state.intent else 0
        return Compare.mod_revision(key) == rev if rev else Compare.version(key) == 0

    # -- shutdown -------------------------------------------------------------
    async def hand_off_all(self, timeout: float) -> None:
        """SIGTERM: hand each held role to another live eligible node (or leave it to
        seize/election once our lease is revoked)."""
        self._stopping = True
        try:
            nodes = await self._dir.list_nodes()
        except EtcdUnavailable:
            return
        async with asyncio.timeout(timeout):
            for zone, z in list(self._zones.items()):
                if not z.acting_token:
                    continue
                others = sorted(
                    n.id for n in nodes if n.alive and n.id != self._me and
                    n.role == "writable" and n.kek == (z.state.config.kek or self._kek_fp))
                if any(not k.replicate for k in z.state.keys):
                    # only this node holds an unreplicated private key: keep the role here
                    # (seize with --accept-missing-keys remains for the operator)
                    emit(Event.KEYMASTER_RELEASED, zone=zone,
                         reason="shutdown; private keys not replicated, role kept")
                    continue
                if not others:
                    emit(Event.KEYMASTER_RELEASED, zone=zone, reason="shutdown, no other node")
                    continue
                try:
                    await self._roles.replace(zone, z.acting_token, previous=self._me,
                                              node=others[0], lease=0, by=self._me,
                                              reason="shutdown")
                    emit(Event.KEYMASTER_TRANSFERRED, zone=zone, to=others[0],
                         reason="shutdown")
                except (FencedOut, EtcdUnavailable) as exc:
                    log.warning("could not hand over %s: %s", zone, exc)
                z.acting_token = 0
