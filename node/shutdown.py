"""A watchdog for the ordered shutdown: a node that was told to stop always stops.

Kubernetes sends SIGKILL when the grace period runs out, and an operator's
`systemctl stop` waits; a node that hangs while stopping delays both and says
nothing. `ShutdownWatchdog` runs in a thread of its own, started at SIGTERM:
each step of the shutdown is reported with `step(name)`; when the whole
shutdown takes longer than its deadline, it logs `SHUTDOWN_STUCK` with the step
it is in and every thread's stack, then ends the process: exit 0 when the
ordered part (Key Master hand-off, lease revoke, DNS stop) was done and only
clean-up hangs, exit 1 otherwise. `unless_stopped` races a start-up step against
the stop signal, so a node waiting for etcd at start-up stops too.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from node.events import Event, emit

log = logging.getLogger(__name__)
T = TypeVar("T")


class Abandoned(Exception):
    """A start-up step was cancelled because the node was told to stop (and it stopped)."""


async def unless_stopped(step: Awaitable[T], stop: asyncio.Event,
                         shutdown: Callable[[], Awaitable[None]]) -> T:
    """`step`'s result, unless `stop` is set first: then `step` is cancelled, `shutdown`
    runs (the ordered one) and Abandoned is raised.

    A step that waits for etcd (the initial load retries for ever) must not keep
    the node from stopping: Kubernetes waits only its grace period."""
    work = asyncio.ensure_future(step)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((work, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
    if work.cancelled() and stop.is_set():
        await shutdown()
        raise Abandoned
    return work.result()


class ShutdownWatchdog:
    """Ends the process if the shutdown outlives `deadline` seconds."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._step = "starting"
        self._ordered_done = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="shutdown-watchdog",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def step(self, name: str) -> None:
        self._step = name
        log.info("shutdown: %s", name)

    def ordered_done(self) -> None:
        """The ordered part is over; what remains is clean-up."""
        self._ordered_done = True
        self.step("clean-up")

    def finished(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        if self._done.wait(self._deadline):
            return
        emit(Event.SHUTDOWN_STUCK, level=logging.ERROR, step=self._step,
             seconds=self._deadline, ordered_done=self._ordered_done)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(0 if self._ordered_done else 1)
