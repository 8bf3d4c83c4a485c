"""An import's IXFR journal step (O(zone)) starts only once the workers serve the version.

Issue 10, load time: with serving workers (`MirroredTable`), the step of a version with
new content throughout (`changed` None) used to run in a thread of the control process
while that version's image was being built, so the two competed for the same cores. Now
`publish_async` hands the journal a future set once the version is served, and the step
waits for it. The workers are stood in for by the broadcast function and `acked`, as in
`test_image_publisher_served`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.server.journal import Journals
from node.serving.images import ImagePublisher, MirroredTable
from node.zones.model import ZoneSnapshot
from tests.support.wait import async_wait_until
from tests.unit.server.ixfr_versions import ORIGIN, plain

NOT_STARTED_FOR = 2.0  # seconds: an ungated step starts within milliseconds of the publish


class Workers:
    """One connected worker (id 0); records the operations sent (seq, kind)."""

    def __init__(self) -> None:
        self.ops: list[tuple[int, bytes]] = []

    def broadcast(self, kind: bytes, payload: bytes) -> tuple[int, set[int]]:
        self.ops.append((len(self.ops) + 1, kind))
        return len(self.ops), {0}


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[int, threading.Event]]:
    """Per serial, set when the journal's step for it starts."""
    started: dict[int, threading.Event] = {1: threading.Event(), 2: threading.Event()}
    real = Journals._step

    def spy(self: Journals, z: object, prev: ZoneSnapshot | None, snap: ZoneSnapshot) -> object:
        started[snap.serial].set()
        return real(self, z, prev, snap)  # type: ignore[arg-type]

    monkeypatch.setattr(Journals, "_step", spy)
    yield started


async def _publish_served(table: MirroredTable, images: ImagePublisher, workers: Workers,
                          snap: ZoneSnapshot, started: threading.Event) -> None:
    """Publish `snap`; check its step waits while the worker has not applied it; apply."""
    sent = len(workers.ops)
    publishing = asyncio.create_task(table.publish_async(snap))
    await async_wait_until(lambda: len(workers.ops) > sent, 60,
                           message=f"serial {snap.serial}: its image was never sent")
    ran = await asyncio.to_thread(started.wait, NOT_STARTED_FOR)
    assert not ran, f"serial {snap.serial}: the journal step ran before the version was served"
    assert not publishing.done()
    images.acked(0, workers.ops[-1][0])
    async with asyncio.timeout(30):
        await publishing
    await asyncio.wait_for(asyncio.to_thread(started.wait, 30), 40)


async def test_an_import_is_journaled_after_the_workers_serve_it(
        tmp_path: Path, steps: dict[int, threading.Event]) -> None:
    workers = Workers()
    images = ImagePublisher(str(tmp_path / "images"), workers.broadcast)
    images.open()
    journals = Journals()
    table = MirroredTable(journals, images)
    try:
        # the first version since the start (its step reads the journal's file), then an
        # import replacing the content: neither step runs before the workers serve it
        await _publish_served(table, images, workers, plain(1), steps[1])
        await journals.caught_up(ORIGIN)
        await _publish_served(table, images, workers, plain(2, "x A 192.0.2.1\n"), steps[2])
        await journals.caught_up(ORIGIN)
        assert journals.versions(ORIGIN) == [1, 2], "the import's step was recorded"
    finally:
        images.close()
