"""Fixtures for the clusterctl tests: the API test doubles and an in-process API server."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from apifakes import (
    SAMPLE_NODES,
    FixedNodeDirectory,
    InMemoryZoneRepository,
)

from node.api.server import ApiServer


@pytest.fixture
def repo() -> InMemoryZoneRepository:
    return InMemoryZoneRepository()


@pytest.fixture
async def endpoint(repo: InMemoryZoneRepository) -> AsyncIterator[str]:
    server = ApiServer(
        repo,  # type: ignore[arg-type]
        FixedNodeDirectory(SAMPLE_NODES),  # type: ignore[arg-type]
        listen="127.0.0.1:0",
        tls=None,
        node_id="t1",
    )
    port = await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


@pytest.fixture(autouse=True)
def _no_endpoint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLUSTERCTL_ENDPOINT", raising=False)
