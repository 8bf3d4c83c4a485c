"""The node's in-memory copy of every zone, fed by one etcd watch on `zones/`.

A secondary zone (`ZoneConfig.kind`) has a config and a head but no data
here: its config goes to `on_secondary` instead of a snapshot to `on_update`.

Loads everything with paged range reads at one revision, then watches from
the next revision. Each etcd revision that touches a zone (every change is
one transaction, see `repository`) becomes one new immutable `ZoneSnapshot`
of that zone, handed in revision order to `on_update`; readers of older
snapshots never wait. A generation switch (import, create) reloads the zone's new
generation at the flip revision; the zone keeps its old head and data until that
read succeeds, so a failed read is retried when the revision is replayed. Any etcd
error is retried; it never ends the loop. After a compaction the node resynchronises
fully; after a disconnect the watch resumes from its last revision (the
store's `Watch` does that), so nothing is lost.
"""

from __future__ import annotations

import asyncio
import bisect
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from types import MappingProxyType

import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset

from node import stages
from node.errors import EtcdUnavailable, NodeError
from node.events import Event, emit
from node.store.client import Compacted, EtcdClient, KeyValue, WatchCanceled
from node.store.keys import KeyLayout, ZoneKey
from node.zones.decode import build_nodes
from node.zones.layered import LayeredNodes
from node.zones.model import ZoneConfig, ZoneHead, ZoneSnapshot, rrset_from_json, with_serial
from node.zones.ownertypes import owner_types
from node.zones.pending import PendingGenerations
from node.zones.zonestate import META_KINDS, ZoneState

log = logging.getLogger(__name__)

Name = dns.name.Name
OnUpdate = Callable[[ZoneSnapshot], Awaitable[None] | None]
OnRemove = Callable[[Name], Awaitable[None] | None]
OnSecondary = Callable[[ZoneConfig], Awaitable[None] | None]
_DATA = b"/data/"
_Owner = MappingProxyType  # owner's types map, immutable once published


async def _call(cb: Callable[..., Awaitable[None] | None], *args: object) -> None:
    result = cb(*args)
    if inspect.isawaitable(result):
        await result


