"""Composition root: builds every component from the config, runs them, shuts down in order.

Start-up: connect to etcd, start the session lease, load every zone (DNS
sockets open only after the initial load), then open DNS, the admin API and
metrics. One TaskGroup runs the long-lived loops, each restarted after a back-off if it
fails (events 1900, 1112), so no loop stops the node. On SIGTERM/SIGINT:
stop admin RPCs -> Key Master hand-off -> stop membership and the session
loop, which revokes the lease (nothing re-registers the node afterwards) ->
stop DNS listeners last (STYLE R11).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from dataclasses import replace

import dns.name
import dns.tsig

from node import __version__, gcwatch, looplag, memdebug
from node.api.server import ApiServer, ApiTls
from node.clock import SYSTEM_CLOCK, Clock, OffsetClock
from node.config import Config, etcd_password, split_host_port
from node.dnssec import kek as kekmod
from node.events import Event, emit, set_context
from node.filezone.forward import file_zone_state, owner_api_call
from node.filezone.zones import FileZones
from node.keymaster.admin import DnssecAdmin
from node.keymaster.controller import KeyMasterController
from node.keymaster.handover import KeyMasterAdmin
from node.keymaster.keystore import KeyStore
from node.metrics import (
    IxfrCollector,
    KeyMasterCollector,
    NodeMetrics,
    ReplicaCollector,
    SecondaryCollector,
    SigningCollector,
    UpdateCollector,
)
from node.nodes.membership import Membership, NodeDirectory, own_record
from node.priority import CONTROL_SWITCH_INTERVAL, heavy_executor
from node.secondary.zones import SecondaryZones, TransferStatusWriter
from node.server import outbound, xfr
from node.server.journal import Journals
from node.server.listener import DnsServer
from node.server.notify import Notifier
from node.server.table import ZoneTable
from node.server.tls import client_context, server_context
from node.server.update import UpdateService, WritableTargets, notify_hook
from node.server.wire import OPCODE_NOTIFY, OPCODE_UPDATE
from node.serving.images import MirroredTable
from node.serving.supervisor import Fleet
from node.shutdown import Abandoned, ShutdownWatchdog, unless_stopped
from node.signing.expiry import ExpiryWatch
from node.signing.faults import Faults
from node.signing.secondary import SecondaryLoader
from node.signing.worker import SigningManager
from node.store.client import EtcdClient, TlsConfig
from node.store.keys import KeyLayout
from node.store.session import Session
from node.supervision import supervised as _supervised  # restarts a failed loop
from node.work.pool import worker_pool
from node.zones.model import ZoneConfig, ZoneSnapshot
from node.zones.replica import Replica
from node.zones.repository import ZoneRepository
from node.zones.sweep import GenerationSweep
from node.zones.tsig import TsigKeyStore
from node.zones.tsigkey import key_name
from node.zones.tsigring import TransferKeyring

log = logging.getLogger(__name__)


def _format_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Daemon:
    """One node process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        e = config.etcd
        tls = None
        if e.ca_file or e.cert_file:
            tls = TlsConfig(ca_file=e.ca_file or None, cert_file=e.cert_file or None,
                            key_file=e.key_file or None)
        self.etcd = EtcdClient(list(e.endpoints), username=e.username or None,
                               password=etcd_password(config) or None, tls=tls, timeout=e.timeout)
        self.layout = KeyLayout(e.prefix)
        # tests shift the clock (testing.clock_offset): signing depends on versions, not clocks
        self.clock: Clock = OffsetClock(config.testing.clock_offset) \
            if config.testing.clock_offset else SYSTEM_CLOCK
        self.session = Session(self.etcd, e.lease_ttl, keepalive_interval=e.keepalive_interval,
                               clock=self.clock)
        self.metrics = NodeMetrics()
        gcwatch.install(self.metrics.registry)  # GC pauses: metric + GC_PAUSE events
        sv = config.server
        journals = Journals(sv.journal_dir, sv.journal_max_bytes, sv.journal_max_versions)
        # server.workers > 0: worker processes answer DNS from images (node/serving/)
        self.fleet = Fleet.from_config(config) if sv.workers else None
        self.table = MirroredTable(journals, self.fleet.images) if self.fleet \
            else ZoneTable(journals)
        self.transfer_keys = TransferKeyring(self.etcd, self.layout)  # signed XFR and NOTIFY
        outbound.configure_from(config)  # server.transfer_source, server.notify_source
        self.notifier = Notifier(keyring=self.transfer_keys.get)
        self.replica = Replica(self.etcd, self.layout, on_update=self._on_update,
                               on_remove=self._on_remove, on_secondary=self._on_secondary,
                               observe_apply=self.metrics.watch_lag.observe,
                               reload_pause=config.testing.reload_pause)
        self._pool = worker_pool(config.signing.workers)  # parsing and signing, niced
        self.repository = ZoneRepository(self.etcd, self.layout, self.clock, pool=self._pool,
                                         import_pause=config.testing.import_pause)
        # an import's replaced generation is deleted once this node serves its flip (bulk.py)
        self.repository.bulk.after_flip = lambda rev: self.replica.wait_revision(rev, 60.0)
        self.directory = NodeDirectory(self.etcd, self.layout)
        self.sweep = GenerationSweep(self.etcd, self.layout, self.repository.bulk, self.session,
                                     self.directory, config)  # of orphaned zone generations
        self.me = own_record(config, self.clock.now())  # addresses: node/nodes/advertise.py
        sg = config.signing
        self.kek = kekmod.load_kek(sg.kek_file) if sg.kek_file else None
        self.me = replace(self.me, kek=kekmod.kek_fingerprint(self.kek) if self.kek else "")
        key_store = KeyStore(sg.key_store) if sg.key_store else None
        self.tsig_keys = TsigKeyStore(self.etcd, self.layout, self.kek)
        self.updates = UpdateService(
            repository=self.repository if config.role == "writable" else None,
            keys=self.tsig_keys, writable_addresses=WritableTargets(self.directory))
        self.membership = Membership(self.etcd, self.layout, self.me)
        self.expiry = ExpiryWatch(warn_window=sg.expiry_warning)  # of every served signed copy
        self.signing = SigningManager(
            node_id=config.node_id, etcd=self.etcd, layout=self.layout,
            publish=self._serve, hold=self.table.hold, kek_bytes=self.kek,
            can_sign=config.role == "writable", stagger=(sg.stagger_min, sg.stagger_max),
            pool=self._pool if self.kek else None, key_store=key_store,
            secondary=SecondaryLoader(
                me=self.me, directory=self.directory,
                publish=self.expiry.watching(self.table.publish_async),
                hold=self.table.hold, on_readiness=lambda: self._set_ready(True),
                on_problem=self.membership.set_problem, on_served=self.membership.set_served,
                tls=client_context(config.readonly.transfer_ca_file)
                if config.readonly.transfer_tls else None,
                tls_name=config.readonly.transfer_tls_name,
                transfer_key=key_name(config.readonly.transfer_key)
                if config.readonly.transfer_key else None,
                keyring=self.transfer_keys.get,
                primaries=config.readonly.primaries,
            ) if config.role == "readonly" else None,
            clock=self.clock,
            expiry=self.expiry,
            faults=Faults(config.testing.fail_secrets_reads, config.testing.fail_status_writes,
                          config.testing.fail_signing_file),
        )
        self.signing.on_readiness = self._set_ready
        if self.fleet is not None:
            self.fleet.on_change = lambda: self._set_ready(True)
            self.fleet.images.busy = self.signing.full_signing  # no merge a full sign replaces
        self.secondaries = SecondaryZones(  # zones of outside primaries, on every node
            publish=self.expiry.watching(self.table.publish_async), hold=self.table.hold,
            forget=self.expiry.forget, tsig_key=self._transfer_key,
            status=TransferStatusWriter(self.etcd, self.layout, config.node_id),
            on_served=self.membership.set_served, clock=self.clock)
        self.file_zones = FileZones(  # file-backed zones: owner here, or a secondary of it
            node_id=config.node_id, etcd=self.etcd, layout=self.layout,
            directory=self.directory, local=file_zone_state(sg), publish=self._serve_owned,
            hold=self.table.hold, secondaries=self.secondaries, api_call=owner_api_call(config),
            clock=self.clock)
        self.repository.file_zones = self.file_zones
        self.updates.file_zones = self.file_zones
        self.keymaster = KeyMasterController(
            node_id=config.node_id, writable=config.role == "writable", etcd=self.etcd,
            layout=self.layout, repository=self.repository, directory=self.directory,
            session=self.session, kek=self.kek, key_store=key_store, clock=self.clock,
            cds_poll=(sg.cds_poll_interval, config.testing.cds_glue_port or 53,
                      sg.checkds_interval, self.transfer_keys.get),
        )
        self.dnssec_admin = DnssecAdmin(self.etcd, self.layout, self.repository, self.directory,
                                        node_id=config.node_id, stagger_max=sg.stagger_max)
        self.keymaster_admin = KeyMasterAdmin(self.etcd, self.layout, self.directory,
                                              node_id=config.node_id)
        self._serving = False
        self.dns: DnsServer | None = None
        self.api: ApiServer | None = None
        self._stop = asyncio.Event()
        self._lease_tasks: list[asyncio.Task[None]] = []  # membership, then the session
        self._watchdog: ShutdownWatchdog | None = None

    async def _serve(self, snap: ZoneSnapshot) -> None:
        """Serve a zone version; writable nodes then NOTIFY the zone's secondaries."""
        delay = self.config.signing.test_publish_delay
        served = self.table.get(snap.origin)
        if delay and snap.signed and served is not None and served.snapshot.signed:
            await asyncio.sleep(delay)  # test-only fault: this node lags behind the serial
        await self.table.publish_async(snap)
        if self.config.role == "writable":
            self.notifier.serial_served(snap.origin, snap.serial, snap.config.notify)

    async def _serve_owned(self, snap: ZoneSnapshot) -> None:
        """A file-backed zone this node owns: served, then reported (`clusterctl nodes`)."""
        await self._serve(snap)
        self.membership.set_served(snap.origin.to_text(), snap.serial)

    async def _on_update(self, snap: ZoneSnapshot) -> None:
        self.keymaster.on_state(snap.origin, snap.dnssec, snap)  # before a (long) signing run
        await self.signing.on_snapshot(snap)
        if "served_serial" not in self.signing.status(snap.origin):  # else the copy reports
            self.membership.set_served(snap.origin.to_text(), snap.serial)

    def _on_secondary(self, config: ZoneConfig) -> None:
        if config.file_backed:
            self.file_zones.want(config)
        else:
            self.secondaries.want(config)

    async def _transfer_key(self, name: dns.name.Name) -> dns.tsig.Key | None:
        key = await self.tsig_keys.lookup(name, "transfer")  # never an update key
        return key.dns_key() if key is not None else None

    async def _on_remove(self, zone: dns.name.Name) -> None:
        self.file_zones.forget(zone)
        if self.secondaries.forget(zone):
            self.expiry.forget(zone)
        await self.signing.on_remove(zone)
        self.keymaster.on_state(zone, None)
        self.table.remove(zone)
        self.membership.set_served(zone.to_text(), None)

    def _set_ready(self, _signed: bool) -> None:
        ready = self._serving and self.signing.ready() and (
            self.fleet is None or self.fleet.ready())
        if self.api is not None:
            self.api.set_ready(ready)
        self.membership.set_ready(ready)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        cfg = self.config
        set_context(node=cfg.node_id)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.file_zones.sighup)  # re-read zone files
        emit(Event.NODE_STARTED, role=cfg.role, version=__version__,  # SIGTERM is handled now
             etcd=list(cfg.etcd.endpoints))
        await unless_stopped(self.etcd.connect(), self._stop, self._shutdown)
        self.session.on_new_lease(self.membership.on_new_lease)
        self.session.on_lease_lost(lambda _: self.membership.on_lease_lost(self.session.last_loss))
        self.metrics.register(ReplicaCollector(self.replica.snapshots,
                                               lambda: self.replica.revision))
        self.metrics.register(SigningCollector(self.signing.statuses))
        self.metrics.register(KeyMasterCollector(self.keymaster.missing_keys))
        self.metrics.register(UpdateCollector(lambda: dict(self.updates.counts)))
        journals = self.table.journals
        assert journals is not None
        self.metrics.register(IxfrCollector(lambda: dict(xfr.answers), journals.sizes))
        self.metrics.register(SecondaryCollector(self.secondaries.stats))
        async with asyncio.TaskGroup() as tasks:
            self._lease_tasks.append(tasks.create_task(
                _supervised("session", self.session.run), name="session"))
            await unless_stopped(self.replica.load(), self._stop, self._shutdown)  # retries
            tasks.create_task(_supervised("replica", self.replica.run), name="replica")
            tasks.create_task(_supervised("tsig-transfer-keys", self.transfer_keys.run),
                              name="tsig-transfer-keys")
            self._lease_tasks.insert(0, tasks.create_task(
                _supervised("membership", self.membership.run), name="membership"))
            tasks.create_task(_supervised("signing", self.signing.run), name="signing")
            tasks.create_task(_supervised("keymaster", self.keymaster.run), name="keymaster")
            tasks.create_task(looplag.watch("control", looplag.lag_histogram(
                self.metrics.registry)), name="loop-lag")  # + EVENT_LOOP_STALLED
            if cfg.role == "writable":
                self.metrics.register(self.sweep.collector())
                tasks.create_task(_supervised("sweep", self.sweep.run), name="sweep")
            listen = [split_host_port(a, "dns.listen") for a in cfg.dns.listen]
            self.dns = DnsServer(
                self.table,
                [] if self.fleet else listen,  # workers bind these
                max_udp_payload=cfg.dns.max_udp_payload,
                tcp_idle_timeout=cfg.dns.tcp_idle_timeout,
                max_tcp_connections=cfg.dns.max_tcp_connections,
                hooks={OPCODE_UPDATE: self.updates.hook,
                       OPCODE_NOTIFY: notify_hook(self.table, self.secondaries.notify)},
                tls_listen=[split_host_port(a, "dns.tls_listen") for a in cfg.dns.tls_listen],
                tls=server_context(cfg.dns.tls_cert_file, cfg.dns.tls_key_file)
                if cfg.dns.tls_listen else None,
                keyring=self.transfer_keys.get,
            )
            bound = await self.dns.start()
            if self.fleet is not None:
                bound = await self.fleet.start(self.dns, listen)
            self.metrics.register(self.fleet.collector() if self.fleet
                                  else self.dns.stats.collector())
            emit(Event.DNS_LISTENING, addresses=[_format_addr(h, p) for h, p in bound],
                 tls=[_format_addr(h, p) for h, p in self.dns.tls_addresses],
                 advertised=list(self.me.dns_addresses))
            api_tls = ApiTls(cfg.api.ca_file, cfg.api.cert_file, cfg.api.key_file) \
                if cfg.api.ca_file else None
            self.api = ApiServer(self.repository, self.directory, listen=cfg.api.listen,
                                 tls=api_tls, node_id=cfg.node_id, dnssec=self.dnssec_admin,
                                 keymaster=self.keymaster_admin, tsig=self.tsig_keys)
            await self.api.start()
            if cfg.metrics.listen:
                host, mport = split_host_port(cfg.metrics.listen, "metrics.listen")
                self.metrics.serve(host, mport)
            self._serving = True
            self._set_ready(True)
            emit(Event.NODE_READY, ready=self.signing.ready())
            await self._stop.wait()
            await self._shutdown()
            raise _Stopped

    async def _shutdown(self) -> None:
        emit(Event.NODE_STOPPING)
        watchdog = self._watchdog = ShutdownWatchdog(_SHUTDOWN_DEADLINE)
        watchdog.start()
        self._serving = False
        watchdog.step("admin API")
        if self.api is not None:
            self.api.set_ready(False)
            await self.api.stop(1.0)
        watchdog.step("Key Master hand-off")
        try:  # hand each Key Master role to another live node before the lease goes
            await self.keymaster.hand_off_all(timeout=self.config.etcd.timeout * 2)
        except Exception:
            log.exception("Key Master hand-off on shutdown failed")
        # stop membership, then the session loop, whose exit revokes the lease: nothing may
        # re-register this node as alive after that (it would delay failover by a whole TTL)
        watchdog.step("membership and lease")
        for task in self._lease_tasks:
            task.cancel()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.config.etcd.timeout):
                    await asyncio.gather(task, return_exceptions=True)
        if self.config.testing.shutdown_pause:  # test-only: widen the window after the revoke
            await asyncio.sleep(self.config.testing.shutdown_pause)
        watchdog.step("DNS listeners")
        if self.dns is not None:
            await self.dns.stop()
        if self.fleet is not None:
            await self.fleet.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        watchdog.ordered_done()


_SHUTDOWN_DEADLINE = 20.0  # seconds from SIGTERM; Kubernetes' default grace period is 30


class _Stopped(Exception):
    """Raised inside the TaskGroup to cancel every task after an orderly shutdown."""


def _use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run(config: Config) -> int:
    memdebug.install()  # debug only: DNSCLUSTER_MEMDEBUG (node/memdebug.py)
    sys.setswitchinterval(CONTROL_SWITCH_INTERVAL)  # the loop waits less for heavy threads
    _use_uvloop()
    daemon = Daemon(config)

    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(heavy_executor())  # node/priority.py
        try:
            await daemon.run()
        except* (_Stopped, Abandoned):  # stopped after, or during start-up
            pass
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await daemon.etcd.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    if daemon._watchdog is not None:
        daemon._watchdog.finished()
    return 0


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.Formatter.converter = time.gmtime
