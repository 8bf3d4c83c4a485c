"""Long-lived loops that outlive their own failures: the daemon's task supervisor.

`supervised(name, run)` runs one loop of the node (session, replica, signing,
Key Master...) inside the daemon's TaskGroup. A loop that fails is logged with
an event (TASK_CRASHED) and started again after a back-off (TASK_RESTARTED), so
no failing loop ends the TaskGroup and stops the node; a loop that returns is
done. The broad catch sits here, at the task boundary (STYLE R9).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from node.clock import SYSTEM_CLOCK
from node.events import Event, emit

log = logging.getLogger(__name__)

RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


async def supervised(name: str, run: Callable[[], Awaitable[None]],
                     backoff: tuple[float, ...] = RESTART_BACKOFF) -> None:
    """Run a long-lived loop; if it fails, log it with an event and start it again after a
    back-off. A loop that ran for a minute before failing starts again from the shortest
    back-off."""
    failures = 0
    while True:
        started = SYSTEM_CLOCK.monotonic()
        try:
            await run()
            return
        except Exception as exc:
            emit(Event.TASK_CRASHED, level=logging.ERROR, task=name,
                 error=f"{type(exc).__name__}: {exc}")
            log.exception("task %s failed", name)
        failures = 1 if SYSTEM_CLOCK.monotonic() - started > 60 else failures + 1
        delay = backoff[min(failures, len(backoff)) - 1]
        await asyncio.sleep(delay)
        emit(Event.TASK_RESTARTED, level=logging.WARNING, task=name, failures=failures,
             after=delay)