class Replica:
    """Holds the current snapshot of every zone, fed by one watch."""

    def __init__(
        self,
        client: EtcdClient,
        layout: KeyLayout,
        *,
        on_update: OnUpdate | None = None,
        on_remove: OnRemove | None = None,
        on_secondary: OnSecondary | None = None,
        retry_interval: float = 1.0,
        observe_apply: Callable[[float], None] | None = None,
        reload_pause: float = 0.0,
    ) -> None:
        self._etcd = client
        self._keys = layout
        self._on_update = on_update
        self._on_remove = on_remove
        self._on_secondary = on_secondary  # secondary zones: their config, never a snapshot
        self._retry = retry_interval
        self._observe_apply = observe_apply
        self._arrived = 0.0  # perf_counter time the watch batch being applied arrived
        self._reload_pause = reload_pause  # test-only: widens the reload window (testing.*)
        self._zones: dict[Name, ZoneState] = {}
        self._pending = PendingGenerations()  # imports being written, decoded as they come
        self.revision = 0  # etcd revision fully applied
        self.loaded = asyncio.Event()
        self._applied = asyncio.Condition()

    # -- reading ----------------------------------------------------------
    def snapshot(self, zone: Name) -> ZoneSnapshot | None:
        state = self._zones.get(zone)
        return None if state is None else state.snapshot

    def snapshots(self) -> list[ZoneSnapshot]:
        # list() first: a metrics scrape calls this from its own thread while the loop may
        # add or drop a zone (a comprehension over the live view can raise mid-iteration)
        return [s.snapshot for s in list(self._zones.values()) if s.snapshot is not None]

    async def wait_revision(self, revision: int, timeout: float) -> None:
        """Wait until everything up to `revision` is applied (TimeoutError otherwise)."""
        async with asyncio.timeout(timeout), self._applied:
            await self._applied.wait_for(lambda: self.revision >= revision)

    # -- loading ----------------------------------------------------------
    async def load(self) -> int:
        """Full load at one revision; retries until etcd answers. Returns the revision."""
        self._pending.clear()  # the watch starts again after this load: nothing follows on
        while True:
            try:
                kvs, revision = await self._etcd.range_all(self._keys.zones_prefix())
                break
            except EtcdUnavailable as exc:
                emit(Event.ETCD_UNAVAILABLE, level=logging.WARNING, during="load", error=str(exc))
                await asyncio.sleep(self._retry)
            except NodeError as exc:  # compacted while paging, a stale token, a permission
                emit(Event.ETCD_ERROR, level=logging.WARNING, during="load", code=exc.code,
                     error=str(exc))
                await asyncio.sleep(self._retry)
        fresh: dict[Name, ZoneState] = {}
        data: list[KeyValue] = []  # every generation's data keys, in key order
        for kv in kvs:
            if _DATA in kv.key:  # zone names are escaped: only a data key holds "/data/"
                data.append(kv)
                continue
            parsed = self._keys.parse_zone_key(kv.key)
            if parsed is None:
                continue
            state = fresh.setdefault(parsed.zone, ZoneState())
            try:
                if parsed.kind == "config":
                    state.config = ZoneConfig.from_json(kv.value)
                elif parsed.kind == "head":
                    state.head = ZoneHead.from_json(kv.value)
                elif parsed.kind in META_KINDS:
                    state.apply_meta(parsed.kind, parsed.key_id, kv)
            except (ValueError, KeyError, TypeError, dns.exception.DNSException) as exc:
                emit(Event.ZONE_LOAD_FAILED, level=logging.ERROR, key=kv.key, error=str(exc))
        keys = [kv.key for kv in data]
        for zone, state in fresh.items():
            if state.head is None:
                continue
            prefix = self._keys.data_prefix(zone, state.head.generation).encode()
            current = data[bisect.bisect_left(keys, prefix):
                           bisect.bisect_left(keys, prefix[:-1] + b"0")]  # "/" + 1
            state.nodes = await asyncio.to_thread(build_nodes, prefix, current)
        removed = [z for z in self._zones if z not in fresh or fresh[z].head is None]
        self._zones = {z: s for z, s in fresh.items() if s.head is not None}
        for zone in removed:
            await self._removed(zone)
        for zone, state in self._zones.items():
            await self._publish(zone, state, revision, changed=None)
        await self._set_revision(revision)
        self.loaded.set()
        emit(Event.ZONE_LOADED, zones=len(self._zones), revision=revision)
        return revision

    # -- watching ---------------------------------------------------------
    async def run(self) -> None:
        """Load (if not yet), then apply the watch forever; resync after compaction."""
        if not self.loaded.is_set():
            await self.load()
        while True:
            watch = self._etcd.watch(self._keys.zones_prefix(), self.revision + 1)
            try:
                async for batch in watch:
                    started = self._arrived = time.perf_counter()
                    await self._apply(batch.revision, batch.events)
                    if self._observe_apply is not None:
                        self._observe_apply(time.perf_counter() - started)
            except Compacted as exc:
                emit(Event.WATCH_COMPACTED_RESYNC, level=logging.WARNING,
                     compact_revision=exc.compact_revision, applied=self.revision)
                await self.load()
            except WatchCanceled as exc:
                emit(Event.WATCH_RESUMED, level=logging.WARNING, reason=str(exc))
                await asyncio.sleep(self._retry)
            except EtcdUnavailable as exc:
                emit(Event.ETCD_UNAVAILABLE, level=logging.WARNING, during="watch", error=str(exc))
                await asyncio.sleep(self._retry)
            except NodeError as exc:  # any other etcd error: resume from the same revision
                emit(Event.ETCD_ERROR, level=logging.WARNING, during="watch", code=exc.code,
                     error=str(exc))
                await asyncio.sleep(self._retry)
            finally:
                await watch.close()

    async def _apply(self, revision: int, events: tuple) -> None:  # type: ignore[type-arg]
        """One etcd revision into the zone states; raises (and changes no zone's head or
        data for good) when a generation reload cannot be read, so the caller retries the
        same revision and the reload runs again."""
        touched: dict[Name, set[Name] | None] = {}
        reload: dict[Name, ZoneHead] = {}
        removed: set[Name] = set()
        live: set[bytes] | None = None  # the data prefixes of the served generations
        for ev in events:
            key = ev.kv.key
            if _DATA in key:  # an import writes a whole generation nobody serves yet: skip it
                if live is None:
                    live = {self._keys.data_prefix(z, s.head.generation).encode()
                            for z, s in self._zones.items() if s.head is not None}
                prefix = key[:key.find(b"/", key.find(_DATA) + len(_DATA)) + 1]
                if prefix not in live:
                    self._pending.offer(prefix, ev.kv, ev.type == "put")
                    continue
            parsed = self._keys.parse_zone_key(key)
            if parsed is None or parsed.kind == "gen":
                if parsed is not None and ev.type == "put":  # a generation starts: follow it
                    self._pending.started(parsed.zone, self._keys.data_prefix(
                        parsed.zone, ev.kv.mod_revision).encode())
                continue
            try:
                self._apply_event(parsed, ev.type == "put", ev.kv, touched, reload, removed)
            except (ValueError, KeyError, TypeError, dns.exception.DNSException) as exc:
                # a bad value (another version, a hand edit) must not stop the node
                emit(Event.ZONE_LOAD_FAILED, level=logging.ERROR, key=ev.kv.key, error=str(exc))
        for zone in removed:
            self._pending.forget(zone)
            if zone in self._zones:
                del self._zones[zone]
                touched.pop(zone, None)
                await self._removed(zone)
        loaded = {zone: (head, await self._reload(zone, head, revision))
                  for zone, head in reload.items() if zone in self._zones}
        for zone, (head, nodes) in loaded.items():  # all read: now switch them
            state = self._zones[zone]
            state.head, state.nodes = head, nodes
            touched[zone] = None
        for zone, changed in touched.items():
            state = self._zones.get(zone)
            if state is not None:
                await self._publish(zone, state, revision, changed)
        await self._set_revision(revision)

    async def _reload(self, zone: Name, head: ZoneHead, revision: int
                      ) -> dict[Name, MappingProxyType[int, dns.rrset.RRset]]:
        """The nodes of `head`'s generation as of `revision` (the flip)."""
        emit(Event.ZONE_RELOAD_STARTED, zone=zone, generation=head.generation,
             revision=revision)
        if self._reload_pause:
            await asyncio.sleep(self._reload_pause)
        started = time.perf_counter()
        prefix = self._keys.data_prefix(zone, head.generation).encode()
        followed = await self._pending.take(prefix)
        # its keys came by the watch, decoded while written (testing.reload_pause: read them)
        if followed is not None and not self._reload_pause:
            emit(Event.ZONE_RELOAD_DONE, zone=zone, rrsets=sum(map(len, followed[0].values())),
                 source="watch", read_s=0, decode_s=round(time.perf_counter() - started, 3),
                 decode_cpu_s=round(followed[1], 3))
            return followed[0]
        try:
            kvs, _ = await self._etcd.range_all(
                self._keys.data_prefix(zone, head.generation), revision=revision)
        except NodeError as exc:
            emit(Event.ZONE_RELOAD_FAILED, level=logging.WARNING, zone=zone,
                 generation=head.generation, revision=revision, error=str(exc))
            raise
        read = time.perf_counter()
        nodes = await asyncio.to_thread(build_nodes, prefix, kvs)
        emit(Event.ZONE_RELOAD_DONE, zone=zone, rrsets=len(kvs), source="etcd",
             read_s=round(read - started, 3), decode_s=round(time.perf_counter() - read, 3))
        return nodes

    def _apply_event(self, parsed: ZoneKey, is_put: bool, kv: KeyValue,
                     touched: dict[Name, set[Name] | None], reload: dict[Name, ZoneHead],
                     removed: set[Name]) -> None:
        """One watch event into the zone states (no I/O); raises on a value that does not parse.

        A head that names another generation goes to `reload`, not onto the state: the
        state keeps its head until the new generation has been read, so a replay of this
        revision after a failed read sees the switch again."""
        zone = parsed.zone
        if parsed.kind == "head":
            if not is_put:
                removed.add(zone)
                return
            head = ZoneHead.from_json(kv.value)
            state = self._zones.setdefault(zone, ZoneState())
            if state.head is None or state.head.generation != head.generation:
                reload[zone] = head
            else:
                state.head = head
            removed.discard(zone)
            touched.setdefault(zone, set())
        elif parsed.kind == "config":
            if is_put:
                config = ZoneConfig.from_json(kv.value)
                self._zones.setdefault(zone, ZoneState()).config = config
                touched[zone] = None
        elif parsed.kind in META_KINDS:
            self._zones.setdefault(zone, ZoneState()).apply_meta(
                parsed.kind, parsed.key_id, kv if is_put else None)
            touched.setdefault(zone, set())
        else:
            state = self._zones.get(zone)
            if state is None or state.head is None:
                return
            if parsed.generation != state.head.generation or zone in reload:
                return
            owner = parsed.owner
            assert owner is not None
            types = dict(state.nodes.get(owner, {}))
            if is_put:
                types[parsed.rdtype] = rrset_from_json(owner, parsed.rdtype, kv.value)
            else:
                types.pop(parsed.rdtype, None)
            if types:
                state.nodes[owner] = owner_types(types)
            else:
                state.nodes.pop(owner, None)
            changed = touched.setdefault(zone, set())
            if changed is not None:
                changed.add(owner)

    async def _publish(
        self, zone: Name, state: ZoneState, revision: int, changed: set[Name] | None
    ) -> None:
        stale, state.unpublished = state.unpublished, True  # until a snapshot has this data
        if state.config is None or state.head is None:
            return
        if state.config.secondary or state.config.file_backed:  # data not in etcd
            if self._on_secondary is not None:
                try:
                    await _call(self._on_secondary, state.config)
                except Exception as exc:  # a boundary, as below
                    emit(Event.ZONE_UPDATE_FAILED, level=logging.ERROR, zone=zone,
                         error=f"{type(exc).__name__}: {exc}")
                    log.exception("handing on secondary zone %s failed", zone)
            return
        apex = state.nodes.get(zone)
        if apex is None or dns.rdatatype.SOA not in apex:
            emit(Event.ZONE_LOAD_FAILED, level=logging.ERROR, zone=zone, error="no SOA at apex")
            return
        soa = apex[dns.rdatatype.SOA]
        if soa[0].serial != state.head.serial:
            state.nodes[zone] = MappingProxyType(
                {**apex, dns.rdatatype.SOA: with_serial(soa, state.head.serial)}
            )
        prev = state.snapshot
        if changed is not None:
            changed = set(changed) | {zone}
        # the owner map is handed on as the previous version's plus the changed owners
        # (LayeredNodes: O(changed), not a copy of the zone), unless this is the first
        nodes = LayeredNodes.following(None if prev is None or stale else prev.nodes,
                                       changed, state.nodes)
        snap = ZoneSnapshot(
            config=state.config,
            serial=state.head.serial,
            revision=revision,
            nodes=nodes,
            changed=None if (prev is None or changed is None) else frozenset(changed),
            generation=state.head.generation,
            dnssec=state.build_dnssec(),
            time=state.head.time,
        )
        state.snapshot, state.unpublished = snap, False
        if snap.changed is not None:  # an incremental version: its way to the workers
            stages.mark(zone, revision, "watch", self._arrived)
            stages.mark(zone, revision, "replica")
        if self._on_update is not None:
            try:
                await _call(self._on_update, snap)
            except Exception as exc:  # a boundary: one zone's consumer never stops the others
                emit(Event.ZONE_UPDATE_FAILED, level=logging.ERROR, zone=zone,
                     serial=snap.serial, error=f"{type(exc).__name__}: {exc}")
                log.exception("handing on %s serial %d failed", zone, snap.serial)
        emit(Event.ZONE_UPDATED, level=logging.DEBUG, zone=zone, serial=snap.serial,
             revision=revision)

    async def _removed(self, zone: Name) -> None:
        emit(Event.ZONE_REMOVED, zone=zone)
        if self._on_remove is not None:
            try:
                await _call(self._on_remove, zone)
            except Exception as exc:  # a boundary, as in _publish
                emit(Event.ZONE_UPDATE_FAILED, level=logging.ERROR, zone=zone, removed=True,
                     error=f"{type(exc).__name__}: {exc}")
                log.exception("handing on the removal of %s failed", zone)

    async def _set_revision(self, revision: int) -> None:
        async with self._applied:
            self.revision = max(self.revision, revision)
            self._applied.notify_all()
