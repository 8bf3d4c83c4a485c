"""How far a node process's event loop falls behind: measured, and reported when long.

Every answer a process makes, every lease keep-alive and every watch event
waits for its event loop; a loop held by CPU-bound Python (a compile, a
decode, a collection) or starved of CPU answers nothing meanwhile. `watch`
sleeps `TICK` at a time and measures how late each wake-up is: the lateness
goes to `dnscluster_event_loop_lag_seconds{process}` when a registry is given,
and one of `STALL` or more is logged as `EVENT_LOOP_STALLED` (1877), with the
process, so a probe's unanswered second can be lined up with its cause (the
GC_PAUSE, SERVING_WORKER_OP_SLOW and CONVERGENCE_STAGES events around it).
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, Histogram

from node.clock import SYSTEM_CLOCK, Clock
from node.events import Event, emit

TICK = 0.1  # seconds between wake-ups
STALL = 0.25  # seconds late: reported as EVENT_LOOP_STALLED
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def lag_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("dnscluster_event_loop_lag_seconds",
                     "How late the event loop woke up from a short sleep",
                     ["process"], buckets=BUCKETS, registry=registry)


async def watch(process: str, histogram: Histogram | None = None,
                clock: Clock = SYSTEM_CLOCK) -> None:
    """Run until cancelled: measure each wake-up's lateness, report the long ones."""
    observe = histogram.labels(process=process).observe if histogram is not None else None
    while True:
        start = clock.monotonic()
        await asyncio.sleep(TICK)
        late = max(0.0, clock.monotonic() - start - TICK)
        if observe is not None:
            observe(late)
        if late >= STALL:
            emit(Event.EVENT_LOOP_STALLED, logging.WARNING, process=process,
                 ms=round(late * 1000, 1))
