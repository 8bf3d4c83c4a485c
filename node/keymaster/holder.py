"""The Key Master's duties while this node holds a zone's role: one step per tick.

`KeyMasterController` (controller.py) decides whether this node holds a zone's
role; while it does, it calls `Holder.step` once per tick. A step makes at most
one fenced write (`duties.Fence`), in this order: the links to parents and
children (`links.py`), key generation, the KEK fingerprint of a zone signed
before it was recorded, the KSK-signed DNSKEY set, publication once every
writable node has signed, and the rollover step that is due. A compare that
fails raises `FencedOut` to the controller, which stops acting. `ZoneRole` is
the per-zone state the two share, `Acting` the node's side of both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.name

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec import kek as kekmod
from node.errors import ValidationError
from node.events import Event, emit
from node.keymaster import duties
from node.keymaster import rollover as roll
from node.keymaster.keystore import KeyStore
from node.keymaster.links import Links
from node.nodes.membership import NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.zones.dnssec import DnssecState
from node.zones.model import ZoneSnapshot
from node.zones.repository import ZoneRepository

Name = dns.name.Name


@dataclass(slots=True)
class ZoneRole:
    """What this node knows and does about one signed zone's role."""

    state: DnssecState
    acting_token: int = 0  # token under which this node acts (0 = not acting)
    offline_since: float | None = None
    next_at: float = 0.0
    missing: tuple[str, ...] = ()  # private keys the holder needs and cannot reach
    kek_refused: bool = False  # this node's KEK does not unwrap the zone's keys
    snap: ZoneSnapshot | None = None  # the latest version (the rollover's TTLs)
    timing: tuple[int, roll.Timing] | None = None  # (serial, timing) computed from `snap`
    waiting: str = ""  # what a rollover waits for (event once per change)


