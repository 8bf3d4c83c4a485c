"""An import that began before its zone was deleted never becomes the zone created again.

Deleting a zone removes its head in one revision, then the data of every
generation the zone had at that revision, in parts (`delete_data`). An import
running meanwhile has such a generation already (written before the deletion,
activated after it): if the zone is created again before the import activates,
the import must not flip the new zone's head to its generation, whose data the
deletion's later parts remove (the zone created again would serve nothing).
Real etcd; the import runs in its own thread and event loop, held at
"activating" by its progress callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import dns.name
import pytest

from node.errors import Conflict, NotFound
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.repository import ZoneRepository
from tests.integration.test_replica_pending import zone_text
from tests.support.etcd import EtcdProcess

pytestmark = pytest.mark.integration

Z = dns.name.from_text("raced.test.")


async def test_an_import_begun_before_a_deletion_never_activates_on_the_zone_created_again(
        etcd: EtcdProcess, etcd_client: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    await repo.import_zone(Z, zone_text(5, 200, "a"))
    reached, go = threading.Event(), threading.Event()

    def hold(stage: str, done: int, total: int) -> None:
        if stage == "activating":
            reached.set()
            go.wait(60)

    async def importing() -> None:
        client = EtcdClient([etcd.endpoint], timeout=5.0)
        await client.connect()
        try:
            await ZoneRepository(client, layout).import_zone(Z, zone_text(7, 300, "c"),
                                                             progress=hold)
        finally:
            await client.close()

    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            asyncio.run(importing())
            outcome.append(None)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert await asyncio.to_thread(reached.wait, 60), "the import never got to activating"
        revision = await repo.unlink_zone(Z)  # delete_zone's first step
        new = await repo.create_zone(Z, text=zone_text(9, 50, "b"))
    finally:
        go.set()
    await asyncio.to_thread(thread.join, 60)
    assert outcome and (outcome[0] is None or isinstance(outcome[0], Conflict | NotFound)), \
        outcome
    await repo.delete_data(Z, revision)  # delete_zone's second step
    info = await repo.get_zone(Z)
    assert info.rrset_count > 0, \
        f"the zone created again serves generation {info.generation} with no data left " \
        f"(created with generation {new.generation}, {new.rrset_count} RRsets)"
    with contextlib.suppress(Exception):
        await repo.delete_zone(Z)
