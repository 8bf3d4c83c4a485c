"""CPU priority of a node's processes and of the control process's threads.

Heavy work in *other processes* runs niced; heavy *threads* of the control
process do not. Owns:

* `lower_thread_priority(nice)`: the calling thread's own nice value (never
  raises: a system that forbids it runs the thread at normal priority); used
  where a process of its own does zone-sized work: the signing pool's
  processes (`node/work/pool.py`) and the forked image child
  (`node/image/forked.py`), at `HEAVY_NICE`;
* `heavy_thread()`: what a heavy thread of the control process runs at:
  SCHED_BATCH (no wake-up preemption, the same CPU weight) at the loop's nice
  value, and a name for `top -H`; `heavy_executor()` is the thread pool the
  control process installs as its event loop's default executor (`daemon.py`),
  so everything handed to `asyncio.to_thread` / `run_in_executor(None, ...)`
  (building a zone's nodes from etcd, signing, journal steps, key generation)
  runs so; the image builder and the import decoder threads too.

Why heavy threads are not niced: they share the interpreter lock with the
event loop (watch, gRPC API, Key Master duties) and the lease keep-alive
thread. A niced thread that holds the lock while the kernel runs others keeps
them all waiting: measured in a model (an event loop making 40 socket round
trips per 50 ms tick beside three heavy threads, 2 loaded cores, 1 ms switch
interval, interleaved runs), heavy threads at nice 3, 5 or 10 gave a tick p99
of 310-470 ms, at nice 0 or SCHED_BATCH 69-148 ms; on the nodes (bench.availability,
stall traces from `DNSCLUSTER_STALL_TRACE`) the control loop waited 250-600 ms
behind them many times during an import and a sign. The serving workers lose
little: the interpreter lock caps the control process's heavy threads at one
core, each worker runs in its own session (with autogroup, the kernel shares
CPU between sessions, not threads), and a worker's 0.1 ms slice lets it run
first when a query wakes it.

* `CONTROL_SWITCH_INTERVAL`: how long a heavy thread may keep the interpreter
  lock once the loop (or the keep-alive thread) asks for it (`sys.setswitchinterval`,
  set by `daemon.run`; CPython's default is 5 ms). The loop gives the lock up at
  every socket call and takes it back after; with three heavy threads running,
  each taking back could cost the default's 5 ms, so an iteration of forty calls
  waited 50 ms at the median (the same model: 5 ms gave p50 30-50 ms a tick,
  1 ms 6-24 ms).

* `request_short_slice()`: the serving workers' threads ask for the
  shortest time slice Linux grants (0.1 ms, `sched_setattr`, Linux 6.12 or
  later). The scheduler (EEVDF) runs first the thread with the earliest
  virtual deadline, and a thread's deadline is its slice away: a worker
  that wakes for a query among a dozen runnable processes of the same
  weight then goes before them instead of in the middle of the queue (it
  still gets no more than its fair share). Where the kernel refuses, the
  thread keeps the default slice.

Zone-sized work never runs SCHED_IDLE (nor in a session of its own niced to
19, where the kernel groups CPU time by session): it would then run only on
otherwise idle cores. Measured (bench.availability, 2026-12-06, machine at
load 20-28): the signing pool's processes got 3 s of CPU in 900 s and the
zone was never signed; on a node whose workers answer a flood, signatures
would expire. In the control process, a SCHED_IDLE thread holding the
interpreter lock would also keep the loop and the lease keep-alive thread
waiting. Nice values keep a small guaranteed share.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

CONTROL_SWITCH_INTERVAL = 0.001  # seconds; see above
HEAVY_NICE = 10  # the signing pool's processes and the forked image child
PR_SET_NAME = 15  # prctl(2): the calling thread's name (15 octets)
SERVING_SLICE_NS = 100_000  # the shortest slice Linux accepts for a normal thread (0.1 ms)
SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}  # sched_setattr(2) by machine
SCHED_ATTR = struct.Struct("IIQiIQQQ")  # struct sched_attr, version 0 (48 octets)


def lower_thread_priority(nice: int = HEAVY_NICE, name: bytes = b"heavy") -> None:
    """Set the calling thread's nice value to at least `nice` (Linux: per thread), and its
    name as `top -H` and /proc/<pid>/task/<tid>/comm show it to `name`."""
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    name_thread(name)


def thread_nice(tid: int | None = None) -> int:
    """The nice value of thread `tid` (default: the calling thread)."""
    return os.getpriority(os.PRIO_PROCESS, tid or threading.get_native_id())


def heavy_thread(name: bytes = b"heavy") -> None:
    """The calling thread (a heavy thread of the control process) runs SCHED_BATCH at its
    nice value, named `name` (never raises: where refused, it runs as it was)."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))  # 0: the calling thread
    name_thread(name)


@contextlib.contextmanager
def normal_policy() -> Iterator[None]:
    """The calling thread runs SCHED_OTHER for the block (threads it starts inherit it), then
    its policy again: for a heavy thread that may start long-lived helper threads (the
    worker pool's slot threads, which also name themselves: `name_thread`). Unprivileged:
    BATCH <-> OTHER is allowed."""
    try:
        before = os.sched_getscheduler(0)
    except (OSError, AttributeError):
        yield
        return
    if before == os.SCHED_OTHER:
        yield
        return
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, before, os.sched_param(0))


def name_thread(name: bytes) -> None:
    """Name the calling thread `name` (15 bytes at most) as `top -H` and
    /proc/<pid>/task/<tid>/comm show it: a new thread inherits its creator's name, so a
    helper thread started from a heavy thread would show as "heavy" otherwise."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0)


def thread_policy(tid: int | None = None) -> int:
    """The scheduling policy of thread `tid` (default: the calling thread)."""
    return os.sched_getscheduler(tid or threading.get_native_id())


def heavy_executor(max_workers: int | None = None) -> ThreadPoolExecutor:
    """A thread pool of heavy threads (`heavy_thread`: the control loop's default executor;
    `None` workers: as asyncio's own default, min(32, cores + 4))."""
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="heavy",
                              initializer=heavy_thread)


def request_short_slice(ns: int = SERVING_SLICE_NS, flags: int = 0) -> bool:
    """Ask for a time slice of `ns` for the calling thread (SCHED_OTHER, its nice value kept;
    threads it starts afterwards inherit the slice). `flags`: sched_attr's sched_flags
    (SCHED_FLAG_RESET_ON_FORK: a thread without CAP_SYS_NICE may not clear that flag once
    set). False where the kernel refuses it."""
    number = SYS_SCHED_SETATTR.get(platform.machine())
    if number is None:
        return False
    try:
        nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        attr = ctypes.create_string_buffer(
            SCHED_ATTR.pack(SCHED_ATTR.size, os.SCHED_OTHER, flags, nice, 0, ns, 0, 0))
        return ctypes.CDLL(None, use_errno=True).syscall(number, 0, attr, 0) == 0
    except (OSError, AttributeError):
        return False
