"""Zone images for serving workers: built off the control loop, sent in order, deleted unused.

Owns, in the control process: the image directory (emptied at start), the builder (one heavy
thread, node/priority.py: a snapshot in, a file path out; a full image is rendered by a child
forked from that thread, `node.image.forked`), the per-zone order of operations sent to the
workers (install / hold / remove), the current set a new worker is given, the deletions.

Incremental: each zone has an `ImageBuilder`; after a full image, the next versions are overlays on
it (`install OVERLAY BASE`), so a one-record change costs the builder and the workers a small file,
not the zone. A hold or a remove starts the zone's next build from a full image. A quiet overlay is
merged into a full image, unless `busy` says one of a newer version is coming.

Order: `publish`, `hold` and `remove` arrive in the order the zone table sees them. Hold and remove
are sent at once; a build under way when one arrived is thrown away (a version published before a
hold must never be served after it). Versions that arrive during a build are coalesced into the
next (their `changed` sets merged), so a zone that changes faster than it builds moves on.

Served: `served(origin)` waits until every worker connected when a zone's versions were sent has
applied the last one published (or died), or the zone was held or removed, or its build failed.
`MirroredTable.publish_async` awaits it, so what follows a publish (NOTIFY to secondaries, the
serial reported as served) sees the workers answer that version, as the in-process path does by
construction; a secondary asks a worker for the SOA.

Deletion: an image superseded by operation `seq` is deleted once every worker connected when `seq`
was sent has acknowledged it (or died); a later worker is only given current images."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import dns.name

from node import stages
from node.events import Event, emit
from node.image import ImageBuilder
from node.image.rendergate import RenderGate
from node.priority import heavy_thread
from node.server.answer import name_wire
from node.server.compile import CompiledZone
from node.server.journal import Journals
from node.server.render import Entry
from node.server.table import ZoneTable
from node.serving import protocol
from node.serving.imagedir import TEMP as _TEMP
from node.serving.imagedir import install as _install
from node.serving.imagedir import prune_temp_dirs as _prune_temp_dirs
from node.serving.imagedir import unlink as _unlink
from node.serving.imagedir import write as _write
from node.serving.local import LocalImages
from node.zones.model import ZoneSnapshot

log = logging.getLogger(__name__)

SERVED_TIMEOUT = 30.0  # seconds `served` waits at most (a stuck worker never stops the replica)
# An overlay is answered through two layers, and the flood path caches no proof for it: a
# zone quiet this long after an overlay gets a full image of its version, built in the
# background (issue 10: "keep a small overlay merged in the background").
MERGE_AFTER = 10.0
# full images from a forked child that exits: the render's garbage and CPU leave this process
FORK = True
# (kind, payload) -> (seq, ids of the workers it went to)
Broadcast = Callable[[bytes, bytes], tuple[int, set[int]]]


def _lower_priority() -> None:
    """The builder thread is a heavy thread (node/priority.py: SCHED_BATCH, not niced: it
    shares the interpreter lock with the loop); the child it forks lowers its own nice."""
    heavy_thread(b"image-builder")


class ImagePublisher:
    """Turns the zone table's versions into image files and worker operations."""

    def __init__(self, directory: str, broadcast: Broadcast,
                 gate: RenderGate | None = None) -> None:
        self._own_dir = not directory
        if not directory:
            _prune_temp_dirs()
        self.directory = Path(directory or tempfile.mkdtemp(prefix=f"{_TEMP}{os.getpid()}-"))
        self._broadcast = broadcast
        self._pool: ThreadPoolExecutor | None = None
        self._want: dict[bytes, ZoneSnapshot] = {}
        self._cuts: dict[bytes, int] = {}  # holds and removes per zone, to drop stale builds
        self._building: dict[bytes, asyncio.Task[None]] = {}
        self._builders: dict[bytes, ImageBuilder] = {}
        self._current: dict[bytes, tuple[Path, Path | None]] = {}  # (full image, overlay)
        self._held: set[bytes] = set()
        self._retired: dict[Path, tuple[int, set[int]]] = {}
        # versions published and served per zone (counts), installs not yet applied by
        # every worker ([count, seq, waiting]), and who waits for a count to be served
        self._published: dict[bytes, int] = {}
        self._served: dict[bytes, int] = {}
        self._unacked: dict[bytes, list[tuple[int, int, set[int]]]] = {}
        self._waiters: dict[bytes, list[tuple[int, asyncio.Future[None]]]] = {}
        self._merges: dict[bytes, asyncio.TimerHandle] = {}
        self.stages = stages.Pending()  # stage times of installs not yet applied
        self.merge_after = MERGE_AFTER
        # a full image of a newer version is on its way (the zone is signed in full): no merge
        self.busy: Callable[[bytes], bool] = lambda origin: False
        self.fork = FORK  # full images rendered by a forked child (node.image.forked)
        self.gate = gate  # the host's turn for large forked renders (node.image.rendergate)
        self.built = 0
        self.failed = 0
        self.local = LocalImages()  # the control process's own view, in the workers' order

    def open(self) -> None:
        """Create (or empty) the image directory: files of an earlier run are never used."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.iterdir():
            _unlink(path)

    # --- from the zone table ---------------------------------------------------------------

    def publish(self, snapshot: ZoneSnapshot) -> None:
        origin = name_wire(snapshot.origin)
        prev = self._want.get(origin)
        if prev is not None:  # not built yet: the next build covers both versions
            changed = None if prev.changed is None or snapshot.changed is None \
                else prev.changed | snapshot.changed
            snapshot = replace(snapshot, changed=changed)
        self._want[origin] = snapshot
        self._published[origin] = self._published.get(origin, 0) + 1
        stages.mark(origin, snapshot.revision, "published")
        if origin not in self._building:
            self._building[origin] = asyncio.get_running_loop().create_task(
                self._build(origin), name=f"image-{snapshot.origin}")

    def hold(self, origin: bytes) -> None:
        self._cut(origin)
        self._held.add(origin)
        self.local.hold(origin)
        self._broadcast(protocol.HOLD, origin)

    def remove(self, origin: bytes) -> None:
        self._cut(origin)
        self._held.discard(origin)
        self.local.remove(origin)
        seq, waiting = self._broadcast(protocol.REMOVE, origin)
        for old in self._current.pop(origin, ()):
            if old is not None:
                self._retire(old, seq, waiting)

    def _cut(self, origin: bytes) -> None:
        self._merge_later(origin, None)
        self._cuts[origin] = self._cuts.get(origin, 0) + 1
        self._unacked.pop(origin, None)
        self._advance(origin, self._published.get(origin, 0))  # never served: nobody waits
        self._want.pop(origin, None)
        builder = self._builders.pop(origin, None)  # its next image is a full one
        if builder is not None:  # the image it renders now would be thrown away
            builder.stop()

    async def _build(self, origin: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            while origin in self._want:
                snapshot = self._want.pop(origin)
                count = self._published.get(origin, 0)  # the versions this build covers
                cut = self._cuts.get(origin, 0)
                builder = self._builders.setdefault(
                    origin, ImageBuilder(fork=self.fork, gate=self.gate))
                queued = time.perf_counter()
                try:
                    path, base_revision = await loop.run_in_executor(
                        self._builder(), _write, builder, snapshot, self.directory)
                except Exception as exc:
                    if self._cuts.get(origin, 0) != cut:  # stopped: held or removed meanwhile
                        continue
                    self.failed += 1
                    self._builders.pop(origin, None)
                    emit(Event.SERVING_IMAGE_FAILED, logging.ERROR, zone=snapshot.origin,
                         serial=snapshot.serial, error=f"{type(exc).__name__}: {exc}")
                    self._advance(origin, count)  # the workers keep the last good version
                    continue
                if self._cuts.get(origin, 0) != cut:  # held or removed meanwhile: never serve
                    _unlink(path)
                    continue
                if base_revision is None:
                    files: tuple[Path, Path | None] = (path, None)
                else:
                    base = self._current.get(origin, (None, None))[0]
                    if base is None or not base.name.endswith(f".{base_revision}.img"):
                        _unlink(path)  # not on the full image the workers have: build one
                        self._builders.pop(origin, None)
                        self._want.setdefault(origin, replace(snapshot, changed=None))
                        continue
                    files = (base, path)
                self.built += 1
                self.local.install(*files)
                seq, waiting = self._broadcast(protocol.INSTALL, _install(files))
                self.stages.sent(origin, count, snapshot.revision, {
                    **stages.take(origin, snapshot.revision), "queued": queued, **builder.timing})
                if waiting:
                    self._unacked.setdefault(origin, []).append((count, seq, set(waiting)))
                else:
                    self._advance(origin, count)
                self._held.discard(origin)
                old = self._current.get(origin, ())
                self._current[origin] = files
                self._merge_later(origin, snapshot if files[1] is not None else None)
                for gone in set(old) - set(files):
                    if gone is not None:
                        self._retire(gone, seq, waiting)
        finally:
            self._building.pop(origin, None)

    def _merge_later(self, origin: bytes, snapshot: ZoneSnapshot | None) -> None:
        """Once `origin` has been quiet for `merge_after` seconds, build a full image of
        `snapshot` (now served as an overlay) in place of the base and overlay."""
        timer = self._merges.pop(origin, None)
        if timer is not None:
            timer.cancel()
        if snapshot is None:
            return
        overlay = self._current[origin][1]

        def merge() -> None:
            self._merges.pop(origin, None)
            if self._current.get(origin, (None, None))[1] != overlay or origin in self._want \
                    or origin in self._building or origin in self._held:
                return  # a newer version came, or it was held or removed
            # a full image of a newer version will replace it, or another large render runs
            # on this host or memory is short (node.image.rendergate): later
            if self.busy(origin) or (self.fork and self.gate is not None and self.gate.busy()):
                return self._merge_later(origin, snapshot)
            self._want[origin] = replace(snapshot, changed=None)
            self._building[origin] = asyncio.get_running_loop().create_task(
                self._build(origin), name=f"image-merge-{snapshot.origin}")

        self._merges[origin] = asyncio.get_running_loop().call_later(self.merge_after, merge)

    def _builder(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-builder",
                                            initializer=_lower_priority)
        return self._pool

    # --- for the workers -------------------------------------------------------------------

    def current(self) -> list[tuple[bytes, bytes]]:
        """The operations that bring a new worker to the current set, in order."""
        ops = [(protocol.INSTALL, _install(files)) for files in self._current.values()]
        ops += [(protocol.HOLD, origin) for origin in self._held]
        return ops

    def idle(self) -> bool:
        """No version waits to be built (every published version was sent)."""
        return not self._building and not self._want

    async def served(self, origin: bytes, timeout: float = SERVED_TIMEOUT) -> None:
        """Wait until every version of `origin` published so far is applied by the workers
        (or will never be: held, removed, failed); at most `timeout` seconds."""
        count = self._published.get(origin, 0)
        if self._served.get(origin, 0) >= count:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(origin, []).append((count, fut))
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            log.warning("zone %r: workers have not applied its version after %.0f s",
                        origin, timeout)

    def _advance(self, origin: bytes, count: int) -> None:
        """Versions up to `count` of `origin` are served (or never will be)."""
        if count <= self._served.get(origin, 0):
            return
        self._served[origin] = count
        self.stages.applied(origin, count)
        waiting = self._waiters.get(origin, [])
        for target, fut in waiting:
            if target <= count and not fut.done():
                fut.set_result(None)
        waiting[:] = [(t, f) for t, f in waiting if not f.done()]

    def _note_applied(self, worker: int, seq: int | None) -> None:
        """`worker` applied the operations up to `seq` (None: it died)."""
        for origin, pending in list(self._unacked.items()):
            for _, sent_at, waiting in pending:
                if seq is None or sent_at <= seq:
                    waiting.discard(worker)
            while pending and not pending[0][2]:
                self._advance(origin, pending.pop(0)[0])
            if not pending:
                del self._unacked[origin]

    def acked(self, worker: int, seq: int) -> None:
        self._note_applied(worker, seq)
        for path, (retired_at, waiting) in list(self._retired.items()):
            if retired_at <= seq:
                waiting.discard(worker)
                if not waiting:
                    self._delete(path)

    def gone(self, worker: int) -> None:
        """A worker died: it maps nothing any more."""
        self._note_applied(worker, None)
        for path, (_, waiting) in list(self._retired.items()):
            waiting.discard(worker)
            if not waiting:
                self._delete(path)

    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if not p.name.startswith(".tmp-"))

    def _retire(self, path: Path, seq: int, waiting: set[int]) -> None:
        if not waiting:
            return _unlink(path)
        self._retired[path] = (seq, set(waiting))

    def _delete(self, path: Path) -> None:
        self._retired.pop(path, None)
        if not any(path in files for files in self._current.values()):
            _unlink(path)

    def close(self) -> None:
        for timer in self._merges.values():
            timer.cancel()
        for origin in list(self._published):
            self._advance(origin, self._published[origin])
        for task in self._building.values():
            task.cancel()
        for builder in self._builders.values():  # a forked child's image is not wanted now
            builder.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)


class MirroredTable(ZoneTable):
    """The control process's `ZoneTable` with serving workers: every change also goes to the
    workers through an `ImagePublisher`, and the control process answers from the same
    images (`publisher.local`), not from a compiled zone.

    Per zone it keeps only a `CompiledZone` shell (snapshot, origin, transfer ACL; no
    answers): AXFR/IXFR, UPDATE and NOTIFY read the snapshot and the journals. Queries are
    answered by the images' table, which installs a version when its image is built, just
    before the workers are told (so `publish_async`, which waits for the workers, returns
    once the control process answers it too); a hold or remove applies at once."""

    __slots__ = ("images",)
    compile_in_thread = False  # `_compile` makes a shell: a thread hop would only delay it

    def __init__(self, journals: Journals | None, images: ImagePublisher) -> None:
        super().__init__(journals)
        self.images = images
        self.caches = images.local.table.caches
        if journals is not None:  # an import's O(zone) journal step after its image is served
            journals.settle = self._served

    async def _served(self, origin: dns.name.Name) -> None:
        await self.images.served(name_wire(origin))

    @staticmethod
    def _compile(prev: CompiledZone | None, snapshot: ZoneSnapshot) -> CompiledZone:
        return CompiledZone(snapshot)  # a shell: answers come from the image

    def _size(self) -> None:
        """Nothing: the answers and their cache are the images' table's (`lookup`), which
        sizes its own; doorkeepers grown here would never be asked."""

    def _install(self, zone: CompiledZone) -> None:
        super()._install(zone)
        self.caches = self.images.local.table.caches
        self.images.publish(zone.snapshot)

    async def publish_async(self, snapshot: ZoneSnapshot) -> None:
        """As `ZoneTable.publish_async`, returning once the workers serve the version."""
        await super().publish_async(snapshot)
        await self.images.served(name_wire(snapshot.origin))

    def hold(self, origin: dns.name.Name) -> None:
        super().hold(origin)
        self.caches = self.images.local.table.caches
        self.images.hold(name_wire(origin))

    def remove(self, origin: dns.name.Name) -> bool:
        removed = super().remove(origin)
        self.caches = self.images.local.table.caches
        self.images.remove(name_wire(origin))
        return removed

    def lookup(self, key: bytes, do: int) -> Entry | None:
        return self.images.local.table.lookup(key, do)
