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
the worker stays in the normal class and nothing is retried; the log line says why
(`refusal`) and what grants the class.

The windows are looked at by a task of the loop the class protects: a
callback that never returns (a bug, a pathological burst) would keep the
real-time class, and a core, for as long as it runs. The kernel's real-time
throttling does not help enough: measured on Linux 6.18 (2 cores), a normal
process on the CPU of a spinning SCHED_FIFO thread ran 50 ms a second, after
waits of 950 ms; with every worker stuck, the whole machine (the lease
keep-alive, a local etcd) would get that. So the class comes with a budget
the kernel enforces (`_guard`): RLIMIT_RTTIME's soft limit of `RT_BUDGET`
(CPU time at the real-time class without a blocking system call; the hard
limit is left as it is, so nothing is killed) sends SIGXCPU, whose handler
(the loop thread is the process's main thread, where Python runs handlers)
puts the thread back in the normal class at once: `Realtime.overrun`. The
default action of SIGXCPU would end the worker with a core dump: no
real-time class without that handler. A Python handler runs at the next
bytecode: a thread stuck in one long C call keeps the class until it returns
(the kernel sends SIGXCPU again every second meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from node.priority import request_short_slice

log = logging.getLogger(__name__)

RT_PRIORITY = 1  # the lowest SCHED_FIFO priority: above every normal thread, below the kernel's
WINDOW = 0.05  # seconds between two looks at the loop thread's CPU time
BUSY_SHARE = 0.25  # more than this share of a CPU in a window: back to the normal class
IDLE_SHARE = 0.05  # at most this share for QUIET windows in a row: real-time again
QUIET = 20
RT_BUDGET = 0.1  # seconds at the real-time class without blocking: SIGXCPU, back to normal
SCHED_FLAG_RESET_ON_FORK = 0x01  # sched_setattr(2)'s flag (os.SCHED_RESET_ON_FORK: the policy bit)


def _fifo() -> bool:
    """The calling thread runs SCHED_FIFO (reset on fork); False if refused."""
    policy = os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0)
    try:
        os.sched_setscheduler(0, policy, os.sched_param(RT_PRIORITY))
    except (OSError, AttributeError):
        return False
    return True


CAP_SYS_NICE = 23  # capability(7)'s bit


def _holds_sys_nice() -> bool | None:
    """Whether this process's effective capabilities include CAP_SYS_NICE (None: unknown)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_SYS_NICE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def refusal(sys_nice: Callable[[], bool | None] = _holds_sys_nice,
            rtprio: Callable[[], int] = lambda: resource.getrlimit(resource.RLIMIT_RTPRIO)[0],
            main: Callable[[], bool] = lambda: threading.current_thread() is
            threading.main_thread()) -> str:
    """Why the kernel refused the class, and what grants it (for the worker's log line)."""
    if not main():
        return "the loop does not run in the process's main thread (SIGXCPU cannot be handled)"
    held, limit = sys_nice(), rtprio()
    if held is False and limit < RT_PRIORITY:
        return ("no CAP_SYS_NICE and RLIMIT_RTPRIO is 0: grant either (Kubernetes: "
                "securityContext.capabilities.add [SYS_NICE]; Docker: --cap-add SYS_NICE; "
                "systemd: LimitRTPRIO=1)")
    return (f"refused although CAP_SYS_NICE is {'held' if held else 'unknown'} and "
            f"RLIMIT_RTPRIO is {limit}: a CPU cgroup without real-time runtime "
            "(CONFIG_RT_GROUP_SCHED: cpu.rt_runtime_us) or a seccomp filter")


def _guard(overrun: Callable[[], None]) -> bool:
    """Arm the kernel's budget (module docstring): `overrun` on SIGXCPU, RLIMIT_RTTIME's soft
    limit at RT_BUDGET (at most half an operator's hard limit, which is kept). Only from the
    main thread (where Python installs and runs signal handlers); False where it cannot be
    armed. Again at each promotion: the kernel raises the soft limit by 1 s at each SIGXCPU."""
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        signal.signal(signal.SIGXCPU, lambda _sig, _frame: overrun())
        hard = resource.getrlimit(resource.RLIMIT_RTTIME)[1]
        soft = round(RT_BUDGET * 1_000_000)
        if hard != resource.RLIM_INFINITY:  # SIGKILL there: the demotion well before it
            soft = min(soft, hard // 2)
        resource.setrlimit(resource.RLIMIT_RTTIME, (soft, hard))
    except (OSError, ValueError, AttributeError):
        return False
    return True


def _normal() -> bool:
    """The calling thread runs SCHED_OTHER again, with the short slice where granted; False
    if it still runs SCHED_FIFO. The reset-on-fork flag is kept: a thread without
    CAP_SYS_NICE (RLIMIT_RTPRIO, systemd `LimitRTPRIO=`) may not clear it (EPERM), and
    would stay real-time."""
    reset = getattr(os, "SCHED_RESET_ON_FORK", 0)
    if not request_short_slice(flags=SCHED_FLAG_RESET_ON_FORK if reset else 0):
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(0, os.SCHED_OTHER | reset, os.sched_param(0))
    try:
        return os.sched_getscheduler(0) & ~reset == os.SCHED_OTHER
    except (OSError, AttributeError):
        return False


class Realtime:
    """The loop thread's class by its own CPU use (see the module docstring)."""

    __slots__ = ("_cpu", "_fifo", "_guard", "_normal", "_quiet", "_seen", "_used", "demotions",
                 "on", "overruns", "refused")

    def __init__(self, cpu: Callable[[], float] = time.thread_time,
                 fifo: Callable[[], bool] = _fifo, normal: Callable[[], bool] = _normal,
                 guard: Callable[[Callable[[], None]], bool] = _guard) -> None:
        self._cpu, self._fifo, self._normal, self._guard = cpu, fifo, normal, guard
        self.on = False  # running SCHED_FIFO now
        self.refused = False  # the kernel said no (or no budget could be armed): never again
        self.demotions = 0
        self.overruns = 0  # SIGXCPU: RT_BUDGET at the real-time class without returning
        self._seen = 0  # overruns already logged
        self._quiet = 0
        self._used = cpu()

    def state(self) -> dict[str, int | str]:
        """What the worker reports with its counters (the control process's metrics)."""
        return {"class": "fifo" if self.on else "refused" if self.refused else "normal",
                "demotions": self.demotions, "overruns": self.overruns}

    def start(self) -> bool:
        """Ask for the real-time class (in the loop thread); False if refused."""
        self.on = self._promote()
        self.refused = not self.on
        self._used = self._cpu()
        return self.on

    def _promote(self) -> bool:
        """The kernel's budget armed, then the real-time class; False if either is refused."""
        return self._guard(self.overrun) and self._fifo()

    def overrun(self) -> None:
        """SIGXCPU (a signal handler, in the loop thread): it ran RT_BUDGET at the real-time
        class without blocking, and its loop has not come back to `check`: normal class now
        (`check` counts it once the loop is back; a handler may run in the middle of it)."""
        self._normal()
        self.overruns += 1

    def check(self, elapsed: float) -> None:
        """`elapsed` seconds since the last check (in the loop thread): move by CPU share."""
        used = self._cpu()
        share = (used - self._used) / elapsed if elapsed > 0 else 0.0
        self._used = used
        if self.overruns != self._seen:  # logged here: a signal handler must not log
            self._seen = self.overruns
            log.warning("serving worker %d: its loop thread ran %.0f ms at the real-time class "
                        "without returning to its loop; back in the normal class", os.getpid(),
                        RT_BUDGET * 1000)
            if self.on:
                self.on = False
                self._quiet = 0
                self.demotions += 1
            return
        if self.refused:
            return
        if self.on:
            if share > BUSY_SHARE:
                if not self._normal():  # never expected: then it is not asked up again
                    log.error("serving worker %d: the kernel keeps its loop thread in the "
                              "real-time class", os.getpid())
                    self.refused = True
                self.on = False
                self._quiet = 0
                self.demotions += 1
            return
        self._quiet = self._quiet + 1 if share <= IDLE_SHARE else 0
        if self._quiet >= QUIET:
            self._quiet = 0
            self.on = self._promote()
            self.refused = not self.on

    async def run(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Until cancelled: `start`, then `check` every WINDOW; the normal class at the end."""
        if not self.start():
            log.info("serving worker %d: real-time class refused (%s); answering in the "
                     "normal class", os.getpid(), refusal())
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
