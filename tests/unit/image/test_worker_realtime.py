"""A serving worker's loop thread runs SCHED_FIFO while it answers little, and the normal
class as soon as it is busy (node/serving/realtime.py).

Session 10's availability run had answers over 100 ms with no work of the
worker's own at those moments: a worker in the normal class woke that late
behind the node's heavy work. These tests drive `Realtime` with a fake CPU
clock (the share is decided, not timed), and check the real calls on this
thread where the kernel allows the real-time class.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from node.serving import realtime
from node.serving.realtime import BUSY_SHARE, QUIET, WINDOW, Realtime
from tests.support.realtime import realtime_granted


class Fake:
    def __init__(self, granted: bool = True, guarded: bool = True) -> None:
        self.cpu = 0.0
        self.granted = granted
        self.guarded = guarded
        self.calls: list[str] = []

    def fifo(self) -> bool:
        self.calls.append("fifo")
        return self.granted

    def normal(self) -> bool:
        self.calls.append("normal")
        return True

    def guard(self, overrun: Callable[[], None]) -> bool:
        self.calls.append("guard")
        return self.guarded

    def rt(self) -> Realtime:
        return Realtime(cpu=lambda: self.cpu, fifo=self.fifo, normal=self.normal,
                        guard=self.guard)


def test_real_time_while_idle_normal_once_busy_and_back_after_quiet_windows() -> None:
    f = Fake()
    rt = f.rt()
    assert rt.start() and rt.on
    for _ in range(5):  # answering a probe now and then: stays real-time
        f.cpu += WINDOW * 0.01
        rt.check(WINDOW)
    assert rt.on and f.calls == ["guard", "fifo"]
    f.cpu += WINDOW * (BUSY_SHARE + 0.05)  # a flood starts: one window is enough
    rt.check(WINDOW)
    assert not rt.on and f.calls == ["guard", "fifo", "normal"] and rt.demotions == 1
    for _ in range(QUIET - 1):  # quiet, but not yet long enough
        rt.check(WINDOW)
    assert not rt.on
    f.cpu += WINDOW * 0.5  # busy again: the quiet count starts over
    rt.check(WINDOW)
    for _ in range(QUIET - 1):
        rt.check(WINDOW)
    assert not rt.on
    rt.check(WINDOW)
    assert rt.on and f.calls == ["guard", "fifo", "normal", "guard", "fifo"]  # budget re-armed


def test_refused_is_never_asked_again() -> None:
    f = Fake(granted=False)
    rt = f.rt()
    assert not rt.start() and rt.refused
    for _ in range(3 * QUIET):
        rt.check(WINDOW)
    assert f.calls == ["guard", "fifo"] and not rt.on


def test_no_real_time_class_without_the_kernel_budget() -> None:
    f = Fake(guarded=False)  # SIGXCPU's default action would end the worker with a core dump
    rt = f.rt()
    assert not rt.start() and rt.refused and f.calls == ["guard"]


def test_an_overrun_demotes_at_once_and_the_loop_counts_it_when_back() -> None:
    f = Fake()
    rt = f.rt()
    assert rt.start()
    rt.overrun()  # SIGXCPU while one callback held the loop thread RT_BUDGET
    assert f.calls == ["guard", "fifo", "normal"]
    f.cpu += 1.0  # the callback's CPU time, seen when the loop is back
    rt.check(1.0 + WINDOW)
    assert not rt.on and rt.demotions == 1 and rt.overruns == 1
    for _ in range(QUIET):  # quiet again: real-time, the budget armed again first
        rt.check(WINDOW)
    assert rt.on and f.calls == ["guard", "fifo", "normal", "guard", "fifo"]


def test_the_real_calls_move_only_the_calling_thread() -> None:
    if not realtime_granted():
        pytest.skip("the kernel refuses the real-time class here")
    seen: dict[str, int] = {}

    def run() -> None:
        assert realtime._fifo()
        seen["fifo"] = os.sched_getscheduler(0)
        child = threading.Thread(target=lambda: seen.setdefault("child", os.sched_getscheduler(0)))
        child.start()
        child.join(30)
        realtime._normal()
        seen["normal"] = os.sched_getscheduler(0)
        sched = open("/proc/thread-self/sched").read()
        seen["slice"] = "se.slice" in sched and "100000" in sched.split("se.slice")[1][:80]

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    reset = getattr(os, "SCHED_RESET_ON_FORK", 0)
    slice_shown = "se.slice" in open("/proc/thread-self/sched").read()  # Linux 6.12+
    assert seen == {"fifo": os.SCHED_FIFO | reset, "child": os.SCHED_OTHER,
                    "normal": os.SCHED_OTHER | reset, "slice": slice_shown}  # demoted: short slice
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


STUCK = """
import asyncio, os, sys, time
from node.serving.realtime import Realtime

