"""A serving worker's scheduling class: real-time while it answers little, fair when busy.

Why: on a machine whose cores are busy with the node's zone-sized work (an
import, a signing, the image builds; several nodes on one host), a serving
worker that sleeps until a query arrives waits for a CPU before it answers.
Measured (bench/RESULTS.md, "Issue 10, session 11"): a trivial UDP answerer in
its own session, probed every 20 ms beside a whole-machine benchmark (load
average 8-16, 2 cores), woke 100-230 ms late tens of times a minute at nice 0,
at nice -5 and with the shortest slice alike; the same answerer at SCHED_FIFO
never over 3 ms. bench.availability's answers over 100 ms (issue 10: none
allowed) are these late wake-ups, not work of the worker's own.

Owns `Realtime`: the worker's loop thread runs `SCHED_FIFO` (priority
`RT_PRIORITY`, reset on fork: threads and processes it starts run normally)
while the thread used at most `BUSY_SHARE` of a CPU over the last `WINDOW`;
above that it goes back to the normal class (with the short slice of
`node.priority.request_short_slice`), and up again only after `QUIET`
windows in a row at most `IDLE_SHARE`. So a flood, or any steady work, is
scheduled fairly, as before: the real-time class never lets a busy worker
keep a core from the control process (its lease keep-alive, the signing)
for more than about one window. Where the kernel refuses the class (no
CAP_SYS_NICE and RLIMIT_RTPRIO 0), or `server.realtime_workers` is false,
the worker stays in the normal class and nothing is retried. The kernel's
own real-time throttling (`sched_rt_runtime_us`, 95% by default) bounds a
real-time thread that never returns to its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable

from node.priority import request_short_slice

log = logging.getLogger(__name__)

RT_PRIORITY = 1  # the lowest SCHED_FIFO priority: above every normal thread, below the kernel's
WINDOW = 0.05  # seconds between two looks at the loop thread's CPU time
BUSY_SHARE = 0.25  # more than this share of a CPU in a window: back to the normal class
IDLE_SHARE = 0.05  # at most this share for QUIET windows in a row: real-time again
QUIET = 20


def _fifo() -> bool:
    """The calling thread runs SCHED_FIFO (reset on fork); False if refused."""
    policy = os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0)
    try:
        os.sched_setscheduler(0, policy, os.sched_param(RT_PRIORITY))
    except (OSError, AttributeError):
        return False
    return True


def _normal() -> bool:
    """The calling thread runs SCHED_OTHER again, with the short slice where granted."""
    if request_short_slice():
        return True
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


class Realtime:
    """The loop thread's class by its own CPU use (see the module docstring)."""

    __slots__ = ("_cpu", "_fifo", "_normal", "_quiet", "_used", "demotions", "on", "refused")

    def __init__(self, cpu: Callable[[], float] = time.thread_time,
                 fifo: Callable[[], bool] = _fifo, normal: Callable[[], bool] = _normal) -> None:
        self._cpu, self._fifo, self._normal = cpu, fifo, normal
        self.on = False  # running SCHED_FIFO now
        self.refused = False  # the kernel said no: never asked again
        self.demotions = 0
        self._quiet = 0
        self._used = cpu()

    def start(self) -> bool:
        """Ask for the real-time class (in the loop thread); False if refused."""
        self.on = self._fifo()
        self.refused = not self.on
        self._used = self._cpu()
        return self.on

    def check(self, elapsed: float) -> None:
        """`elapsed` seconds since the last check (in the loop thread): move by CPU share."""
        used = self._cpu()
        share = (used - self._used) / elapsed if elapsed > 0 else 0.0
        self._used = used
        if self.refused:
            return
        if self.on:
            if share > BUSY_SHARE:
                self._normal()
                self.on = False
                self._quiet = 0
                self.demotions += 1
            return
        self._quiet = self._quiet + 1 if share <= IDLE_SHARE else 0
        if self._quiet >= QUIET:
            self._quiet = 0
            self.on = self._fifo()
            self.refused = not self.on

    async def run(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Until cancelled: `start`, then `check` every WINDOW; the normal class at the end."""
        if not self.start():
            log.info("serving worker %d: real-time class refused; answering in the normal "
                     "class", os.getpid())
            return
        try:
            last = clock()
            while True:
                await asyncio.sleep(WINDOW)
                now = clock()
                self.check(now - last)
                last = now
        finally:
            if self.on:
                self._normal()
                self.on = False
