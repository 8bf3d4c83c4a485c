"""The IXFR journal: per zone, the differences between consecutive versions this node served.

Owns `Journals`, fed by `ZoneTable.publish_async` with every version it
serves, in order (each step is computed while the table compiles the version,
and the table serves it once both are done; a version with new content
throughout, an import, is served first), and read by `node.server.xfr` to
answer IXFR (RFC 1995).
For each step from the version last recorded to the one just served it keeps
an `Entry`: old and new serial, old and new SOA, the RRs deleted and added
(`node.server.zonediff`, RRSIG/NSEC/NSEC3 included), the digest of both
versions and the RR count of the new one. Differences are computed in a
worker thread (O(change); O(zone) after a full re-sign or load), never on the
answer path. An IXFR is answered from the journal only for exactly the snapshot
being served, which is the journal's newest or the one before (`since`); else
AXFR form.

Bounds: at most `max_versions` entries and `max_bytes` encoded octets (the
oldest go first; an entry larger than `max_bytes` empties the journal). Each
zone's journal is an append-only file `<zone>.ixfr` of records
(`node.server.journalfile`), rewritten (temp file, fsync, rename) once it
holds twice the bounds; memory holds only its index: per step the serials,
digests, SOAs, RR counts, and the record's offset and length, and the RRs
themselves only of a step of at most `RESIDENT_MAX` octets (issue 10: a full
signing of a 100k-name zone is a ~35 MiB step). An IXFR whose chain has a
larger step is answered over TCP once `read` has read it back in a worker
thread (`node.server.journalstore`); over UDP such a chain would not fit
anyway (the SOA alone). A record that is no longer there intact when read
(the file was cut under the index) drops the journal (event 1351) and that
IXFR is answered in AXFR form. A step that cannot be appended (the disk is
full) is kept in memory if small, else the journal starts over. A torn or corrupt tail is
cut off on load; the chain (each entry's old serial and digest = the previous
entry's new ones) is checked and only its newest unbroken part kept; and the
journal is used only if its newest version is the first version served after
the start, serial and digest both, else it is dropped (event 1351). A lost
journal costs AXFR-form answers, nothing else, so an `emptyDir` will do.
Without a `directory` (or when it cannot be made) the files go to a private
temporary directory deleted at exit (`journalstore.private_dir`), so they last
only as long as the process; only if that cannot be made either the journal
lives in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import dns.name
import dns.rdatatype

from node.events import Event, emit
from node.server import journalstore
from node.server.journalfile import Entry, chained, encode_entry, file_name
from node.server.zonediff import Tracker
from node.zones.model import ZoneSnapshot

log = logging.getLogger(__name__)

__all__ = ["Entry", "Journals"]

_SOA = int(dns.rdatatype.SOA)


@dataclass(slots=True)
class _Zone:
    path: Path | None
    entries: deque[Entry] = field(default_factory=deque)
    size: int = 0  # encoded octets of `entries`
    current: ZoneSnapshot | None = None  # the version the newest entry reaches
    before: ZoneSnapshot | None = None  # the version before it, if the entries reach it too
    stepped: bool = False  # the newest entry leads from `before` to `current`
    tracker: Tracker = field(default_factory=Tracker)
    disk_entries: int = 0  # records in the file (kept or not)
    disk_bytes: int = 0
    tail: asyncio.Task[None] | None = None  # the last recording step started
    removed: bool = False  # the zone is gone: its steps still queued do nothing


@dataclass(frozen=True, slots=True)
class _Step:
    reset: list[Entry] | None = None  # the entries to start from (after a load or a reset)
    append: Entry | None = None


class Journals:
    """The journals of all zones served."""

    def __init__(self, directory: str = "", max_bytes: int = 64 << 20,
                 max_versions: int = 1000) -> None:
        self.directory = Path(directory) if directory else None  # kept across restarts
        self.max_bytes = max_bytes
        self.max_versions = max_versions
        self._dir: Path | None = None  # where the files are (None: in memory only)
        self._zones: dict[dns.name.Name, _Zone] = {}
        # removed zones whose file is deleted once their last step is done (a zone created
        # again under the name waits for it)
        self._removing: dict[dns.name.Name, asyncio.Task[None]] = {}
        if self.directory is not None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # serve anyway: the journal is only an optimisation
                log.warning("journal_dir %s: %s; IXFR journals in a temporary directory",
                            directory, exc)
                self.directory = None
        # awaited before a step the table does not wait for (`deferred`: O(zone)): the version
        # is served first (the workers' image: `MirroredTable`); None: at once
        self.settle: Callable[[dns.name.Name], Awaitable[None]] | None = None
        self._dir = self.directory
        if self._dir is None:
            try:
                self._dir = journalstore.private_dir(self)
            except OSError as exc:
                log.warning("no temporary directory for the IXFR journals (%s): in memory", exc)

    # --- reading (event loop) --------------------------------------------------

    def since(self, snap: ZoneSnapshot, serial: int) -> list[Entry] | None:
        """The entries from `serial` to `snap` (which must be the served version); None when
        the journal does not reach back to `serial` or has not caught up with `snap`."""
        z = self._zones.get(snap.origin)
        if z is None:
            return None
        if snap is z.current:
            entries = list(z.entries)
        elif snap is z.before:  # the journal is a step ahead of the table
            entries = list(z.entries)[:-1] if z.stepped else list(z.entries)
        else:
            return None
        for i, e in enumerate(entries):
            if e.old_serial == serial:
                return entries[i:]
        return None

    async def read(self, origin: dns.name.Name, steps: list[Entry]) -> list[Entry]:
        """`steps` (from `since`) with their RRs: those of the large ones are read from the
        file in a worker thread, at their offsets in the index as it is then (a rewrite of
        the file since `since` moves them; one under way is waited for). ValueError or
        OSError when a record is not there intact; when it is still in the index, the
        journal is dropped (event 1351)."""
        if all(e.packed is not None for e in steps):
            return steps
        z = self._zones.get(origin)
        if z is None or z.path is None:
            raise ValueError(f"the journal of {origin} is gone")
        while True:  # a rewrite of the file moves the records: follow the index
            at = {(e.new_serial, e.new_digest): e for e in z.entries}
            steps = [at.get((e.new_serial, e.new_digest), e) for e in steps]
            tail = z.tail
            try:
                return await asyncio.to_thread(journalstore.read_steps, z.path, steps)
            except (OSError, ValueError) as exc:
                if tail is not None and not tail.done():
                    await asyncio.wait([tail])  # a step (maybe a rewrite) was under way
                    continue
                held = {id(e) for e in z.entries}
                if z is self._zones.get(origin) and all(id(e) in held for e in steps):
                    emit(Event.JOURNAL_DROPPED, level=logging.WARNING, zone=origin,
                         reason=f"cannot read a step back: {exc}")
                    z.entries.clear()
                    z.size = 0
                    z.disk_entries = 2 * self.max_versions + 1  # rewritten at the next step
                raise

    def versions(self, origin: dns.name.Name) -> list[int]:
        """Serials it can bring a client from (oldest first), then the newest."""
        z = self._zones.get(origin)
        if z is None or not z.entries:
            return []
        return [e.old_serial for e in z.entries] + [z.entries[-1].new_serial]

    def sizes(self) -> dict[str, tuple[int, int]]:
        """Per zone (text): entries and encoded octets held."""
        return {o.to_text(): (len(z.entries), z.size) for o, z in list(self._zones.items())}

    def tracking(self, origin: dns.name.Name) -> bool:
        """True once the journal of `origin` has recorded a version (the first one, read
        from its file and checked, is recorded while the zone is already served)."""
        z = self._zones.get(origin)
        return z is not None and z.current is not None

    def installed(self, snap: ZoneSnapshot) -> None:
        """The table serves `snap` now: the version before it need not be kept."""
        z = self._zones.get(snap.origin)
        if z is not None and z.current is snap:
            z.before = None

    async def caught_up(self, origin: dns.name.Name) -> None:
        """Wait until every version handed to the journal of `origin` is recorded."""
        z = self._zones.get(origin)
        if z is not None and z.tail is not None:
            await asyncio.wait([z.tail])

    # --- recording ---------------------------------------------------------------

    def record(self, prev: ZoneSnapshot | None, snap: ZoneSnapshot,
               deferred: bool = False) -> asyncio.Task[None]:
        """Account for `snap`, just served after `prev` (None: the first served since start).

        Call in serving order: the steps of a zone run one after the other, in call order.
        The task ends when the journal has caught up with `snap` (it never raises).
        `deferred`: the caller serves `snap` without waiting for this step; it waits for
        `settle` first, if set.
        """
        z = self._zones.get(snap.origin)
        if z is None:
            path = self._dir / file_name(snap.origin) if self._dir else None
            z = self._zones[snap.origin] = _Zone(path)
            before = self._removing.get(snap.origin)  # the file of a zone of that name, removed
        else:
            before = z.tail
        z.tail = asyncio.get_running_loop().create_task(
            self._record(z, before, prev, snap, deferred))
        return z.tail

    async def _record(self, z: _Zone, before: asyncio.Task[None] | None,
                      prev: ZoneSnapshot | None, snap: ZoneSnapshot, deferred: bool) -> None:
        if before is not None:
            await asyncio.wait([before])
        if deferred and self.settle is not None and not z.removed:
            try:  # issue 10: its O(zone) CPU no longer delays the answers of this version
                await self.settle(snap.origin)
            except Exception:  # never let the journal stop serving; the step runs anyway
                log.exception("journal of %s: waiting for the version to be served", snap.origin)
        if z.removed:
            return
        try:
            step = await asyncio.to_thread(self._step, z, prev, snap)
        except Exception as exc:  # never let the journal stop serving
            log.exception("journal of %s", snap.origin)
            emit(Event.JOURNAL_DROPPED, level=logging.WARNING, zone=snap.origin,
                 reason=f"recording failed: {exc}")
            z.entries.clear()
            z.size = 0
            z.current = z.before = None
            return
        if z.removed:  # during the step: its file is deleted now it is done (`remove`)
            return
        if step.reset is not None:
            z.entries = deque(step.reset)
            z.size = sum(e.size for e in step.reset)
        if step.append is not None:
            z.entries.append(step.append)
            z.size += step.append.size
        while z.entries and (len(z.entries) > self.max_versions or z.size > self.max_bytes):
            z.size -= z.entries.popleft().size
        z.before = z.current if step.reset is None else None
        z.stepped = step.append is not None
        z.current = snap
        if z.path is not None and (z.disk_entries > 2 * self.max_versions
                                   or z.disk_bytes > 2 * self.max_bytes):
            kept = await asyncio.to_thread(self._rewrite, z, list(z.entries))
            if not z.removed:
                z.entries = deque(kept)
                z.size = sum(e.size for e in kept)

    def remove(self, origin: dns.name.Name) -> None:
        """Forget a zone no longer served (its file too, once a step writing it is done)."""
        z = self._zones.pop(origin, None)
        if z is None:
            return
        z.removed = True
        if z.path is None:
            return
        if z.tail is None or z.tail.done():
            _unlink(z.path)
            return
        self._removing[origin] = z.tail.get_loop().create_task(
            self._unlink_after(origin, z.tail, z.path))

    async def _unlink_after(self, origin: dns.name.Name, tail: asyncio.Task[None],
                            path: Path) -> None:
        try:
            await asyncio.wait([tail])
            _unlink(path)
        finally:
            if self._removing.get(origin) is asyncio.current_task():
                del self._removing[origin]

    # --- worker thread -------------------------------------------------------------

    def _step(self, z: _Zone, prev: ZoneSnapshot | None, snap: ZoneSnapshot) -> _Step:
        old = z.current
        if old is None:
            z.tracker.reset(snap.nodes)
            return _Step(reset=self._load(z, snap))
        old_digest = z.tracker.digest
        delta = z.tracker.advance(old.nodes, snap.nodes, snap.changed if prev is old else None)
        if snap.serial == old.serial and not delta:
            return _Step()
        if not _serial_gt(snap.serial, old.serial):
            self._drop(z, snap, f"serial {old.serial} -> {snap.serial} with other content")
            return _Step(reset=[])
        origin: bytes = snap.origin.to_wire().lower()  # type: ignore[union-attr]
        old_soa = [rr for rr in delta.deleted if rr[1] == _SOA and rr[0].lower() == origin]
        new_soa = [rr for rr in delta.added if rr[1] == _SOA and rr[0].lower() == origin]
        if len(old_soa) != 1 or len(new_soa) != 1:
            self._drop(z, snap, "the SOA did not change with the serial")
            return _Step(reset=[])
        entry = Entry.of(old.serial, snap.serial, old_digest, z.tracker.digest, z.tracker.rrs,
                         old_soa[0], new_soa[0],
                         (rr for rr in delta.deleted if rr is not old_soa[0]),
                         (rr for rr in delta.added if rr is not new_soa[0]))
        record = encode_entry(entry)
        if len(record) > self.max_bytes:
            log.info("journal of %s: the step to serial %d (%d octets) exceeds journal_max_bytes;"
                     " starting over", snap.origin, snap.serial, len(record))
            self._rewrite(z, [])
            return _Step(reset=[])
        if z.path is None:
            return _Step(append=replace(entry, size=len(record)))
        offset = self._append(z, record)
        if offset is None and entry.index() is not entry:  # its RRs would be in the file only
            self._drop(z, snap, f"cannot append the step to serial {snap.serial} to {z.path}")
            return _Step(reset=[])
        at = -1 if offset is None else offset  # -1: in memory only (the disk is full)
        return _Step(append=replace(entry, size=len(record), offset=at).index())

    def _load(self, z: _Zone, snap: ZoneSnapshot) -> list[Entry]:
        """The journal kept on disk, if it leads to exactly `snap`; else an empty journal."""
        if z.path is None:
            return []
        try:
            entries, end, length = journalstore.load(z.path)
        except OSError as exc:
            self._drop(z, snap, f"cannot read {z.path}: {exc}")
            return []
        if end != length:
            log.warning("journal %s: discarding a torn or corrupt tail of %d octets",
                        z.path, length - end)
        kept = chained(entries)
        if not kept:
            if length:
                self._drop(z, snap, "no usable records")
            else:
                z.disk_entries = z.disk_bytes = 0
            return []
        last = kept[-1]
        if last.new_serial != snap.serial or last.new_digest != z.tracker.digest:
            why = (f"it ends at serial {last.new_serial}" if last.new_serial != snap.serial
                   else "its content differs from the served copy")
            self._drop(z, snap, f"{why}; serving serial {snap.serial}")
            return []
        if end != length or len(kept) != len(entries):
            kept = self._rewrite(z, kept)
            if not kept:
                return []
        else:
            z.disk_entries, z.disk_bytes = len(entries), length
        emit(Event.JOURNAL_LOADED, zone=snap.origin, versions=len(kept),
             oldest=kept[0].old_serial, serial=snap.serial)
        return kept

    def _drop(self, z: _Zone, snap: ZoneSnapshot, why: str) -> None:
        emit(Event.JOURNAL_DROPPED, level=logging.WARNING, zone=snap.origin, reason=why)
        self._rewrite(z, [])

    def _append(self, z: _Zone, record: bytes) -> int | None:
        """The offset of `record`, appended to the file; None when it cannot be (ENOSPC: a
        small step is kept in memory only, as without a file; a large one is lost)."""
        assert z.path is not None
        try:
            offset = journalstore.append(z.path, record)
        except OSError as exc:
            log.warning("journal %s: cannot append: %s", z.path, exc)
            return None
        z.disk_entries += 1
        z.disk_bytes += len(record)
        return offset

    def _rewrite(self, z: _Zone, entries: list[Entry]) -> list[Entry]:
        """The file made to hold `entries`; them with their new offsets ([] when it could not
        be: the file is deleted and the journal starts over)."""
        if z.path is None:
            return entries
        try:
            kept = journalstore.rewrite(z.path, entries, sync=self.directory is not None)
        except (OSError, ValueError) as exc:
            log.warning("journal %s: cannot rewrite: %s", z.path, exc)
            with contextlib.suppress(OSError):
                z.path.unlink(missing_ok=True)
            z.disk_entries = z.disk_bytes = 0
            return []
        z.disk_entries, z.disk_bytes = len(kept), sum(e.size for e in kept)
        return kept


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove journal %s: %s", path, exc)


def _serial_gt(a: int, b: int) -> bool:
    """RFC 1982: a > b."""
    return a != b and ((a - b) & 0xFFFFFFFF) < 0x80000000
