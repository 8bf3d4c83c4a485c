"""`ImagePublisher.served`: a publish is served once every worker it went to applied it.

The workers are stood in for by the broadcast function (who got which
operation) and by `acked`/`gone`, as the supervisor reports them. Shows:
`served` waits for the last worker's acknowledgement, a worker that dies
no longer holds it up, a hold releases it (that version is never served),
and with no worker connected it does not wait at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import dns.name
import pytest

from node.server.journal import Journals
from node.serving.images import ImagePublisher, MirroredTable
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.support.wait import async_wait_until
from tests.support.zones import EXAMPLE

ORIGIN = b"\x07example\x04test\x00"


class Workers:
    """Who is connected; records what each operation was (seq, kind)."""

    def __init__(self, ids: set[int]) -> None:
        self.ids = ids
        self.ops: list[tuple[int, bytes]] = []

    def broadcast(self, kind: bytes, payload: bytes) -> tuple[int, set[int]]:
        self.ops.append((len(self.ops) + 1, kind))
        return len(self.ops), set(self.ids)


def _publisher(tmp_path: Path, workers: Workers) -> ImagePublisher:
    images = ImagePublisher(str(tmp_path), workers.broadcast)
    images.open()
    return images


def _snap(serial: int) -> object:
    return snapshot_from_text(EXAMPLE, "example.test.", serial=serial, revision=serial)


async def _overlaid(images: ImagePublisher) -> None:
    """Publish a first version (a full image), then a one-name change: served as an overlay."""
    images.publish(_snap(1))  # type: ignore[arg-type]
    await async_wait_until(lambda: ORIGIN in images._current, 30)
    second = snapshot_from_text(EXAMPLE + "new 300 IN A 192.0.2.99\n", "example.test.",
                                serial=2, revision=2)
    second = dataclasses.replace(second, changed=frozenset({dns.name.from_text(
        "new.example.test.")}))
    images.publish(second)
    await async_wait_until(lambda: images._current[ORIGIN][1] is not None, 30,
                           message="the second version was not an overlay")


async def test_served_waits_for_every_worker_then_a_dead_one_stops_counting(
        tmp_path: Path) -> None:
    workers = Workers({0, 1})
    images = _publisher(tmp_path, workers)
    images.publish(_snap(1))  # type: ignore[arg-type]
    waiter = asyncio.create_task(images.served(ORIGIN))
    await async_wait_until(lambda: len(workers.ops) >= 1, 30)
    images.acked(0, 1)
    await asyncio.sleep(0)
    assert not waiter.done(), "served before worker 1 applied the version"
    images.gone(1)
    async with asyncio.timeout(5):
        await waiter
    images.close()


async def test_a_hold_releases_whoever_waits(tmp_path: Path) -> None:
    workers = Workers({0})
    images = _publisher(tmp_path, workers)
    images.publish(_snap(1))  # type: ignore[arg-type]
    waiter = asyncio.create_task(images.served(ORIGIN))
    await asyncio.sleep(0)
    images.hold(ORIGIN)
    async with asyncio.timeout(5):
        await waiter
    images.close()


async def test_no_worker_connected_means_nothing_to_wait_for(tmp_path: Path) -> None:
    workers = Workers(set())
    images = _publisher(tmp_path, workers)
    images.publish(_snap(1))  # type: ignore[arg-type]
    async with asyncio.timeout(30):
        await images.served(ORIGIN)
    images.close()


async def test_a_quiet_zone_served_as_an_overlay_gets_a_full_image(tmp_path: Path) -> None:
    """An overlay is merged in the background: once the zone is quiet, the workers are told
    to install a full image of the same version, and the base and overlay are retired."""
    workers = Workers({0})
    images = _publisher(tmp_path, workers)
    images.merge_after = 0.2
    await _overlaid(images)
    full, _ = await async_wait_until(
        lambda: images._current[ORIGIN][1] is None and images._current[ORIGIN], 30,
        message="the overlay was never merged into a full image")
    assert full.name == "example.test.2.2.img", full
    assert len(workers.ops) == 3, workers.ops  # the first version, the overlay, the merge
    images.close()


async def test_no_merge_while_a_newer_full_image_is_being_made(tmp_path: Path) -> None:
    """An overlay is not merged while `busy` says a full image of a newer version is on its
    way (the node is signing the zone in full: the signed version replaces it whole); the
    merge waits and comes once `busy` says no. Before: every node rendered a full image of
    the unsigned version 10 s after `zone sign`, beside its own full sign (1M names: 2.3 GiB
    more per node)."""
    workers = Workers({0})
    images = _publisher(tmp_path, workers)
    images.merge_after = 0.1
    signing = {ORIGIN}
    images.busy = lambda origin: origin in signing
    await _overlaid(images)
    deadline = asyncio.get_running_loop().time() + 1.0  # ten merge periods
    while asyncio.get_running_loop().time() < deadline:
        assert images._current[ORIGIN][1] is not None, "merged while busy"
        assert ORIGIN not in images._building, "a merge was started while busy"
        await asyncio.sleep(0.02)
    assert len(workers.ops) == 2, workers.ops
    signing.clear()
    await async_wait_until(lambda: images._current[ORIGIN][1] is None, 30,
                           message="the overlay was never merged once not busy")
    assert len(workers.ops) == 3, workers.ops
    images.close()


async def test_the_journal_steps_an_import_once_the_workers_serve_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With serving workers, the IXFR journal's O(zone) step of a zone's first version (or
    an import) starts once every worker applied that version's image (issue 10: its digests,
    ~1 CPU-s per 100k names on every node, came before the answers); it still comes after."""
    steps: list[int] = []
    real = Journals._step

    def counted(self: Journals, z: object, prev: object, snap: ZoneSnapshot) -> object:
        steps.append(snap.serial)
        return real(self, z, prev, snap)  # type: ignore[arg-type]

    monkeypatch.setattr(Journals, "_step", counted)
    workers = Workers({0})
    images = _publisher(tmp_path, workers)
    journals = Journals()
    table = MirroredTable(journals, images)
    publishing = asyncio.create_task(table.publish_async(_snap(1)))  # type: ignore[arg-type]
    await async_wait_until(lambda: len(workers.ops) >= 1, 30, message="no image sent")
    assert steps == [], "the journal's step ran before the workers served the version"
    assert not publishing.done()
    images.acked(0, workers.ops[0][0])
    async with asyncio.timeout(30):
        await publishing
        await journals.caught_up(dns.name.from_text("example.test."))
    assert steps == [1]
    images.close()
