"""Zone imports on this node that outlive the request that started them, with their progress.

An import of a large zone takes longer than a client may wait. `ImportJobs`
runs each import as a task of its own: the RPC waits for it, and when the
caller's deadline passes (the RPC is cancelled) the import goes on and ends
with its own events; `clusterctl` then exits 3 ("still in progress"). One
import per zone at a time on a node; a second is refused with Conflict.
`progress(zone)` is what `zone show` reports on this node while it runs
("writing 50000 of 126651 RRsets"); events IMPORT_STARTED, IMPORT_PROGRESS
(each stage, and every tenth of the writes), IMPORT_DONE and IMPORT_FAILED
say the same in the log.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import dns.name

from node.clock import SYSTEM_CLOCK, Clock
from node.errors import Conflict
from node.events import Event, emit
from node.zones.reads import ZoneInfo
from node.zones.repository import ZoneRepository

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    started: float
    stage: str = "starting"
    text: str = "starting"
    tenth: int = -1  # last tenth of the writes reported by an event
    task: asyncio.Task[ZoneInfo] | None = field(default=None, repr=False)


class ImportJobs:
    """The imports running on this node, one per zone."""

    def __init__(self, repo: ZoneRepository, clock: Clock = SYSTEM_CLOCK) -> None:
        self._repo = repo
        self._clock = clock
        self._jobs: dict[dns.name.Name, _Job] = {}

    def progress(self, zone: dns.name.Name) -> str:
        """What the import of `zone` on this node is doing, "" when none runs."""
        job = self._jobs.get(zone.canonicalize())
        if job is None:
            return ""
        return f"import: {job.text} ({self._clock.monotonic() - job.started:.0f} s)"

    async def run(self, name: dns.name.Name, text: str, *, create: bool) -> ZoneInfo:
        """Import `text` into `name`; the import continues if this call is cancelled."""
        name = name.canonicalize()
        running = self._jobs.get(name)
        if running is not None:
            raise Conflict(f"an import of {name} is already in progress on this node "
                           f"({running.text}); see clusterctl zone show {name}")
        job = _Job(started=self._clock.monotonic())
        self._jobs[name] = job
        emit(Event.IMPORT_STARTED, zone=name.to_text(), bytes=len(text))
        job.task = asyncio.create_task(self._import(job, name, text, create))
        job.task.add_done_callback(_retrieve)
        return await asyncio.shield(job.task)

    async def _import(self, job: _Job, name: dns.name.Name, text: str,
                      create: bool) -> ZoneInfo:
        zone = name.to_text()

        def report(stage: str, done: int, total: int) -> None:
            job.text = (f"{stage} {done} of {total} RRsets" if stage != "parsing" else
                        f"parsing {total / 1e6:.1f} MB of text" if not done else  # in pieces:
                        f"parsing {total / 1e6:.1f} MB of text, {done / 1e6:.1f} MB read")
            tenth = 10 * done // total if total else 10
            if stage != job.stage or (stage == "writing" and tenth > job.tenth):
                emit(Event.IMPORT_PROGRESS, zone=zone, stage=stage, done=done, total=total)
            job.stage, job.tenth = stage, tenth if stage == "writing" else -1

        try:
            info = await self._repo.import_zone(name, text, create=create, progress=report)
        except BaseException as exc:
            emit(Event.IMPORT_FAILED, logging.WARNING, zone=zone, stage=job.stage,
                 error=str(exc) or type(exc).__name__)
            raise
        finally:
            self._jobs.pop(name, None)
        emit(Event.IMPORT_DONE, zone=zone, serial=info.serial, rrsets=info.rrset_count,
             seconds=round(self._clock.monotonic() - job.started, 1))
        return info


def _retrieve(task: asyncio.Task[ZoneInfo]) -> None:
    """Nobody may wait for an import whose caller left: its outcome is in the events."""
    if not task.cancelled():
        task.exception()
