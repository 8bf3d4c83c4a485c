"""Fixtures for the admin API tests: an in-process grpc.aio ApiServer on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from apifakes import SAMPLE_NODES, FixedNodeDirectory, InMemoryZoneRepository

from node.api.server import ApiServer


@pytest.fixture
def repo() -> InMemoryZoneRepository:
    return InMemoryZoneRepository()


@pytest.fixture
async def api(repo: InMemoryZoneRepository) -> AsyncIterator[tuple[ApiServer, str]]:
    server = ApiServer(
        repo, FixedNodeDirectory(SAMPLE_NODES), listen="127.0.0.1:0", tls=None, node_id="t1"
    )  # type: ignore[arg-type]
    port = await server.start()
    try:
        yield server, f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