async def main() -> None:
    rt = Realtime()
    task = asyncio.get_running_loop().create_task(rt.run())
    await asyncio.sleep(0)
    assert rt.on, "not real-time"
    start = time.monotonic()
    while time.monotonic() - start < float(sys.argv[1]):  # one callback that does not return
        if os.sched_getscheduler(0) & 0xff != os.SCHED_FIFO:
            break
    print(round(time.monotonic() - start, 3), flush=True)
    task.cancel()

asyncio.run(main())
"""


def test_a_loop_that_never_returns_leaves_the_real_time_class_within_its_budget() -> None:
    """One callback spins without returning to the loop (the task that looks at the windows
    never runs): the kernel's budget (RLIMIT_RTTIME, SIGXCPU) puts the thread back in the
    normal class. Before: SCHED_FIFO for as long as the callback ran (the kernel left other
    threads of that CPU 50 ms a second). In a process of its own: the handler, the limit."""
    if not realtime_granted():
        pytest.skip("the kernel refuses the real-time class here")
    spin = 1.5  # bounded: without the budget, this long at SCHED_FIFO on one core
    root = Path(realtime.__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", STUCK, str(spin)], capture_output=True,
                         text=True, timeout=60, cwd=root, env=env)
    assert out.returncode == 0, out.stderr
    held = float(out.stdout.split()[-1])
    # RT_BUDGET (0.1 s) of CPU at SCHED_FIFO and a tick: it runs at once, whatever the load
    assert held < 1.0, f"SCHED_FIFO for {held} s of a {spin} s callback"


UNPRIVILEGED = """
import os
from node.serving import realtime

assert realtime._fifo()
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)  # no capability left: as with RLIMIT_RTPRIO (LimitRTPRIO=1)
ok = realtime._normal()
print(ok, os.sched_getscheduler(0) & 0xff, flush=True)
"""


def test_a_worker_without_cap_sys_nice_can_leave_the_real_time_class() -> None:
    """Granted by RLIMIT_RTPRIO (systemd `LimitRTPRIO=1`, as docs/processes.md says) rather
    than CAP_SYS_NICE, a thread may not clear the reset-on-fork flag it asked for: going back
    to SCHED_OTHER without it is refused (EPERM). Before: that was ignored, and a busy worker
    stayed SCHED_FIFO for good while `Realtime` counted it demoted."""
    if os.geteuid() != 0 or not realtime_granted():
        pytest.skip("needs root (to drop its privileges) and the real-time class")
    root = Path(realtime.__file__).parents[2]
    out = subprocess.run([sys.executable, "-c", UNPRIVILEGED], capture_output=True, text=True,
                         timeout=60, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", str(os.SCHED_OTHER)], out.stdout


def test_state_reported_with_the_counters() -> None:
    f = Fake()
    rt = f.rt()
    assert rt.state() == {"class": "normal", "demotions": 0, "overruns": 0}
    rt.start()
    assert rt.state()["class"] == "fifo"
    f.cpu += WINDOW  # a busy window
    rt.check(WINDOW)
    assert rt.state() == {"class": "normal", "demotions": 1, "overruns": 0}
    refused = Fake(granted=False).rt()
    refused.start()
    assert refused.state()["class"] == "refused"


def test_refusal_says_why_and_what_grants_the_class() -> None:
    """The worker's log line names the cause (before: "refused", nothing more)."""
    why = realtime.refusal(sys_nice=lambda: False, rtprio=lambda: 0, main=lambda: True)
    assert "no CAP_SYS_NICE" in why and "SYS_NICE" in why and "LimitRTPRIO" in why
    why = realtime.refusal(sys_nice=lambda: True, rtprio=lambda: 0, main=lambda: True)
    assert "CAP_SYS_NICE is held" in why and "rt_runtime_us" in why
    assert "main thread" in realtime.refusal(main=lambda: False)
    assert realtime._holds_sys_nice() in (True, False)  # this process's /proc/self/status