class Acting:
    """This node as the Key Master acts, for `Holder` and the controller alike: its id,
    the etcd and key layout it writes through, the node directory, its lease (`session`),
    its KEK and that KEK's fingerprint, and the clock."""

    def __init__(self, *, node_id: str, etcd: EtcdClient, layout: KeyLayout,
                 directory: NodeDirectory, session: Session, kek: bytes | None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._me = node_id
        self._etcd = etcd
        self._keys = layout
        self._dir = directory
        self._session = session
        self._kek = kek
        self._kek_fp = kekmod.kek_fingerprint(kek) if kek else ""
        self._clock = clock


class Holder(Acting):
    """Runs the duties of the zones whose role this node holds (each write fenced)."""

    def __init__(self, *, node_id: str, etcd: EtcdClient, layout: KeyLayout,
                 repository: ZoneRepository, directory: NodeDirectory, session: Session,
                 kek: bytes | None, key_store: KeyStore | None, clock: Clock = SYSTEM_CLOCK,
                 cds_poll: tuple = (0.0, 53)) -> None:  # type: ignore[type-arg]
        super().__init__(node_id=node_id, etcd=etcd, layout=layout, directory=directory,
                         session=session, kek=kek, clock=clock)
        self._repo = repository
        self._store = key_store
        self.links = Links(etcd, layout, repository, directory, key_store, *cds_poll,
                           clock=clock)  # (CDS poll s, glue port[, checkds s, keyring])

    def _fence(self, zone: Name, z: ZoneRole) -> duties.Fence:
        return duties.Fence.for_role(self._keys, zone, z.acting_token, self._me,
                                     self._session.lease_id or 0)

    async def step(self, zone: Name, z: ZoneRole) -> None:
        """One step of the holder's duties; each write fenced. Raises FencedOut."""
        if not self._session.is_valid() or self._kek is None:
            return
        state = z.state
        cfg = state.config
        self._check_keys(zone, z)
        # at most one fenced write per step
        if await self.links.step(zone, state, z.snap, z.missing, self._fence(zone, z),
                                 self._kek):
            return  # parents and children: CDS poll, double-DS (node.keymaster.links)
        if cfg.status == "keygen" or cfg.new_keys:
            retire = state.keys if cfg.new_keys else ()
            await duties.generate_keys(
                etcd=self._etcd, layout=self._keys, repository=self._repo, zone=zone,
                config=cfg, fence=self._fence(zone, z), node_id=self._me, kek=self._kek,
                key_store=self._store, retire=retire,
                config_revision=state.config_revision,
                ever_published=state.published or state.ever_published, clock=self._clock)
            return
        if not cfg.kek and any(k.replicate for k in state.keys):
            await self._record_kek(zone, z)
            return
        if await duties.publish_dnskey_signatures(
                repository=self._repo, layout=self._keys, zone=zone, state=state,
                fence=self._fence(zone, z), key_store=self._store, clock=self._clock):
            return
        if cfg.status == "signed" and state.published is None and state.keys:
            if await duties.publish_if_ready(
                    etcd=self._etcd, layout=self._keys, repository=self._repo,
                    directory=self._dir, zone=zone, fence=self._fence(zone, z),
                    keyset=state.keyset_id, kek_fingerprint=cfg.kek or self._kek_fp,
                    clock=self._clock):
                return
        if cfg.status == "signed" and state.keys and not z.missing:
            await self._rollover(zone, z)

    async def _rollover(self, zone: Name, z: ZoneRole) -> None:
        """Perform the zone's due rollover step, if any (one fenced write with a bump)."""
        assert self._kek is not None
        if z.snap is None:
            return
        now = self._clock.time()
        # the TTLs come from a scan of the whole zone: done again only when a step is due
        # (a large zone with many updates would otherwise be scanned at every serial)
        if z.timing is None:
            z.timing = (z.snap.serial, await roll.timing_off_loop(z.state.config, z.snap))
        plan = await self._plan(zone, z, now)
        if plan.due(now) and z.timing[0] != z.snap.serial:
            z.timing = (z.snap.serial, await roll.timing_off_loop(z.state.config, z.snap))
            plan = await self._plan(zone, z, now)
        if plan.blocked and plan.at is not None and plan.at <= now:
            if await self.links.ds_seen(zone, z.state, plan, self._fence(zone, z)):
                return  # the parent in the cluster holds the new DS: ds_seen recorded
            if plan.waiting_for != z.waiting:
                z.waiting = plan.waiting_for
                emit(Event.ROLLOVER_WAITING, zone=zone, next_step=plan.name,
                     waiting_for=plan.waiting_for)
            return
        if plan.due(now):
            z.waiting = ""
            await roll.perform(repository=self._repo, layout=self._keys, zone=zone,
                               state=z.state, step=plan, fence=self._fence(zone, z),
                               kek=self._kek, key_store=self._store, clock=self._clock)

    async def _plan(self, zone: Name, z: ZoneRole, now: float) -> roll.Plan:
        assert z.timing is not None
        return await roll.observe(etcd=self._etcd, layout=self._keys, directory=self._dir,
                                  zone=zone, state=z.state, timing=z.timing[1], now=now)

    async def _record_kek(self, zone: Name, z: ZoneRole) -> None:
        """Fill in the KEK fingerprint of a zone signed before it was recorded."""
        assert self._kek is not None
        try:
            await duties.record_kek(etcd=self._etcd, layout=self._keys, zone=zone,
                                    state=z.state, fence=self._fence(zone, z), kek=self._kek)
        except ValidationError as exc:  # this node's KEK does not unwrap the zone's keys
            if not z.kek_refused:
                z.kek_refused = True
                emit(Event.KEYMASTER_KEY_MISSING, level=logging.ERROR, zone=zone,
                     keys=[k.key_id for k in z.state.keys if k.replicate],
                     reason=f"{exc}; transfer the role to a node with the zone's KEK")

    def _check_keys(self, zone: Name, z: ZoneRole) -> None:
        """An error event (once per change) when the holder lacks an unreplicated private
        key of a key in use: it cannot sign the DNSKEY set or roll keys, and nothing else
        would say so before signatures expire."""
        missing = tuple(sorted(
            k.key_id for k in z.state.keys if not k.replicate and k.state != "retired"
            and (self._store is None or not self._store.has(zone, k.key_id))))
        if missing != z.missing:
            z.missing = missing
            if missing:
                emit(Event.KEYMASTER_KEY_MISSING, level=logging.ERROR, zone=zone,
                     keys=list(missing), key_store=str(self._store.root) if self._store else "",
                     reason="unreplicated private key not in this Key Master's key store; "
                            "restore it, transfer the role to the node that holds it, or "
                            "re-key (zone sign --new-keys)")
