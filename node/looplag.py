"""How far a node process's event loop falls behind: measured, and reported when long.

Every answer a process makes, every lease keep-alive and every watch event
waits for its event loop; a loop held by CPU-bound Python (a compile, a
decode, a collection) or starved of CPU answers nothing meanwhile. `watch`
sleeps `TICK` at a time and measures how late each wake-up is: the lateness
goes to `dnscluster_event_loop_lag_seconds{process}` when a registry is given,
and one of `STALL` or more is logged as `EVENT_LOOP_STALLED` (1877), with the
process, so a probe's unanswered second can be lined up with its cause (the
GC_PAUSE, SERVING_WORKER_OP_SLOW and CONVERGENCE_STAGES events around it).

To find *what* held the loop, set `DNSCLUSTER_STALL_TRACE` to a path prefix:
each process then re-arms `faulthandler`'s watchdog every tick, and a loop
late by `STALL` or more has every thread's Python stack written to
`<prefix>.<pid>` by a C thread that does not need the interpreter lock (so
even a C call holding it is caught). A diagnostic: it starts a thread per tick.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # imported where the histogram is made (see node/server/stats.py)
    from prometheus_client import CollectorRegistry, Histogram

from node.clock import SYSTEM_CLOCK, Clock
from node.events import Event, emit

log = logging.getLogger(__name__)

TICK = 0.1  # seconds between wake-ups
STALL = 0.25  # seconds late: reported as EVENT_LOOP_STALLED
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def lag_histogram(registry: CollectorRegistry) -> Histogram:
    from prometheus_client import Histogram

    return Histogram("dnscluster_event_loop_lag_seconds",
                     "How late the event loop woke up from a short sleep",
                     ["process"], buckets=BUCKETS, registry=registry)


async def watch(process: str, histogram: Histogram | None = None,
                clock: Clock = SYSTEM_CLOCK) -> None:
    """Run until cancelled: measure each wake-up's lateness, report the long ones."""
    observe = histogram.labels(process=process).observe if histogram is not None else None
    trace = _trace_file()
    try:
        while True:
            await _tick(process, observe, clock, trace)
    finally:
        if trace is not None:
            faulthandler.cancel_dump_traceback_later()
            trace.close()


def _trace_file() -> IO[str] | None:
    prefix = os.environ.get("DNSCLUSTER_STALL_TRACE")
    if not prefix:
        return None
    try:
        return open(f"{prefix}.{os.getpid()}", "a", encoding="utf-8")
    except OSError as exc:  # a diagnostic: never the reason a process stops
        log.warning("DNSCLUSTER_STALL_TRACE: %s; no stall traces", exc)
        return None


async def _tick(process: str, observe: Callable[[float], None] | None, clock: Clock,
                trace: IO[str] | None) -> None:
    if trace is not None:  # fires unless re-armed within TICK + STALL
        faulthandler.dump_traceback_later(TICK + STALL, repeat=True, file=trace)
    start = clock.monotonic()
    await asyncio.sleep(TICK)
    late = max(0.0, clock.monotonic() - start - TICK)
    if observe is not None:
        observe(late)
    if late >= STALL:
        emit(Event.EVENT_LOOP_STALLED, logging.WARNING, process=process,
             ms=round(late * 1000, 1))
