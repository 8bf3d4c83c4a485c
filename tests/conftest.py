"""Shared fixtures: one real etcd for the session, a private etcd for fault tests,
an isolated key prefix per test and a connected `EtcdClient`; test markers; a fixture
that fails writes the logs of the processes it started to stderr."""

from __future__ import annotations

import os

# as `dns-node` runs (node/__main__.py): grpc's fork handlers off, set before grpc loads;
# with them on, a forked image child (node.image.forked) restarts grpc's threads, which
# abort once the child has closed the descriptors it inherited
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from node.store.client import EtcdClient
from tests.support import proclog
from tests.support.etcd import EtcdProcess

_MARKERS = {
    "integration": "needs real services (etcd, sockets)",
    "cluster": "runs real node processes",
    "interop": "runs third-party DNS software",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, text in _MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tests/<kind>/... gets the <kind> marker, so `-m "not cluster"` works without decorators
    root = Path(__file__).parent
    for item in items:
        try:
            kind = Path(str(item.path)).relative_to(root).parts[0]
        except ValueError:
            continue
        if kind in _MARKERS:
            item.add_marker(kind)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[object]) -> Generator[None, None, None]:
    """A fixture that fails shows the logs of every etcd and node it started (CI explains
    itself: "Captured stderr setup")."""
    mark = proclog.mark()
    outcome = yield
    if outcome.excinfo is not None:  # type: ignore[attr-defined]
        proclog.dump_since(mark)


@pytest.fixture(scope="session")
def etcd() -> Iterator[EtcdProcess]:
    """One etcd for the whole session; share it only through `key_prefix` isolation."""
    proc = EtcdProcess("session")
    proc.start()
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture
def private_etcd() -> Iterator[EtcdProcess]:
    """An etcd of this test's own, for stopping, pausing, restarting, compacting, auth."""
    proc = EtcdProcess("private")
    proc.start()
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture
def key_prefix() -> str:
    """A unique prefix shaped like the real layout: `/test-<uuid>/dnscluster/v1/`."""
    return f"/test-{uuid.uuid4().hex}/dnscluster/v1/"


@pytest.fixture
async def etcd_client(etcd: EtcdProcess) -> AsyncIterator[EtcdClient]:
    """A connected client of the session etcd (2 s deadline), closed after the test."""
    client = EtcdClient([etcd.endpoint], timeout=2.0)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()
