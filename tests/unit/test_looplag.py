"""`node.looplag.watch`: a loop held by CPU-bound work is reported (EVENT_LOOP_STALLED, 1877)
with how long, and every wake-up's lateness is measured."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from node import looplag


class _Observed:
    """The histogram's child for one process: observes, and wakes the test on the first."""

    def __init__(self, child: object) -> None:
        self._child, self.first = child, asyncio.Event()

    def labels(self, **_: str) -> _Observed:
        return self

    def observe(self, value: float) -> None:
        self._child.observe(value)  # type: ignore[attr-defined]
        self.first.set()


def _hold(seconds: float) -> None:
    """CPU-bound work that keeps the loop from running (it spins; it does not sleep)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def test_a_held_loop_is_reported_with_how_long(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    observed = _Observed(looplag.lag_histogram(registry).labels(process="control"))
    with caplog.at_level(logging.INFO, logger="node.events"):
        task = asyncio.get_running_loop().create_task(
            looplag.watch("control", observed))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the watcher starts its first tick
        _hold(0.5)
        await asyncio.wait_for(observed.first.wait(), 5)
        task.cancel()
    (stall,) = [json.loads(r.getMessage()) for r in caplog.records
                if '"event": 1877' in r.getMessage()]
    assert stall["process"] == "control" and float(stall["ms"]) >= 300, stall
    count = registry.get_sample_value("dnscluster_event_loop_lag_seconds_count",
                                      {"process": "control"})
    late = registry.get_sample_value("dnscluster_event_loop_lag_seconds_sum",
                                     {"process": "control"})
    assert count == 1 and late is not None and late >= 0.3, (count, late)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _held_for_the_trace() -> None:
    """Named so the trace can be checked to point here."""
    _hold(0.8)


async def test_a_held_loop_leaves_its_stack_when_traced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"{tmp_path}/stall"
    monkeypatch.setenv("DNSCLUSTER_STALL_TRACE", prefix)
    observed = _Observed(looplag.lag_histogram(CollectorRegistry()).labels(process="control"))
    task = asyncio.get_running_loop().create_task(
        looplag.watch("control", observed))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # the watcher arms the watchdog and starts its first tick
    _held_for_the_trace()
    await asyncio.wait_for(observed.first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    text = _read(Path(f"{prefix}.{os.getpid()}"))
    assert "_held_for_the_trace" in text and "Timeout" in text, text


async def test_a_stall_trace_path_that_cannot_be_opened_does_not_end_the_watch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: the watch runs unsupervised in the daemon's TaskGroup, so an exception from it
    (a DNSCLUSTER_STALL_TRACE prefix in a missing directory) stops the whole node."""
    monkeypatch.setenv("DNSCLUSTER_STALL_TRACE", f"{tmp_path}/missing/stall")
    observed = _Observed(looplag.lag_histogram(CollectorRegistry()).labels(process="control"))
    task = asyncio.get_running_loop().create_task(
        looplag.watch("control", observed))  # type: ignore[arg-type]
    await asyncio.wait_for(observed.first.wait(), 5)  # it ticks: the trace is only skipped
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
