"""What the tests of the generation sweep share: a running session lease, a sweep, key counts.

Real etcd only: `connected` is a client of a given class (one that counts or
injects calls) connected to the test's etcd, `running_session` keeps a `Session`
(its lease kept alive) for the block, `make_sweep` builds the sweep the daemon
builds (its bulk writer registers under that session's lease), `live_sweeper` that
sweep on a writable node of this release that has announced itself, `count` counts
the keys under a prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TypeVar

from node.config import Config, ServerSettings
from node.nodes.membership import NodeDirectory, own_record
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.session import Session
from node.zones.repository import ZoneRepository
from node.zones.sweep import GenerationSweep
from tests.support.etcd import EtcdProcess

C = TypeVar("C", bound=EtcdClient)


@contextlib.asynccontextmanager
async def connected(cls: type[C], etcd: EtcdProcess) -> AsyncIterator[C]:
    """A `cls` client of `etcd`, connected for the block."""
    client = cls([etcd.endpoint], timeout=10.0)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def running_session(client: EtcdClient, ttl: int = 6) -> AsyncIterator[Session]:
    """A session of `client` whose lease is kept alive (granted before the block)."""
    session = Session(client, ttl, keepalive_interval=1.0)
    task = asyncio.create_task(session.run())
    try:
        await session.wait_ready(10)
        yield session
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def make_sweep(client: EtcdClient, layout: KeyLayout, repo: ZoneRepository, session: Session,
               config: Config | None = None) -> GenerationSweep:
    return GenerationSweep(client, layout, repo.bulk, session, NodeDirectory(client, layout),
                           config or Config(node_id="t1"))


async def count(client: EtcdClient, prefix: str) -> int:
    """The number of keys under `prefix`."""
    return (await client.range(prefix, prefix=True, count_only=True)).count


async def live_sweeper(client: EtcdClient, layout: KeyLayout, repo: ZoneRepository,
                       session: Session, interval: float) -> GenerationSweep:
    """The sweep of writable node "new" of this release, its node record (this release's
    features) and its alive key (under the session's lease) put as its daemon puts them."""
    config = Config(node_id="new", server=ServerSettings(generation_sweep_interval=interval))
    sweep = make_sweep(client, layout, repo, session, config)
    lease = await session.wait_ready(10)
    await client.put(layout.node_key("new"), own_record(config, datetime.now(UTC)).record_json())
    await client.put(layout.alive_key("new"), b"{}", lease=lease)
    return sweep
