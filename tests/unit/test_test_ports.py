"""The test suite's port allocator (tests/support/ports.py): parallel test workers
(pytest-xdist) never hand out the same port.

Each worker process remembers what it handed out, but not what the other worker did:
a port one worker's node released for a restart (kill -9, then start on the same
ports) could be handed by the other worker to a new server, and the restart failed
with "address already in use" (a CI failure in test_keymaster).
"""

from __future__ import annotations

import pytest

from tests.support import ports


def _slice(monkeypatch: pytest.MonkeyPatch, worker: str, count: str) -> range:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", count)
    return ports._pool()


def test_workers_get_disjoint_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    first = _slice(monkeypatch, "gw0", "2")
    second = _slice(monkeypatch, "gw1", "2")
    assert len(first) > 1000 and len(second) > 1000
    assert not set(first) & set(second)
    low, _ = ports.ephemeral_range()
    assert max(first.stop, second.stop) <= low


def test_every_worker_of_many_has_room(monkeypatch: pytest.MonkeyPatch) -> None:
    slices = [_slice(monkeypatch, f"gw{i}", "8") for i in range(8)]
    seen: set[int] = set()
    for s in slices:
        assert len(s) >= 500
        assert not seen & set(s)
        seen |= set(s)


def test_free_port_stays_in_the_workers_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _slice(monkeypatch, "gw1", "2")
    for _ in range(20):
        assert ports.free_port() in mine


def test_without_xdist_the_whole_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    whole = ports._pool()
    assert len(whole) > 10000
