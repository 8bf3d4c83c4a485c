"""The Key Master's duties that reach past its own zone: parents and children (issue #11).

As a parent, it polls its children's CDS/CDNSKEY and keeps their DS current
(node.keymaster.cds_poll). As a child, it sees a new KSK's DS at a parent in the cluster
(node.keymaster.parent_ds) and runs `--new-keys` as a double-DS rollover when its KSK is
unreachable (node.keymaster.double_ds). Each step is at most one fenced write; the
holder (node.keymaster.holder) calls `step` once per tick of a zone it holds, and
`ds_seen` while a KSK roll waits for the parent; with a parent outside the cluster, or
parental agents set, it asks the parent's servers (node.keymaster.checkds). A CDS poll
runs as a task of its own (its writes fenced like any other), so a child's servers that
do not answer never hold up the Key Master's other duties; so does a checkds round.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import dns.name

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.rollover import Plan
from node.errors import FencedOut, NodeError
from node.events import Event, emit
from node.keymaster import double_ds, parent_ds
from node.keymaster import rollover as roll
from node.keymaster.cds_poll import CdsPoller
from node.keymaster.checkds import CheckDs, Keyring
from node.keymaster.duties import Fence
from node.keymaster.keystore import KeyStore
from node.nodes.membership import NodeDirectory, NodeInfo
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.dnssec import DnssecState
from node.zones.model import ZoneSnapshot
from node.zones.repository import ZoneRepository

Name = dns.name.Name
log = logging.getLogger(__name__)


@dataclass(slots=True)
class Links:
    etcd: EtcdClient
    layout: KeyLayout
    repository: ZoneRepository
    directory: NodeDirectory
    key_store: KeyStore | None
    cds_poll_interval: float
    glue_port: int = 53  # test-only other value (testing.cds_glue_port)
    checkds_interval: float = 60.0  # signing.checkds_interval
    keyring: Keyring | None = None  # transfer keys, for parental agents written HOST:PORT/KEY
    clock: Clock = SYSTEM_CLOCK
    poller: CdsPoller | None = None
    checkds: CheckDs | None = None
    _polls: dict[Name, asyncio.Task[None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.poller = CdsPoller(self.etcd, self.layout, self.repository,
                                self.cds_poll_interval, clock=self.clock,
                                glue_port=self.glue_port)
        self.checkds = CheckDs(self.repository, self.layout, self.checkds_interval,
                               self.keyring, clock=self.clock)

    async def step(self, zone: Name, state: DnssecState, snap: ZoneSnapshot | None,
                   missing: tuple[str, ...], fence: Fence, kek: bytes) -> bool:
        """One duty toward parent or children, if one is due; True if it wrote."""
        cfg = state.config
        old = double_ds.unreachable_ksk(state.keys, missing)
        if cfg.new_keys and old is not None:
            return bool(await double_ds.start(
                repository=self.repository, layout=self.layout, zone=zone, state=state,
                old=old, fence=fence, kek=kek, key_store=self.key_store, clock=self.clock))
        if cfg.status != "signed" or snap is None:
            return False
        if double_ds.pending(state.keys) is not None:
            if await double_ds.advance(
                    etcd=self.etcd, repository=self.repository, layout=self.layout, zone=zone,
                    state=state, timing=await roll.timing_off_loop(cfg, snap), fence=fence, kek=kek,
                    key_store=self.key_store, clock=self.clock):
                return True
        assert self.poller is not None
        running = self._polls.get(zone)
        if self.poller.due(zone) and (running is None or running.done()):
            nodes = await self.directory.list_nodes()
            self._polls[zone] = asyncio.create_task(self._poll(zone, snap, fence, nodes))
        return False

    def cancel(self) -> None:
        """Stop every CDS poll and checkds round (the node stops: etcd goes next)."""
        tasks = list(self._polls.values())
        if self.checkds is not None:
            tasks += list(self.checkds.tasks())
        for task in tasks:
            task.cancel()

    async def _poll(self, zone: Name, snap: ZoneSnapshot, fence: Fence,
                    nodes: list[NodeInfo]) -> None:
        assert self.poller is not None
        try:
            await self.poller.poll(zone, snap, fence, nodes)
        except FencedOut as exc:  # the role moved on: the next holder polls
            log.info("CDS poll of %s's children stopped: %s", zone, exc)
        except NodeError as exc:
            log.warning("CDS poll of %s's children: %s", zone, exc)
        except Exception:
            emit(Event.TASK_CRASHED, level=logging.ERROR, task="cds-poll", zone=zone)
            log.exception("CDS poll of %s's children failed", zone)

    async def ds_seen(self, zone: Name, state: DnssecState, plan: Plan, fence: Fence) -> bool:
        """A KSK roll waits for its DS: record `ds_seen` if an in-cluster parent holds it;
        otherwise start a checkds round at the parental agents or the parent's servers
        (it records `ds_seen` itself, later)."""
        if await parent_ds.mark_if_seen(etcd=self.etcd, layout=self.layout,
                                        repository=self.repository, zone=zone,
                                        state=state, step=plan, fence=fence,
                                        clock=self.clock):
            return True
        key = parent_ds.awaited(plan, state.keys)
        if key is not None and self.checkds is not None and self.checkds.due(zone):
            inside = await parent_ds.parent_zone(self.etcd, self.layout, zone) is not None
            self.checkds.start(zone, state, key, fence, inside)
        return False
