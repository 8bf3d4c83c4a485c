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
import threading

import pytest

from node.serving import realtime
from node.serving.realtime import BUSY_SHARE, QUIET, WINDOW, Realtime


class Fake:
    def __init__(self, granted: bool = True) -> None:
        self.cpu = 0.0
        self.granted = granted
        self.calls: list[str] = []

    def fifo(self) -> bool:
        self.calls.append("fifo")
        return self.granted

    def normal(self) -> bool:
        self.calls.append("normal")
        return True

    def rt(self) -> Realtime:
        return Realtime(cpu=lambda: self.cpu, fifo=self.fifo, normal=self.normal)


def test_real_time_while_idle_normal_once_busy_and_back_after_quiet_windows() -> None:
    f = Fake()
    rt = f.rt()
    assert rt.start() and rt.on
    for _ in range(5):  # answering a probe now and then: stays real-time
        f.cpu += WINDOW * 0.01
        rt.check(WINDOW)
    assert rt.on and f.calls == ["fifo"]
    f.cpu += WINDOW * (BUSY_SHARE + 0.05)  # a flood starts: one window is enough
    rt.check(WINDOW)
    assert not rt.on and f.calls == ["fifo", "normal"] and rt.demotions == 1
    for _ in range(QUIET - 1):  # quiet, but not yet long enough
        rt.check(WINDOW)
    assert not rt.on
    f.cpu += WINDOW * 0.5  # busy again: the quiet count starts over
    rt.check(WINDOW)
    for _ in range(QUIET - 1):
        rt.check(WINDOW)
    assert not rt.on
    rt.check(WINDOW)
    assert rt.on and f.calls == ["fifo", "normal", "fifo"]


def test_refused_is_never_asked_again() -> None:
    f = Fake(granted=False)
    rt = f.rt()
    assert not rt.start() and rt.refused
    for _ in range(3 * QUIET):
        rt.check(WINDOW)
    assert f.calls == ["fifo"] and not rt.on


def _may_run_realtime() -> bool:
    import resource

    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] > 0


def test_the_real_calls_move_only_the_calling_thread() -> None:
    if not _may_run_realtime():
        pytest.skip("neither root nor RLIMIT_RTPRIO: the real-time class is refused here")
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
                    "normal": os.SCHED_OTHER, "slice": slice_shown}  # demoted: short slice
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
