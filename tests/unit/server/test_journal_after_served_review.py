"""Review of s10-load: deferring an import's journal step until it is served.

(1) `publish_async` returns (and `Daemon._serve` sends its NOTIFY) once the workers
serve the version; the import's step only starts then, so the secondary's IXFR that
the NOTIFY triggers finds the journal behind the served version and is answered in
AXFR form, even for a re-import that changed one record (before s10-load the step
ran while the image was built and was done by then). Fixed: the NOTIFY waits for the
journal (`Notifier(ready=...)`).
(2) An incremental change right after an import waits for the import's O(zone) step,
which now starts only once the import is served: image time + step time in series
instead of in parallel (and the replica / signing lock wait with it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from pathlib import Path

import dns.name
import pytest

from node.server.journal import Journals
from node.server.notify import Notifier
from node.serving.images import ImagePublisher, MirroredTable
from node.zones.model import ZoneSnapshot
from tests.unit.server.ixfr_versions import ORIGIN, plain

IMAGE_S = 0.8  # the workers apply an image this long after it is sent (a large zone)
STEP_S = 0.6  # the import's O(zone) journal step takes this long


class Workers:
    def __init__(self, images: list[ImagePublisher]) -> None:
        self.images = images
        self.seq = 0

    def broadcast(self, kind: bytes, payload: bytes) -> tuple[int, set[int]]:
        self.seq += 1
        seq = self.seq
        asyncio.get_running_loop().call_later(IMAGE_S, self.images[0].acked, 0, seq)
        return seq, {0}


def _table(tmp_path: Path) -> tuple[MirroredTable, Journals, ImagePublisher]:
    holder: list[ImagePublisher] = []
    workers = Workers(holder)
    images = ImagePublisher(str(tmp_path / "images"), workers.broadcast)
    holder.append(images)
    images.open()
    journals = Journals()
    return MirroredTable(journals, images), journals, images


@pytest.fixture
def slow_import_step(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Journals._step

    def slow(self: Journals, z: object, prev: ZoneSnapshot | None, snap: ZoneSnapshot) -> object:
        if snap.serial == 2:
            time.sleep(STEP_S)  # O(zone): about a second per 100k names
        return real(self, z, prev, snap)  # type: ignore[arg-type]

    monkeypatch.setattr(Journals, "_step", slow)


async def test_the_notify_after_a_reimport_finds_its_step_recorded(
        tmp_path: Path, slow_import_step: None) -> None:
    """The NOTIFY waits for the journal (`Notifier(ready=journals.caught_up)`, as the daemon
    builds it): when the secondary gets it, the IXFR it asks for has its delta."""
    table, journals, images = _table(tmp_path)
    secondary = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    secondary.bind(("127.0.0.1", 0))
    secondary.setblocking(False)
    notifier = Notifier(tries=1, timeout=0.2, ready=journals.caught_up)
    try:
        await table.publish_async(plain(1))
        await journals.caught_up(ORIGIN)
        reimport = plain(2, "x A 192.0.2.1\n")  # changed None: an import, one record new
        await table.publish_async(reimport)
        # what Daemon._serve does: NOTIFY; the secondary then asks IXFR from serial 1
        notifier.serial_served(ORIGIN, 2, (f"127.0.0.1:{secondary.getsockname()[1]}",))
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_recv(secondary, 512), 10)
        assert journals.since(reimport, 1) is not None, (
            "the NOTIFY went out before the import's journal step: the IXFR it triggers "
            "is answered in AXFR form")
    finally:
        secondary.close()
        images.close()


async def test_a_change_after_an_import_waits_image_plus_step_in_series(
        tmp_path: Path, slow_import_step: None) -> None:
    table, journals, images = _table(tmp_path)
    try:
        await table.publish_async(plain(1))
        await journals.caught_up(ORIGIN)
        start = time.perf_counter()
        await table.publish_async(plain(2, "x A 192.0.2.1\n"))  # the import
        change = dataclasses.replace(
            plain(3, "x A 192.0.2.1\ny A 192.0.2.2\n"),
            changed=frozenset({dns.name.from_text("y", ORIGIN), ORIGIN}))
        await table.publish_async(change)  # the replica hands it on after the import
        took = time.perf_counter() - start
        # two image round trips (2 * IMAGE_S) are inherent; the step overlapped the
        # import's image before s10-load
        assert took < 2 * IMAGE_S + STEP_S / 2, (
            f"import + next change took {took:.2f} s: the import's step ran after its "
            "image, not while it was built")
    finally:
        images.close()
